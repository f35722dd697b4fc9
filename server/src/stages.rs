//! Where a node's time goes: a latency histogram per stage of the write path, so a benchmark
//! (or an operator) can say in numbers what a batch spends where.
//!
//! The stages, in the order a batch meets them:
//! - `decode`: a create-transfers frame parsed into events (connection task);
//! - `queue`: a proposal waiting in its partition's inbox until the worker takes it;
//! - `propose`: the command encoded as an entry and handed to Raft;
//! - `append`: the worker writing a Ready's entries to the log (page cache);
//! - `fsync`: the log made durable;
//! - `apply`: the state machine applying a Ready's committed entries;
//! - `index`: their postings added to the in-memory per-account index;
//! - `index_flush`: the worker's part of flushing the index (see `tally_engine::index`);
//! - `checkpoint`: the worker's part of a checkpoint (the snapshot; writing is off-thread);
//! - `commit`: a proposal's whole stay in the worker, proposed to answered;
//! - `request`: a create-transfers request in the server, parsed to answer encoded.
//!
//! Per-Ready stages are recorded once per Ready, not per event, so recording costs nothing
//! measurable. Each histogram counts microseconds up to an hour; the summary is what
//! `hello` reports and `tally bench` prints.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use tally_client::wire::types::StageSummary;

/// A stage of the write path (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A frame parsed into events.
    Decode,
    /// A proposal waiting in the inbox.
    Queue,
    /// A command encoded and handed to Raft.
    Propose,
    /// Entries written to the log.
    Append,
    /// The log made durable.
    Fsync,
    /// Committed entries applied.
    Apply,
    /// Postings added to the index.
    Index,
    /// The worker's part of an index flush.
    IndexFlush,
    /// The worker's part of a checkpoint.
    Checkpoint,
    /// A proposal's stay in the worker.
    Commit,
    /// A create-transfers request, parsed to answered.
    Request,
}

impl Stage {
    /// Every stage, in path order.
    pub const ALL: [Stage; 11] = [
        Stage::Decode,
        Stage::Queue,
        Stage::Propose,
        Stage::Append,
        Stage::Fsync,
        Stage::Apply,
        Stage::Index,
        Stage::IndexFlush,
        Stage::Checkpoint,
        Stage::Commit,
        Stage::Request,
    ];

    /// Its name in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Queue => "queue",
            Stage::Propose => "propose",
            Stage::Append => "append",
            Stage::Fsync => "fsync",
            Stage::Apply => "apply",
            Stage::Index => "index",
            Stage::IndexFlush => "index_flush",
            Stage::Checkpoint => "checkpoint",
            Stage::Commit => "commit",
            Stage::Request => "request",
        }
    }
}

/// A stage's histogram as cumulative buckets (see [`Stages::buckets`]).
#[derive(Clone, Debug, PartialEq)]
pub struct StageBuckets {
    /// How many times it was timed.
    pub count: u64,
    /// The time spent in it, in all, in seconds.
    pub sum_s: f64,
    /// `(upper bound in seconds, times at most that long)`, ascending.
    pub buckets: Vec<(f64, u64)>,
}

/// One histogram per stage, shared by a node's workers and sessions.
pub struct Stages {
    histograms: Vec<Mutex<Histogram<u64>>>,
}

impl Default for Stages {
    fn default() -> Stages {
        Stages {
            histograms: Stage::ALL
                .iter()
                .map(|_| {
                    // 1 µs to an hour at 3 significant digits: bounds that are always valid.
                    let histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3)
                        .expect("valid histogram bounds");
                    Mutex::new(histogram)
                })
                .collect(),
        }
    }
}

impl std::fmt::Debug for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stages").finish_non_exhaustive()
    }
}

impl Stages {
    /// Records that `stage` took `took`.
    pub fn record(&self, stage: Stage, took: Duration) {
        let micros = (took.as_micros() as u64).max(1);
        if let Ok(mut histogram) = self.histograms[stage as usize].lock() {
            histogram.saturating_record(micros);
        }
    }

    /// `stage`'s histogram in Prometheus' terms, if it was recorded: `buckets` pairs each of
    /// `bounds_s` (seconds, ascending) with how many times took at most that long.
    pub fn buckets(&self, stage: Stage, bounds_s: &[f64]) -> Option<StageBuckets> {
        let histogram = self.histograms[stage as usize].lock().ok()?;
        if histogram.is_empty() {
            return None;
        }
        let buckets = bounds_s
            .iter()
            .map(|&bound| {
                let micros = (bound * 1e6) as u64;
                (bound, histogram.count_between(0, micros))
            })
            .collect();
        Some(StageBuckets {
            count: histogram.len(),
            sum_s: histogram.mean() * histogram.len() as f64 / 1e6,
            buckets,
        })
    }

    /// Every stage recorded at least once, in path order.
    pub fn summary(&self) -> Vec<StageSummary> {
        Stage::ALL
            .iter()
            .filter_map(|&stage| {
                let histogram = self.histograms[stage as usize].lock().ok()?;
                (!histogram.is_empty()).then(|| StageSummary {
                    name: stage.name().to_string(),
                    count: histogram.len(),
                    total_us: (histogram.mean() * histogram.len() as f64) as u64,
                    p50_us: histogram.value_at_quantile(0.5),
                    p99_us: histogram.value_at_quantile(0.99),
                    max_us: histogram.max(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_lists_the_recorded_stages_in_path_order() {
        let stages = Stages::default();
        stages.record(Stage::Fsync, Duration::from_micros(300));
        stages.record(Stage::Fsync, Duration::from_micros(500));
        stages.record(Stage::Decode, Duration::from_nanos(10));
        let summary = stages.summary();
        let names: Vec<&str> = summary.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["decode", "fsync"]);
        assert_eq!(summary[0].p50_us, 1, "below a microsecond counts as one");
        assert_eq!(summary[1].count, 2);
        assert_eq!(summary[1].max_us, 500);
        assert_eq!(summary[1].total_us, 800);
    }

    #[test]
    fn buckets_count_the_times_at_most_each_bound() {
        let stages = Stages::default();
        for micros in [40, 90, 400, 2_000] {
            stages.record(Stage::Apply, Duration::from_micros(micros));
        }
        assert_eq!(stages.buckets(Stage::Fsync, &[0.001]), None);
        let apply = stages
            .buckets(Stage::Apply, &[0.000_05, 0.000_1, 0.001, 0.01])
            .expect("apply was recorded");
        assert_eq!(apply.count, 4);
        let counts: Vec<u64> = apply.buckets.iter().map(|&(_, n)| n).collect();
        assert_eq!(counts, [1, 2, 3, 4]);
        assert!((apply.sum_s - 0.002_53).abs() < 0.000_01, "{}", apply.sum_s);
    }
}
