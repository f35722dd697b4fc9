//! Per-account index queries on accounts with 10, 10k and 1M history entries: a history page
//! (100 entries, newest first, from the middle of the history via a cursor), flows over the
//! last 24 hours, the hourly balance series over 30 days, and the balance at a time in the
//! middle. History spans 60 days and sits in run files on disk (read through the page
//! cache), as old history would. The claim under test: query cost does not grow with the
//! account's history. Seeded and reproducible; setup is outside the timed section.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rust_decimal::Decimal;
use tally_engine::command::AccountFlags;
use tally_engine::command::{Command, EntryPayload, NewAccount, NewLedger, NewTransfer};
use tally_engine::index::{
    Direction, HistoryCursor, HistoryQuery, Index, HOUR_NANOS, MEMORY_ENTRIES_MAX_DEFAULT,
};
use tally_engine::partition::Partition;
use tally_engine::types::{AccountId, LedgerId, LogIndex, PartitionId, Timestamp, TransferId};

const START: u64 = 1_700_000_000 * 1_000_000_000;
const SPAN: u64 = 60 * 24 * HOUR_NANOS;

/// An index in which accounts 1 and 2 each have `entries` history entries over 60 days.
fn build(entries: u64, dir: &std::path::Path) -> (Index, Timestamp) {
    let mut partition = Partition::new();
    partition.set_postings_enabled(true);
    let mut index = Index::open(
        dir,
        PartitionId(0),
        LogIndex(u64::MAX),
        MEMORY_ENTRIES_MAX_DEFAULT,
    )
    .expect("open index")
    .0;
    let mut log = 0u64;
    let mut postings = Vec::new();
    let mut apply = |partition: &mut Partition, index: &mut Index, payload: EntryPayload| {
        log += 1;
        partition.apply(LogIndex(log), &payload);
        postings.clear();
        partition.drain_postings(&mut postings);
        index.ingest(&postings, LogIndex(log));
        if index.wants_flush() {
            index.flush().expect("flush");
        }
    };
    apply(
        &mut partition,
        &mut index,
        EntryPayload {
            timestamp: Timestamp(START - 1),
            command: Command::CreateLedgers(vec![NewLedger {
                id: LedgerId(1),
                scale: 0,
                code: 1,
            }]),
        },
    );
    apply(
        &mut partition,
        &mut index,
        EntryPayload {
            timestamp: Timestamp(START),
            command: Command::CreateAccounts(
                (1..=2)
                    .map(|id| NewAccount {
                        id: AccountId(id),
                        ledger: LedgerId(1),
                        code: 1,
                        flags: AccountFlags(0),
                        limit: None,
                        user_data_128: 0,
                        user_data_64: 0,
                        user_data_32: 0,
                    })
                    .collect(),
            ),
        },
    );
    let batches = entries.min(1000);
    let batch = entries / batches;
    let mut id = 0u128;
    for b in 0..batches {
        let transfers = (0..batch)
            .map(|k| {
                id += 1;
                let (debit, credit) = if k % 2 == 0 { (1, 2) } else { (2, 1) };
                NewTransfer::plain(
                    TransferId(id),
                    AccountId(debit),
                    AccountId(credit),
                    Decimal::from(1 + (id % 97) as i64),
                    LedgerId(1),
                )
            })
            .collect();
        apply(
            &mut partition,
            &mut index,
            EntryPayload {
                timestamp: Timestamp(START + 1 + b * (SPAN / batches)),
                command: Command::CreateTransfers(transfers),
            },
        );
    }
    index.flush().expect("flush");
    assert_eq!(index.entry_count(AccountId(1)), entries);
    (index, partition.last_timestamp())
}

fn queries(c: &mut Criterion) {
    let mut group = c.benchmark_group("queries");
    group.throughput(Throughput::Elements(1));
    for entries in [10u64, 10_000, 1_000_000] {
        let dir = tempfile::tempdir_in(std::env::var("TALLY_BENCH_DIR").unwrap_or(".".into()))
            .expect("tempdir");
        let (index, end) = build(entries, dir.path());
        let account = AccountId(1);
        group.bench_function(BenchmarkId::new("history_page", entries), |b| {
            let query = HistoryQuery {
                cursor: Some(HistoryCursor::from_bytes((entries / 2).to_le_bytes())),
                limit: 100,
                direction: Direction::NewestFirst,
                from: None,
                to: None,
            };
            b.iter(|| {
                index
                    .account_history(account, black_box(&query))
                    .expect("history")
            })
        });
        group.bench_function(BenchmarkId::new("account_flows_24h", entries), |b| {
            let from = Timestamp(end.0 - 24 * HOUR_NANOS);
            b.iter(|| {
                index
                    .account_flows(account, black_box(from), black_box(end))
                    .expect("flows")
            })
        });
        group.bench_function(BenchmarkId::new("balance_series_30d", entries), |b| {
            let from = Timestamp(end.0 - 30 * 24 * HOUR_NANOS);
            b.iter(|| {
                index
                    .balance_series(account, black_box(from), black_box(end))
                    .expect("series")
            })
        });
        group.bench_function(BenchmarkId::new("balance_at", entries), |b| {
            let time = Timestamp(START + SPAN / 2 + 12_345);
            b.iter(|| index.balance_at(account, black_box(time)).expect("balance"))
        });
    }
    group.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
