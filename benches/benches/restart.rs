//! Restart time: open a store that holds `TALLY_BENCH_RESTART_TRANSFERS` transfers (default
//! 10 million, in entries of 8,000) — recover the log, load the newest checkpoint, replay the
//! entries after it. The store is built once, outside the measurement, with the default
//! in-memory bound of transfer records (2^20; the rest in transfer runs) and checkpoints at
//! least 100 entries (800k transfers) apart (`checkpoint::is_due`), so at most about 800k
//! transfers are replayed and the checkpoint holds about a million records, whatever the
//! history.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tally_benches::{Distribution, Workload};
use tally_engine::store::{Store, StoreConfig};
use tally_engine::types::PartitionId;

fn config() -> StoreConfig {
    StoreConfig {
        checkpoint_interval_entries: 100,
        ..StoreConfig::new(PartitionId(0))
    }
}

fn restart(c: &mut Criterion) {
    let transfers: u64 = std::env::var("TALLY_BENCH_RESTART_TRANSFERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir_in(std::env::var("TALLY_BENCH_DIR").unwrap_or(".".into()))
        .expect("tempdir");
    let started = Instant::now();
    {
        let (mut store, _) = Store::open(dir.path(), config()).expect("open");
        let mut workload = Workload::new(7, 100_000, Distribution::Uniform, true);
        store.submit(&workload.setup()).expect("setup");
        let mut written = 0;
        while written < transfers {
            let batch = workload.batch(8000);
            store.submit(std::slice::from_ref(&batch)).expect("submit");
            written += 8000;
        }
        assert!(store.checkpoint_error().is_none());
    }
    eprintln!(
        "built a store of {transfers} transfers in {:?}",
        started.elapsed()
    );
    let mut group = c.benchmark_group("restart");
    group.sample_size(10);
    group.throughput(Throughput::Elements(transfers));
    group.bench_function(BenchmarkId::new("open", transfers), |b| {
        b.iter(|| {
            let (store, report) = Store::open(dir.path(), config()).expect("reopen");
            assert!(report.checkpoint.is_some());
            store.partition().transfer_count()
        })
    });
    group.finish();
}

criterion_group!(benches, restart);
criterion_main!(benches);
