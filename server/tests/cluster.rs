//! A real 3-node cluster on loopback (three `tally start` processes, 2 partitions each).
//!
//! Concurrent clients send transfers through the client crate while the leader is killed
//! with SIGKILL; the killed node is restarted on its data directory; then the *other* former
//! member is killed too, so the restarted node must be part of every quorum from then on.
//! Afterwards every transfer that was ever attempted is looked up: each acknowledged one must
//! be present with the acknowledged outcome, and every account's balances must equal the
//! sum of the transfers present — so nothing acknowledged was lost and nothing was applied
//! twice. Debits equal credits over all accounts, and the live nodes report replicas with
//! the same applied index and state digest.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Cluster;
use rust_decimal::Decimal;
use tally_client::wire::codes::TransferResult;
use tally_client::wire::types::*;
use tally_client::{Client, ClientError, ClientOptions};

async fn leader(client: &Client, cluster: &Cluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(info) = client.cluster_info().await {
            let found = info
                .leaders
                .first()
                .and_then(|l| l.address.as_deref())
                .and_then(|a| cluster.index_of(a));
            if let Some(i) = found {
                if cluster.nodes[i].is_some() {
                    return i;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Clone, Copy, Debug)]
struct Attempt {
    debit: AccountId,
    credit: AccountId,
    amount: u128,
    acked: Option<TransferOutcome>,
}

const ACCOUNTS_PER_PARTITION: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_crash_loses_nothing_acknowledged() {
    let mut cluster = Cluster::start(
        3,
        &[
            "--partitions",
            "2",
            "--tick-ms",
            "20",
            // Most transfer records on disk, so that the final lookups read transfer runs
            // written, crashed over and rebuilt by real nodes.
            "--transfers-memory-max",
            "64",
        ],
    );
    let addresses: Vec<String> = cluster.addresses.iter().map(|a| a.to_string()).collect();
    let options = ClientOptions {
        request_timeout: Duration::from_secs(2),
        retries_max: 8,
        ..ClientOptions::default()
    };
    let client = Client::connect(&addresses, options).await.expect("connect");
    leader(&client, &cluster).await;
    let ledgers = client
        .create_ledgers(vec![NewLedger {
            id: LedgerId(1),
            scale: 2,
            code: 1,
        }])
        .await
        .expect("ledger");
    assert!(
        ledgers
            .iter()
            .all(|r| r.code() == 0 || r.name() == "Exists"),
        "{ledgers:?}"
    );
    // Accounts in groups that share a partition, so no transfer crosses partitions.
    let mut groups: Vec<Vec<AccountId>> = Vec::new();
    let mut accounts = Vec::new();
    for g in 0..2u128 {
        let first = AccountId(1000 + g);
        let mut group = vec![first];
        while group.len() < ACCOUNTS_PER_PARTITION {
            group.push(client.account_id_beside(first));
        }
        for id in &group {
            accounts.push(common::plain_account(id.0));
        }
        groups.push(group);
    }
    let results = client.create_accounts(accounts).await.expect("accounts");
    assert!(results.iter().all(|r| r.code() == 0), "{results:?}");

    let attempts: Arc<Mutex<BTreeMap<u128, Attempt>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u128 {
        let client = client.clone();
        let attempts = attempts.clone();
        let stop = stop.clone();
        let groups = groups.clone();
        workers.push(tokio::spawn(async move {
            let mut n = 0u128;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let id = (w + 1) << 64 | n;
                let group = &groups[(n % 2) as usize];
                let debit = group[(n as usize * 7 + w as usize) % group.len()];
                let mut credit = group[(n as usize * 3 + 1) % group.len()];
                if credit == debit {
                    credit = group[(n as usize * 3 + 2) % group.len()];
                }
                let amount = 1 + (n % 97);
                attempts.lock().expect("lock").insert(
                    id,
                    Attempt {
                        debit,
                        credit,
                        amount,
                        acked: None,
                    },
                );
                let transfer = NewTransfer::plain(
                    TransferId(id),
                    debit,
                    credit,
                    Decimal::new(amount as i64, 2),
                    LedgerId(1),
                );
                let answer =
                    tokio::time::timeout(Duration::from_secs(40), client.create_transfer(transfer))
                        .await
                        .unwrap_or_else(|_| panic!("create_transfer {id} hung for 40 s"));
                match answer {
                    Ok(outcome) => {
                        attempts
                            .lock()
                            .expect("lock")
                            .get_mut(&id)
                            .expect("attempt")
                            .acked = Some(outcome);
                    }
                    Err(error @ ClientError::Indeterminate { .. })
                    | Err(error @ ClientError::Rejected(_)) => {
                        eprintln!("transfer {id}: {error}");
                    }
                    Err(error) => panic!("unexpected client error: {error}"),
                }
            }
        }));
    }
    let acked = |attempts: &Arc<Mutex<BTreeMap<u128, Attempt>>>| {
        attempts
            .lock()
            .expect("lock")
            .values()
            .filter(|a| a.acked.is_some())
            .count()
    };
    let live = |cluster: &Cluster| cluster.live();
    let wait_for = |target: usize, nodes: Vec<String>| {
        let attempts = attempts.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while acked(&attempts) < target {
                if Instant::now() > deadline {
                    for node in &nodes {
                        let one =
                            Client::connect(std::slice::from_ref(node), ClientOptions::default())
                                .await;
                        let info = match one {
                            Ok(c) => format!("{:?}", c.cluster_info().await),
                            Err(e) => format!("{e}"),
                        };
                        eprintln!("{node}: {info}");
                    }
                    let fresh = Client::connect(&nodes, ClientOptions::default()).await;
                    let probe = match fresh {
                        Ok(c) => format!("{:?}", c.cluster_info().await.map(|i| i.node_id)),
                        Err(e) => format!("{e}"),
                    };
                    let pending = attempts
                        .lock()
                        .expect("lock")
                        .values()
                        .filter(|a| a.acked.is_none())
                        .count();
                    panic!("progress stalled at {} acked ({pending} unanswered); fresh client: {probe}", acked(&attempts));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(300, live(&cluster)).await;
    let first_leader = leader(&client, &cluster).await;
    cluster.kill(first_leader);
    let before = acked(&attempts);
    wait_for(before + 300, live(&cluster)).await;
    cluster.restart(first_leader);
    // Kill the current leader (not the restarted node): from now on every commit needs the
    // restarted node's vote and log.
    let second_leader = leader(&client, &cluster).await;
    assert_ne!(
        second_leader, first_leader,
        "the restarted node cannot lead before catching up"
    );
    cluster.kill(second_leader);
    let before = acked(&attempts);
    wait_for(before + 300, live(&cluster)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }

    // Every attempted transfer: present or not; acknowledged ones present as acknowledged.
    let attempts = attempts.lock().expect("lock").clone();
    let ids: Vec<TransferId> = attempts.keys().map(|id| TransferId(*id)).collect();
    let mut present = BTreeMap::new();
    for chunk in ids.chunks(4000) {
        for transfer in client
            .lookup_transfers(chunk.to_vec())
            .await
            .expect("lookup")
        {
            present.insert(transfer.id.0, transfer);
        }
    }
    let mut expected: BTreeMap<AccountId, (u128, u128)> = BTreeMap::new();
    let mut lost = Vec::new();
    for (id, attempt) in &attempts {
        match (present.get(id), attempt.acked) {
            (Some(transfer), Some(acked)) => {
                assert_eq!(transfer.outcome.result, acked.result, "transfer {id}");
                assert_eq!(transfer.outcome.timestamp, acked.timestamp, "transfer {id}");
            }
            (None, Some(acked)) if acked.result == TransferResult::Ok => lost.push(*id),
            _ => {}
        }
        if let Some(transfer) = present.get(id) {
            if transfer.outcome.result == TransferResult::Ok {
                expected.entry(attempt.debit).or_default().0 += attempt.amount;
                expected.entry(attempt.credit).or_default().1 += attempt.amount;
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} acknowledged transfers lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let run_files = cluster
        .dirs
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir.path()).expect("data dir"))
        .flatten()
        .filter_map(|partition| std::fs::read_dir(partition.path().join("transfers")).ok())
        .flatten()
        .flatten()
        .filter(|file| file.path().extension().is_some_and(|e| e == "ttr"))
        .count();
    assert!(run_files > 0, "no transfer record was spilled to disk");
    let all: Vec<AccountId> = groups.iter().flatten().copied().collect();
    let found = client.lookup_accounts(all.clone()).await.expect("accounts");
    assert_eq!(found.len(), all.len());
    let (mut debits, mut credits) = (0u128, 0u128);
    for account in found {
        let (d, c) = expected.get(&account.id).copied().unwrap_or((0, 0));
        assert_eq!(
            account.balances.debits_posted, d,
            "account {:?} debits",
            account.id
        );
        assert_eq!(
            account.balances.credits_posted, c,
            "account {:?} credits",
            account.id
        );
        debits += account.balances.debits_posted;
        credits += account.balances.credits_posted;
    }
    assert_eq!(debits, credits, "money created or destroyed");

    // Each live node reports its own replicas in Hello: both partitions, none recovering,
    // and (once the followers have applied what was committed) the same applied index and
    // digest on every node.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut reports = Vec::new();
        for node in cluster.live() {
            let one = Client::connect(std::slice::from_ref(&node), ClientOptions::default())
                .await
                .expect("connect to one node");
            let info = one.cluster_info().await.expect("hello");
            assert!(info.uptime_ms > 0, "{node} reports no uptime");
            assert_eq!(info.replicas.len(), 2, "{node}: {:?}", info.replicas);
            reports.push(info.replicas);
        }
        let agreed = (0..2).all(|p| {
            reports.iter().all(|r| {
                !r[p].recovering
                    && r[p].applied_index == reports[0][p].applied_index
                    && r[p].digest == reports[0][p].digest
            })
        });
        if agreed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas never agreed: {reports:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "attempted {}, acknowledged {}, present {}",
        attempts.len(),
        attempts.values().filter(|a| a.acked.is_some()).count(),
        present.len()
    );
}
