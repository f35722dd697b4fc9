//! Model tests of the per-account index: every query against a brute-force scan.
//!
//! A seeded workload (plain transfers, holds with and without timeouts, partial posts, voids,
//! refunds, failing linked chains, ticks, clock jumps across many hour boundaries) runs
//! through a `Store` whose index has a tiny in-memory bound, so history is spread over many
//! run files, merges and the in-memory part. A separate `Partition` applies the same entries
//! with postings enabled; its posting stream is the model. The stream itself is checked
//! against the state machine (each posting's balances follow from the previous ones by its
//! kind, side and amount; the last one equals the account's balances). Then every query —
//! history pages in both directions with random time bounds and limits, balance at random
//! times, flows and hourly series over random windows (hour-aligned and not, 24 hours, idle
//! accounts, unknown accounts) — is compared with a scan of the stream. The crash tests
//! delete or corrupt run files, reopen, and require the same answers after the rebuild.
//! Seeds: a fixed list, or `INDEX_SEED=<n>`; a failure prints the seed.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use tally_engine::command::{
    AccountFlags, Command, EntryPayload, NewAccount, NewLedger, NewTransfer, TransferFlags,
};
use tally_engine::index::{
    Direction, HistoryEntry, HistoryQuery, Index, Posting, PostingKind, Side, HOUR_NANOS,
};
use tally_engine::outcome::Balances;
use tally_engine::partition::Partition;
use tally_engine::store::{Store, StoreConfig};
use tally_engine::types::{AccountId, LedgerId, LogIndex, PartitionId, Timestamp, TransferId};

use common::Rng;

/// Accounts 1..=ACTIVE take part in transfers; the rest exist but stay idle.
const ACTIVE: u128 = 6;
const ACCOUNTS: u128 = 8;
const START: u64 = 1_700_000_000 * 1_000_000_000;

fn workload(seed: u64, entries: usize) -> Vec<EntryPayload> {
    let mut rng = Rng(seed);
    let mut payloads = vec![
        EntryPayload {
            timestamp: Timestamp(START),
            command: Command::CreateLedgers(vec![NewLedger {
                id: LedgerId(1),
                scale: 2,
                code: 1,
            }]),
        },
        EntryPayload {
            timestamp: Timestamp(START),
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
                        user_data_128: 0,
                        user_data_64: 0,
                        user_data_32: 0,
                    })
                    .collect(),
            ),
        },
    ];
    let mut clock = START;
    let mut next_id = 1u128;
    for _ in 0..entries {
        // Mostly small steps inside an hour, sometimes jumps over many hours.
        clock += match rng.below(10) {
            0 => rng.below(30 * HOUR_NANOS),
            1..=3 => rng.below(HOUR_NANOS),
            _ => rng.below(60_000_000_000),
        };
        if rng.below(12) == 0 {
            payloads.push(EntryPayload {
                timestamp: Timestamp(clock),
                command: Command::Tick,
            });
            continue;
        }
        let mut transfers = Vec::new();
        let count = 1 + rng.below(5);
        for i in 0..count {
            let debit = AccountId(1 + u128::from(rng.below(ACTIVE as u64)));
            let credit = AccountId(1 + u128::from(rng.below(ACTIVE as u64)));
            let amount = Decimal::new(1 + rng.below(5_000) as i64, 2);
            let mut t = NewTransfer::plain(TransferId(next_id), debit, credit, amount, LedgerId(1));
            let earlier = |rng: &mut Rng| TransferId(1 + u128::from(rng.below(next_id as u64)));
            match rng.below(8) {
                0 | 1 => {
                    t.flags = TransferFlags(TransferFlags::PENDING);
                    // Timeouts of 0 (never) to about 3 hours.
                    t.timeout_s = [0, 1, 60, 3_600, 10_000][rng.below(5) as usize];
                }
                2 | 3 if next_id > 1 => {
                    let post = rng.below(2) == 0;
                    t = NewTransfer::plain(
                        TransferId(next_id),
                        AccountId(0),
                        AccountId(0),
                        if post && rng.below(2) == 0 {
                            amount
                        } else {
                            Decimal::ZERO
                        },
                        LedgerId(0),
                    );
                    t.flags = TransferFlags(if post {
                        TransferFlags::POST_PENDING
                    } else {
                        TransferFlags::VOID_PENDING
                    });
                    t.pending_id = earlier(&mut rng);
                }
                4 if next_id > 1 => {
                    t = NewTransfer::plain(
                        TransferId(next_id),
                        AccountId(0),
                        AccountId(0),
                        amount,
                        LedgerId(0),
                    );
                    t.refund_of = earlier(&mut rng);
                }
                _ => {}
            }
            // Some chains, which fail when any member fails.
            if i + 1 < count && rng.below(4) == 0 {
                t.flags = TransferFlags(t.flags.0 | TransferFlags::LINKED);
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

fn config(memory_entries_max: usize) -> StoreConfig {
    StoreConfig {
        partition: PartitionId(1),
        segment_size_max: 1 << 16,
        checkpoint_interval_entries: 37,
        checkpoints_kept: 2,
        index_memory_entries_max: memory_entries_max,
        // Old transfer records on disk too: the index must not depend on where they live.
        transfers_memory_max: 16,
    }
}

/// The model: every posting, from a plain partition.
struct Model {
    postings: Vec<Posting>,
    partition: Partition,
}

impl Model {
    fn new(payloads: &[EntryPayload]) -> Model {
        let mut partition = Partition::new();
        partition.set_postings_enabled(true);
        let mut postings = Vec::new();
        for (i, payload) in payloads.iter().enumerate() {
            partition.apply(LogIndex(i as u64 + 1), payload);
            partition.drain_postings(&mut postings);
        }
        Model {
            postings,
            partition,
        }
    }

    fn history(&self, account: AccountId) -> Vec<HistoryEntry> {
        self.postings
            .iter()
            .filter(|p| p.account == account)
            .map(|p| HistoryEntry {
                timestamp: p.timestamp,
                log_index: p.log_index,
                transfer: p.transfer,
                kind: p.kind,
                side: p.side,
                amount: p.amount,
                balances: p.balances,
            })
            .collect()
    }

    fn balance_at(&self, account: AccountId, time: u64) -> Balances {
        self.history(account)
            .iter()
            .rev()
            .find(|e| e.timestamp.0 <= time)
            .map_or(Balances::default(), |e| e.balances)
    }

    fn flows(&self, account: AccountId, from: u64, to: u64) -> (u128, u128) {
        let (mut incoming, mut outgoing) = (0, 0);
        for e in self.history(account) {
            if e.timestamp.0 >= from && e.timestamp.0 < to && e.kind.is_posted() {
                match e.side {
                    Side::Credit => incoming += e.amount,
                    Side::Debit => outgoing += e.amount,
                }
            }
        }
        (incoming, outgoing)
    }

    /// Checks the stream against the state machine.
    fn check_postings(&self, seed: u64) {
        for id in 1..=ACCOUNTS + 1 {
            let account = AccountId(id);
            let mut previous = Balances::default();
            let mut time = 0;
            for e in self.history(account) {
                assert!(e.timestamp.0 >= time, "seed {seed}: time went back");
                time = e.timestamp.0;
                let mut want = previous;
                let (pending, posted) = match e.side {
                    Side::Debit => (&mut want.debits_pending, &mut want.debits_posted),
                    Side::Credit => (&mut want.credits_pending, &mut want.credits_posted),
                };
                match e.kind {
                    PostingKind::Plain | PostingKind::Refund => *posted += e.amount,
                    PostingKind::Pending => *pending += e.amount,
                    PostingKind::Void | PostingKind::Expired => *pending -= e.amount,
                    PostingKind::Post => {
                        *posted += e.amount;
                        let released = *pending - e.balances_pending(e.side);
                        assert!(released >= e.amount, "seed {seed}: post beyond the hold");
                        *pending -= released;
                    }
                }
                assert_eq!(e.balances, want, "seed {seed}: account {id} entry {e:?}");
                previous = e.balances;
            }
            let now = self
                .partition
                .account(account)
                .map_or(Balances::default(), |a| a.balances);
            assert_eq!(previous, now, "seed {seed}: account {id} final balances");
        }
    }
}

trait PendingOf {
    fn balances_pending(&self, side: Side) -> u128;
}
impl PendingOf for HistoryEntry {
    fn balances_pending(&self, side: Side) -> u128 {
        match side {
            Side::Debit => self.balances.debits_pending,
            Side::Credit => self.balances.credits_pending,
        }
    }
}

/// A random time around the model's span, often on an hour boundary or an entry's time.
fn random_time(rng: &mut Rng, model: &Model, end: u64) -> u64 {
    match rng.below(4) {
        0 => {
            let t = START + rng.below(end - START + 2 * HOUR_NANOS);
            t - t % HOUR_NANOS
        }
        1 if !model.postings.is_empty() => {
            let p = &model.postings[rng.below(model.postings.len() as u64) as usize];
            p.timestamp.0 + rng.below(3) - 1
        }
        _ => START - HOUR_NANOS + rng.below(end - START + 3 * HOUR_NANOS),
    }
}

fn check_queries(store: &Store, model: &Model, seed: u64, rounds: usize) {
    let mut rng = Rng(seed ^ 0xABCD);
    let end = model.partition.last_timestamp().0;
    for id in 1..=ACCOUNTS + 1 {
        let account = AccountId(id);
        let history = model.history(account);
        assert_eq!(
            store.index().entry_count(account),
            history.len() as u64,
            "seed {seed}: account {id} entry count"
        );
        for round in 0..rounds {
            let context = format!("seed {seed} account {id} round {round}");
            // balance_at
            let t = random_time(&mut rng, model, end);
            let got = store.balance_at(account, Timestamp(t)).expect("balance_at");
            assert_eq!(
                got,
                model.balance_at(account, t),
                "{context}: balance_at {t}"
            );
            // flows
            let a = random_time(&mut rng, model, end);
            let b = if rng.below(3) == 0 {
                a + 24 * HOUR_NANOS
            } else {
                random_time(&mut rng, model, end)
            };
            let (from, to) = (a.min(b), a.max(b));
            let flows = store
                .account_flows(account, Timestamp(from), Timestamp(to))
                .expect("flows");
            assert_eq!(
                (flows.incoming, flows.outgoing),
                model.flows(account, from, to),
                "{context}: flows {from}..{to}"
            );
            // series over up to 60 hours
            let to = from + rng.below(60 * HOUR_NANOS);
            let series = store
                .balance_series(account, Timestamp(from), Timestamp(to))
                .expect("series");
            let first_hour = from / HOUR_NANOS;
            assert_eq!(
                series.len() as u64,
                to.div_ceil(HOUR_NANOS) - first_hour,
                "{context}: series length"
            );
            for (k, hour) in series.iter().enumerate() {
                let start = (first_hour + k as u64) * HOUR_NANOS;
                assert_eq!(hour.hour_start, Timestamp(start), "{context}");
                assert_eq!(
                    hour.closing,
                    model.balance_at(account, start + HOUR_NANOS - 1),
                    "{context}: series closing at hour {start}"
                );
                assert_eq!(
                    (hour.incoming, hour.outgoing),
                    model.flows(account, start, start + HOUR_NANOS),
                    "{context}: series flows at hour {start}"
                );
            }
            // history, paged to the end
            let bounds = |rng: &mut Rng| match rng.below(3) {
                0 => None,
                _ => Some(Timestamp(random_time(rng, model, end))),
            };
            let (from, to) = (bounds(&mut rng), bounds(&mut rng));
            let direction = if rng.below(2) == 0 {
                Direction::OldestFirst
            } else {
                Direction::NewestFirst
            };
            let limit = 1 + rng.below(7) as usize;
            let mut want: Vec<HistoryEntry> = history
                .iter()
                .filter(|e| from.is_none_or(|f| e.timestamp >= f))
                .filter(|e| to.is_none_or(|t| e.timestamp < t))
                .copied()
                .collect();
            if direction == Direction::NewestFirst {
                want.reverse();
            }
            let mut got = Vec::new();
            let mut cursor = None;
            for _ in 0..=history.len() + 1 {
                let page = store
                    .account_history(
                        account,
                        &HistoryQuery {
                            cursor,
                            limit,
                            direction,
                            from,
                            to,
                        },
                    )
                    .expect("history");
                assert!(page.entries.len() <= limit, "{context}: page too long");
                got.extend(page.entries);
                match page.next {
                    Some(next) => {
                        assert!(
                            got.len() < want.len(),
                            "{context}: cursor after the last page"
                        );
                        cursor = Some(next);
                    }
                    None => break,
                }
            }
            assert_eq!(
                got, want,
                "{context}: history {from:?}..{to:?} {direction:?} {limit}"
            );
        }
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("INDEX_SEED") {
        Ok(seed) => vec![seed.parse().expect("INDEX_SEED is a number")],
        Err(_) => vec![1, 2, 3, 0xDEAD_BEEF],
    }
}

fn build(dir: &Path, payloads: &[EntryPayload], memory_entries_max: usize) -> Store {
    let (mut store, _) = Store::open(dir, config(memory_entries_max)).expect("open");
    let mut rng = Rng(payloads.len() as u64);
    let mut i = 0;
    while i < payloads.len() {
        let n = (1 + rng.below(4) as usize).min(payloads.len() - i);
        store.submit(&payloads[i..i + n]).expect("submit");
        i += n;
    }
    assert!(store.index_error().is_none(), "{:?}", store.index_error());
    store
}

#[test]
fn queries_match_a_brute_force_scan() {
    for seed in seeds() {
        println!("INDEX_SEED={seed}");
        let payloads = workload(seed, 300);
        let model = Model::new(&payloads);
        model.check_postings(seed);
        assert!(
            model
                .postings
                .iter()
                .any(|p| p.kind == PostingKind::Expired),
            "seed {seed}: the workload should expire a hold"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        // Tiny memory bound: many runs, merges, hours split across runs.
        let mut store = build(dir.path(), &payloads, 1 + (seed % 13) as usize);
        store.settle().expect("settle the index's merges");
        assert!(
            store.index().run_count() >= 1,
            "seed {seed}: no run file written"
        );
        // Size-tiered merging keeps the number of runs logarithmic.
        assert!(
            store.index().run_count() <= 12,
            "seed {seed}: {} runs",
            store.index().run_count()
        );
        check_queries(&store, &model, seed, 30);
        drop(store);
        // Reopen: same answers from the files plus replay.
        let (store, report) = Store::open(dir.path(), config(50)).expect("reopen");
        assert!(
            report.index.removed.is_empty(),
            "seed {seed}: {:?}",
            report.index
        );
        check_queries(&store, &model, seed, 10);
    }
}

fn run_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("index"))
        .expect("index dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tix"))
        .collect();
    files.sort();
    files
}

#[test]
fn damaged_or_missing_index_files_are_rebuilt_from_the_log() {
    for seed in seeds() {
        println!("INDEX_SEED={seed}");
        let payloads = workload(seed, 200);
        let model = Model::new(&payloads);
        let mut rng = Rng(seed);
        for damage in 0..8 {
            let context = format!("seed {seed} damage {damage}");
            let dir = tempfile::tempdir().expect("tempdir");
            let store = build(dir.path(), &payloads, 40);
            let durable_before = store.index().durable();
            drop(store);
            let files = run_files(dir.path());
            assert!(!files.is_empty(), "{context}: no run files");
            let victim = &files[rng.below(files.len() as u64) as usize];
            match damage % 4 {
                0 => fs::remove_file(victim).expect("remove"),
                1 => {
                    let bytes = fs::read(victim).expect("read");
                    let offset = rng.below(bytes.len() as u64);
                    let mut file = OpenOptions::new().write(true).open(victim).expect("open");
                    file.seek(SeekFrom::Start(offset)).expect("seek");
                    file.write_all(&[bytes[offset as usize] ^ (1 + rng.below(255) as u8)])
                        .expect("write");
                }
                2 => {
                    for file in &files {
                        fs::remove_file(file).expect("remove");
                    }
                }
                _ => {
                    // What a crash in a merge leaves: a shorter run at the same first index
                    // as a longer one (here a copy under a forged name).
                    let name = victim
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .to_string();
                    let first = &name[4..24];
                    let leftover = victim.with_file_name(format!("run-{first}-{first}.tix"));
                    if leftover != *victim {
                        fs::copy(victim, &leftover).expect("copy");
                    }
                    // And an unfinished write.
                    fs::write(dir.path().join("index/run-9-9.tix.tmp"), b"partial").expect("tmp");
                }
            }
            let (store, report) = Store::open(dir.path(), config(40)).expect("reopen");
            println!(
                "{context}: removed {:?}, checkpoint {:?}, passed over {:?}, replayed {}",
                report.index.removed,
                report.checkpoint,
                report.checkpoints_passed_over,
                report.entries_replayed
            );
            if damage % 4 == 3 {
                assert_eq!(report.index.durable, durable_before, "{context}");
            } else if damage % 4 == 2 {
                assert_eq!(
                    report.index.durable,
                    LogIndex(0),
                    "{context}: files were deleted"
                );
            } else if damage % 4 == 0 {
                assert!(
                    report.index.durable < durable_before,
                    "{context}: {report:?}"
                );
            } else {
                assert!(
                    !report.index.removed.is_empty(),
                    "{context}: damage went unnoticed"
                );
            }
            assert_eq!(
                store.partition().digest(),
                model.partition.digest(),
                "{context}: state"
            );
            check_queries(&store, &model, seed, 8);
            drop(store);
            // And once more, from whatever the rebuild wrote.
            let (store, report) = Store::open(dir.path(), config(40)).expect("reopen twice");
            assert!(
                report.index.removed.is_empty(),
                "{context}: {:?}",
                report.index
            );
            check_queries(&store, &model, seed, 4);
        }
    }
}

#[test]
fn malformed_queries_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = build(dir.path(), &workload(7, 20), 10);
    let account = AccountId(1);
    let query = |limit| HistoryQuery {
        cursor: None,
        limit,
        direction: Direction::OldestFirst,
        from: None,
        to: None,
    };
    assert!(store.account_history(account, &query(0)).is_err());
    assert!(store.account_history(account, &query(10_001)).is_err());
    assert!(store.account_history(account, &query(10_000)).is_ok());
    assert!(store
        .account_flows(account, Timestamp(10), Timestamp(9))
        .is_err());
    // The protocol's limit (SERIES_POINTS_MAX, 366 days): one hour more is refused here,
    // not answered with more points than a client may decode.
    assert!(store
        .balance_series(
            account,
            Timestamp(0),
            Timestamp((366 * 24 + 1) * HOUR_NANOS)
        )
        .is_err());
    assert_eq!(
        store
            .balance_series(account, Timestamp(0), Timestamp(366 * 24 * HOUR_NANOS))
            .expect("366 days")
            .len(),
        366 * 24
    );
    assert_eq!(
        store
            .balance_at(account, Timestamp(u64::MAX))
            .expect("balance"),
        store
            .partition()
            .account(account)
            .expect("account")
            .balances
    );
}

/// Past the run limit, the backstop merges the adjacent pair of runs with the smallest total
/// size (never the newest run into an ever larger one): with size-tiering off and at most
/// four runs, every flush goes through it, and every answer must still equal the model's.
#[test]
fn backstop_merges_bound_the_runs_and_keep_the_answers() {
    for seed in seeds() {
        println!("INDEX_SEED={seed}");
        let payloads = workload(seed, 200);
        let model = Model::new(&payloads);
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut index, _) =
            Index::open(dir.path(), PartitionId(1), LogIndex(u64::MAX), 3).expect("open index");
        index.set_merge_limits(usize::MAX, 4);
        let mut feed = Feed::new();
        let mut flushes = 0;
        for (i, payload) in payloads.iter().enumerate() {
            feed.apply(&mut index, i, payload);
            if index.wants_flush() {
                index.flush().expect("flush");
                flushes += 1;
                // Merges run in the background; settled, the backstop holds.
                if flushes % 3 == 0 {
                    index.settle().expect("settle");
                    assert!(
                        index.run_count() <= 4,
                        "seed {seed}: {} runs",
                        index.run_count()
                    );
                }
            }
        }
        assert!(flushes > 20, "seed {seed}: only {flushes} flushes");
        check_index(&index, &model, seed);
    }
}

/// A flush is written on its own thread while ingesting goes on: queries read the runs, the
/// part being written and the part still growing as one history, equal to the model's, before
/// and after the flush is installed; dropped mid-flush, the index reopens with the flush's
/// run (its file was complete) and nothing else.
#[test]
fn queries_read_a_flush_in_progress_and_the_memory_after_it() {
    for seed in seeds() {
        println!("INDEX_SEED={seed}");
        let payloads = workload(seed, 200);
        let model = Model::new(&payloads);
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut index, _) =
            Index::open(dir.path(), PartitionId(1), LogIndex(u64::MAX), 5).expect("open index");
        let mut feed = Feed::new();
        let mut flushed_at = None;
        for (i, payload) in payloads.iter().enumerate() {
            let index_of = feed.apply(&mut index, i, payload);
            // Flush until near the end, so that a flush is still in flight and entries
            // came after it when the answers are checked.
            if index.wants_flush() && i + 10 < payloads.len() {
                index.start_flush().expect("start a flush");
                flushed_at = Some(index_of);
            }
            if i % 7 == 0 {
                index.finish_flush(false).expect("install a finished flush");
            }
        }
        let flushed_at = flushed_at.expect("some flush");
        if !index.is_flushing() {
            // The last flush may have been installed by a poll: start one more.
            index.start_flush().expect("start a flush");
        }
        assert!(index.is_flushing(), "seed {seed}: a flush in flight");
        check_index(&index, &model, seed);
        index.finish_flush(true).expect("finish the flush");
        assert!(index.durable() >= flushed_at, "seed {seed}");
        let durable = index.durable();
        check_index(&index, &model, seed);
        // Dropped with a flush in flight: its run is complete on disk.
        index.start_flush().expect("start the last flush");
        let covered = index.covered();
        drop(index);
        let (index, report) =
            Index::open(dir.path(), PartitionId(1), LogIndex(u64::MAX), 5).expect("reopen");
        assert!(
            report.removed.is_empty(),
            "seed {seed}: {:?}",
            report.removed
        );
        assert!(report.durable >= durable, "seed {seed}");
        assert_eq!(report.durable, covered, "seed {seed}: the last flush's run");
        check_index(&index, &model, seed);
    }
}

/// A partition whose postings are fed to an index, entry by entry, as the store does.
struct Feed {
    partition: Partition,
    postings: Vec<Posting>,
}

impl Feed {
    fn new() -> Feed {
        let mut partition = Partition::new();
        partition.set_postings_enabled(true);
        Feed {
            partition,
            postings: Vec::new(),
        }
    }

    /// Applies `payload` as entry `i + 1` and ingests its postings; returns its index.
    fn apply(&mut self, index: &mut Index, i: usize, payload: &EntryPayload) -> LogIndex {
        let at = LogIndex(i as u64 + 1);
        self.partition.apply(at, payload);
        self.postings.clear();
        self.partition.drain_postings(&mut self.postings);
        index.ingest(&self.postings, at);
        at
    }
}

/// Every account's whole history, paged, and balances and flows at points of it, against
/// the model.
fn check_index(index: &Index, model: &Model, seed: u64) {
    for account in (1..=ACCOUNTS).map(AccountId) {
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let query = HistoryQuery {
                cursor,
                limit: 7,
                direction: Direction::OldestFirst,
                from: None,
                to: None,
            };
            let page = index.account_history(account, &query).expect("history");
            got.extend(page.entries);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(
            got,
            model.history(account),
            "seed {seed}: account {account}"
        );
        for (k, entry) in got.iter().enumerate().step_by(5) {
            let time = entry.timestamp.0;
            assert_eq!(
                index
                    .balance_at(account, Timestamp(time))
                    .expect("balance_at"),
                model.balance_at(account, time),
                "seed {seed}: account {account} at {time}"
            );
            let to = got.get(k + 4).map_or(u64::MAX, |e| e.timestamp.0);
            let flows = index
                .account_flows(account, Timestamp(time), Timestamp(to))
                .expect("flows");
            assert_eq!(
                (flows.incoming, flows.outgoing),
                model.flows(account, time, to),
                "seed {seed}: account {account} flows {time}..{to}"
            );
        }
    }
}
