//! Applies N batches of 8,000 transfers and prints the throughput of each tenth of the run:
//! a quick look at how apply behaves as the transfer table grows (not a criterion bench).
//!
//! `cargo run --release -p tally-benches --example apply_profile -- [batches] [accounts] [hot] [random] [index] [index memory entries] [transfers memory max]`
//!
//! The partition keeps at most `transfers memory max` transfer records in memory (default
//! `TRANSFERS_MEMORY_MAX_DEFAULT`; 0 keeps all of them) and spills older ones to transfer
//! runs in a temporary directory. Each line also prints the process's resident memory.
//!
//! With `index`, postings are enabled and every entry's postings are drained into a
//! per-account index (in memory up to its default bound, then written to run files in a
//! temporary directory), as the store does: the cost of indexing on the apply path.

use std::time::Instant;

use tally_benches::{Distribution, Workload};
use tally_engine::index::{Index, MEMORY_ENTRIES_MAX_DEFAULT};
use tally_engine::partition::Partition;
use tally_engine::transfer_runs::{TransferRuns, TRANSFERS_MEMORY_MAX_DEFAULT};
use tally_engine::types::{LogIndex, PartitionId};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batches: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(250);
    let accounts: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let hot = args.get(3).is_some_and(|a| a == "hot");
    let random = args.get(4).is_some_and(|a| a == "random");
    let indexed = args.get(5).is_some_and(|a| a == "index");
    let distribution = if hot {
        Distribution::Hot
    } else {
        Distribution::Uniform
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut account_index = indexed.then(|| {
        Index::open(
            dir.path(),
            PartitionId(0),
            LogIndex(u64::MAX),
            args.get(6)
                .and_then(|a| a.parse().ok())
                .unwrap_or(MEMORY_ENTRIES_MAX_DEFAULT),
        )
        .expect("open index")
        .0
    });
    let mut flush_time = 0.0;
    let mut workload = Workload::new(42, accounts, distribution, random);
    let transfers_memory_max: usize = args
        .get(7)
        .and_then(|a| a.parse().ok())
        .unwrap_or(TRANSFERS_MEMORY_MAX_DEFAULT);
    let runs_dir = tempfile::tempdir().expect("tempdir");
    let mut partition = match transfers_memory_max {
        0 => Partition::new(),
        max => Partition::with_transfer_runs(
            TransferRuns::open(runs_dir.path(), PartitionId(0), 0, false).expect("open runs"),
            max,
        ),
    };
    partition.set_postings_enabled(indexed);
    let mut index = 0;
    for payload in workload.setup() {
        index += 1;
        partition.apply(LogIndex(index), &payload);
    }
    let tenth = (batches / 10).max(1);
    // Batches are generated one at a time (not all up front, which would hold every payload
    // in memory and hide the partition's own growth in the resident size); only apply and
    // indexing are timed.
    let mut tenth_time = 0.0;
    let mut total_time = 0.0;
    for i in 0..batches {
        let payload = workload.batch(8000);
        let started = Instant::now();
        index += 1;
        partition.apply(LogIndex(index), &payload);
        if let Some(account_index) = &mut account_index {
            account_index.ingest(partition.postings(), LogIndex(index));
            partition.clear_postings();
            if account_index.wants_flush() {
                let started = Instant::now();
                account_index.flush().expect("flush");
                flush_time += started.elapsed().as_secs_f64();
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        tenth_time += elapsed;
        total_time += elapsed;
        let transfers = (i + 1) * 8000;
        if (i + 1) % tenth == 0 {
            let rate = (tenth * 8000) as f64 / tenth_time;
            println!(
                "after {transfers:>9} transfers: {rate:>10.0} transfers/s, resident {:>6} MiB",
                tally_benches::resident_mib()
            );
            tenth_time = 0.0;
        }
        if transfers == 10_000_000 {
            println!(
                "at 10M transfers: resident {} MiB",
                tally_benches::resident_mib()
            );
        }
    }
    let rate = (batches * 8000) as f64 / total_time;
    println!("overall: {rate:.0} transfers/s");
    if let Some(runs) = partition.transfer_runs() {
        println!(
            "transfer runs: {} records on disk in {} files; {} in memory",
            runs.record_count(),
            runs.run_count(),
            partition.resident_transfer_count()
        );
    }
    if let Some(error) = partition.transfer_spill_error() {
        println!("spill error: {error}");
    }
    if indexed {
        println!("of which writing index runs: {flush_time:.2} s");
    }
}
