//! State machine apply throughput: one entry of 8,000 transfers per iteration, applied to a
//! partition holding 100k or 1M accounts; uniform or hot (90% of transfers touch 10
//! accounts); sequential or random 128-bit ids. Transfers are generated outside the timed
//! section. The partition keeps growing across iterations (every transfer is recorded for
//! idempotency), as it would in production.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tally_benches::{Distribution, Workload};
use tally_engine::partition::Partition;
use tally_engine::types::LogIndex;

const BATCH: usize = 8000;

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);
    for accounts in [100_000u64, 1_000_000] {
        for distribution in [Distribution::Uniform, Distribution::Hot] {
            for random_ids in [false, true] {
                let name = format!(
                    "{}_{}",
                    if distribution == Distribution::Hot {
                        "hot"
                    } else {
                        "uniform"
                    },
                    if random_ids {
                        "random_ids"
                    } else {
                        "sequential_ids"
                    }
                );
                let mut workload = Workload::new(42, accounts, distribution, random_ids);
                let mut partition = Partition::new();
                let mut index = 0u64;
                for payload in workload.setup() {
                    index += 1;
                    partition.apply(LogIndex(index), &payload);
                }
                group.bench_function(BenchmarkId::new(name, accounts), |b| {
                    b.iter_batched(
                        || workload.batch(BATCH),
                        |payload| {
                            index += 1;
                            partition.apply(LogIndex(index), &payload)
                        },
                        BatchSize::SmallInput,
                    )
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
