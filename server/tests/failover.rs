//! Failovers callers do not notice: three real nodes started as the README says (default
//! timing), 16 writers with the client's *default* options, and the leader killed (then
//! restarted), then paused past an election timeout (then resumed). No write may fail or be
//! indeterminate; every acknowledged transfer must be present afterwards. The longest gap
//! between two successful writes is printed per fault (a figure, not an assertion: these
//! machines are shared, and wall-clock targets belong to the chaos harness and benchmarks).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Cluster;
use rust_decimal::Decimal;
use tally_client::wire::codes::TransferResult;
use tally_client::wire::types::*;
use tally_client::{Client, ClientOptions};

const LEDGER: LedgerId = LedgerId(1);

struct Log {
    successes: Vec<Instant>,
    failures: Vec<String>,
    acknowledged: Vec<u128>,
}

fn longest_gap(successes: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = successes
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .collect();
    times.sort();
    let mut gap = Duration::ZERO;
    let mut previous = from;
    for t in times.into_iter().chain([to]) {
        gap = gap.max(t.duration_since(previous));
        previous = t;
    }
    gap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_or_paused_leader_costs_callers_nothing() {
    let mut cluster = Cluster::start(3, &[]);
    cluster.leaders_ready().await;
    let client = Client::connect(&cluster.live(), ClientOptions::default())
        .await
        .expect("connect");
    // Ledger 1 is LEDGER.
    common::create_ledger_and_accounts(&client, 2).await;

    let log = Arc::new(Mutex::new(Log {
        successes: Vec::new(),
        failures: Vec::new(),
        acknowledged: Vec::new(),
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..16u128 {
        // Each writer its own client, with the default options.
        let client = Client::connect(&cluster.live(), ClientOptions::default())
            .await
            .expect("connect");
        let log = log.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0u128;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = (w + 1) << 64 | n;
                let transfer = NewTransfer::plain(
                    TransferId(id),
                    AccountId(1),
                    AccountId(2),
                    Decimal::ONE,
                    LEDGER,
                );
                match client.create_transfer(transfer).await {
                    Ok(outcome) if outcome.result == TransferResult::Ok => {
                        let mut log = log.lock().expect("lock");
                        log.successes.push(Instant::now());
                        log.acknowledged.push(id);
                    }
                    Ok(outcome) => log
                        .lock()
                        .expect("lock")
                        .failures
                        .push(format!("transfer {id}: {:?}", outcome.result)),
                    Err(error) => log
                        .lock()
                        .expect("lock")
                        .failures
                        .push(format!("transfer {id}: {error}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The leader killed, restarted after 4 s.
    let killed = cluster.leader_of_partition_0(&client).await;
    let start = Instant::now();
    cluster.kill(killed);
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.restart(killed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kill_gap = longest_gap(&log.lock().expect("lock").successes, start, Instant::now());

    // The leader paused for 4 s, past an election timeout.
    let paused = cluster.leader_of_partition_0(&client).await;
    let start = Instant::now();
    cluster.signal(paused, "-STOP");
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.signal(paused, "-CONT");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pause_gap = longest_gap(&log.lock().expect("lock").successes, start, Instant::now());

    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    let (acknowledged, failures) = {
        let log = log.lock().expect("lock");
        (log.acknowledged.clone(), log.failures.clone())
    };
    eprintln!(
        "{} writes acknowledged; longest gap without a successful write: kill {kill_gap:?}, \
         pause {pause_gap:?}",
        acknowledged.len()
    );
    assert!(
        failures.is_empty(),
        "{} writes failed or are indeterminate, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    // Everything acknowledged is there, once.
    let ids: Vec<TransferId> = acknowledged.iter().map(|id| TransferId(*id)).collect();
    let mut found = 0;
    for chunk in ids.chunks(4000) {
        found += client
            .lookup_transfers(chunk.to_vec())
            .await
            .expect("lookup")
            .len();
    }
    assert_eq!(found, ids.len(), "acknowledged transfers missing");
    let balance = client
        .lookup_accounts(vec![AccountId(2)])
        .await
        .expect("lookup")[0]
        .balances
        .credits_posted;
    assert_eq!(
        balance,
        ids.len() as u128,
        "each transfer applied exactly once"
    );
}
