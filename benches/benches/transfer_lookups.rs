//! `lookup_transfers` of old random ids: a partition holding 100k, 1M and 10M transfers with
//! random 128-bit ids (`TALLY_BENCH_LOOKUP_SIZES`, comma-separated), at most
//! `TRANSFERS_MEMORY_MAX_DEFAULT` (2^20) of them in memory and the rest in transfer runs on
//! disk (read through the page cache, via mmap), as a long-running partition holds them.
//!
//! Per size, the time of one `Partition::transfer(id)`:
//! - `old`: an id from the oldest half of history (on disk once the history exceeds the
//!   in-memory bound): a retry of an old request, a refund of an old purchase, a lookup;
//! - `recent`: an id among the newest 1% (in memory);
//! - `absent`: a fresh random id: the idempotency check every new transfer pays.
//!
//! The claim under test: each is far under 100 µs and flat across history sizes. Seeded and
//! reproducible; the partition is built outside the timed section.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_benches::{Distribution, Workload};
use tally_engine::command::Command;
use tally_engine::partition::Partition;
use tally_engine::transfer_runs::{TransferRuns, TRANSFERS_MEMORY_MAX_DEFAULT};
use tally_engine::types::{LogIndex, PartitionId, TransferId};

/// Ids sampled per kind; lookups cycle through them.
const SAMPLES: usize = 4096;

/// A spilling partition of `transfers` transfers, with sampled old and recent ids.
fn build(transfers: u64, dir: &std::path::Path) -> (Partition, Vec<TransferId>, Vec<TransferId>) {
    let runs = TransferRuns::open(dir, PartitionId(0), 0, false).expect("open runs");
    let mut partition = Partition::with_transfer_runs(runs, TRANSFERS_MEMORY_MAX_DEFAULT);
    let mut workload = Workload::new(3, 100_000, Distribution::Uniform, true);
    let mut index = 0;
    for payload in workload.setup() {
        index += 1;
        partition.apply(LogIndex(index), &payload);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(transfers);
    let (mut old, mut recent) = (Vec::new(), Vec::new());
    let mut written = 0;
    while written < transfers {
        let payload = workload.batch(8000);
        if let Command::CreateTransfers(events) = &payload.command {
            for event in events {
                let position = written;
                written += 1;
                // About SAMPLES ids of each region, drawn uniformly.
                let (old_region, recent_region) = (transfers / 2, (transfers / 100).max(1));
                if position < old_region && rng.gen_bool(share(old_region)) {
                    old.push(event.id);
                }
                if position >= transfers - recent_region && rng.gen_bool(share(recent_region)) {
                    recent.push(event.id);
                }
            }
        }
        index += 1;
        partition.apply(LogIndex(index), &payload);
    }
    assert!(partition.transfer_spill_error().is_none());
    (partition, old, recent)
}

/// The probability that keeps about `SAMPLES` ids of a region of `len` ids.
fn share(len: u64) -> f64 {
    (SAMPLES as f64 / len.max(1) as f64).min(1.0)
}

fn lookups(c: &mut Criterion) {
    let sizes: Vec<u64> = std::env::var("TALLY_BENCH_LOOKUP_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000, 10_000_000]);
    let mut group = c.benchmark_group("lookup_transfers");
    for transfers in sizes {
        let dir = tempfile::tempdir_in(std::env::var("TALLY_BENCH_DIR").unwrap_or(".".into()))
            .expect("tempdir");
        let (partition, old, recent) = build(transfers, dir.path());
        let on_disk = partition
            .transfer_runs()
            .map_or(0, |runs| runs.record_count());
        eprintln!(
            "{transfers} transfers: {on_disk} on disk in {} runs, {} in memory",
            partition.transfer_runs().map_or(0, |runs| runs.run_count()),
            partition.resident_transfer_count()
        );
        for (kind, ids) in [("old", &old), ("recent", &recent)] {
            assert!(!ids.is_empty());
            let mut i = 0;
            group.bench_function(BenchmarkId::new(kind, transfers), |b| {
                b.iter(|| {
                    i = (i + 1) % ids.len();
                    let record = partition.transfer(ids[i]);
                    assert!(record.is_some());
                    black_box(record)
                })
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        group.bench_function(BenchmarkId::new("absent", transfers), |b| {
            b.iter(|| black_box(partition.transfer(TransferId(rng.gen()))))
        });
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
