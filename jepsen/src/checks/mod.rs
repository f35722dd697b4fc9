//! The checkers: each judges the history and the final state, and says whether it holds,
//! with counts and the evidence of any violation (ids, times, values).
//!
//! - `conservation`: money is neither made nor lost — in every read and at the end, each
//!   group's posted balances sum to its total and its pending debits equal its pending
//!   credits.
//! - `no-negative`: no account that may not overdraw ever shows more debits (posted and
//!   pending) than credits, in a read or at the end.
//! - `acknowledged-present`: every transfer acknowledged `Ok` is held, `Ok`, with the outcome
//!   acknowledged (result and timestamp).
//! - `failed-absent`: every transfer that definitely failed is either not held or held with
//!   a failure — never applied.
//! - `indeterminate`: every operation whose outcome was unknown is resolved by the final
//!   lookup (applied, or not); the counts are reported.
//! - `replay`: the final balances equal a replay of the transfers the cluster holds (so
//!   nothing was applied twice or half-applied).
//! - `replicas`: every node's replica of each partition is at the same applied index with
//!   the same state digest, and none is still recovering.
//! - `linearizable`: per account, the reads and plain transfers can be ordered consistently
//!   with real time (`linear.rs`, Wing–Gong–Lowe); this is what finds a stale read.
//! - `exactly-once`: every transfer id got one outcome, whichever attempt answered.
//! - `holds`: a posted hold is `Posted`, a voided one `Voided`; one that expired had a
//!   timeout; no hold is both posted and voided.
//! - `refunds`: the refunds acknowledged for a transfer add up to what it records as
//!   refunded, which never exceeds its amount.
//! - `queries`: each account's 24-hour flows and hourly series equal a brute-force
//!   computation from the transfers the cluster holds.
//! - `stream`: a change stream read through the whole run (`stream.rs` of the harness)
//!   carried each transfer the cluster holds once, with its result, in commit order per
//!   partition, with the balances right after each, and replays to the final balances.
//! - `read-back` (only when it fails): after every fault was healed, the cluster did not
//!   answer at all.

pub mod linear;
pub mod self_test;
pub mod stream;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::history::{pairs, Final, Kind, Op, F};

/// How many violations a check lists as evidence.
const EVIDENCE_MAX: usize = 20;

/// One checker's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// The checker.
    pub name: String,
    /// Whether it holds (`None`: it could not decide, e.g. a search ran out of budget).
    pub valid: Option<bool>,
    /// Counts of what it looked at.
    pub counts: BTreeMap<String, u64>,
    /// The first violations found.
    pub errors: Vec<String>,
}

impl Check {
    fn new(name: &str) -> Check {
        Check {
            name: name.into(),
            valid: Some(true),
            counts: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    fn count(&mut self, what: &str) {
        *self.counts.entry(what.into()).or_insert(0) += 1;
    }

    fn fail(&mut self, error: String) {
        self.valid = Some(false);
        self.count("violations");
        if self.errors.len() < EVIDENCE_MAX {
            self.errors.push(error);
        }
    }
}

fn signed(b: &[u64; 4]) -> i128 {
    i128::from(b[1]) - i128::from(b[0])
}

/// Runs every checker that applies to `workload`.
pub fn check_all(workload: &str, ops: &[Op], end: &Final) -> Vec<Check> {
    let mut checks = vec![
        conservation(ops, end),
        no_negative(ops, end),
        acknowledged_present(ops, end),
        failed_absent(ops, end),
        indeterminate(ops, end),
        replay(end),
        replicas(end),
    ];
    match workload {
        "bank" | "queries" => checks.push(linear::check(ops, end)),
        "exactly-once" => {
            checks.push(linear::check(ops, end));
            checks.push(exactly_once(ops, end));
        }
        "holds" => checks.push(holds(ops, end)),
        "refunds" => checks.push(refunds(ops, end)),
        _ => {}
    }
    if workload == "queries" {
        checks.push(queries(end));
    }
    checks
}

/// The verdict when the cluster could not be read back after every fault was healed.
pub fn unavailable(error: &str) -> Check {
    let mut check = Check::new("read-back");
    check.fail(format!(
        "with every fault healed and every node running, the cluster did not answer the \
         read-back: {error}"
    ));
    check
}

/// Money neither made nor lost, in every read and at the end.
pub fn conservation(ops: &[Op], end: &Final) -> Check {
    let mut check = Check::new("conservation");
    let judge = |check: &mut Check, when: &str, balances: &BTreeMap<u64, [u64; 4]>| {
        for (g, group) in end.groups.iter().enumerate() {
            if !group.iter().all(|id| balances.contains_key(id)) {
                continue;
            }
            let posted: i128 = group.iter().map(|id| signed(&balances[id])).sum();
            let total = end.group_totals.get(g).copied().unwrap_or(0);
            let debits: u128 = group.iter().map(|id| u128::from(balances[id][2])).sum();
            let credits: u128 = group.iter().map(|id| u128::from(balances[id][3])).sum();
            check.count("groups judged");
            if posted != total {
                check.fail(format!(
                    "{when}: group {g} posted balances sum to {posted}, not {total}"
                ));
            }
            if debits != credits {
                check.fail(format!(
                    "{when}: group {g} holds {debits} pending debits but {credits} pending credits"
                ));
            }
        }
    };
    for op in ops.iter().filter(|o| o.f == F::Read && o.kind == Kind::Ok) {
        if let Some(balances) = &op.balances {
            check.count("reads");
            judge(
                &mut check,
                &format!("read {} at {} ns", op.index, op.time_ns),
                balances,
            );
        }
    }
    judge(&mut check, "the final state", &end.accounts);
    check
}

/// No forbidden negative balance.
pub fn no_negative(ops: &[Op], end: &Final) -> Check {
    let mut check = Check::new("no-negative");
    let judge = |check: &mut Check, when: &str, balances: &BTreeMap<u64, [u64; 4]>| {
        for id in &end.no_overdraft {
            if let Some(b) = balances.get(id) {
                check.count("balances judged");
                let debits = u128::from(b[0]) + u128::from(b[2]);
                if debits > u128::from(b[1]) {
                    check.fail(format!(
                        "{when}: account {id} may not overdraw but has {debits} debits \
                         (posted and pending) against {} credits",
                        b[1]
                    ));
                }
            }
        }
    };
    for op in ops.iter().filter(|o| o.f == F::Read && o.kind == Kind::Ok) {
        if let Some(balances) = &op.balances {
            judge(
                &mut check,
                &format!("read {} at {} ns", op.index, op.time_ns),
                balances,
            );
        }
    }
    judge(&mut check, "the final state", &end.accounts);
    check
}

fn writes(ops: &[Op]) -> impl Iterator<Item = &Op> {
    ops.iter()
        .filter(|o| o.f != F::Read && o.kind != Kind::Invoke)
}

/// Every acknowledged transfer held with the outcome acknowledged.
pub fn acknowledged_present(ops: &[Op], end: &Final) -> Check {
    let mut check = Check::new("acknowledged-present");
    for op in writes(ops).filter(|o| o.kind == Kind::Ok) {
        let id = op.id.clone().unwrap_or_default();
        check.count("acknowledged");
        match end.transfers.get(&id) {
            Some(t) if t.result == "Ok" => check.count("present"),
            Some(t) => check.fail(format!(
                "transfer {id} acknowledged Ok at {} ns is held as {}",
                op.time_ns, t.result
            )),
            None if end.unresolved.contains(&id) => check.count("unresolved lookups"),
            None => check.fail(format!(
                "transfer {id} acknowledged Ok at {} ns (process {}) is lost",
                op.time_ns, op.process
            )),
        }
    }
    check
}

/// Every definite failure absent (or held as a failure).
pub fn failed_absent(ops: &[Op], end: &Final) -> Check {
    let mut check = Check::new("failed-absent");
    // Ids one of whose attempts was acknowledged or may have applied: a later attempt's
    // refusal says nothing about them.
    let maybe_applied: BTreeSet<&str> = writes(ops)
        .filter(|o| o.kind == Kind::Ok || o.kind == Kind::Info)
        .filter_map(|o| o.id.as_deref())
        .collect();
    for op in writes(ops).filter(|o| o.kind == Kind::Fail) {
        let id = op.id.clone().unwrap_or_default();
        check.count("failed");
        if let Some(result) = &op.result {
            // A definite rejection: its recorded result, if any, must be that one.
            match end.transfers.get(&id) {
                Some(t) if t.result == "Ok" => check.fail(format!(
                    "transfer {id} answered {result} at {} ns is held applied",
                    op.time_ns
                )),
                _ => check.count("rejected, not applied"),
            }
        } else if !maybe_applied.contains(id.as_str()) {
            // Not sent, or refused before it reached a partition: never applied.
            match end.transfers.get(&id) {
                Some(t) if t.result == "Ok" => check.fail(format!(
                    "transfer {id} failed at {} ns ({}) is held applied",
                    op.time_ns,
                    op.error.clone().unwrap_or_default()
                )),
                _ => check.count("refused, not applied"),
            }
        }
    }
    check
}

/// Every unknown outcome resolved.
pub fn indeterminate(ops: &[Op], end: &Final) -> Check {
    let mut check = Check::new("indeterminate");
    for (invoke, completion) in pairs(ops) {
        if invoke.f == F::Read || invoke.process == 0 {
            continue;
        }
        let unknown = completion.as_ref().is_none_or(|c| c.kind == Kind::Info);
        if !unknown {
            continue;
        }
        let id = invoke.id.clone().unwrap_or_default();
        check.count("indeterminate");
        match end.transfers.get(&id) {
            Some(t) if t.result == "Ok" => check.count("resolved: applied"),
            Some(_) => check.count("resolved: decided as a failure"),
            None if end.unresolved.contains(&id) => {
                check.valid = None;
                check.count("unresolved");
            }
            None => check.count("resolved: not applied"),
        }
    }
    check
}

/// The final balances are a replay of the transfers held.
pub fn replay(end: &Final) -> Check {
    let mut check = Check::new("replay");
    let mut expected: BTreeMap<u64, [u64; 4]> =
        end.accounts.keys().map(|&id| (id, [0; 4])).collect();
    for t in end.transfers.values().filter(|t| t.result == "Ok") {
        check.count("transfers replayed");
        let (debit, credit) = match (t.kind.as_str(), t.hold.as_str()) {
            ("Pending", "Pending") => (2, 3),
            ("Pending", _) => continue,
            ("Void", _) => continue,
            _ => (0, 1),
        };
        if let Some(b) = expected.get_mut(&t.from) {
            b[debit] += t.amount;
        }
        if let Some(b) = expected.get_mut(&t.to) {
            b[credit] += t.amount;
        }
    }
    for (id, want) in &expected {
        let held = end.accounts[id];
        if held != *want {
            check.fail(format!(
                "account {id} holds {held:?} (debits, credits posted; debits, credits pending) \
                 but its transfers add up to {want:?}"
            ));
        }
    }
    check
}

/// Every node's replicas agree.
pub fn replicas(end: &Final) -> Check {
    let mut check = Check::new("replicas");
    let mut by_partition: BTreeMap<u32, Vec<&crate::history::FinalReplica>> = BTreeMap::new();
    for r in &end.replicas {
        by_partition.entry(r.partition).or_default().push(r);
    }
    for node in 1..=end.nodes {
        if !end.replicas.iter().any(|r| r.node == node) {
            check.fail(format!(
                "node {node} reported no replicas (not running, or not answering)"
            ));
        }
    }
    if by_partition.is_empty() && end.nodes == 0 {
        check.valid = None;
        check.errors.push("no node reported its replicas".into());
    }
    for (partition, replicas) in by_partition {
        check.count("partitions");
        for r in &replicas {
            check.count("replicas");
            if r.recovering {
                check.fail(format!(
                    "node {} partition {partition} is still recovering",
                    r.node
                ));
            }
        }
        let first = replicas[0];
        for r in &replicas[1..] {
            if r.applied != first.applied {
                check.fail(format!(
                    "partition {partition}: node {} applied up to {}, node {} up to {}",
                    first.node, first.applied, r.node, r.applied
                ));
            } else if r.digest != first.digest {
                check.fail(format!(
                    "partition {partition} at index {}: node {} has digest {}, node {} {}",
                    r.applied, first.node, first.digest, r.node, r.digest
                ));
            }
        }
    }
    check
}

/// One outcome per transfer id.
pub fn exactly_once(ops: &[Op], end: &Final) -> Check {
    let mut check = Check::new("exactly-once");
    let mut answers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for op in writes(ops) {
        if let (Some(id), Some(result)) = (op.id.as_deref(), op.result.as_deref()) {
            answers.entry(id).or_default().insert(result);
        }
    }
    for (id, results) in answers {
        check.count("ids");
        if results.len() > 1 {
            check.fail(format!("transfer {id} was answered {results:?}"));
        }
        if let (Some(t), Some(first)) = (end.transfers.get(id), results.iter().next()) {
            if results.len() == 1 && t.result != *first && is_recorded(first) {
                check.fail(format!(
                    "transfer {id} was answered {first} but is held as {}",
                    t.result
                ));
            }
        }
    }
    check
}

/// Results the state machine records under the id (not chain or structural failures).
fn is_recorded(result: &str) -> bool {
    !matches!(
        result,
        "LinkedEventFailed" | "LinkedEventChainOpen" | "ExistsWithDifferentFields"
    )
}

/// Holds end as their posts and voids say.
pub fn holds(ops: &[Op], end: &Final) -> Check {
    let mut check = Check::new("holds");
    let mut posted = BTreeSet::new();
    let mut voided = BTreeSet::new();
    let mut timeouts = BTreeMap::new();
    for op in writes(ops).filter(|o| o.kind == Kind::Ok) {
        match op.f {
            F::Post => {
                posted.insert(op.reference.clone().unwrap_or_default());
            }
            F::Void => {
                voided.insert(op.reference.clone().unwrap_or_default());
            }
            F::Hold => {
                timeouts.insert(op.id.clone().unwrap_or_default(), op.timeout_s.unwrap_or(0));
            }
            _ => {}
        }
    }
    for (id, t) in end
        .transfers
        .iter()
        .filter(|(_, t)| t.kind == "Pending" && t.result == "Ok")
    {
        check.count("holds");
        let expect = match (posted.contains(id), voided.contains(id)) {
            (true, true) => {
                check.fail(format!("hold {id} was both posted and voided"));
                continue;
            }
            (true, false) => Some("Posted"),
            (false, true) => Some("Voided"),
            (false, false) => None,
        };
        match expect {
            Some(status) if t.hold != status => check.fail(format!(
                "hold {id} was acknowledged {status} but is {}",
                t.hold
            )),
            None if t.hold == "Expired" && timeouts.get(id).is_some_and(|&s| s == 0) => {
                check.fail(format!("hold {id} had no timeout but expired"))
            }
            _ => check.count(&format!("ended {}", t.hold.to_lowercase())),
        }
    }
    check
}

/// Refunds never exceed the original, and add up.
pub fn refunds(ops: &[Op], end: &Final) -> Check {
    let mut check = Check::new("refunds");
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    for op in writes(ops).filter(|o| o.kind == Kind::Ok && o.f == F::Refund) {
        *acknowledged
            .entry(op.reference.clone().unwrap_or_default())
            .or_insert(0) += op.amount.unwrap_or(0);
    }
    // Refunds that may have applied count too: their records say.
    let mut held: BTreeMap<String, u64> = BTreeMap::new();
    for t in end
        .transfers
        .values()
        .filter(|t| t.kind == "Refund" && t.result == "Ok")
    {
        *held.entry(t.reference.clone()).or_insert(0) += t.amount;
    }
    for (original, t) in end
        .transfers
        .iter()
        .filter(|(_, t)| t.result == "Ok" && t.refunded > 0)
    {
        check.count("refunded transfers");
        if t.refunded > t.amount {
            check.fail(format!(
                "transfer {original} of {} was refunded {}",
                t.amount, t.refunded
            ));
        }
        let records = held.get(original).copied().unwrap_or(0);
        if records != t.refunded {
            check.fail(format!(
                "transfer {original} records {} refunded, its refunds add up to {records}",
                t.refunded
            ));
        }
        let acked = acknowledged.get(original).copied().unwrap_or(0);
        if acked > t.refunded {
            check.fail(format!(
                "transfer {original}: {acked} acknowledged refunded, {} recorded",
                t.refunded
            ));
        }
    }
    check
}

/// Flows and series equal a brute-force computation.
pub fn queries(end: &Final) -> Check {
    const HOUR: u64 = 3_600_000_000_000;
    let mut check = Check::new("queries");
    for (&account, answer) in &end.queries {
        check.count("accounts");
        let (lo, hi) = answer.window;
        let mut debits = 0u64;
        let mut credits = 0u64;
        let moves: Vec<(u64, i128)> = end
            .transfers
            .values()
            .filter(|t| {
                t.result == "Ok" && (t.kind == "Plain" || t.kind == "Post" || t.kind == "Refund")
            })
            .filter_map(|t| {
                if t.from == account {
                    Some((t.timestamp, -(t.amount as i128)))
                } else if t.to == account {
                    Some((t.timestamp, t.amount as i128))
                } else {
                    None
                }
            })
            .collect();
        for &(at, delta) in &moves {
            if at >= lo && at < hi {
                if delta < 0 {
                    debits += (-delta) as u64;
                } else {
                    credits += delta as u64;
                }
            }
        }
        if (debits, credits) != answer.flows {
            check.fail(format!(
                "account {account}: flows over [{lo}, {hi}) answered {:?}, the transfers add up \
                 to {:?}",
                answer.flows,
                (debits, credits)
            ));
        }
        for &(hour, balance) in &answer.series {
            let closing: i128 = moves
                .iter()
                .filter(|(at, _)| *at < hour + HOUR)
                .map(|(_, delta)| delta)
                .sum();
            check.count("hours");
            if closing != balance {
                check.fail(format!(
                    "account {account}: the hour from {hour} closed at {balance}, the transfers \
                     say {closing}"
                ));
            }
        }
    }
    check
}
