//! `stream`: the change stream a consumer read through the whole run, faults and all,
//! carried every decision the cluster holds exactly once, in commit order per partition,
//! with the balances right after each, and replays to the final balances.

use std::collections::BTreeMap;

use super::Check;
use crate::history::Final;
use crate::stream::StreamChange;

/// Judges `changes` (what the consumer received) against `end`.
pub fn check(changes: &[StreamChange], end: &Final) -> Check {
    let mut check = Check::new("stream");
    // Commit order: positions strictly increase per partition.
    let mut last: BTreeMap<u32, (u64, u32)> = BTreeMap::new();
    for c in changes {
        check.count("changes");
        let at = (c.index, c.event);
        if let Some(before) = last.insert(c.partition, at) {
            if at <= before {
                check.fail(format!(
                    "partition {}: change {}.{} (transfer {}) after {}.{}: repeated or out of \
                     order",
                    c.partition, c.index, c.event, c.id, before.0, before.1
                ));
            }
        }
    }
    // Each decision once, as the cluster holds it.
    let mut decided: BTreeMap<&str, &StreamChange> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.kind != "Expired") {
        if let Some(first) = decided.insert(&c.id, c) {
            check.fail(format!(
                "transfer {} decided twice in the stream: {}:{}.{} ({}) and {}:{}.{} ({})",
                c.id,
                first.partition,
                first.index,
                first.event,
                first.result,
                c.partition,
                c.index,
                c.event,
                c.result
            ));
        }
    }
    for (id, held) in &end.transfers {
        check.count("transfers held");
        match decided.get(id.as_str()) {
            None => check.fail(format!(
                "transfer {id} is held ({}, {}) but never came in the stream",
                held.result, held.kind
            )),
            Some(c) if c.result != held.result => check.fail(format!(
                "transfer {id}: the stream says {}, the cluster holds {}",
                c.result, held.result
            )),
            Some(c)
                if c.result == "Ok"
                    && (c.kind != held.kind || (c.from, c.to) != (held.from, held.to)) =>
            {
                check.fail(format!(
                    "transfer {id}: the stream has {} {}->{}, the cluster {} {}->{}",
                    c.kind, c.from, c.to, held.kind, held.from, held.to
                ))
            }
            Some(_) => {}
        }
    }
    // Replayed, the changes give every balance they report, and the final ones.
    let mut balances: BTreeMap<u64, [u64; 4]> = BTreeMap::new();
    let mut holds: BTreeMap<&str, u64> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.result == "Ok") {
        let released = match c.kind.as_str() {
            "Post" | "Void" => holds.remove(c.pending_id.as_str()),
            "Expired" => holds.remove(c.id.as_str()),
            _ => Some(0),
        };
        let Some(released) = released else {
            check.fail(format!(
                "transfer {} ({}) settles a hold the stream never showed",
                c.id, c.kind
            ));
            continue;
        };
        let (posted, pending) = match c.kind.as_str() {
            "Plain" | "Post" | "Refund" => (c.amount, 0),
            "Pending" => (0, c.amount),
            _ => (0, 0),
        };
        if c.kind == "Pending" {
            holds.insert(&c.id, c.amount);
        }
        let from = balances.entry(c.from).or_default();
        from[0] += posted;
        from[2] = (from[2] + pending).saturating_sub(released);
        let from = *from;
        let to = balances.entry(c.to).or_default();
        to[1] += posted;
        to[3] = (to[3] + pending).saturating_sub(released);
        let to = *to;
        if (from, to) != (c.from_after, c.to_after) {
            check.fail(format!(
                "transfer {} at {}:{}.{}: the stream says {:?} and {:?} after it, its replay \
                 gives {from:?} and {to:?}",
                c.id, c.partition, c.index, c.event, c.from_after, c.to_after
            ));
        }
    }
    for (id, held) in &end.accounts {
        let replayed = balances.get(id).copied().unwrap_or_default();
        if replayed != *held {
            check.fail(format!(
                "account {id} holds {held:?}, the stream replays to {replayed:?}"
            ));
        }
    }
    check
}

/// The verdict when the stream could not be read to the end.
pub fn failed(error: &str) -> Check {
    let mut check = Check::new("stream");
    check.fail(format!(
        "the change stream was not read to the end: {error}"
    ));
    check
}
