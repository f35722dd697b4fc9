//! Applies N batches of 8,000 transfers and prints the throughput of each tenth of the run:
//! a quick look at how apply behaves as the transfer table grows (not a criterion bench).
//!
//! `cargo run --release -p tally-benches --example apply_profile -- [batches] [accounts] [hot] [random] [index] [index memory entries]`
//!
//! With `index`, postings are enabled and every entry's postings are drained into a
//! per-account index (in memory up to its default bound, then written to run files in a
//! temporary directory), as the store does: the cost of indexing on the apply path.

use std::time::Instant;

use tally_benches::{Distribution, Workload};
use tally_engine::index::{Index, MEMORY_ENTRIES_MAX_DEFAULT};
use tally_engine::partition::Partition;
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
    let mut partition = Partition::new();
    partition.set_postings_enabled(indexed);
    let mut index = 0;
    for payload in workload.setup() {
        index += 1;
        partition.apply(LogIndex(index), &payload);
    }
    let payloads: Vec<_> = (0..batches).map(|_| workload.batch(8000)).collect();
    let tenth = (batches / 10).max(1);
    let mut start = Instant::now();
    let total = Instant::now();
    for (i, payload) in payloads.iter().enumerate() {
        index += 1;
        partition.apply(LogIndex(index), payload);
        if let Some(account_index) = &mut account_index {
            account_index.ingest(partition.postings(), LogIndex(index));
            partition.clear_postings();
            if account_index.wants_flush() {
                let started = Instant::now();
                account_index.flush().expect("flush");
                flush_time += started.elapsed().as_secs_f64();
            }
        }
        if (i + 1) % tenth == 0 {
            let rate = (tenth * 8000) as f64 / start.elapsed().as_secs_f64();
            println!(
                "after {:>9} transfers: {:>10.0} transfers/s",
                (i + 1) * 8000,
                rate
            );
            start = Instant::now();
        }
    }
    let rate = (batches * 8000) as f64 / total.elapsed().as_secs_f64();
    println!("overall: {rate:.0} transfers/s");
    if indexed {
        println!("of which writing index runs: {flush_time:.2} s");
    }
}
