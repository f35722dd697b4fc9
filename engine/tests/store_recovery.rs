//! Crash and recovery tests of the durable store (log + state machine + checkpoints).
//!
//! Each test builds a store from a seeded workload of transfers (plain, holds, posts,
//! refunds), damages its files the way a crash or a bad disk would, reopens it, and checks
//! that the recovered state equals — by state digest and by every balance — the state of a
//! fresh partition that applied exactly the entries that survived. Damage covered: the log cut
//! at every byte offset of its last records; a bit flipped at every byte of a checkpoint; the
//! newest checkpoint damaged (fall back to the older one); every checkpoint damaged (full
//! replay); every transfer run file deleted, truncated or bit-flipped in turn (fall back,
//! rebuild by replay, start clean the next time). Stores keep only 8 transfer records in
//! memory, so most lookups compared read transfer runs. The seed is printed on failure.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use tally_engine::checkpoint;
use tally_engine::command::{
    AccountFlags, Command, EntryPayload, NewAccount, NewLedger, NewTransfer, TransferFlags,
};
use tally_engine::partition::Partition;
use tally_engine::segment::{Entry, EntryKind, Log, LogConfig, LogError};
use tally_engine::store::{Store, StoreConfig, StoreError};
use tally_engine::types::{
    AccountId, LedgerId, LogIndex, PartitionId, Term, Timestamp, TransferId,
};

use common::Rng;

const ACCOUNTS: u128 = 20;

fn workload(seed: u64, batches: usize) -> Vec<EntryPayload> {
    let mut rng = Rng(seed);
    let mut payloads = vec![
        EntryPayload {
            timestamp: Timestamp(1),
            command: Command::CreateLedgers(vec![NewLedger {
                id: LedgerId(1),
                scale: 2,
                code: 1,
            }]),
        },
        EntryPayload {
            timestamp: Timestamp(2),
            command: Command::CreateAccounts(
                (1..=ACCOUNTS)
                    .map(|id| NewAccount {
                        id: AccountId(id),
                        ledger: LedgerId(1),
                        code: 1,
                        flags: AccountFlags(if id > 1 {
                            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
                        } else {
                            0
                        }),
                        limit: None,
                        user_data_128: id,
                        user_data_64: 0,
                        user_data_32: 0,
                    })
                    .collect(),
            ),
        },
    ];
    let mut next_id = 1u128;
    let mut clock = 1_000_000_000u64;
    for _ in 0..batches {
        clock += rng.below(2_000_000_000);
        let mut transfers = Vec::new();
        for _ in 0..1 + rng.below(6) {
            let debit = AccountId(1 + u128::from(rng.below(ACCOUNTS as u64)));
            let credit = AccountId(1 + u128::from(rng.below(ACCOUNTS as u64)));
            let amount = Decimal::new(1 + rng.below(5_000) as i64, 2);
            let mut t = NewTransfer::plain(TransferId(next_id), debit, credit, amount, LedgerId(1));
            match rng.below(6) {
                0 => {
                    t.flags = TransferFlags(TransferFlags::PENDING);
                    t.timeout_s = rng.below(3) as u32;
                }
                1 if next_id > 1 => {
                    t = NewTransfer::plain(
                        TransferId(next_id),
                        AccountId(0),
                        AccountId(0),
                        Decimal::ZERO,
                        LedgerId(0),
                    );
                    t.flags = TransferFlags(TransferFlags::POST_PENDING);
                    t.pending_id = TransferId(1 + u128::from(rng.below(next_id as u64 - 1)));
                }
                2 if next_id > 1 => {
                    t = NewTransfer::plain(
                        TransferId(next_id),
                        AccountId(0),
                        AccountId(0),
                        amount,
                        LedgerId(0),
                    );
                    t.refund_of = TransferId(1 + u128::from(rng.below(next_id as u64 - 1)));
                }
                _ => {}
            }
            // Details the ledger keeps for the client: lookups must return them as sent,
            // from memory, from transfer runs and after restarts.
            if rng.below(3) == 0 {
                t.code = rng.below(100) as u16;
                t.user_data_128 = u128::from(rng.next()) << 64 | u128::from(rng.next());
                t.user_data_64 = rng.next();
                t.user_data_32 = rng.next() as u32;
                t.memo = format!("order {next_id}").into_bytes();
            }
            next_id += 1;
            transfers.push(t);
        }
        payloads.push(EntryPayload {
            timestamp: Timestamp(clock),
            command: Command::CreateTransfers(transfers),
        });
    }
    payloads
}

/// Most transfer records the tests' stores keep in memory: tiny, so that every test runs with
/// most records in transfer runs on disk (spilled, merged, named by checkpoints).
const TRANSFERS_MEMORY_MAX: usize = 8;

fn config(checkpoint_interval_entries: u64) -> StoreConfig {
    StoreConfig {
        partition: PartitionId(3),
        segment_size_max: 4096,
        checkpoint_interval_entries,
        checkpoints_kept: 2,
        index_memory_entries_max: 1 << 20,
        transfers_memory_max: TRANSFERS_MEMORY_MAX,
    }
}

/// The state a fresh partition reaches by applying the first `count` payloads.
fn reference(payloads: &[EntryPayload], count: usize) -> Partition {
    let mut partition = Partition::new();
    for (i, payload) in payloads[..count].iter().enumerate() {
        partition.apply(LogIndex(i as u64 + 1), payload);
    }
    partition
}

fn assert_same_state(got: &Partition, want: &Partition, context: &str) {
    assert_eq!(got.applied_index(), want.applied_index(), "{context}");
    assert_eq!(got.digest(), want.digest(), "{context}");
    assert_eq!(got.transfer_count(), want.transfer_count(), "{context}");
    for (id, record) in want.transfers() {
        assert_eq!(
            got.transfer(id).as_ref(),
            Some(record),
            "{context}: transfer {id}"
        );
    }
    for id in 1..=ACCOUNTS {
        let (a, b) = (got.account(AccountId(id)), want.account(AccountId(id)));
        assert_eq!(
            a.map(|a| a.balances),
            b.map(|b| b.balances),
            "{context}: account {id}"
        );
    }
    if let Err(violation) = got.check_invariants() {
        panic!("{context}: {violation}");
    }
}

/// Writes the workload in batches of a few entries (each batch one fsync).
fn build(dir: &Path, payloads: &[EntryPayload], checkpoint_interval: u64) {
    let (mut store, _) = Store::open(dir, config(checkpoint_interval)).expect("open new store");
    for chunk in payloads.chunks(3) {
        store.submit(chunk).expect("submit");
    }
    assert!(store.checkpoint_error().is_none());
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("log"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn reopen_loads_checkpoint_and_replays_the_rest() {
    let seed = 11;
    let payloads = workload(seed, 200);
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), &payloads, 50);
    let (store, report) = Store::open(dir.path(), config(50)).expect("reopen");
    let want = reference(&payloads, payloads.len());
    assert_same_state(store.partition(), &want, &format!("seed {seed}"));
    let checkpoint = report.checkpoint.expect("a checkpoint was loaded");
    assert!(checkpoint.0 >= 150, "newest checkpoint {checkpoint}");
    assert_eq!(
        report.entries_replayed,
        payloads.len() as u64 - checkpoint.0
    );
    assert!(report.checkpoints_rejected.is_empty());
    // The state after reopening keeps working: apply more and compare again.
    drop(store);
    let (mut store, _) = Store::open(dir.path(), config(50)).expect("reopen again");
    let more = workload(seed + 1, 10);
    let extra: Vec<EntryPayload> = more[2..]
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if let Command::CreateTransfers(ts) = &mut p.command {
                for t in ts {
                    t.id = TransferId(t.id.0 + 1_000_000);
                }
            }
            p
        })
        .collect();
    store.submit(&extra).expect("submit after reopen");
    let all: Vec<EntryPayload> = payloads.iter().chain(&extra).cloned().collect();
    assert_same_state(
        store.partition(),
        &reference(&all, all.len()),
        "after more work",
    );
}

/// A crash during a group commit: the last entries reached the log file but were never
/// synced. Cut at every offset of that unsynced tail, the store recovers the durable prefix
/// plus whatever complete entries follow it; cut into what was synced, it refuses to open.
#[test]
fn torn_log_tail_recovers_the_durable_prefix_at_every_offset() {
    let seed = 7;
    let payloads = workload(seed, 40);
    let unsynced = 3;
    let durable = payloads.len() - unsynced;
    let original = tempfile::tempdir().expect("tempdir");
    // No automatic checkpoints: a checkpoint ahead of a cut log would be a different test.
    build(original.path(), &payloads[..durable], 0);
    // The last entries as the store would have appended them, left unsynced.
    let log_config = LogConfig {
        segment_size_max: 4096,
        ..LogConfig::new(PartitionId(3))
    };
    let (mut log, _) = Log::open(&original.path().join("log"), log_config).expect("open the log");
    let tail: Vec<Entry> = payloads[durable..]
        .iter()
        .enumerate()
        .map(|(i, payload)| Entry {
            index: LogIndex((durable + i + 1) as u64),
            term: Term(1),
            kind: EntryKind::Normal,
            payload: payload.encode(),
        })
        .collect();
    log.append(&tail).expect("append the unsynced tail");
    drop(log);
    let last_segment = segments(original.path()).pop().expect("a segment");
    let length = fs::metadata(&last_segment).expect("metadata").len();
    let tail_bytes: u64 = tail.iter().map(Entry::record_size).sum();
    let synced_end = length - tail_bytes;
    // Every offset near a record boundary, every 16th elsewhere (each cut reopens a store).
    let mut boundaries = vec![synced_end];
    for entry in &tail {
        boundaries.push(boundaries.last().expect("a boundary") + entry.record_size());
    }
    let near = |cut: u64| boundaries.iter().any(|&b| cut + 40 > b && cut < b + 40);
    let cuts = (synced_end.saturating_sub(100)..length).filter(|&cut| near(cut) || cut % 16 == 0);
    for cut in cuts {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(original.path(), dir.path());
        let segment = dir
            .path()
            .join("log")
            .join(last_segment.file_name().expect("name"));
        OpenOptions::new()
            .write(true)
            .open(&segment)
            .expect("open")
            .set_len(cut)
            .expect("cut");
        let opened = Store::open(dir.path(), self::config(0));
        if cut < synced_end {
            assert!(
                matches!(opened, Err(StoreError::Log(LogError::Corrupt { .. }))),
                "seed {seed}: cut at {cut}, into synced entries, opened"
            );
            continue;
        }
        let (store, report) =
            opened.unwrap_or_else(|e| panic!("seed {seed}: reopen after cut at {cut}: {e}"));
        let recovered = store.partition().applied_index().0 as usize;
        assert!(
            (durable..=payloads.len()).contains(&recovered),
            "cut at {cut} recovered {recovered}"
        );
        assert_eq!(report.entries_replayed as usize, recovered);
        assert_same_state(
            store.partition(),
            &reference(&payloads, recovered),
            &format!("seed {seed} cut {cut}"),
        );
    }
}

#[test]
fn every_bit_flip_in_a_checkpoint_is_detected() {
    let payloads = workload(5, 30);
    let dir = tempfile::tempdir().expect("tempdir");
    // Every record in memory, so that the checkpoint decodes on its own (no runs).
    let config = |interval| StoreConfig {
        transfers_memory_max: 0,
        ..config(interval)
    };
    let (mut store, _) = Store::open(dir.path(), config(0)).expect("open new store");
    for chunk in payloads.chunks(3) {
        store.submit(chunk).expect("submit");
    }
    drop(store);
    let (mut store, _) = Store::open(dir.path(), config(0)).expect("reopen");
    let path = store.checkpoint().expect("checkpoint");
    let bytes = fs::read(&path).expect("read checkpoint");
    let partition = PartitionId(3);
    let good = checkpoint::decode(&bytes, partition).expect("intact checkpoint decodes");
    assert_eq!(good.digest(), store.partition().digest());
    for offset in 0..bytes.len() {
        for bit in [0u8, 3, 7] {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 1 << bit;
            assert!(
                checkpoint::decode(&damaged, partition).is_err(),
                "flip of bit {bit} at byte {offset} of {} went unnoticed",
                bytes.len()
            );
        }
    }
    for len in 0..bytes.len() {
        assert!(
            checkpoint::decode(&bytes[..len], partition).is_err(),
            "truncated to {len}"
        );
    }
    assert!(
        checkpoint::decode(&bytes, PartitionId(4)).is_err(),
        "wrong partition accepted"
    );
}

#[test]
fn damaged_checkpoints_fall_back_to_older_ones_then_to_full_replay() {
    let payloads = workload(9, 120);
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), &payloads, 40);
    let want = reference(&payloads, payloads.len());
    let files = checkpoint::list(&dir.path().join("checkpoints")).expect("list");
    assert_eq!(files.len(), 2, "two checkpoints kept: {files:?}");

    // Damage the newest: the older one is used.
    let mut bytes = fs::read(&files[0].path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    fs::write(&files[0].path, &bytes).expect("write");
    let (store, report) = Store::open(dir.path(), config(0)).expect("reopen");
    assert_eq!(report.checkpoint, Some(files[1].applied_index));
    assert_eq!(
        report.checkpoints_rejected.len(),
        1,
        "{:?}",
        report.checkpoints_rejected
    );
    assert_same_state(store.partition(), &want, "older checkpoint");
    drop(store);

    // Having recovered from damage, the open wrote a fresh checkpoint: the next start
    // loads it without falling back.
    let (store, report) = Store::open(dir.path(), config(0)).expect("reopen");
    assert_eq!(report.checkpoint, Some(LogIndex(payloads.len() as u64)));
    assert!(report.checkpoints_rejected.is_empty(), "{report:?}");
    assert_eq!(report.entries_replayed, 0);
    assert_same_state(store.partition(), &want, "fresh checkpoint");
    drop(store);

    // Damage every checkpoint (truncate them): full replay.
    let files = checkpoint::list(&dir.path().join("checkpoints")).expect("list");
    for file in &files {
        let bytes = fs::read(&file.path).expect("read");
        fs::write(&file.path, &bytes[..bytes.len() - 1]).expect("write");
    }
    let (store, report) = Store::open(dir.path(), config(0)).expect("reopen");
    assert_eq!(report.checkpoint, None);
    assert_eq!(report.checkpoints_rejected.len(), files.len());
    assert_eq!(report.entries_replayed, payloads.len() as u64);
    assert_same_state(store.partition(), &want, "full replay");
}

#[test]
fn checkpoint_ahead_of_the_log_is_refused() {
    let payloads = workload(3, 20);
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), &payloads, 0);
    let (mut store, _) = Store::open(dir.path(), config(0)).expect("reopen");
    store.checkpoint().expect("checkpoint");
    drop(store);
    // Lose the whole log: the checkpoint claims entries that are gone.
    fs::remove_dir_all(dir.path().join("log")).expect("remove log");
    let error = Store::open(dir.path(), config(0)).err().expect("refused");
    assert!(error.to_string().contains("ahead of the log"), "{error}");
}

fn run_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("transfers"))
        .expect("transfers dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ttr"))
        .collect();
    files.sort();
    files
}

#[test]
fn spilled_transfers_survive_restarts() {
    let seed = 21;
    let payloads = workload(seed, 400);
    let dir = tempfile::tempdir().expect("tempdir");
    build(dir.path(), &payloads, 30);
    let want = reference(&payloads, payloads.len());
    let (store, report) = Store::open(dir.path(), config(30)).expect("reopen");
    assert!(report.checkpoint.is_some(), "seed {seed}: no checkpoint");
    assert!(report.checkpoints_rejected.is_empty(), "{report:?}");
    assert!(
        report.transfers_on_disk as usize > want.transfer_count() / 2,
        "seed {seed}: only {} of {} transfers on disk",
        report.transfers_on_disk,
        want.transfer_count()
    );
    assert_same_state(store.partition(), &want, &format!("seed {seed}"));
    drop(store);
    // Keeps working after the restart: more transfers, including refunds and posts of the old
    // ones on disk, then another restart.
    let more: Vec<EntryPayload> = workload(seed, 500)[payloads.len()..].to_vec();
    let (mut store, _) = Store::open(dir.path(), config(30)).expect("reopen");
    for chunk in more.chunks(3) {
        store.submit(chunk).expect("submit after reopen");
    }
    drop(store);
    let all: Vec<EntryPayload> = payloads.iter().chain(&more).cloned().collect();
    let (mut store, _) = Store::open(dir.path(), config(30)).expect("reopen again");
    assert_same_state(
        store.partition(),
        &reference(&all, all.len()),
        "after more work",
    );
    // Merges keep the number of runs logarithmic. The files they replaced are kept while a
    // kept checkpoint may need them: once both kept checkpoints name the current spills,
    // only the runs themselves are left. (The ticks expire holds, which may spill them.)
    for tick in 0..2 {
        let payload = EntryPayload {
            timestamp: Timestamp(u64::MAX / 2 + tick),
            command: Command::Tick,
        };
        store.submit(&[payload]).expect("tick");
        store.settle().expect("settle");
        store.checkpoint().expect("checkpoint");
    }
    let runs = store.partition().transfer_runs().expect("runs").run_count();
    assert!(runs <= 12, "{runs} runs");
    assert_eq!(run_files(dir.path()).len(), runs);
}

#[test]
fn damaged_or_missing_transfer_runs_fall_back_and_are_rebuilt() {
    let seed = 23;
    let payloads = workload(seed, 300);
    let original = tempfile::tempdir().expect("tempdir");
    build(original.path(), &payloads, 25);
    let want = reference(&payloads, payloads.len());
    let files = run_files(original.path());
    assert!(files.len() >= 2, "seed {seed}: {} run files", files.len());
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("deleted", |path| fs::remove_file(path).expect("delete")),
        ("bit flipped", |path| {
            let mut bytes = fs::read(path).expect("read");
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x04;
            fs::write(path, bytes).expect("write");
        }),
        ("header bit flipped", |path| {
            let mut bytes = fs::read(path).expect("read");
            bytes[20] ^= 0x01;
            fs::write(path, bytes).expect("write");
        }),
        ("truncated", |path| {
            let len = fs::metadata(path).expect("metadata").len();
            OpenOptions::new()
                .write(true)
                .open(path)
                .expect("open")
                .set_len(len - 1)
                .expect("truncate");
        }),
    ];
    for file in &files {
        let name = file.file_name().expect("name");
        for (what, damage) in &damages {
            let context = format!("seed {seed}: {} {what}", name.to_string_lossy());
            let dir = tempfile::tempdir().expect("tempdir");
            copy_dir(original.path(), dir.path());
            damage(&dir.path().join("transfers").join(name));
            let (store, report) = Store::open(dir.path(), config(25))
                .unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
            assert_same_state(store.partition(), &want, &context);
            drop(store);
            // The runs were rebuilt by replay: the next start is clean.
            let (store, again) = Store::open(dir.path(), config(25))
                .unwrap_or_else(|e| panic!("{context}: second reopen: {e}"));
            assert!(
                again.checkpoints_rejected.is_empty(),
                "{context}: first {report:?}, then {again:?}"
            );
            assert_same_state(store.partition(), &want, &context);
        }
    }
    // Every run gone: no checkpoint can be restored, the whole log is replayed.
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(original.path(), dir.path());
    fs::remove_dir_all(dir.path().join("transfers")).expect("remove runs");
    let (store, report) = Store::open(dir.path(), config(25)).expect("reopen without runs");
    assert_eq!(report.checkpoint, None, "{report:?}");
    assert_eq!(report.entries_replayed, payloads.len() as u64);
    assert_same_state(store.partition(), &want, "all runs deleted");
}
