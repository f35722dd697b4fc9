//! Recovery against real `tally` processes: lost disks, damaged logs, wrong flags.
//!
//! - The lost-disk scenario of issue 9, on three nodes started as the README says: node 3
//!   down while 20 transfers commit on nodes 1 and 2; node 2's directory removed; node 1
//!   killed; node 2 restarted with its usual command; node 3 back. Node 2 must not help
//!   node 3 form a majority that lacks the transfers: no read may ever show fewer than 20,
//!   and once node 1 is back every transfer is there, exactly once, on every majority.
//! - A killed node whose log was cut short, or had a byte flipped in a sealed segment, comes
//!   back, repairs itself from its peers, and holds every transfer again (the other nodes are
//!   then killed in turn, so that it must serve them).
//! - A lone node with a damaged log refuses to start, naming the file and offset; one whose
//!   unsynced tail was torn (garbage, then a well-formed record after it) starts and cuts it.
//! - Restarting with another `--partitions`, `--peers` or `--node-id` than the directory's is
//!   refused, naming both values.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Cluster, Server};
use rust_decimal::Decimal;
use tally_client::wire::codes::TransferResult;
use tally_client::wire::types::*;
use tally_client::{Client, ClientOptions};

const LEDGER: LedgerId = LedgerId(1);
const FROM: AccountId = AccountId(1);
const TO: AccountId = AccountId(2);

fn options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_millis(800),
        retries_max: 3,
        ..ClientOptions::default()
    }
}

/// Polls `attempt` until it succeeds, for at most `limit`.
async fn eventually<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    limit: Duration,
    mut attempt: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("{what}: no success within {limit:?}: {error:?}"),
        }
    }
}

async fn connect(addresses: &[String]) -> Client {
    let addresses = addresses.to_vec();
    eventually("connect", Duration::from_secs(30), || {
        Client::connect(&addresses, options())
    })
    .await
}

/// Creates the ledger and the two accounts (idempotent).
async fn setup(client: &Client) {
    eventually("create the ledger", Duration::from_secs(30), || async {
        let results = client
            .create_ledgers(vec![NewLedger {
                id: LEDGER,
                scale: 0,
                code: 1,
            }])
            .await
            .map_err(|e| e.to_string())?;
        results
            .iter()
            .all(|r| r.code() == 0 || r.name() == "Exists")
            .then_some(())
            .ok_or(format!("{results:?}"))
    })
    .await;
    let accounts: Vec<NewAccount> = [FROM, TO]
        .into_iter()
        .map(|id| NewAccount {
            id,
            ledger: LEDGER,
            code: 1,
            flags: AccountFlags(0),
            limit: None,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
        })
        .collect();
    eventually("create the accounts", Duration::from_secs(30), || async {
        client
            .create_accounts(accounts.clone())
            .await
            .map_err(|e| e.to_string())
    })
    .await;
}

/// Commits transfers `ids` of 1 unit each from FROM to TO, each acknowledged `Ok`.
async fn transfer(client: &Client, ids: std::ops::Range<u128>) {
    for id in ids {
        let outcome = eventually("a transfer", Duration::from_secs(30), || {
            client.create_transfer(NewTransfer::plain(
                TransferId(id),
                FROM,
                TO,
                Decimal::ONE,
                LEDGER,
            ))
        })
        .await;
        assert_eq!(outcome.result, TransferResult::Ok, "transfer {id}");
    }
}

/// TO's posted credits, read linearizably.
async fn credits(client: &Client) -> Result<u128, String> {
    let found = client
        .lookup_accounts(vec![TO])
        .await
        .map_err(|e| e.to_string())?;
    Ok(found.first().map_or(0, |a| a.balances.credits_posted))
}

/// Every transfer `1..=count` present exactly once with result `Ok`, and the balance equal.
async fn assert_all_present(client: &Client, count: u128) {
    let ids: Vec<TransferId> = (1..=count).map(TransferId).collect();
    let found = eventually("look the transfers up", Duration::from_secs(30), || {
        client.lookup_transfers(ids.clone())
    })
    .await;
    assert_eq!(found.len() as u128, count, "transfers present");
    assert!(found.iter().all(|t| t.outcome.result == TransferResult::Ok));
    let balance = eventually("read the balance", Duration::from_secs(30), || {
        credits(client)
    })
    .await;
    assert_eq!(balance, count, "balance after {count} transfers of 1");
}

fn wipe(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("remove");
        } else {
            std::fs::remove_file(&path).expect("remove");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_restarted_with_its_command_loses_nothing() {
    let mut cluster = Cluster::start(3, &["--tick-ms", "20"]);
    let client = connect(&cluster.live()).await;
    setup(&client).await;
    // Node 3 away: the transfers commit on nodes 1 and 2 only. (Killed rather than paused: a
    // paused process's kernel still buffers what the leader sends, and it would read the
    // transfers on resuming.)
    cluster.kill(2);
    let only = connect(
        &cluster.addresses[..2]
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
    )
    .await;
    transfer(&only, 1..21).await;
    drop(only);
    drop(client);
    // Node 2 loses its disk; node 1 dies; node 2 comes back with its usual command.
    cluster.kill(1);
    wipe(cluster.dirs[1].path());
    cluster.kill(0);
    cluster.restart(1);
    cluster.restart(2);
    // Nodes 2 and 3 together must never serve a state without the transfers.
    let pair: Vec<String> = cluster.addresses[1..]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut reads = 0;
    while Instant::now() < deadline {
        if let Ok(pair_client) = Client::connect(&pair, options()).await {
            if let Ok(balance) = credits(&pair_client).await {
                reads += 1;
                assert_eq!(
                    balance, 20,
                    "nodes 2 and 3 served a state without the transfers"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{reads} reads answered while node 1 was down");
    // Node 1 back: everything is there, and node 2 caught up.
    cluster.restart(0);
    let client = connect(&cluster.live()).await;
    assert_all_present(&client, 20).await;
    // Node 2 holds the transfers itself: with node 1 gone again, nodes 2 and 3 serve them.
    transfer(&client, 21..23).await;
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !recovered(cluster.dirs[1].path()) {
        assert!(
            Instant::now() < deadline,
            "node 2 never finished recovering"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.kill(0);
    let pair_client = connect(&pair).await;
    assert_all_present(&pair_client, 22).await;
}

/// Whether node's partition 0 finished recovering (its state file no longer says so).
fn recovered(dir: &Path) -> bool {
    let Ok(bytes) = std::fs::read(dir.join("partition-0000").join("raft-state")) else {
        return false;
    };
    // The flags field (bit 0: recovering) is at offset 10 of the state file.
    bytes.len() > 12 && bytes[10] & 1 == 0
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("partition-0000").join("log"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

async fn damaged_node_is_repaired(damage: impl Fn(&Path)) {
    // Small segments, so that the log has sealed segments to damage.
    let mut cluster = Cluster::start(3, &["--tick-ms", "20", "--segment-size-max", "4096"]);
    let client = connect(&cluster.live()).await;
    setup(&client).await;
    transfer(&client, 1..61).await;
    drop(client);
    cluster.kill(1);
    assert!(
        segments(cluster.dirs[1].path()).len() >= 3,
        "too few segments"
    );
    damage(cluster.dirs[1].path());
    cluster.restart(1);
    // Node 2 must hold everything itself: kill the others in turn.
    let client = connect(&cluster.live()).await;
    transfer(&client, 61..63).await;
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !recovered(cluster.dirs[1].path()) {
        assert!(
            Instant::now() < deadline,
            "node 2 never finished recovering"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.kill(0);
    let client = connect(&cluster.live()).await;
    assert_all_present(&client, 62).await;
    drop(client);
    cluster.restart(0);
    cluster.kill(2);
    let client = connect(&cluster.live()).await;
    assert_all_present(&client, 62).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_short_is_repaired_from_peers() {
    damaged_node_is_repaired(|dir| {
        let files = segments(dir);
        // Half of the log gone: the last segments removed, the one before cut in two.
        let keep = files.len() / 2;
        for file in &files[keep + 1..] {
            std::fs::remove_file(file).expect("remove");
        }
        let length = std::fs::metadata(&files[keep]).expect("stat").len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&files[keep])
            .expect("open");
        file.set_len(length / 2).expect("cut");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_sealed_segment_is_repaired_from_peers() {
    damaged_node_is_repaired(|dir| {
        let files = segments(dir);
        let victim = &files[1];
        let mut bytes = std::fs::read(victim).expect("read");
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        std::fs::write(victim, bytes).expect("write");
    })
    .await;
}

/// Runs `tally start` with `args`, which must fail; returns its stderr.
fn start_refused(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("start")
        .args(args)
        .output()
        .expect("run tally");
    assert!(
        !output.status.success(),
        "tally start {args:?} should have been refused; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_node_refuses_a_damaged_log_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let args = [
        "--address",
        "127.0.0.1:0",
        "--data",
        data,
        "--segment-size-max",
        "4096",
    ];
    let mut server = Server::start(&args);
    let client = connect(&[server.address.to_string()]).await;
    setup(&client).await;
    transfer(&client, 1..41).await;
    drop(client);
    server.kill();
    let files = segments(dir.path());
    let last = files.last().expect("segments").clone();
    let pristine = std::fs::read(&last).expect("read");

    // A torn, reordered unsynced tail: garbage, then a well-formed record after it.
    let mut torn = pristine.clone();
    torn.extend_from_slice(&[0x5A; 300]);
    let next = tally_engine::segment::Entry {
        index: tally_engine::types::LogIndex(10_000),
        term: tally_engine::types::Term(1),
        kind: tally_engine::segment::EntryKind::Normal,
        payload: b"a record of a later write".to_vec(),
    };
    tally_engine::segment::encode_record(&next, &mut torn);
    std::fs::write(&last, &torn).expect("write");
    let mut server = Server::start(&args);
    let client = connect(&[server.address.to_string()]).await;
    assert_all_present(&client, 40).await;
    drop(client);
    server.kill();
    let after = std::fs::read(&last).expect("read");
    // (The durability slots before the records change with every sync.)
    let records = tally_engine::segment::SEGMENT_RECORDS_OFFSET;
    assert_eq!(
        after[records..pristine.len()],
        pristine[records..],
        "the durable prefix kept"
    );
    assert!(
        after.get(pristine.len()) != Some(&0x5A),
        "the torn tail was cut"
    );

    // Cut into what was made durable: refused with the file and offset.
    let pristine = after;
    let cut = pristine.len() - 10;
    std::fs::write(&last, &pristine[..cut]).expect("write");
    let error = start_refused(&args);
    assert!(
        error.contains("corrupt segment") && error.contains("offset"),
        "{error}"
    );
    assert!(error.contains("no peers to repair from"), "{error}");
    std::fs::write(&last, &pristine).expect("restore");

    // A flipped byte in a sealed segment: refused with its location too.
    let mut sealed = std::fs::read(&files[0]).expect("read");
    sealed[200] ^= 0x01;
    std::fs::write(&files[0], &sealed).expect("write");
    let error = start_refused(&args);
    assert!(error.contains("corrupt segment 0 at offset"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_with_another_layout_is_refused_naming_both_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let mut server = Server::start(&[
        "--address",
        "127.0.0.1:0",
        "--data",
        data,
        "--partitions",
        "2",
    ]);
    let client = connect(&[server.address.to_string()]).await;
    setup(&client).await;
    drop(client);
    server.kill();
    let error = start_refused(&[
        "--address",
        "127.0.0.1:0",
        "--data",
        data,
        "--partitions",
        "3",
    ]);
    assert!(
        error.contains("--partitions 3") && error.contains("2 partitions"),
        "{error}"
    );
    let error = start_refused(&["--address", "127.0.0.1:0", "--data", data]);
    assert!(
        error.contains("--partitions 1") && error.contains("2 partitions"),
        "{error}"
    );

    // A cluster node restarted with another peer list or node id.
    let mut cluster = Cluster::start(3, &["--tick-ms", "20"]);
    let client = connect(&cluster.live()).await;
    setup(&client).await;
    drop(client);
    cluster.kill(0);
    let mut args = cluster.args(0);
    let peers = args.iter().position(|a| a == "--peers").expect("peers") + 1;
    let original = args[peers].clone();
    args[peers] = original.split(',').take(2).collect::<Vec<_>>().join(",");
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let error = start_refused(&args_ref);
    assert!(
        error.contains("--peers") && error.contains(&original),
        "{error}"
    );
    let mut args = cluster.args(0);
    let node = args.iter().position(|a| a == "--node-id").expect("node id") + 1;
    args[node] = "2".into();
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let error = start_refused(&args_ref);
    assert!(error.contains("node"), "{error}");
}
