//! The checkers' self-test (`tally-jepsen check --self-test`): for every checker, a seeded
//! history that is right must pass it, and the same history with one seeded defect — the
//! kind of defect the checker exists to find — must not.
//!
//! The right histories come from a model: concurrent processes whose operations take
//! effect at a random instant inside their windows, applied in that order to a simple
//! ledger, so results, reads and the final state are what a correct database would give.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{linear, Check};
use crate::history::{Final, FinalQueries, FinalReplica, FinalTransfer, Kind, Op, F};
use crate::stream::StreamChange;

/// One checker's self-test on one seed.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The checker.
    pub checker: &'static str,
    /// The seed.
    pub seed: u64,
    /// What the defect was.
    pub defect: String,
    /// The verdict on the right history (must be `Some(true)`).
    pub good: Option<bool>,
    /// The verdict on the defective one (must not be `Some(true)`).
    pub bad: Option<bool>,
}

impl Outcome {
    /// Whether the checker judged both histories rightly.
    pub fn passed(&self) -> bool {
        self.good == Some(true) && self.bad != Some(true)
    }
}

/// Every checker the self-test covers.
pub const CHECKERS: &[&str] = &[
    "conservation",
    "no-negative",
    "acknowledged-present",
    "failed-absent",
    "indeterminate",
    "replay",
    "replicas",
    "linearizable",
    "exactly-once",
    "holds",
    "refunds",
    "queries",
    "stream",
];

/// Runs every checker's self-test on `seeds`.
pub fn run(seeds: impl IntoIterator<Item = u64> + Clone) -> Vec<Outcome> {
    let mut out = Vec::new();
    for &checker in CHECKERS {
        for seed in seeds.clone() {
            out.push(one(checker, seed));
        }
    }
    out
}

fn one(checker: &'static str, seed: u64) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e1f_7e57);
    if checker == "stream" {
        return stream_outcome(seed, &mut rng);
    }
    let (good_ops, good_end) = match checker {
        "holds" => holds_history(&mut rng),
        "refunds" => refunds_history(&mut rng),
        "queries" => queries_history(&mut rng),
        _ => bank_history(&mut rng),
    };
    let mut ops = good_ops.clone();
    let mut end = good_end.clone();
    let defect = plant(checker, &mut ops, &mut end, &mut rng);
    Outcome {
        checker,
        seed,
        defect,
        good: judge(checker, &good_ops, &good_end).valid,
        bad: judge(checker, &ops, &end).valid,
    }
}

/// The stream a correct cluster would give for `end`: its transfers in timestamp order on
/// one partition, each with the balances a replay gives right after it.
fn stream_of(end: &Final) -> Vec<StreamChange> {
    let mut held: Vec<(&String, &FinalTransfer)> = end.transfers.iter().collect();
    held.sort_by_key(|(_, t)| t.timestamp);
    let mut balances: BTreeMap<u64, [u64; 4]> = BTreeMap::new();
    held.iter()
        .enumerate()
        .map(|(n, (id, t))| {
            let ok = t.result == "Ok";
            let (mut from_after, mut to_after) = ([0; 4], [0; 4]);
            if ok {
                balances.entry(t.from).or_default()[0] += t.amount;
                balances.entry(t.to).or_default()[1] += t.amount;
                from_after = balances[&t.from];
                to_after = balances[&t.to];
            }
            StreamChange {
                partition: 0,
                index: n as u64 + 1,
                event: 0,
                id: (*id).clone(),
                result: t.result.clone(),
                kind: t.kind.clone(),
                pending_id: "0".into(),
                from: t.from,
                to: t.to,
                amount: if ok { t.amount } else { 0 },
                from_after,
                to_after,
            }
        })
        .collect()
}

/// The stream checker on a right stream, and on one with a change lost or repeated.
fn stream_outcome(seed: u64, rng: &mut ChaCha8Rng) -> Outcome {
    let (_, end) = bank_history(rng);
    let good = stream_of(&end);
    let mut bad = good.clone();
    let n = rng.gen_range(0..bad.len());
    let defect = if rng.gen_bool(0.5) {
        let lost = bad.remove(n);
        format!("transfer {} lost from the stream", lost.id)
    } else {
        let mut again = bad[n].clone();
        again.index = bad.len() as u64 + 1;
        let id = again.id.clone();
        bad.push(again);
        format!("transfer {id} streamed twice")
    };
    Outcome {
        checker: "stream",
        seed,
        defect,
        good: super::stream::check(&good, &end).valid,
        bad: super::stream::check(&bad, &end).valid,
    }
}

fn judge(checker: &str, ops: &[Op], end: &Final) -> Check {
    match checker {
        "conservation" => super::conservation(ops, end),
        "no-negative" => super::no_negative(ops, end),
        "acknowledged-present" => super::acknowledged_present(ops, end),
        "failed-absent" => super::failed_absent(ops, end),
        "indeterminate" => super::indeterminate(ops, end),
        "replay" => super::replay(end),
        "replicas" => super::replicas(end),
        "linearizable" => linear::check(ops, end),
        "exactly-once" => super::exactly_once(ops, end),
        "holds" => super::holds(ops, end),
        "refunds" => super::refunds(ops, end),
        "queries" => super::queries(end),
        other => unreachable!("no checker {other}"),
    }
}

const ISSUER: u64 = 1;
const MERCHANT: u64 = 2;
const ACCOUNTS: [u64; 4] = [3, 4, 5, 6];
const INITIAL: u64 = 100;

/// A history entry.
fn entry(process: u64, kind: Kind, f: F, time_ns: u64) -> Op {
    let mut op = Op::new(process, kind, f);
    op.time_ns = time_ns;
    op
}

fn held(result: &str, kind: &str, from: u64, to: u64, amount: u64, at: u64) -> FinalTransfer {
    FinalTransfer {
        result: result.into(),
        kind: kind.into(),
        from,
        to,
        amount,
        reference: "0".into(),
        hold: "NotAHold".into(),
        refunded: 0,
        timestamp: at,
    }
}

/// The ledger the model keeps: debits and credits posted and pending per account.
struct Model {
    accounts: BTreeMap<u64, [u64; 4]>,
}

impl Model {
    fn new() -> Model {
        let mut accounts = BTreeMap::new();
        for id in [ISSUER, MERCHANT].into_iter().chain(ACCOUNTS) {
            accounts.insert(id, [0; 4]);
        }
        Model { accounts }
    }

    fn funds(&self, id: u64) -> i128 {
        let b = self.accounts[&id];
        i128::from(b[1]) - i128::from(b[0]) - i128::from(b[2])
    }

    fn transfer(&mut self, from: u64, to: u64, amount: u64, guarded: bool) -> bool {
        if guarded && self.funds(from) < i128::from(amount) {
            return false;
        }
        self.accounts.get_mut(&from).expect("an account")[0] += amount;
        self.accounts.get_mut(&to).expect("an account")[1] += amount;
        true
    }
}

fn final_state(model: &Model) -> Final {
    let mut groups = vec![ISSUER, MERCHANT];
    groups.extend(ACCOUNTS);
    Final {
        accounts: model.accounts.clone(),
        no_overdraft: ACCOUNTS.to_vec(),
        groups: vec![groups],
        group_totals: vec![0],
        nodes: 3,
        replicas: (1..=3)
            .map(|node| FinalReplica {
                node,
                partition: 0,
                applied: 1234,
                digest: "00000000000000000000000000c0ffee".into(),
                recovering: false,
            })
            .collect(),
        ..Final::default()
    }
}

/// Funds every account from the issuer, as process 0, before anything else.
fn fund(model: &mut Model, ops: &mut Vec<Op>, end: &mut Final, time: &mut u64) {
    for (n, &to) in ACCOUNTS.iter().enumerate() {
        let id = (1000 + n).to_string();
        let mut invoke = entry(0, Kind::Invoke, F::Transfer, *time);
        invoke.id = Some(id.clone());
        invoke.from = Some(ISSUER);
        invoke.to = Some(to);
        invoke.amount = Some(INITIAL);
        let mut done = invoke.clone();
        done.kind = Kind::Ok;
        done.time_ns = *time + 10;
        done.result = Some("Ok".into());
        ops.push(invoke);
        ops.push(done);
        model.transfer(ISSUER, to, INITIAL, false);
        end.transfers
            .insert(id, held("Ok", "Plain", ISSUER, to, INITIAL, *time + 5));
        *time += 20;
    }
}

/// An operation of the model run: its window, the instant it takes effect, and what it is.
struct Planned {
    process: u64,
    call: u64,
    ret: u64,
    at: u64,
    read: bool,
    id: u64,
    from: u64,
    to: u64,
    amount: u64,
    /// Its completion is lost (`info`); `applies` says whether it took effect anyway.
    unknown: bool,
    applies: bool,
}

/// A bank history: four writers and a reader, transfers between no-overdraft accounts,
/// some of unknown outcome, reads of every account.
fn bank_history(rng: &mut ChaCha8Rng) -> (Vec<Op>, Final) {
    let mut model = Model::new();
    let mut ops = Vec::new();
    let mut end = final_state(&model);
    let mut time = 0;
    fund(&mut model, &mut ops, &mut end, &mut time);

    let mut planned = Vec::new();
    let mut next_id = 1;
    for process in 1..=5u64 {
        let mut t = time + rng.gen_range(0..50);
        for _ in 0..rng.gen_range(20..40) {
            let length = rng.gen_range(5..200);
            let from = *ACCOUNTS.choose(rng).expect("accounts");
            let mut to = *ACCOUNTS.choose(rng).expect("accounts");
            while to == from {
                to = *ACCOUNTS.choose(rng).expect("accounts");
            }
            let unknown = process != 5 && rng.gen_bool(0.1);
            planned.push(Planned {
                process,
                call: t,
                ret: t + length,
                at: t + rng.gen_range(1..length),
                read: process == 5,
                id: next_id,
                from,
                to,
                amount: rng.gen_range(1..60),
                unknown,
                applies: !unknown || rng.gen_bool(0.5),
            });
            next_id += 1;
            t += length + rng.gen_range(1..30);
        }
    }
    planned.sort_by_key(|p| p.at);
    let mut completions: Vec<Op> = Vec::new();
    for p in &planned {
        let (f, mut invoke) = if p.read {
            (F::Read, entry(p.process, Kind::Invoke, F::Read, p.call))
        } else {
            let mut op = entry(p.process, Kind::Invoke, F::Transfer, p.call);
            op.id = Some(p.id.to_string());
            op.from = Some(p.from);
            op.to = Some(p.to);
            op.amount = Some(p.amount);
            (F::Transfer, op)
        };
        let mut done = invoke.clone();
        done.time_ns = p.ret;
        if f == F::Read {
            done.kind = Kind::Ok;
            done.balances = Some(model.accounts.clone());
        } else if p.applies {
            let ok = model.transfer(p.from, p.to, p.amount, true);
            let result = if ok { "Ok" } else { "ExceedsCredits" };
            end.transfers.insert(
                p.id.to_string(),
                held(result, "Plain", p.from, p.to, p.amount, p.at),
            );
            if p.unknown {
                done.kind = Kind::Info;
                done.error = Some("timed out".into());
            } else {
                done.kind = if ok { Kind::Ok } else { Kind::Fail };
                done.result = Some(result.into());
            }
        } else {
            done.kind = Kind::Info;
            done.error = Some("connection lost".into());
        }
        invoke.kind = Kind::Invoke;
        completions.push(invoke);
        completions.push(done);
    }
    // Into time order (invocations first at a tie), as a recorder would have written it.
    completions.sort_by_key(|o| (o.time_ns, o.kind != Kind::Invoke));
    ops.extend(completions);
    for (index, op) in ops.iter_mut().enumerate() {
        op.index = index as u64;
    }
    end.accounts = model.accounts.clone();
    (ops, end)
}

/// Holds from the accounts to the merchant, some posted, some voided, some left.
fn holds_history(rng: &mut ChaCha8Rng) -> (Vec<Op>, Final) {
    let model = Model::new();
    let mut end = final_state(&model);
    let mut ops = Vec::new();
    let mut time = 0;
    for n in 0..rng.gen_range(10..30u64) {
        let id = (100 + n).to_string();
        let from = *ACCOUNTS.choose(rng).expect("accounts");
        let amount = rng.gen_range(1..20);
        let timeout = *[0u32, 2, 5].choose(rng).expect("timeouts");
        let mut hold = entry(1, Kind::Invoke, F::Hold, time);
        hold.id = Some(id.clone());
        hold.from = Some(from);
        hold.to = Some(MERCHANT);
        hold.amount = Some(amount);
        hold.timeout_s = Some(timeout);
        let mut done = hold.clone();
        done.kind = Kind::Ok;
        done.result = Some("Ok".into());
        done.time_ns = time + 5;
        ops.push(hold);
        ops.push(done);
        let mut record = held("Ok", "Pending", from, MERCHANT, amount, time + 3);
        let fate = rng.gen_range(0..3);
        record.hold = match fate {
            0 | 1 => {
                let f = if fate == 0 { F::Post } else { F::Void };
                let second = (200 + n).to_string();
                let mut invoke = entry(1, Kind::Invoke, f, time + 10);
                invoke.id = Some(second.clone());
                invoke.reference = Some(id.clone());
                let mut done = invoke.clone();
                done.kind = Kind::Ok;
                done.result = Some("Ok".into());
                done.time_ns = time + 15;
                ops.push(invoke);
                ops.push(done);
                let kind = if fate == 0 { "Post" } else { "Void" };
                let mut after = held("Ok", kind, from, MERCHANT, amount, time + 12);
                after.reference = id.clone();
                end.transfers.insert(second, after);
                if fate == 0 {
                    "Posted"
                } else {
                    "Voided"
                }
            }
            _ if timeout > 0 => "Expired",
            _ => "Pending",
        }
        .into();
        end.transfers.insert(id, record);
        time += 20;
    }
    for (index, op) in ops.iter_mut().enumerate() {
        op.index = index as u64;
    }
    (ops, end)
}

/// Purchases and partial refunds of them, within what each purchase allows.
fn refunds_history(rng: &mut ChaCha8Rng) -> (Vec<Op>, Final) {
    let model = Model::new();
    let mut end = final_state(&model);
    let mut ops = Vec::new();
    let mut time = 0;
    let mut next = 1;
    for _ in 0..rng.gen_range(5..15) {
        let purchase = next;
        next += 1;
        let from = *ACCOUNTS.choose(rng).expect("accounts");
        let amount = rng.gen_range(20..100);
        let mut record = held("Ok", "Plain", from, MERCHANT, amount, time);
        let mut refunded = 0;
        for _ in 0..rng.gen_range(0..5) {
            let part = rng.gen_range(1..30);
            if refunded + part > amount {
                continue;
            }
            refunded += part;
            let id = next;
            next += 1;
            let mut invoke = entry(2, Kind::Invoke, F::Refund, time);
            invoke.id = Some(id.to_string());
            invoke.amount = Some(part);
            invoke.reference = Some(purchase.to_string());
            let mut done = invoke.clone();
            done.kind = Kind::Ok;
            done.result = Some("Ok".into());
            done.time_ns = time + 5;
            ops.push(invoke);
            ops.push(done);
            let mut refund = held("Ok", "Refund", MERCHANT, from, part, time + 2);
            refund.reference = purchase.to_string();
            end.transfers.insert(id.to_string(), refund);
            time += 10;
        }
        record.refunded = refunded;
        end.transfers.insert(purchase.to_string(), record);
        time += 10;
    }
    for (index, op) in ops.iter_mut().enumerate() {
        op.index = index as u64;
    }
    (ops, end)
}

/// Transfers spread over a few hours, with every account's flows and series computed the
/// slow way.
fn queries_history(rng: &mut ChaCha8Rng) -> (Vec<Op>, Final) {
    const HOUR: u64 = 3_600_000_000_000;
    let model = Model::new();
    let mut end = final_state(&model);
    let start = 1_800_000_000 * 1_000_000_000 / HOUR * HOUR;
    let mut moves = Vec::new();
    for id in 1..rng.gen_range(20..60u64) {
        let from = *ACCOUNTS.choose(rng).expect("accounts");
        let mut to = *ACCOUNTS.choose(rng).expect("accounts");
        while to == from {
            to = *ACCOUNTS.choose(rng).expect("accounts");
        }
        let at = start + rng.gen_range(0..3 * HOUR);
        let amount = rng.gen_range(1..50);
        end.transfers
            .insert(id.to_string(), held("Ok", "Plain", from, to, amount, at));
        moves.push((at, from, to, amount));
    }
    let window = (start + HOUR / 2, start + 2 * HOUR);
    for account in ACCOUNTS {
        let mut flows = (0, 0);
        for &(at, from, to, amount) in &moves {
            if at >= window.0 && at < window.1 {
                if from == account {
                    flows.0 += amount;
                }
                if to == account {
                    flows.1 += amount;
                }
            }
        }
        let series = (0..3)
            .map(|h| {
                let close = start + (h + 1) * HOUR;
                let balance: i128 = moves
                    .iter()
                    .filter(|m| m.0 < close)
                    .map(|&(_, from, to, amount)| {
                        i128::from(amount)
                            * (i128::from(to == account) - i128::from(from == account))
                    })
                    .sum();
                (start + h * HOUR, balance)
            })
            .collect();
        end.queries.insert(
            account,
            FinalQueries {
                window,
                flows,
                series,
            },
        );
    }
    (Vec::new(), end)
}

/// Plants the defect `checker` exists to find; says what it did.
fn plant(checker: &str, ops: &mut Vec<Op>, end: &mut Final, rng: &mut ChaCha8Rng) -> String {
    let acknowledged: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].f == F::Transfer && ops[i].kind == Kind::Ok && ops[i].process > 0)
        .collect();
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].f == F::Read && ops[i].kind == Kind::Ok)
        .collect();
    match checker {
        "conservation" => {
            let &r = reads.choose(rng).expect("reads");
            let account = *ACCOUNTS.choose(rng).expect("accounts");
            if let Some(b) = ops[r].balances.as_mut().and_then(|b| b.get_mut(&account)) {
                b[1] += 1;
            }
            format!("read {r} shows one unit too many on account {account}")
        }
        "no-negative" => {
            let account = *ACCOUNTS.choose(rng).expect("accounts");
            let b = end.accounts.get_mut(&account).expect("an account");
            b[0] = b[1] + 1;
            format!("account {account} ends overdrawn")
        }
        "acknowledged-present" => {
            let &a = acknowledged.choose(rng).expect("acknowledged transfers");
            let id = ops[a].id.clone().unwrap_or_default();
            end.transfers.remove(&id);
            format!("acknowledged transfer {id} lost")
        }
        "failed-absent" => {
            let failed: Vec<usize> = (0..ops.len())
                .filter(|&i| ops[i].kind == Kind::Fail && ops[i].result.is_some())
                .collect();
            let id = match failed.choose(rng) {
                Some(&f) => ops[f].id.clone().unwrap_or_default(),
                None => {
                    // No refusal in this history: add one.
                    let at = ops.last().map_or(0, |o| o.time_ns) + 10;
                    let mut invoke = entry(9, Kind::Invoke, F::Transfer, at);
                    invoke.id = Some("999999".into());
                    invoke.from = Some(ACCOUNTS[0]);
                    invoke.to = Some(ACCOUNTS[1]);
                    invoke.amount = Some(1_000_000);
                    let mut done = invoke.clone();
                    done.kind = Kind::Fail;
                    done.result = Some("ExceedsCredits".into());
                    done.time_ns = at + 5;
                    ops.push(invoke);
                    ops.push(done);
                    "999999".into()
                }
            };
            let record = end
                .transfers
                .entry(id.clone())
                .or_insert_with(|| held("ExceedsCredits", "Plain", ACCOUNTS[0], ACCOUNTS[1], 1, 0));
            record.result = "Ok".into();
            format!("transfer {id}, refused, held applied")
        }
        "indeterminate" => {
            let unknown: Vec<usize> = (0..ops.len())
                .filter(|&i| ops[i].kind == Kind::Info)
                .collect();
            let &u = unknown.choose(rng).expect("unknown outcomes");
            let id = ops[u].id.clone().unwrap_or_default();
            end.transfers.remove(&id);
            end.unresolved.push(id.clone());
            format!("transfer {id} of unknown outcome never resolved")
        }
        "replay" => {
            let account = *ACCOUNTS.choose(rng).expect("accounts");
            end.accounts.get_mut(&account).expect("an account")[1] += 5;
            format!("account {account} holds 5 credits no transfer gave it")
        }
        "replicas" => {
            let node = rng.gen_range(0..end.replicas.len());
            end.replicas[node].digest = "000000000000000000000000deadbeef".into();
            format!("node {} diverged", node + 1)
        }
        "linearizable" => stale_read(ops, rng),
        "exactly-once" => {
            let &a = acknowledged.choose(rng).expect("acknowledged transfers");
            let mut retry = ops[a].clone();
            let at = ops.last().map_or(0, |o| o.time_ns) + 10;
            retry.process = 9;
            retry.kind = Kind::Invoke;
            retry.result = None;
            retry.time_ns = at;
            let mut done = retry.clone();
            done.kind = Kind::Fail;
            done.result = Some("ExceedsCredits".into());
            done.time_ns = at + 5;
            ops.push(retry);
            ops.push(done);
            format!(
                "transfer {} answered Ok, then ExceedsCredits",
                ops[a].id.clone().unwrap_or_default()
            )
        }
        "holds" => {
            let decided: Vec<String> = end
                .transfers
                .iter()
                .filter(|(_, t)| t.kind == "Pending" && (t.hold == "Posted" || t.hold == "Voided"))
                .map(|(id, _)| id.clone())
                .collect();
            let id = decided.choose(rng).expect("a posted or voided hold");
            let t = end.transfers.get_mut(id).expect("a hold");
            t.hold = if t.hold == "Posted" {
                "Voided"
            } else {
                "Posted"
            }
            .into();
            format!("hold {id} ends the other way than acknowledged")
        }
        "refunds" => {
            let purchases: Vec<String> = end
                .transfers
                .iter()
                .filter(|(_, t)| t.kind == "Plain")
                .map(|(id, _)| id.clone())
                .collect();
            let id = purchases.choose(rng).expect("a purchase").clone();
            let t = end.transfers.get_mut(&id).expect("a purchase");
            if rng.gen_bool(0.5) {
                t.refunded = t.amount + 1;
                format!("purchase {id} refunded beyond its amount")
            } else {
                t.refunded += 1;
                format!("purchase {id} records a refund nobody made")
            }
        }
        "queries" => {
            let account = *ACCOUNTS.choose(rng).expect("accounts");
            let answer = end.queries.get_mut(&account).expect("queries");
            if rng.gen_bool(0.5) {
                answer.flows.1 += 1;
                format!("account {account}'s flows off by one")
            } else {
                let h = rng.gen_range(0..answer.series.len());
                answer.series[h].1 -= 1;
                format!("account {account}'s hour {h} closes one unit short")
            }
        }
        other => unreachable!("no checker {other}"),
    }
}

/// Makes a read show both accounts of a transfer that had completed before the read began
/// as they were before it: a stale read, money still conserved.
fn stale_read(ops: &mut [Op], rng: &mut ChaCha8Rng) -> String {
    let mut candidates = Vec::new();
    for r in 0..ops.len() {
        if ops[r].f != F::Read || ops[r].kind != Kind::Ok {
            continue;
        }
        // The read's invocation: the latest invocation of its process before it.
        let Some(call) = ops[..r]
            .iter()
            .rev()
            .find(|o| o.process == ops[r].process && o.kind == Kind::Invoke)
            .map(|o| o.time_ns)
        else {
            continue;
        };
        for (t, o) in ops[..r].iter().enumerate() {
            if o.f == F::Transfer && o.kind == Kind::Ok && o.time_ns < call {
                candidates.push((r, t));
            }
        }
    }
    let &(r, t) = candidates.choose(rng).expect("a read after a transfer");
    let (from, to, amount) = (
        ops[t].from.unwrap_or(0),
        ops[t].to.unwrap_or(0),
        ops[t].amount.unwrap_or(0),
    );
    let id = ops[t].id.clone().unwrap_or_default();
    if let Some(b) = ops[r].balances.as_mut() {
        if let Some(a) = b.get_mut(&from) {
            a[0] -= amount;
        }
        if let Some(a) = b.get_mut(&to) {
            a[1] -= amount;
        }
    }
    format!("read {r} misses transfer {id}, acknowledged before the read began")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_checker_tells_right_from_wrong() {
        let failures: Vec<Outcome> = run(1..=5).into_iter().filter(|o| !o.passed()).collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
