//! Log append with group commit: `batch` entries of a transfer-sized payload (160 bytes)
//! appended, then one fsync for all of them. Batch 1 measures fsync latency; batch 8000
//! measures how close the log gets to the disk's sequential bandwidth. Compare with
//! `dd if=/dev/zero of=FILE bs=1M count=256 conv=fdatasync` on the same disk (see
//! benches/README.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tally_engine::segment::{Entry, EntryKind, Log, LogConfig};
use tally_engine::types::{LogIndex, PartitionId, Term};

const PAYLOAD_SIZE: usize = 160;

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append");
    for batch in [1usize, 100, 8000] {
        let dir = tempfile::tempdir_in(std::env::var("TALLY_BENCH_DIR").unwrap_or(".".into()))
            .expect("tempdir");
        let (mut log, _) = Log::open(dir.path(), LogConfig::new(PartitionId(0))).expect("open");
        let mut entries: Vec<Entry> = (0..batch)
            .map(|_| Entry {
                index: LogIndex(0),
                term: Term(1),
                kind: EntryKind::Normal,
                payload: vec![0xA5; PAYLOAD_SIZE],
            })
            .collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.sample_size(if batch == 8000 { 20 } else { 50 });
        group.bench_function(BenchmarkId::new("entries_fsync", batch), |b| {
            b.iter(|| {
                let first = log.last_index().0 + 1;
                for (i, entry) in entries.iter_mut().enumerate() {
                    entry.index = LogIndex(first + i as u64);
                }
                log.append(&entries).expect("append");
                log.sync().expect("sync");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
