//! Builds (once) a store of N transfers in DIR, then times `Store::open` on it and prints what
//! the open did: a quick look at where restart time goes (not a criterion bench).
//!
//! `cargo run --release -p tally-benches --example restart_profile -- DIR [transfers]`

use std::time::Instant;

use tally_benches::{Distribution, Workload};
use tally_engine::store::{Store, StoreConfig};
use tally_engine::types::PartitionId;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir =
        std::path::PathBuf::from(args.get(1).expect("usage: restart_profile DIR [transfers]"));
    let transfers: u64 = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let config = StoreConfig {
        checkpoint_interval_entries: 100,
        ..StoreConfig::new(PartitionId(0))
    };
    if !dir.exists() {
        let (mut store, _) = Store::open(&dir, config.clone()).expect("open");
        let mut workload = Workload::new(7, 100_000, Distribution::Uniform, true);
        store.submit(&workload.setup()).expect("setup");
        let mut written = 0;
        while written < transfers {
            store.submit(&[workload.batch(8000)]).expect("submit");
            written += 8000;
        }
    }
    if std::env::var_os("PHASES").is_some() {
        phases(&dir);
    }
    let started = Instant::now();
    let (store, report) = Store::open(&dir, config).expect("reopen");
    println!(
        "open: {:?}; checkpoint {:?}, {} entries replayed, {} transfers",
        started.elapsed(),
        report.checkpoint,
        report.entries_replayed,
        store.partition().transfer_count()
    );
}

fn phases(dir: &std::path::Path) {
    use tally_engine::segment::{Log, LogConfig};
    let t = Instant::now();
    let (log, _) = Log::open(&dir.join("log"), LogConfig::new(PartitionId(0))).expect("log");
    println!(
        "  log open: {:?} ({} entries)",
        t.elapsed(),
        log.last_index()
    );
    let t = Instant::now();
    let (index, _) = tally_engine::index::Index::open(
        &dir.join("index"),
        PartitionId(0),
        log.last_index(),
        tally_engine::index::MEMORY_ENTRIES_MAX_DEFAULT,
    )
    .expect("index");
    println!(
        "  index open: {:?} ({} runs)",
        t.elapsed(),
        index.run_count()
    );
    drop(index);
    let files = tally_engine::checkpoint::list(&dir.join("checkpoints")).expect("list");
    let t = Instant::now();
    let bytes = std::fs::read(&files[0].path).expect("read");
    println!(
        "  checkpoint read: {:?} ({} bytes)",
        t.elapsed(),
        bytes.len()
    );
    let t = Instant::now();
    let partition = tally_engine::checkpoint::decode(&bytes, PartitionId(0)).expect("decode");
    println!("  checkpoint decode+verify: {:?}", t.elapsed());
    let t = Instant::now();
    let digest = partition.recompute_digest();
    println!("  digest recompute alone: {:?} ({digest:x})", t.elapsed());
}
