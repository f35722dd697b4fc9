//! Replicated throughput: 3 replicas of one partition in one process, real logs with fsync on
//! disk (`TALLY_BENCH_DIR`), an in-memory transport that delivers every message at once. One
//! iteration proposes one entry of 8,000 transfers at the leader and pumps messages and
//! Ready loops until the leader has applied it (so a majority has it durable). Compare with
//! `apply` (state machine alone) and `log_append` (disk alone) from the same run.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use raft::eraftpb::Message;
use tally_benches::{Distribution, Workload};
use tally_engine::command::EntryPayload;
use tally_engine::types::{PartitionId, Timestamp};
use tally_server::replica::{Now, Replica, ReplicaConfig};

const BATCH: usize = 8000;

struct Cluster {
    replicas: Vec<Replica>,
    messages: Vec<Message>,
}

impl Cluster {
    fn pump(&mut self) {
        let mut applied = Vec::new();
        let mut reads = Vec::new();
        loop {
            let mut early = Vec::new();
            let mut outbox = Vec::new();
            for replica in &mut self.replicas {
                let mut send_early = |messages: Vec<Message>| early.extend(messages);
                replica
                    .handle_ready(&mut send_early, &mut outbox, &mut applied, &mut reads)
                    .expect("ready");
            }
            applied.clear();
            self.messages.extend(early);
            self.messages.extend(outbox);
            if self.messages.is_empty() {
                return;
            }
            for message in std::mem::take(&mut self.messages) {
                let to = (message.to - 1) as usize;
                self.replicas[to].step(message).expect("step");
            }
        }
    }

    fn propose(&mut self, payload: EntryPayload) {
        let target = self.replicas[0].partition().applied_index().0 + 1;
        self.replicas[0]
            .propose(payload.command, Now::agreed(payload.timestamp))
            .expect("leader");
        while self.replicas[0].partition().applied_index().0 < target {
            self.pump();
        }
    }
}

fn replicated(c: &mut Criterion) {
    let root = tempfile::tempdir_in(std::env::var("TALLY_BENCH_DIR").unwrap_or(".".into()))
        .expect("tempdir");
    let voters = vec![1, 2, 3];
    let mut replicas = Vec::new();
    for id in 1..=3u64 {
        let mut config = ReplicaConfig::new(id, PartitionId(0), voters.clone());
        config.checkpoint_interval_entries = 0;
        replicas
            .push(Replica::open(&root.path().join(format!("node-{id}")), config).expect("open"));
    }
    let mut cluster = Cluster {
        replicas,
        messages: Vec::new(),
    };
    cluster.replicas[0].campaign().expect("campaign");
    cluster.pump();
    assert!(cluster.replicas[0].is_leader());
    let mut workload = Workload::new(3, 100_000, Distribution::Uniform, true);
    for payload in workload.setup() {
        cluster.propose(payload);
    }
    let mut group = c.benchmark_group("replicated");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function("three_replicas/8000", |b| {
        b.iter_batched(
            || workload.batch(BATCH),
            |payload| {
                cluster.propose(EntryPayload {
                    timestamp: Timestamp(payload.timestamp.0),
                    ..payload
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, replicated);
criterion_main!(benches);
