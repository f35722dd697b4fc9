//! Raft never waits behind clients: a real 3-node cluster whose partition inbox is kept full
//! by many clients sending large batches (a 4-request inbox, so that it truly fills) keeps
//! its leader and its term: peer messages have their own inbox, drained first.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Cluster;
use rust_decimal::Decimal;
use tally_client::wire::types::*;
use tally_client::{Client, ClientOptions};

const ACCOUNTS: u128 = 1000;
const WRITERS: u64 = 32;
const BATCH: u128 = 2000;

/// Every node's view of partition 0: (leader, term, queue depth).
async fn views(cluster: &Cluster) -> Vec<(u64, u64, u32)> {
    let mut out = Vec::new();
    for address in cluster.live() {
        let client = Client::connect(&[address], ClientOptions::default())
            .await
            .expect("connect");
        let info = client.cluster_info().await.expect("hello");
        let r = &info.replicas[0];
        out.push((r.leader, r.term, r.queue_depth));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_client_inbox_moves_no_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tally.toml");
    // The file needs the fields that have no default; every node's flags override them.
    std::fs::write(
        &config,
        "node_id = 1\naddress = \"127.0.0.1:1\"\ndata_dir = \"unused\"\nqueue_depth_max = 4\n",
    )
    .expect("config");
    let cluster = Cluster::start(3, &["--config", config.to_str().expect("utf-8")]);
    cluster.leaders_ready().await;
    let client = Client::connect(&cluster.live(), ClientOptions::default())
        .await
        .expect("connect");
    common::create_ledger_and_accounts(&client, ACCOUNTS).await;
    let before = views(&cluster).await;
    let (leader, term, _) = before[0];
    assert!(
        before.iter().all(|v| (v.0, v.1) == (leader, term)) && leader != 0,
        "no settled leader to keep: {before:?}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let stop = stop.clone();
        let addresses = cluster.live();
        writers.push(tokio::spawn(async move {
            let client = Client::connect(&addresses, ClientOptions::default())
                .await
                .expect("connect");
            let mut next = u128::from(w) << 64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<NewTransfer> = (0..BATCH)
                    .map(|i| {
                        next += 1;
                        NewTransfer::plain(
                            TransferId(next),
                            AccountId(1 + (next + i) % ACCOUNTS),
                            AccountId(1 + (next + i + 1) % ACCOUNTS),
                            Decimal::from(1),
                            LedgerId(1),
                        )
                    })
                    .collect();
                // Overloaded answers are retried by the client; what matters is the inbox
                // staying full.
                if let Err(e) = client.create_transfers(batch).await {
                    eprintln!("writer {w}: {e}");
                }
            }
        }));
    }
    let started = Instant::now();
    let mut deepest = 0;
    let mut changes = Vec::new();
    while started.elapsed() < Duration::from_secs(8) {
        for (node, view) in views(&cluster).await.into_iter().enumerate() {
            deepest = deepest.max(view.2);
            if (view.0, view.1) != (leader, term) {
                changes.push((node + 1, view));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(
        deepest >= 4,
        "the load never filled the 4-request inbox (deepest {deepest}): the test proves nothing"
    );
    assert!(
        changes.is_empty(),
        "leadership moved under client load (node, (leader, term, depth)): {:?}",
        &changes[..changes.len().min(10)]
    );
}
