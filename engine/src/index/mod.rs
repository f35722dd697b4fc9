//! The per-account index: every account's history with its balances after each entry, and
//! hourly buckets, answering history pages, point-in-time balances, flows over a window and
//! hourly balance series without scanning the log.
//!
//! # Data flow
//! The state machine records a [`Posting`] for each account whose balances an event changes
//! (see [`posting`]); after each applied entry the store drains them into [`Index::ingest`].
//! Per account, the index keeps an append-only list of [`HistoryEntry`] (timestamp, log
//! index, transfer, kind, side, amount, balances after) and a list of [`Bucket`]s, one per
//! UTC hour with activity (posted money in and out during the hour, balances at its close).
//! Both lists are sorted by time because entries arrive in apply order, and apply order is
//! time order: every event has a unique increasing timestamp, and an expiry carries the
//! expiring entry's `now`, which is after every earlier event and not after its entry's
//! events. So timestamps per account never decrease (asserted on ingest).
//!
//! Recent entries live in memory (a hash map of per-account vectors, bounded by
//! `memory_entries_max`); a flush writes them as an immutable, checksummed run file
//! ([`run`]) read through `memmap2`. [`Index::start_flush`] freezes the in-memory part and
//! writes it on a background thread while ingesting goes on into a new part, so the
//! applying thread never waits for the disk (only for the oldest flush when
//! [`FLUSHES_IN_FLIGHT_MAX`] are being written, which bounds memory at that many parts and
//! one); a frozen part answers queries until its run is installed ([`Index::finish_flush`]).
//! An account's history is the concatenation of its blocks in every run (oldest first), then
//! its frozen parts and its growing in-memory part (an `AccountView`). Runs are merged
//! size-tiered on background threads: [`MERGE_FANOUT`] adjacent runs of one size tier (a
//! factor of 4 per tier, from [`MERGE_TIER_BASE`]) become one, and past [`run::RUNS_MAX`]
//! runs the adjacent pair with the smallest total size is merged. So there are
//! O(log history) runs, a lookup touches that many parts, and each entry is rewritten
//! O(log history) times over its life (rewriting everything at each merge would make the
//! total write volume quadratic in the history). A merge replaces its inputs when it is done
//! (queries read the inputs until then), and installing a flush waits for merges only if
//! they fall [`RUNS_HARD_MAX`] runs behind.
//!
//! # Queries and their cost
//! Every query is a handful of binary searches over the view (by timestamp over entries, by
//! hour over buckets), so its cost is O(parts × log n) plus its output, whatever the size of
//! the account's history: an account with 10M entries answers like one with 10.
//! - history: the time bounds become an ordinal range by binary search; the page is a slice.
//!   The cursor is the entry's ordinal in the account's history, which never changes
//!   because history is append-only.
//! - balance at `t`: the balances of the last entry with timestamp ≤ `t`.
//! - flows over `[from, to)`: posted balances only grow, so money in (out) over a window is
//!   the difference of `credits_posted` (`debits_posted`) at its two ends. An end on an hour
//!   boundary is read from the buckets (the closing balances of the last bucket before it);
//!   an end inside an hour from the entries (the last entry before it). Both are exact.
//! - series: the closing balances of each hour, carried forward through idle hours, from one
//!   binary search over buckets and then a walk over the window's buckets.
//!
//! # Durability and recovery
//! The index is derived state: a pure function of the applied entries, not covered by the
//! state digest. Run files form a chain covering log indexes `1..=durable`. Before a
//! checkpoint the store flushes the index, and the checkpoint records `durable`; at open, a
//! damaged or missing run drops itself and every later run, and the store restarts from a
//! checkpoint at or below what survived (or from the start of the log), so the lost part is
//! rebuilt by replay. Postings of entries at or below `durable` are ignored on ingest.
//!
//! # Deliberate omissions
//! Old transfer records live in [`crate::transfer_runs`], not here. A
//! merge rewrites every run, so its cost grows with the partition's history; a leveled merge
//! would bound it. Query results from a run that turns out damaged after open are errors
//! until the store is reopened and rebuilds.

mod flush;
pub mod posting;
pub mod run;
mod view;

use flush::{Flushing, Memory};
use view::{AccountView, Part};

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

pub use posting::{Posting, PostingKind, Side};
use run::{AccountSource, Block, Run, RunFile};

use crate::outcome::Balances;
use crate::types::{AccountId, LogIndex, PartitionId, Timestamp, TransferId};

/// Nanoseconds in one hour: the width of a bucket.
pub const HOUR_NANOS: u64 = 3_600 * 1_000_000_000;
/// Most entries one history page may ask for.
pub const HISTORY_PAGE_LIMIT_MAX: usize = 10_000;
/// Most hours one balance series may span: 366 days, the protocol's `SERIES_POINTS_MAX`
/// (a longer series would be answered with more points than a client accepts).
pub const SERIES_HOURS_MAX: u64 = 24 * 366;
/// Default bound of the in-memory part, in entries (128 bytes each, plus buckets).
pub const MEMORY_ENTRIES_MAX_DEFAULT: usize = 1 << 17;

/// Size tiers of run files start here: tier 0 holds runs below 4 × this, tier `t` runs in
/// `[this × 4^t, this × 4^(t+1))` (see `Index::start_merges`).
pub const MERGE_TIER_BASE: u64 = 16 << 20;

/// How many runs of one size tier are merged into one (size-tiered compaction).
pub const MERGE_FANOUT: usize = 4;
/// Most merges running at once: one large one (output over [`MERGE_LARGE_SIZE`]) and small
/// ones beside it, so that the newest runs keep being merged while a large merge runs.
pub const MERGES_MAX: usize = 2;
/// A merge with a larger output is "large": at most one runs at a time.
pub const MERGE_LARGE_SIZE: u64 = 256 << 20;
/// In-memory parts being written as runs at once: a second lets ingesting go on while one
/// flush is slow (with a million active accounts a flush took 180–550 ms, about as long as
/// filling the next part), at the cost of one more part of memory.
pub const FLUSHES_IN_FLIGHT_MAX: usize = 2;

/// Runs beyond which a flush waits for running merges (their count stays bounded even when
/// merges fall behind the flushes).
pub const RUNS_HARD_MAX: usize = 64;

/// The size tier of a run of `size` bytes.
fn tier_of(size: u64) -> u32 {
    let mut tier = 0;
    let mut bound = MERGE_TIER_BASE.saturating_mul(4);
    while size >= bound {
        tier += 1;
        bound = bound.saturating_mul(4);
    }
    tier
}

/// Writes the merge of adjacent `inputs` (oldest first) as one run and opens it.
fn merge_runs(dir: &Path, partition: PartitionId, inputs: &[Arc<Run>]) -> Result<Run, IndexError> {
    let first = inputs[0].first();
    let last = inputs[inputs.len() - 1].last();
    let mut accounts: std::collections::BTreeMap<AccountId, Vec<(&Run, Block)>> =
        std::collections::BTreeMap::new();
    for run in inputs {
        for (id, block) in run.blocks() {
            accounts.entry(id).or_default().push((run, block));
        }
    }
    let path = run::write(
        dir,
        partition,
        first,
        last,
        accounts
            .into_iter()
            .map(|(id, blocks)| (id, AccountSource::Runs(blocks))),
    )?;
    Run::open_checked(&RunFile { first, last, path }, partition, false)
}

/// Why the index could not answer or persist.
#[derive(Debug, Error)]
pub enum IndexError {
    /// An IO error on an index file.
    #[error("index IO error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// An index file is damaged.
    #[error("index file {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where in the file.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// The query is malformed (a limit out of range, a window that ends before it starts).
    #[error("invalid index query: {0}")]
    InvalidQuery(String),
    /// A background merge failed (its inputs stay in use).
    #[error("index merge failed: {0}")]
    Merge(String),
}

impl IndexError {
    /// A copy of a corruption or query error (IO errors cannot be cloned: they become a
    /// description of themselves, of the same kind).
    fn duplicate(&self) -> IndexError {
        match self {
            IndexError::Io { path, source } => IndexError::Io {
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            IndexError::Corrupt {
                path,
                offset,
                reason,
            } => IndexError::Corrupt {
                path: path.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            IndexError::InvalidQuery(reason) => IndexError::InvalidQuery(reason.clone()),
            IndexError::Merge(reason) => IndexError::Merge(reason.clone()),
        }
    }

    /// Whether every replica would answer the same: only for malformed queries.
    pub fn is_deterministic(&self) -> bool {
        matches!(self, IndexError::InvalidQuery(_))
    }
}

/// One entry of an account's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The event's timestamp (for an expiry: the expiring entry's `now`).
    pub timestamp: Timestamp,
    /// The log entry that caused it.
    pub log_index: LogIndex,
    /// The transfer (for an expiry: the hold).
    pub transfer: TransferId,
    /// What happened; says whether the pending or the posted balance moved.
    pub kind: PostingKind,
    /// Whether the account was debited or credited.
    pub side: Side,
    /// The amount in minor units.
    pub amount: u128,
    /// The account's balances right after this entry.
    pub balances: Balances,
}

impl HistoryEntry {
    fn from_posting(p: &Posting) -> HistoryEntry {
        HistoryEntry {
            timestamp: p.timestamp,
            log_index: p.log_index,
            transfer: p.transfer,
            kind: p.kind,
            side: p.side,
            amount: p.amount,
            balances: p.balances,
        }
    }
}

/// One UTC hour of an account with activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Bucket {
    /// Hours since the Unix epoch (`timestamp / HOUR_NANOS`).
    pub hour: u64,
    /// Money posted into the account during the hour (growth of `credits_posted`).
    pub incoming: u128,
    /// Money posted out of the account during the hour (growth of `debits_posted`).
    pub outgoing: u128,
    /// The balances after the hour's last entry.
    pub closing: Balances,
}

/// Appends `bucket` to `buckets`, merging it into the last one if it is the same hour (an
/// hour split across two runs).
pub(crate) fn push_bucket(buckets: &mut Vec<Bucket>, bucket: Bucket) {
    match buckets.last_mut() {
        Some(last) if last.hour == bucket.hour => {
            last.incoming += bucket.incoming;
            last.outgoing += bucket.outgoing;
            last.closing = bucket.closing;
        }
        Some(last) => {
            assert!(
                last.hour < bucket.hour,
                "bucket {} after {}",
                bucket.hour,
                last.hour
            );
            buckets.push(bucket);
        }
        None => buckets.push(bucket),
    }
}

/// Which end of the history a page starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Oldest entry first.
    OldestFirst,
    /// Newest entry first.
    NewestFirst,
}

/// Where the next page of a history starts. Opaque: pass back what a page returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryCursor(u64);

impl HistoryCursor {
    /// The cursor's bytes, for the wire.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

    /// A cursor from bytes a page returned.
    pub fn from_bytes(bytes: [u8; 8]) -> HistoryCursor {
        HistoryCursor(u64::from_le_bytes(bytes))
    }
}

/// A request for one page of an account's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Where to continue, from the previous page; `None` starts at the first (or newest).
    pub cursor: Option<HistoryCursor>,
    /// Most entries to return, 1 to [`HISTORY_PAGE_LIMIT_MAX`].
    pub limit: usize,
    /// Oldest or newest first.
    pub direction: Direction,
    /// Only entries with `timestamp >= from`.
    pub from: Option<Timestamp>,
    /// Only entries with `timestamp < to`.
    pub to: Option<Timestamp>,
}

/// One page of an account's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    /// The entries, in the requested direction.
    pub entries: Vec<HistoryEntry>,
    /// Where the next page starts, or `None` if this was the last.
    pub next: Option<HistoryCursor>,
}

/// Money posted in and out of an account over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flows {
    /// Growth of `credits_posted` over the window.
    pub incoming: u128,
    /// Growth of `debits_posted` over the window.
    pub outgoing: u128,
}

/// One hour of a balance series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourBalance {
    /// The hour's first nanosecond.
    pub hour_start: Timestamp,
    /// Money posted in during the whole hour.
    pub incoming: u128,
    /// Money posted out during the whole hour.
    pub outgoing: u128,
    /// Balances at the hour's close (carried forward from earlier hours if it was idle).
    pub closing: Balances,
}

/// One account's part of the in-memory index. Its entries live in the shared, apply-ordered
/// `Index::entries` (appending there is sequential, so cheap on the apply path); this holds
/// only their positions, and where each hour starts among them. Buckets are derived from
/// the entries: a bucket's closing balances are those of its last entry, and its flows the
/// growth of the posted balances since the entry before it.
#[derive(Default)]
pub(crate) struct MemoryAccount {
    /// Positions in `Index::entries`, in apply order.
    positions: Vec<u32>,
    /// For each hour with entries, the index in `positions` of its first entry.
    hour_starts: Vec<u32>,
    /// The timestamp of the last entry.
    last_timestamp: Timestamp,
}

/// What [`Index::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexOpenReport {
    /// How far the surviving run files cover the log.
    pub durable: LogIndex,
    /// Run files that failed verification, did not continue the chain, or were left over by
    /// a merge, and were deleted (with the reason).
    pub removed: Vec<String>,
}

/// The per-account index of one partition. See the module documentation.
pub struct Index {
    dir: PathBuf,
    partition: PartitionId,
    runs: Vec<Arc<Run>>,
    /// Merges running on background threads (at most [`MERGES_MAX`], disjoint ranges).
    merges: Vec<Merging>,
    /// The error of the last failed merge, if any (its inputs stay; retried later).
    merge_error: Option<String>,
    /// The in-memory part that is being written as a run, if any: it covers
    /// The in-memory parts being written as runs, oldest first (at most
    /// [`FLUSHES_IN_FLIGHT_MAX`]): together they cover `durable + 1 ..= ` the newest's `last`,
    /// and each answers queries until its run is installed.
    flushing: VecDeque<Flushing>,
    /// The in-memory part still growing, after those being flushed.
    live: Memory,
    /// A flushed part's allocations, emptied, for the next part to grow into (vectors of
    /// busy accounts are reused instead of freed and faulted in again).
    spare: Option<Memory>,
    memory_entries_max: usize,
    /// The runs cover log indexes `1..=durable`.
    durable: LogIndex,
    /// Every posting of entries up to here has been ingested.
    covered: LogIndex,
    /// Runs merged at once by size-tiering (see [`MERGE_FANOUT`]).
    fanout: usize,
    /// More runs than this are merged by the backstop (see [`run::RUNS_MAX`]).
    runs_max: usize,
}

/// A merge of the runs covering `first..=last` into one, written on a background thread.
struct Merging {
    first: LogIndex,
    last: LogIndex,
    /// Whether its output exceeds [`MERGE_LARGE_SIZE`].
    large: bool,
    handle: std::thread::JoinHandle<Result<Run, IndexError>>,
}

impl Drop for Index {
    /// Waits for a flush being written (its run file is complete; the next open finds it)
    /// and for running merges, installing them (deleting their inputs), so that no thread
    /// writes into the directory after the index is gone (a reopened index would race it)
    /// and the files left are the runs in use.
    fn drop(&mut self) {
        for flushing in self.flushing.drain(..) {
            let _ = flushing.handle.join();
        }
        self.wait_for_merges();
    }
}

impl Index {
    /// Opens the index in `dir` (created on the first flush), keeping the longest chain of
    /// verified runs that starts at log index 1 and ends at or before `log_last`. Every other
    /// run file is deleted: the index is derived and the lost part is rebuilt by replay.
    pub fn open(
        dir: &Path,
        partition: PartitionId,
        log_last: LogIndex,
        memory_entries_max: usize,
    ) -> Result<(Index, IndexOpenReport), IndexError> {
        assert!(memory_entries_max > 0);
        assert!(
            memory_entries_max < u32::MAX as usize,
            "in-memory positions are u32"
        );
        let mut report = IndexOpenReport::default();
        let mut runs: Vec<Arc<Run>> = Vec::new();
        let mut broken = false;
        // A crash while writing a run leaves its temporary file: never part of the chain.
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".tix.tmp") {
                    let path = entry.path();
                    report
                        .removed
                        .push(format!("{}: unfinished", path.display()));
                    fs::remove_file(&path).map_err(|source| IndexError::Io { path, source })?;
                }
            }
        }
        for file in run::list(dir)? {
            let expected = runs.last().map_or(LogIndex(1), |r| r.last().next());
            let reason = if broken {
                Some("follows a missing or damaged run".to_string())
            } else if file.first < expected {
                Some("covered by a merged run".to_string())
            } else if file.first > expected {
                Some(format!(
                    "starts at {} but {expected} is missing",
                    file.first
                ))
            } else if file.last > log_last {
                Some(format!("ends at {} beyond the log's {log_last}", file.last))
            } else {
                match Run::open(&file, partition) {
                    Ok(run) => {
                        runs.push(Arc::new(run));
                        None
                    }
                    Err(IndexError::Corrupt { reason, offset, .. }) => {
                        Some(format!("corrupt at byte {offset}: {reason}"))
                    }
                    Err(e) => return Err(e),
                }
            };
            if let Some(reason) = reason {
                broken |= file.first >= expected;
                remove(&file, &mut report, reason)?;
            }
        }
        let durable = runs.last().map_or(LogIndex(0), |r| r.last());
        report.durable = durable;
        let index = Index {
            dir: dir.to_path_buf(),
            partition,
            runs,
            merges: Vec::new(),
            merge_error: None,
            flushing: VecDeque::new(),
            live: Memory::default(),
            spare: None,
            memory_entries_max,
            durable,
            covered: durable,
            fanout: MERGE_FANOUT,
            runs_max: run::RUNS_MAX,
        };
        Ok((index, report))
    }

    /// How far the run files cover the log.
    pub fn durable(&self) -> LogIndex {
        self.durable
    }

    /// How far postings have been ingested.
    pub fn covered(&self) -> LogIndex {
        self.covered
    }

    /// Changes the merge policy (defaults [`MERGE_FANOUT`] and [`run::RUNS_MAX`]; a fanout
    /// of `usize::MAX` turns size-tiering off): for tests that exercise the backstop
    /// without gigabytes of index.
    #[doc(hidden)]
    pub fn set_merge_limits(&mut self, fanout: usize, runs_max: usize) {
        assert!(fanout >= 2 && runs_max >= 2);
        self.fanout = fanout;
        self.runs_max = runs_max;
    }

    /// The error of the last failed background merge, if any (its inputs stay in use and
    /// the merge is tried again after a later flush).
    pub fn merge_error(&self) -> Option<&str> {
        self.merge_error.as_deref()
    }

    /// Waits for every running merge, installs the results, and repeats while the policy
    /// wants more: afterwards the runs are as merged as the policy asks (tests, shutdown).
    pub fn settle(&mut self) -> Result<(), IndexError> {
        self.finish_flush(true)?;
        loop {
            self.wait_for_merges();
            if let Some(error) = &self.merge_error {
                return Err(IndexError::Merge(error.clone()));
            }
            self.start_merges();
            if self.merges.is_empty() {
                return Ok(());
            }
        }
    }

    /// How many run files are open.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// How many entries the in-memory part holds (being flushed or not).
    pub fn memory_entries(&self) -> usize {
        self.live.entries.len()
            + self
                .flushing
                .iter()
                .map(|f| f.memory.entries.len())
                .sum::<usize>()
    }

    /// Whether the growing in-memory part has reached its bound and should be flushed.
    pub fn wants_flush(&self) -> bool {
        self.live.entries.len() >= self.memory_entries_max
    }

    /// Whether a flush is being written.
    pub fn is_flushing(&self) -> bool {
        !self.flushing.is_empty()
    }

    /// Adds the postings of applied entries, in apply order, and marks every entry up to
    /// `applied` covered. Postings of entries already in the run files are skipped.
    pub fn ingest(&mut self, postings: &[Posting], applied: LogIndex) {
        for posting in postings {
            assert!(
                posting.log_index <= applied,
                "posting after the applied index"
            );
            if posting.log_index <= self.covered {
                continue;
            }
            // Cannot overflow: flushes keep the count below `memory_entries_max`, a u32.
            let position = self.live.entries.len() as u32;
            let account = self.live.accounts.entry(posting.account).or_default();
            if account.positions.is_empty() {
                account.hour_starts.push(0);
            } else {
                assert!(
                    account.last_timestamp <= posting.timestamp,
                    "account {} entry at {} after {}",
                    posting.account,
                    posting.timestamp,
                    account.last_timestamp
                );
                if account.last_timestamp.0 / HOUR_NANOS != posting.timestamp.0 / HOUR_NANOS {
                    account.hour_starts.push(account.positions.len() as u32);
                }
            }
            account.positions.push(position);
            account.last_timestamp = posting.timestamp;
            self.live.entries.push(HistoryEntry::from_posting(posting));
        }
        if applied > self.covered {
            self.covered = applied;
        }
    }

    /// Installs finished merges and starts the ones the policy wants. Past
    /// [`RUNS_HARD_MAX`] runs, waits for running merges first.
    fn maintain(&mut self) {
        self.install_finished(false);
        if self.runs.len() > RUNS_HARD_MAX {
            self.wait_for_merges();
        }
        self.start_merges();
    }

    /// Waits for every running merge and installs the results.
    fn wait_for_merges(&mut self) {
        self.install_finished(true);
    }

    /// Installs the merges that finished (all of them, waiting, with `wait`): the merged
    /// run replaces its inputs, whose files are then deleted. A failed merge leaves its
    /// inputs and is kept in `merge_error`.
    fn install_finished(&mut self, wait: bool) {
        let mut i = 0;
        while i < self.merges.len() {
            if !wait && !self.merges[i].handle.is_finished() {
                i += 1;
                continue;
            }
            let merge = self.merges.swap_remove(i);
            let result = match merge.handle.join() {
                Ok(result) => result,
                Err(_) => Err(IndexError::Merge("the merge thread panicked".into())),
            };
            match result {
                Ok(merged) => {
                    self.merge_error = None;
                    let start = self.runs.iter().position(|r| r.first() == merge.first);
                    let end = self.runs.iter().position(|r| r.last() == merge.last);
                    let (Some(start), Some(end)) = (start, end) else {
                        unreachable!("the inputs of a running merge are never replaced");
                    };
                    let old: Vec<Arc<Run>> =
                        self.runs.splice(start..=end, [Arc::new(merged)]).collect();
                    for run in old {
                        let path = run.path().to_path_buf();
                        drop(run);
                        // A file left behind is deleted at the next open ("covered by a
                        // merged run"); it costs disk space, never answers.
                        if let Err(error) = fs::remove_file(&path) {
                            self.merge_error = Some(format!(
                                "cannot delete merged run {}: {error}",
                                path.display()
                            ));
                        }
                    }
                }
                Err(error) => self.merge_error = Some(error.to_string()),
            }
        }
    }

    /// Starts the merges the policy wants, on background threads, up to [`MERGES_MAX`]
    /// at once and one large one.
    ///
    /// Size-tiered: runs of one size tier (see [`MERGE_TIER_BASE`]) are merged
    /// [`MERGE_FANOUT`] at a time, newest first, so each entry is rewritten about once per
    /// tier: O(log history) times. Past [`run::RUNS_MAX`] runs (queries visit every run),
    /// the adjacent pair with the smallest total size is merged (never the newest run into
    /// an ever larger one, which would rewrite the whole tail at every flush). Merges run
    /// on their own threads, so apply never waits for them unless they fall behind by
    /// [`RUNS_HARD_MAX`] runs.
    fn start_merges(&mut self) {
        while self.merges.len() < MERGES_MAX {
            let Some((start, end)) = self.next_merge() else {
                return;
            };
            let inputs: Vec<Arc<Run>> = self.runs[start..end].to_vec();
            let size: u64 = inputs.iter().map(|r| r.size()).sum();
            let (dir, partition) = (self.dir.clone(), self.partition);
            let first = inputs[0].first();
            let last = inputs[inputs.len() - 1].last();
            let spawned = crate::background::spawn(format!("index-merge-{partition}"), move || {
                merge_runs(&dir, partition, &inputs)
            });
            match spawned {
                Ok(handle) => self.merges.push(Merging {
                    first,
                    last,
                    large: size > MERGE_LARGE_SIZE,
                    handle,
                }),
                Err(error) => {
                    self.merge_error = Some(format!("cannot start a merge thread: {error}"));
                    return;
                }
            }
        }
    }

    /// The range of runs (`start..end`) to merge next, if any: none of them merging, and
    /// not a second large merge.
    fn next_merge(&self) -> Option<(usize, usize)> {
        let busy = |i: usize| {
            let run = &self.runs[i];
            self.merges
                .iter()
                .any(|m| run.first() >= m.first && run.last() <= m.last)
        };
        let large_running = self.merges.iter().any(|m| m.large);
        let allowed = |start: usize, end: usize| {
            (start..end).all(|i| !busy(i))
                && (!large_running
                    || self.runs[start..end].iter().map(|r| r.size()).sum::<u64>()
                        <= MERGE_LARGE_SIZE)
        };
        let n = self.runs.len();
        if self.fanout <= n {
            // Newest first: `fanout` adjacent runs of one tier.
            let tier = |i: usize| tier_of(self.runs[i].size());
            for end in (self.fanout..=n).rev() {
                let start = end - self.fanout;
                if (start..end).all(|i| tier(i) == tier(end - 1)) && allowed(start, end) {
                    return Some((start, end));
                }
            }
        }
        if n > self.runs_max {
            return (0..n - 1)
                .filter(|&i| allowed(i, i + 2))
                .min_by_key(|&i| self.runs[i].size() + self.runs[i + 1].size())
                .map(|i| (i, i + 2));
        }
        None
    }

    /// The account's history as one sequence over runs and memory.
    fn view(&self, account: AccountId) -> AccountView<'_> {
        let mut parts = Vec::with_capacity(self.runs.len() + 1);
        for run in self.runs.iter().map(|run| &**run) {
            if let Some(block) = run.block(account) {
                parts.push(Part::Disk(run, block));
            }
        }
        let frozen = self.flushing.iter().map(|f| &*f.memory);
        for memory in frozen.chain([&self.live]) {
            let Some(account) = memory.account(account) else {
                continue;
            };
            // The balances before this part: after the last entry of the part before it.
            let base = match parts.last() {
                Some(part) => part.entry(part.entry_count() - 1).map(|e| e.balances),
                None => Ok(Balances::default()),
            };
            parts.push(Part::Memory(&memory.entries, account, base));
        }
        AccountView { parts }
    }

    /// How many entries the account's history holds.
    pub fn entry_count(&self, account: AccountId) -> u64 {
        self.view(account).entry_count()
    }

    /// One page of the account's history (see [`HistoryQuery`]). An account without
    /// entries, or unknown, has an empty history.
    pub fn account_history(
        &self,
        account: AccountId,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, IndexError> {
        if query.limit == 0 || query.limit > HISTORY_PAGE_LIMIT_MAX {
            return Err(IndexError::InvalidQuery(format!(
                "limit {} is not in 1..={HISTORY_PAGE_LIMIT_MAX}",
                query.limit
            )));
        }
        let view = self.view(account);
        let count = view.entry_count();
        let lo = match query.from {
            Some(from) => view.entries_before(from)?,
            None => 0,
        };
        let hi = match query.to {
            Some(to) => view.entries_before(to)?,
            None => count,
        }
        .max(lo);
        let limit = query.limit as u64;
        let mut entries = Vec::with_capacity(query.limit.min((hi - lo) as usize));
        let next = match query.direction {
            Direction::OldestFirst => {
                let start = query.cursor.map_or(lo, |c| c.0.clamp(lo, hi));
                let end = start.saturating_add(limit).min(hi);
                for i in start..end {
                    entries.push(view.entry(i)?);
                }
                (end < hi).then_some(HistoryCursor(end))
            }
            Direction::NewestFirst => {
                let end = query.cursor.map_or(hi, |c| c.0.clamp(lo, hi));
                let start = end.saturating_sub(limit).max(lo);
                for i in (start..end).rev() {
                    entries.push(view.entry(i)?);
                }
                (start > lo).then_some(HistoryCursor(start))
            }
        };
        Ok(HistoryPage { entries, next })
    }

    /// The account's balances after its last entry at or before `time` (zero before any).
    pub fn balance_at(&self, account: AccountId, time: Timestamp) -> Result<Balances, IndexError> {
        let view = self.view(account);
        let count = match time.0.checked_add(1) {
            Some(after) => view.entries_before(Timestamp(after))?,
            // Every entry is at or before the end of time.
            None => view.entry_count(),
        };
        view.balances_after(count)
    }

    /// Money posted in and out of the account during `[from, to)`.
    pub fn account_flows(
        &self,
        account: AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Flows, IndexError> {
        if to < from {
            return Err(IndexError::InvalidQuery(format!(
                "window {from}..{to} ends before it starts"
            )));
        }
        let view = self.view(account);
        let start = view.posted_before(from)?;
        let end = view.posted_before(to)?;
        assert!(
            end.credits_posted >= start.credits_posted,
            "credits posted shrank"
        );
        assert!(
            end.debits_posted >= start.debits_posted,
            "debits posted shrank"
        );
        Ok(Flows {
            incoming: end.credits_posted - start.credits_posted,
            outgoing: end.debits_posted - start.debits_posted,
        })
    }

    /// The account's closing balances for each UTC hour that starts in `[floor_hour(from),
    /// to)`, with the money posted in and out during each whole hour; idle hours carry the
    /// previous closing balances forward. At most [`SERIES_HOURS_MAX`] hours.
    pub fn balance_series(
        &self,
        account: AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<HourBalance>, IndexError> {
        if to < from {
            return Err(IndexError::InvalidQuery(format!(
                "window {from}..{to} ends before it starts"
            )));
        }
        let first_hour = from.0 / HOUR_NANOS;
        let end_hour = to.0.div_ceil(HOUR_NANOS);
        let hours = end_hour - first_hour;
        if hours > SERIES_HOURS_MAX {
            return Err(IndexError::InvalidQuery(format!(
                "{hours} hours exceed the maximum of {SERIES_HOURS_MAX}"
            )));
        }
        let view = self.view(account);
        let bucket_count = view.bucket_count();
        let mut i = view.buckets_before_hour(first_hour)?;
        let mut closing = match i {
            0 => Balances::default(),
            _ => view.bucket(i - 1)?.closing,
        };
        let mut series = Vec::with_capacity(hours as usize);
        for hour in first_hour..end_hour {
            let (mut incoming, mut outgoing) = (0u128, 0u128);
            while i < bucket_count {
                let bucket = view.bucket(i)?;
                if bucket.hour != hour {
                    assert!(
                        bucket.hour > hour,
                        "bucket {} behind hour {hour}",
                        bucket.hour
                    );
                    break;
                }
                incoming += bucket.incoming;
                outgoing += bucket.outgoing;
                closing = bucket.closing;
                i += 1;
            }
            series.push(HourBalance {
                hour_start: Timestamp(hour * HOUR_NANOS),
                incoming,
                outgoing,
                closing,
            });
        }
        Ok(series)
    }
}

fn remove(file: &RunFile, report: &mut IndexOpenReport, reason: String) -> Result<(), IndexError> {
    report
        .removed
        .push(format!("{}: {reason}", file.path.display()));
    fs::remove_file(&file.path).map_err(|source| IndexError::Io {
        path: file.path.clone(),
        source,
    })
}

/// Money in and money out a posting adds to its account's hour.
pub(crate) fn flow_of(kind: PostingKind, side: Side, amount: u128) -> (u128, u128) {
    match (kind.is_posted(), side) {
        (false, _) => (0, 0),
        (true, Side::Credit) => (amount, 0),
        (true, Side::Debit) => (0, amount),
    }
}
