//! The whole single-node write path at scale: a durable `Store` (log with fsync, state
//! machine, per-account index, transfer runs, checkpoints) fed batches of 8,000 transfers with
//! random ids, as `tally start` stores them. Prints, after every million transfers, the
//! throughput of that million, the process's resident memory (all of it, and the anonymous
//! part: without mapped file pages) and the bytes on disk; then
//! closes the store, reopens it (restart) and prints the open time and resident memory.
//! Not a criterion bench: it shows how the system behaves as history grows.
//!
//! `cargo run --release -p tally-benches --example store_profile -- [millions] [accounts] [transfers memory max]`
//!
//! Defaults: 10 million transfers, 100,000 accounts, `TRANSFERS_MEMORY_MAX_DEFAULT`
//! (0 keeps every record in memory). The store lives in a temporary directory under
//! `TALLY_BENCH_DIR` (default `.`), deleted at the end.

use std::path::Path;
use std::time::Instant;

use tally_benches::{Distribution, Workload};
use tally_engine::store::{Store, StoreConfig};
use tally_engine::transfer_runs::TRANSFERS_MEMORY_MAX_DEFAULT;
use tally_engine::types::PartitionId;

const BATCH: u64 = 8000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let millions: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let accounts: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let transfers_memory_max: usize = args
        .get(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(TRANSFERS_MEMORY_MAX_DEFAULT);
    let config = StoreConfig {
        transfers_memory_max,
        ..StoreConfig::new(PartitionId(0))
    };
    let dir = tempfile::tempdir_in(std::env::var("TALLY_BENCH_DIR").unwrap_or(".".into()))
        .expect("tempdir");
    println!(
        "store profile: {millions}M transfers, {accounts} accounts, random ids, \
         transfers_memory_max {transfers_memory_max}, batches of {BATCH}"
    );
    println!(
        "transfers  rate(/s)  rss(MiB)  anon(MiB)  log(MiB)  index(MiB)  transfers(MiB)  checkpoints(MiB)"
    );
    let (mut store, _) = Store::open(dir.path(), config.clone()).expect("open");
    let mut workload = Workload::new(42, accounts, Distribution::Uniform, true);
    store.submit(&workload.setup()).expect("setup");
    let per_million = 1_000_000 / BATCH;
    let mut first_rate = None;
    let mut last_rate = 0.0;
    for million in 1..=millions {
        let mut busy = 0.0;
        for _ in 0..per_million {
            let batch = workload.batch(BATCH as usize);
            let started = Instant::now();
            store.submit(std::slice::from_ref(&batch)).expect("submit");
            busy += started.elapsed().as_secs_f64();
        }
        let rate = (per_million * BATCH) as f64 / busy;
        first_rate.get_or_insert(rate);
        last_rate = rate;
        println!(
            "{:>8}M  {:>8.0}  {:>8}  {:>9}  {:>8}  {:>10}  {:>14}  {:>16}",
            million,
            rate,
            tally_benches::resident_mib(),
            tally_benches::anonymous_mib(),
            dir_mib(&dir.path().join("log")),
            dir_mib(&dir.path().join("index")),
            dir_mib(&dir.path().join("transfers")),
            dir_mib(&dir.path().join("checkpoints")),
        );
    }
    for (what, error) in [
        ("checkpoint", store.checkpoint_error()),
        ("index", store.index_error()),
        ("transfer spill", store.transfer_spill_error()),
    ] {
        assert!(error.is_none(), "{what} error: {error:?}");
    }
    let first = first_rate.unwrap_or(0.0);
    println!(
        "last million / first million: {:.2}x ({last_rate:.0} / {first:.0} transfers/s)",
        last_rate / first
    );
    let resident = store.partition().resident_transfer_count();
    drop(store);
    let started = Instant::now();
    let (store, report) = Store::open(dir.path(), config).expect("reopen");
    println!(
        "restart: {:.2} s (checkpoint {:?}, {} entries replayed, {} transfers on disk, \
         {} in memory before, {} after), rss {} MiB, anonymous {} MiB",
        started.elapsed().as_secs_f64(),
        report.checkpoint,
        report.entries_replayed,
        report.transfers_on_disk,
        resident,
        store.partition().resident_transfer_count(),
        tally_benches::resident_mib(),
        tally_benches::anonymous_mib()
    );
}

/// Bytes of the files directly in `dir`, in MiB.
fn dir_mib(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum::<u64>()
            >> 20
    })
}
