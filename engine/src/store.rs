//! A durable single-node partition: the log, the state machine and checkpoints together.
//!
//! [`Store::submit`] is the whole write path of one partition without replication: it stamps
//! nothing (the caller's payloads carry their timestamps), appends one log entry per payload,
//! makes all of them durable with a single fsync (group commit), and only then applies them
//! and returns their outcomes. Nothing is acknowledged before it is on disk.
//!
//! [`Store::open`] recovers: it opens the log (which truncates a torn tail and reports any
//! other damage), loads the newest checkpoint that passes every check, and replays the log
//! entries after it. A checkpoint that fails is skipped for an older one, and with none left
//! the whole log is replayed: the log is never compacted, so full replay is always possible.
//!
//! The Raft layer will drive [`crate::segment::Log`] and [`crate::partition::Partition`]
//! itself (entries are appended by the leader and applied when committed); this type is the
//! single-node path used by the engine's demo, benches and crash tests.
//!
//! The store also keeps the per-account index ([`crate::index`]): after each applied entry it
//! drains the partition's postings into the index, flushes the index to a run file when its
//! in-memory part is full, and always before a checkpoint, which records how far the index
//! files are durable. At open, a checkpoint newer than the surviving index files is passed
//! over for an older one (or for a replay from the start), so that replay rebuilds whatever
//! part of the index was lost or damaged; replay never skips an entry the index lacks.
//!
//! Transfer records beyond `transfers_memory_max` are spilled to transfer run files in
//! `transfers/` ([`crate::transfer_runs`]); a checkpoint names how many spills it covers,
//! and restoring it opens exactly those runs. Run files replaced by merges are kept until
//! every kept checkpoint names a spill count past them, so an older checkpoint stays
//! restorable; a missing or damaged run makes its checkpoint fall back like a damaged one.
//!
//! After any error from the log, the store is poisoned: what is in memory may be ahead of what
//! is durable, so it refuses further work until reopened. A failed checkpoint only costs
//! replay time later; it is reported and retried, and poisons nothing.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::checkpoint::{self, CheckpointError, RunsConfig, Schedule};
use crate::command::{DecodeError, EntryPayload};
use crate::index::{
    Flows, HistoryPage, HistoryQuery, HourBalance, Index, IndexError, IndexOpenReport,
};
use crate::outcome::Balances;
use crate::outcome::Outcome;
use crate::partition::Partition;
use crate::segment::{Entry, EntryKind, Log, LogConfig, LogError, RecoveryReport};
use crate::transfer_runs::{TransferRunError, TransferRuns};
use crate::types::{AccountId, LogIndex, PartitionId, Term, Timestamp};

/// Most bytes of log read per step of replay.
const REPLAY_READ_SIZE_MAX: u64 = 64 << 20;

/// How a store is laid out and how often it checkpoints.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The partition this store holds.
    pub partition: PartitionId,
    /// Largest segment file of the log.
    pub segment_size_max: u64,
    /// Write a checkpoint after this many applied entries (0: only when asked).
    pub checkpoint_interval_entries: u64,
    /// How many checkpoints to keep (at least 1; 2 or more survive a damaged newest one
    /// without a full replay).
    pub checkpoints_kept: usize,
    /// Bound of the per-account index's in-memory part, in entries; beyond it the index is
    /// written to a run file.
    pub index_memory_entries_max: usize,
    /// Most transfer records kept in memory (plus every pending hold); older ones are
    /// spilled to transfer run files in `transfers/`. 0 keeps every record in memory.
    pub transfers_memory_max: usize,
}

impl StoreConfig {
    /// Defaults for `partition`: 64 MiB segments, a checkpoint every 10,000 entries, two kept.
    pub fn new(partition: PartitionId) -> StoreConfig {
        StoreConfig {
            partition,
            segment_size_max: crate::segment::SEGMENT_SIZE_MAX_DEFAULT,
            checkpoint_interval_entries: 10_000,
            checkpoints_kept: 2,
            index_memory_entries_max: crate::index::MEMORY_ENTRIES_MAX_DEFAULT,
            transfers_memory_max: crate::transfer_runs::TRANSFERS_MEMORY_MAX_DEFAULT,
        }
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The log failed (IO, corruption with its location, poisoned).
    #[error(transparent)]
    Log(#[from] LogError),
    /// Writing a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The per-account index failed (IO, a damaged file, a malformed query).
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A durable log entry does not decode: the log is damaged in a way its checksums did not
    /// catch, or was written by a newer version.
    #[error("log entry {index} does not decode: {source}")]
    Payload {
        /// The entry.
        index: LogIndex,
        /// Why.
        source: DecodeError,
    },
    /// A checkpoint covers entries the log no longer has: durable entries were lost.
    #[error("checkpoint at index {checkpoint} is ahead of the log, which ends at {log_last}")]
    CheckpointAhead {
        /// The checkpoint's applied index.
        checkpoint: LogIndex,
        /// The log's last index.
        log_last: LogIndex,
    },
    /// A payload breaks a limit of the entry format (too many events, a memo too long); it
    /// was not written.
    #[error("invalid payload: {0}")]
    Invalid(DecodeError),
    /// An earlier error left the store unusable until it is reopened.
    #[error("the store is poisoned by an earlier error; reopen it")]
    Poisoned,
    /// The configuration is invalid.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The transfer run files could not be opened or cleaned up.
    #[error(transparent)]
    TransferRuns(TransferRunError),
}

impl StoreError {
    /// Whether every replica would hit the same error on the same input (never: these are
    /// local conditions of this replica's disk).
    pub fn is_deterministic(&self) -> bool {
        false
    }
}

/// What [`Store::open`] found.
#[derive(Clone, Debug, Default)]
pub struct OpenReport {
    /// What the log's recovery did.
    pub log: RecoveryReport,
    /// The checkpoint loaded, if any.
    pub checkpoint: Option<LogIndex>,
    /// Checkpoints that failed verification and were skipped, with the reason.
    pub checkpoints_rejected: Vec<String>,
    /// Entries replayed from the log after the checkpoint.
    pub entries_replayed: u64,
    /// What the per-account index's recovery found.
    pub index: IndexOpenReport,
    /// Valid checkpoints passed over because the index files do not reach them (their index
    /// part is rebuilt by replaying from an older checkpoint or from the start).
    pub checkpoints_passed_over: Vec<LogIndex>,
    /// Transfer records on disk (in transfer runs) after recovery.
    pub transfers_on_disk: u64,
}

/// One durable partition on one node. See the module documentation.
pub struct Store {
    dir: PathBuf,
    config: StoreConfig,
    log: Log,
    partition: Partition,
    /// When the next checkpoint is due; merged transfer runs the kept ones need.
    schedule: Schedule,
    poisoned: bool,
    checkpoint_error: Option<String>,
    scratch: Vec<Entry>,
    index: Index,
    /// The last error of an automatic index flush, if it failed.
    index_error: Option<String>,
}

impl Store {
    /// Opens (or creates) the store in `dir` and recovers its state.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<(Store, OpenReport), StoreError> {
        if config.checkpoints_kept == 0 {
            return Err(StoreError::Config(
                "checkpoints_kept must be at least 1".into(),
            ));
        }
        if config.index_memory_entries_max == 0 {
            return Err(StoreError::Config(
                "index_memory_entries_max must be at least 1".into(),
            ));
        }
        let log_config = LogConfig {
            partition: config.partition,
            segment_size_max: config.segment_size_max,
        };
        let (mut log, log_report) = Log::open(&dir.join("log"), log_config)?;
        let mut report = OpenReport {
            log: log_report,
            ..OpenReport::default()
        };
        // Everything recovered from disk was made durable by a completed sync before it was
        // applied, so the whole recovered log counts as committed on a single node.
        log.set_committed(log.last_index());
        let (index, index_report) = Index::open(
            &dir.join("index"),
            config.partition,
            log.last_index(),
            config.index_memory_entries_max,
        )?;
        report.index = index_report;
        let runs_dir = dir.join("transfers");
        let runs_config = RunsConfig {
            dir: &runs_dir,
            transfers_memory_max: config.transfers_memory_max,
            keep_merged: true,
        };
        let restored = match checkpoint::restore(
            &dir.join("checkpoints"),
            config.partition,
            log.last_index(),
            index.durable(),
            &runs_config,
        ) {
            Ok(restored) => restored,
            Err(CheckpointError::AheadOfLog {
                checkpoint,
                log_last,
            }) => {
                return Err(StoreError::CheckpointAhead {
                    checkpoint,
                    log_last,
                })
            }
            Err(e) => return Err(e.into()),
        };
        // Replayed entries count as growth since the checkpoint restored.
        let schedule = Schedule::new(
            config.checkpoint_interval_entries,
            config.checkpoints_kept,
            &restored,
        );
        report.checkpoint = restored.checkpoint;
        report.checkpoints_rejected = restored.rejected;
        report.checkpoints_passed_over = restored.passed_over;
        let partition = restored.partition;
        let mut store = Store {
            dir: dir.to_path_buf(),
            config,
            log,
            partition,
            schedule,
            poisoned: false,
            checkpoint_error: None,
            scratch: Vec::new(),
            index,
            index_error: None,
        };
        store.partition.set_postings_enabled(true);
        report.entries_replayed = store.replay()?;
        store.schedule.applied(report.entries_replayed);
        report.transfers_on_disk = store
            .partition
            .transfer_runs()
            .map_or(0, TransferRuns::record_count);
        // Due at once if checkpoints were rejected (see `Schedule::new`).
        store.checkpoint_if_due();
        Ok((store, report))
    }

    fn replay(&mut self) -> Result<u64, StoreError> {
        let last = self.log.last_index();
        let mut next = self
            .partition
            .applied_index()
            .next()
            .max(self.log.first_index());
        let mut replayed = 0;
        while next <= last {
            let entries = self.log.read(next, last.next(), REPLAY_READ_SIZE_MAX)?;
            assert!(
                !entries.is_empty(),
                "read of a non-empty range returned nothing"
            );
            for entry in &entries {
                self.apply_entry(entry)?;
                self.index_applied();
                if self.index.wants_flush() {
                    self.index.flush()?;
                }
                replayed += 1;
            }
            next = entries[entries.len() - 1].index.next();
        }
        Ok(replayed)
    }

    fn apply_entry(&mut self, entry: &Entry) -> Result<Outcome, StoreError> {
        if entry.kind != EntryKind::Normal || entry.payload.is_empty() {
            self.partition.skip(entry.index);
            return Ok(Outcome::Tick);
        }
        let payload =
            EntryPayload::decode(&entry.payload).map_err(|source| StoreError::Payload {
                index: entry.index,
                source,
            })?;
        Ok(self.partition.apply(entry.index, &payload))
    }

    /// Appends `payloads` as one log entry each, makes them durable with one fsync, applies
    /// them, and returns one outcome per payload.
    pub fn submit(&mut self, payloads: &[EntryPayload]) -> Result<Vec<Outcome>, StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        for payload in payloads {
            payload.validate().map_err(StoreError::Invalid)?;
        }
        let first = self.log.last_index().next();
        self.scratch.clear();
        for (i, payload) in payloads.iter().enumerate() {
            self.scratch.push(Entry {
                index: LogIndex(first.0 + i as u64),
                term: Term(1),
                kind: EntryKind::Normal,
                payload: payload.encode(),
            });
        }
        let durable = self
            .log
            .append(&self.scratch)
            .and_then(|()| self.log.sync());
        if let Err(e) = durable {
            self.poisoned = true;
            return Err(e.into());
        }
        self.log.set_committed(self.log.last_index());
        let mut outcomes = Vec::with_capacity(payloads.len());
        for (i, payload) in payloads.iter().enumerate() {
            outcomes.push(self.partition.apply(LogIndex(first.0 + i as u64), payload));
            self.index_applied();
        }
        if self.index.wants_flush() {
            // Like a checkpoint, a failed flush costs memory and replay time, never data:
            // the log holds every entry. It is kept for the operator and retried.
            self.index_error = self.index.flush().err().map(|e| e.to_string());
        }
        self.schedule.applied(payloads.len() as u64);
        self.checkpoint_if_due();
        Ok(outcomes)
    }

    /// Writes a checkpoint if the schedule says one is due. The entries are durable and
    /// applied whatever happens here: a failed checkpoint only costs replay time at the next
    /// restart, so it must not turn an acknowledged submit (or a recovery) into an error.
    /// It is kept for the operator and retried at the next interval.
    fn checkpoint_if_due(&mut self) {
        if self.schedule.is_due(&self.partition) {
            self.schedule.started(&self.partition);
            self.checkpoint_error = self.checkpoint().err().map(|e| e.to_string());
        }
    }

    /// Writes a checkpoint of the current state now and prunes old ones.
    pub fn checkpoint(&mut self) -> Result<PathBuf, StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        // The checkpoint may only claim what the index files hold, so they go first.
        self.index.flush()?;
        assert_eq!(self.index.durable(), self.partition.applied_index());
        let dir = self.dir.join("checkpoints");
        let path = checkpoint::write_with_index(
            &dir,
            self.config.partition,
            &self.partition,
            self.index.durable(),
        )?;
        checkpoint::prune(&dir, self.config.checkpoints_kept)?;
        let spills = self
            .partition
            .transfer_runs()
            .map_or(0, TransferRuns::spills);
        self.schedule.started(&self.partition);
        let release = self
            .schedule
            .written(self.partition.applied_index(), spills);
        // The checkpoint is durable whatever happens here: a file that cannot be deleted
        // stays listed and is retried after the next checkpoint.
        self.partition
            .release_obsolete_transfer_runs(release)
            .map_err(StoreError::TransferRuns)?;
        Ok(path)
    }

    /// Moves the postings of the entry just applied into the index.
    fn index_applied(&mut self) {
        self.index
            .ingest(self.partition.postings(), self.partition.applied_index());
        self.partition.clear_postings();
    }

    /// The error of the last failed spill or merge of transfer runs, if any (records stay in
    /// memory and the spill is retried after the next entry).
    pub fn transfer_spill_error(&self) -> Option<&str> {
        self.partition.transfer_spill_error()
    }

    /// Waits for the background work: the per-account index's merges (and any they lead
    /// to) and a spill of transfer records being written (tests).
    pub fn settle(&mut self) -> Result<(), StoreError> {
        self.partition.finish_spill();
        Ok(self.index.settle()?)
    }

    /// The per-account index (read-only).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The error of the last automatic index flush or background merge, if it failed.
    pub fn index_error(&self) -> Option<&str> {
        self.index_error
            .as_deref()
            .or_else(|| self.index.merge_error())
    }

    /// One page of an account's history, with its balances after each entry (see
    /// [`Index::account_history`]).
    pub fn account_history(
        &self,
        account: AccountId,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        Ok(self.index.account_history(account, query)?)
    }

    /// An account's balances after its last entry at or before `time` (zero before any).
    pub fn balance_at(&self, account: AccountId, time: Timestamp) -> Result<Balances, StoreError> {
        Ok(self.index.balance_at(account, time)?)
    }

    /// Money posted in and out of an account during `[from, to)`, exactly.
    pub fn account_flows(
        &self,
        account: AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Flows, StoreError> {
        Ok(self.index.account_flows(account, from, to)?)
    }

    /// An account's closing balances per UTC hour (see [`Index::balance_series`]).
    pub fn balance_series(
        &self,
        account: AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<HourBalance>, StoreError> {
        Ok(self.index.balance_series(account, from, to)?)
    }

    /// The error of the last automatic checkpoint, if it failed.
    pub fn checkpoint_error(&self) -> Option<&str> {
        self.checkpoint_error.as_deref()
    }

    /// The state machine (read-only).
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// The log (read-only).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
