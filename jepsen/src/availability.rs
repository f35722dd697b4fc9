//! What each fault cost the clients: for every fault window, the successful writes per
//! second against the quiet median, the longest time without a successful write, and the
//! operations that ended in an error or indeterminate.
//!
//! These are figures, not checks: a run is valid or not by its safety checks alone (the
//! machines are shared and noisy, and a wall-clock target belongs in a benchmark). They are
//! in `results.json` and in the report, so that a failover target can be read off a run.

use serde::{Deserialize, Serialize};

use crate::history::{pairs, Kind, Op, F};
use crate::nemesis::Event;

/// How long after a heal still counts towards a fault: the cluster's recovery is its cost.
pub const AFTER_HEAL_NS: u64 = 5_000_000_000;

/// One fault's cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCost {
    /// The fault's kind.
    pub kind: String,
    /// What was done.
    pub detail: String,
    /// When it started, milliseconds into the run.
    pub start_ms: u64,
    /// How long it lasted.
    pub duration_ms: u64,
    /// Successful writes per second while it lasted.
    pub writes_per_s: u64,
    /// That, in per cent of the quiet median.
    pub percent_of_quiet: u64,
    /// The longest time without a successful write, from its start to 5 s after its heal.
    pub longest_gap_ms: u64,
    /// Operations invoked in that span that the cluster refused with an error (not a
    /// ledger result such as insufficient funds).
    pub errors: u64,
    /// Operations invoked in that span that ended indeterminate.
    pub indeterminate: u64,
}

/// Every fault's cost, and the quiet figure they are measured against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    /// The median of successful writes per second over the whole seconds that no fault (or
    /// its 5 s after) touched; 0 if there were none.
    pub quiet_writes_per_s: u64,
    /// One entry per fault, in order.
    pub faults: Vec<FaultCost>,
}

fn is_write(f: F) -> bool {
    f != F::Read
}

/// Computes the availability figures of a history and its nemesis events.
pub fn availability(ops: &[Op], events: &[Event]) -> Availability {
    let mut writes: Vec<u64> = ops
        .iter()
        .filter(|op| op.kind == Kind::Ok && is_write(op.f))
        .map(|op| op.time_ns)
        .collect();
    writes.sort_unstable();
    let end = ops.iter().map(|op| op.time_ns).max().unwrap_or(0);
    let windows = windows(events, end);

    // The quiet median: whole seconds between the first and last successful write that no
    // fault span overlaps.
    let mut quiet = Vec::new();
    if let (Some(&first), Some(&last)) = (writes.first(), writes.last()) {
        let mut second = first / 1_000_000_000 + 1;
        while (second + 1) * 1_000_000_000 <= last {
            let (from, to) = (second * 1_000_000_000, (second + 1) * 1_000_000_000);
            let touched = windows
                .iter()
                .any(|w| from < w.stop.saturating_add(AFTER_HEAL_NS) && w.start < to);
            if !touched {
                quiet.push(count_in(&writes, from, to));
            }
            second += 1;
        }
    }
    quiet.sort_unstable();
    let quiet_writes_per_s = quiet
        .get(quiet.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0);

    let pairs = pairs(ops);
    let faults = windows
        .iter()
        .map(|w| {
            let span_end = w.stop.saturating_add(AFTER_HEAL_NS).min(end).max(w.start);
            let duration = w.stop.saturating_sub(w.start);
            let during = count_in(&writes, w.start, w.stop.max(w.start + 1));
            let writes_per_s = during * 1_000_000_000 / duration.max(1);
            let mut gap = 0;
            let mut previous = w.start;
            for &t in writes.iter().filter(|&&t| t >= w.start && t <= span_end) {
                gap = gap.max(t - previous);
                previous = t;
            }
            gap = gap.max(span_end - previous);
            let (mut errors, mut indeterminate) = (0, 0);
            for (invoke, completion) in &pairs {
                if invoke.time_ns < w.start || invoke.time_ns > span_end {
                    continue;
                }
                match completion {
                    Some(c) if c.kind == Kind::Fail && c.error.is_some() => errors += 1,
                    Some(c) if c.kind == Kind::Info => indeterminate += 1,
                    None => indeterminate += 1,
                    Some(_) => {}
                }
            }
            FaultCost {
                kind: w.kind.clone(),
                detail: w.detail.clone(),
                start_ms: w.start / 1_000_000,
                duration_ms: duration / 1_000_000,
                writes_per_s,
                percent_of_quiet: (writes_per_s * 100)
                    .checked_div(quiet_writes_per_s)
                    .unwrap_or(0),
                longest_gap_ms: gap / 1_000_000,
                errors,
                indeterminate,
            }
        })
        .collect();
    Availability {
        quiet_writes_per_s,
        faults,
    }
}

/// Successful writes (sorted times) in `[from, to)`.
fn count_in(writes: &[u64], from: u64, to: u64) -> u64 {
    let a = writes.partition_point(|&t| t < from);
    let b = writes.partition_point(|&t| t < to);
    (b - a) as u64
}

struct Window {
    kind: String,
    detail: String,
    start: u64,
    stop: u64,
}

/// Fault windows: each start paired with the next stop of its kind (one still open at the
/// end lasts until `end`).
fn windows(events: &[Event], end: u64) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for e in events {
        if e.phase == "start" {
            open.push(out.len());
            out.push(Window {
                kind: e.kind.clone(),
                detail: e.detail.clone(),
                start: e.time_ns,
                stop: end.max(e.time_ns),
            });
        } else if let Some(at) = open.iter().position(|&i| out[i].kind == e.kind) {
            let i = open.remove(at);
            out[i].stop = e.time_ns.max(out[i].start);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn op(index: u64, process: u64, kind: Kind, f: F, time_ns: u64) -> Op {
        let mut op = Op::new(process, kind, f);
        op.index = index;
        op.time_ns = time_ns;
        op
    }

    fn event(time_ns: u64, phase: &str) -> Event {
        Event {
            time_ns,
            phase: phase.into(),
            kind: "kill".into(),
            detail: "node 1 killed".into(),
            nodes: vec![1],
            wall: String::new(),
        }
    }

    #[test]
    fn a_fault_is_measured_against_the_quiet_seconds() {
        // Ten writes a second for 30 s, except none from 12.0 s to 13.5 s (the fault is from
        // 10 s to 12 s), and one indeterminate write invoked at 12.5 s.
        let mut ops = Vec::new();
        let mut index = 0;
        for tenth in 0..300u64 {
            let t = tenth * S / 10 + 1;
            if (120..135).contains(&tenth) {
                continue;
            }
            ops.push(op(index, 1, Kind::Invoke, F::Transfer, t));
            ops.push(op(index + 1, 1, Kind::Ok, F::Transfer, t));
            index += 2;
        }
        ops.push(op(index, 2, Kind::Invoke, F::Transfer, 12 * S + S / 2));
        ops.push(op(index + 1, 2, Kind::Info, F::Transfer, 13 * S));
        ops.push(op(index + 2, 3, Kind::Invoke, F::Read, 14 * S));
        ops.push(op(index + 3, 3, Kind::Ok, F::Read, 14 * S));
        ops.sort_by_key(|o| o.time_ns);
        let a = availability(&ops, &[event(10 * S, "start"), event(12 * S, "stop")]);
        assert_eq!(a.quiet_writes_per_s, 10);
        assert_eq!(a.faults.len(), 1);
        let f = &a.faults[0];
        assert_eq!((f.start_ms, f.duration_ms), (10_000, 2_000));
        assert_eq!(f.writes_per_s, 10);
        assert_eq!(f.percent_of_quiet, 100);
        assert_eq!(f.longest_gap_ms, 1_600, "11.9 s to 13.5 s");
        assert_eq!((f.errors, f.indeterminate), (0, 1));
    }

    #[test]
    fn a_fault_without_writes_gaps_until_its_span_ends() {
        let ops = vec![
            op(0, 1, Kind::Invoke, F::Transfer, 0),
            op(1, 1, Kind::Ok, F::Transfer, S),
            op(2, 1, Kind::Invoke, F::Transfer, 2 * S),
        ];
        let a = availability(&ops, &[event(S, "start")]);
        let f = &a.faults[0];
        assert_eq!(f.longest_gap_ms, 1_000);
        assert_eq!((f.writes_per_s, f.indeterminate), (1, 1));
        assert_eq!(a.quiet_writes_per_s, 0);
    }
}
