//! raft-rs `Storage` over the engine's segmented log: Raft entries *are* the ledger entries,
//! stored once.
//!
//! Each Raft entry becomes one log record with the same index and term; the entry's type
//! maps to the record kind (normal or configuration change) and its data to the payload.
//! raft-rs's `context` field of entries is not stored: Tally never proposes with a context,
//! and [`RaftLog::append`] refuses an entry that carries one rather than drop it silently.
//!
//! The hard state (term, vote, commit) and the configuration (voters) live in a small file,
//! `raft-state`, written to a temporary name, fsynced, renamed and the directory fsynced, with a
//! CRC32. Term and vote are what Raft's safety rests on (a node must never vote twice in a
//! term), so they are made durable before any message that depends on them is sent. The
//! commit index is not needed for safety — a restarted node relearns it from the leader — so
//! it is written only along with term and vote changes; at restart the applied index of the
//! newest checkpoint raises it (everything a checkpoint covers was committed).
//!
//! Nothing is ever compacted: `first_index` is always 1, and a lagging or wiped replica is
//! brought up to date from the leader's log. `snapshot` is therefore never needed, and
//! answers "temporarily unavailable" if asked.
//!
//! A replica that lost durable state is *recovering* (a flag in the state file): its log may
//! lack entries it once acknowledged, or it may have forgotten a vote. It must take no part
//! in elections until it holds again everything the cluster committed (`replica.rs`). Such a
//! replica comes from [`RaftLog::open`] with [`Damage::Repair`] (log damage cut away by
//! `Log::open_repairing`, a commit index beyond the log) or from [`create_recovering`] (the
//! state file itself was lost). With [`Damage::Refuse`] — a replica with no peers, whose
//! data exists nowhere else — damage is an error with its location instead.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry as RaftEntry, EntryType, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use tally_engine::segment::{Entry, EntryKind, Log, LogConfig, LogError, RecoveryReport};
use tally_engine::types::{LogIndex, PartitionId, Term};
use thiserror::Error;

const STATE_MAGIC: [u8; 8] = *b"TALLYRFT";
/// Version 2 turned the reserved field into flags (version 1 files read with none set).
const STATE_VERSION: u16 = 2;
/// State flag: the replica lost durable state and is recovering (see the module docs).
const FLAG_RECOVERING: u16 = 1;
/// The name of the state file in a replica's directory.
pub const STATE_FILE: &str = "raft-state";
/// Most voters a configuration may list.
pub const VOTERS_MAX: usize = 16;

/// Why the Raft storage failed.
#[derive(Debug, Error)]
pub enum RaftStorageError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Reading or writing the state file failed.
    #[error("raft state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The state file is damaged.
    #[error("raft state file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// The caller asked for something the storage does not support.
    #[error("{0}")]
    Unsupported(String),
    /// The state file is missing and the caller did not ask for a new replica.
    #[error("raft state file {path} is missing")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// Durable entries are gone (with [`Damage::Refuse`]).
    #[error("{0}")]
    Lost(String),
}

impl RaftStorageError {
    /// Whether the data on disk is damaged or missing (as opposed to an IO failure): a
    /// replica with peers can be rebuilt from them.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            RaftStorageError::Log(LogError::Corrupt { .. })
                | RaftStorageError::Corrupt { .. }
                | RaftStorageError::Missing { .. }
                | RaftStorageError::Lost(_)
        )
    }
}

/// What to do with a damaged log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Refuse to open, naming the location: the data exists nowhere else.
    Refuse,
    /// Cut the damage away and mark the replica recovering: peers hold the entries.
    Repair,
}

/// What to do when the state file does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingState {
    /// Start a new replica (term 0, no vote, the given voters).
    Create,
    /// Refuse: the replica existed, and lost it ([`RaftStorageError::Missing`]).
    Refuse,
}

/// Writes the state file of a replica that lost its own: `term` is at least every term it
/// may have voted or acknowledged entries in before (from its peers, see `recovery.rs`), and
/// it counts as having voted (for itself) in that term, so that it can never vote twice in
/// it. The replica is recovering. Any existing log is kept; its last term raises `term`.
pub fn create_recovering(
    dir: &Path,
    partition: PartitionId,
    voters: &[u64],
    node_id: u64,
    term: u64,
    segment_size_max: u64,
) -> Result<(), RaftStorageError> {
    check_voters(voters)?;
    let config = LogConfig {
        partition,
        segment_size_max,
    };
    let (log, _) = Log::open_repairing(&dir.join("log"), config)?;
    let term = term.max(log.last_term().0);
    let mut raft_log = RaftLog {
        log,
        hard_state: HardState {
            term,
            vote: node_id,
            commit: 0,
            ..HardState::default()
        },
        conf_state: ConfState {
            voters: voters.to_vec(),
            ..ConfState::default()
        },
        state_path: dir.join(STATE_FILE),
        partition,
        state_dirty: true,
        recovering: true,
    };
    raft_log.persist_state()
}

/// Reads a replica's persisted term without opening it (`None`: no valid state file).
pub fn read_term(dir: &Path, partition: PartitionId) -> Option<(u64, bool)> {
    let bytes = fs::read(dir.join(STATE_FILE)).ok()?;
    let state = decode_state(&bytes, partition).ok()?;
    Some((state.0.term, state.2))
}

fn check_voters(voters: &[u64]) -> Result<(), RaftStorageError> {
    if voters.is_empty() || voters.len() > VOTERS_MAX {
        return Err(RaftStorageError::Unsupported(format!(
            "a configuration needs 1 to {VOTERS_MAX} voters, not {}",
            voters.len()
        )));
    }
    Ok(())
}

/// The durable Raft state of one partition replica. See the module documentation.
pub struct RaftLog {
    log: Log,
    hard_state: HardState,
    conf_state: ConfState,
    state_path: PathBuf,
    partition: PartitionId,
    /// Whether term or vote changed since the state file was last written.
    state_dirty: bool,
    /// Whether this replica lost durable state and must not vote yet (module docs).
    recovering: bool,
}

impl RaftLog {
    /// Opens the log and state in `dir`; a new replica (with [`MissingState::Create`])
    /// starts with `voters` as its configuration. `damage` says what to do with a damaged
    /// log (see the module docs); the report says what recovery found and cut.
    pub fn open(
        dir: &Path,
        partition: PartitionId,
        voters: &[u64],
        segment_size_max: u64,
        damage: Damage,
        missing: MissingState,
    ) -> Result<(RaftLog, RecoveryReport), RaftStorageError> {
        let config = LogConfig {
            partition,
            segment_size_max,
        };
        let state_path = dir.join(STATE_FILE);
        // Read the state first: a replica that must exist is not given a new, empty log.
        let state = match fs::read(&state_path) {
            Ok(bytes) => Some(decode_state(&bytes, partition).map_err(|reason| {
                RaftStorageError::Corrupt {
                    path: state_path.clone(),
                    reason,
                }
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(RaftStorageError::Io {
                    path: state_path,
                    source,
                })
            }
        };
        let (hard_state, conf_state, mut recovering) = match state {
            Some(state) => state,
            None if missing == MissingState::Refuse => {
                return Err(RaftStorageError::Missing { path: state_path })
            }
            None => {
                check_voters(voters)?;
                let conf_state = ConfState {
                    voters: voters.to_vec(),
                    ..ConfState::default()
                };
                (HardState::default(), conf_state, false)
            }
        };
        let (log, report) = match damage {
            Damage::Refuse => Log::open(&dir.join("log"), config)?,
            Damage::Repair => Log::open_repairing(&dir.join("log"), config)?,
        };
        let mut hard_state = hard_state;
        if !report.repairs.is_empty() {
            recovering = true;
        }
        if hard_state.commit > log.last_index().0 {
            let lost = format!(
                "{} says entries up to {} were committed, but the log ends at {}: durable \
                 entries were lost",
                state_path.display(),
                hard_state.commit,
                log.last_index()
            );
            if damage == Damage::Refuse {
                return Err(RaftStorageError::Lost(lost));
            }
            tracing::warn!(%partition, "{lost}; recovering from peers");
            hard_state.commit = log.last_index().0;
            recovering = true;
        }
        let mut raft_log = RaftLog {
            log,
            hard_state,
            conf_state,
            state_path,
            partition,
            state_dirty: true,
            recovering,
        };
        raft_log.persist_state()?;
        Ok((raft_log, report))
    }

    /// Whether this replica lost durable state and must take no part in elections yet.
    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    /// Marks the replica recovering (durable at once), e.g. when state above the log (a
    /// checkpoint) shows that the log lost entries.
    pub fn set_recovering(&mut self) -> Result<(), RaftStorageError> {
        if !self.recovering {
            self.recovering = true;
            self.state_dirty = true;
        }
        self.persist_state()
    }

    /// The replica holds again everything the cluster committed: it may vote. Durable
    /// before it returns; a crash before that restarts it recovering again (only slower).
    pub fn finish_recovery(&mut self) -> Result<(), RaftStorageError> {
        if self.recovering {
            self.recovering = false;
            self.state_dirty = true;
        }
        self.persist_state()
    }

    /// The underlying log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Installs injected log faults (the simulator only).
    #[doc(hidden)]
    pub fn set_log_faults(&mut self, faults: std::sync::Arc<tally_engine::segment::LogFaults>) {
        self.log.set_faults(faults);
    }

    /// The current hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// Raises the commit index known at startup (e.g. to a checkpoint's applied index).
    pub fn raise_commit(&mut self, commit: u64) {
        if commit > self.hard_state.commit {
            assert!(
                commit <= self.log.last_index().0,
                "commit {commit} beyond the log"
            );
            self.hard_state.commit = commit;
        }
        self.log.set_committed(LogIndex(self.hard_state.commit));
    }

    /// Appends entries from a Ready, first truncating any conflicting uncommitted suffix.
    /// Not durable until [`RaftLog::sync`].
    pub fn append(&mut self, entries: &[RaftEntry]) -> Result<(), RaftStorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index <= self.log.last_index().0 {
            // A new leader overwrites our uncommitted tail (Raft §5.3); the log refuses to
            // cut anything at or below the commit index.
            self.log.truncate_suffix(LogIndex(first.index))?;
        }
        let mut converted = Vec::with_capacity(entries.len());
        for entry in entries {
            if !entry.context.is_empty() {
                return Err(RaftStorageError::Unsupported(
                    "entries with a context are not stored".into(),
                ));
            }
            converted.push(Entry {
                index: LogIndex(entry.index),
                term: Term(entry.term),
                kind: match entry.entry_type {
                    EntryType::EntryNormal => EntryKind::Normal,
                    EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                        EntryKind::ConfChange
                    }
                },
                payload: entry.data.to_vec(),
            });
        }
        self.log.append(&converted)?;
        Ok(())
    }

    /// Makes every appended entry durable (one fsync for the whole Ready: group commit).
    pub fn sync(&mut self) -> Result<(), RaftStorageError> {
        self.log.sync()?;
        Ok(())
    }

    /// Takes a new hard state from a Ready. Term and vote changes are persisted at once
    /// (before the messages that depend on them are sent); commit changes ride along.
    /// `persist` is false only in the simulator's lost-vote fault.
    pub fn set_hard_state(
        &mut self,
        hard_state: &HardState,
        persist: bool,
    ) -> Result<(), RaftStorageError> {
        if hard_state.term != self.hard_state.term || hard_state.vote != self.hard_state.vote {
            self.state_dirty = persist;
        }
        self.hard_state = hard_state.clone();
        self.persist_state()
    }

    /// Takes a new commit index (from a LightReady).
    pub fn set_commit(&mut self, commit: u64) {
        self.hard_state.commit = commit;
        self.log
            .set_committed(LogIndex(commit.min(self.log.last_index().0)));
    }

    fn persist_state(&mut self) -> Result<(), RaftStorageError> {
        if !self.state_dirty {
            return Ok(());
        }
        let bytes = encode_state(
            &self.hard_state,
            &self.conf_state,
            self.partition,
            self.recovering,
        );
        let io = |source| RaftStorageError::Io {
            path: self.state_path.clone(),
            source,
        };
        let temporary = self.state_path.with_extension("tmp");
        {
            let mut file = File::create(&temporary).map_err(io)?;
            file.write_all(&bytes).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        fs::rename(&temporary, &self.state_path).map_err(io)?;
        if let Some(dir) = self.state_path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        self.state_dirty = false;
        Ok(())
    }
}

fn encode_state(
    hs: &HardState,
    cs: &ConfState,
    partition: PartitionId,
    recovering: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + cs.voters.len() * 8);
    out.extend_from_slice(&STATE_MAGIC);
    out.extend_from_slice(&STATE_VERSION.to_le_bytes());
    let flags = if recovering { FLAG_RECOVERING } else { 0 };
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&partition.0.to_le_bytes());
    out.extend_from_slice(&hs.term.to_le_bytes());
    out.extend_from_slice(&hs.vote.to_le_bytes());
    out.extend_from_slice(&hs.commit.to_le_bytes());
    out.extend_from_slice(&(cs.voters.len() as u32).to_le_bytes());
    for voter in &cs.voters {
        out.extend_from_slice(&voter.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a state file: hard state, configuration, and the recovering flag.
fn decode_state(
    bytes: &[u8],
    partition: PartitionId,
) -> Result<(HardState, ConfState, bool), String> {
    const FIXED: usize = 8 + 2 + 2 + 4 + 8 + 8 + 8 + 4;
    if bytes.len() < FIXED + 4 {
        return Err(format!("{} bytes is too short", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    let u32_at = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("checksum mismatch".into());
    }
    if body[..8] != STATE_MAGIC {
        return Err("bad magic".into());
    }
    let version = u16::from_le_bytes([body[8], body[9]]);
    if version != 1 && version != STATE_VERSION {
        return Err(format!("unknown version {version}"));
    }
    let flags = u16::from_le_bytes([body[10], body[11]]);
    if flags & !FLAG_RECOVERING != 0 || (version == 1 && flags != 0) {
        return Err(format!("unknown flags {flags:#x}"));
    }
    if u32_at(12) != partition.0 {
        return Err(format!(
            "belongs to partition {}, not {partition}",
            u32_at(12)
        ));
    }
    let hard_state = HardState {
        term: u64_at(16),
        vote: u64_at(24),
        commit: u64_at(32),
        ..HardState::default()
    };
    let count = u32_at(40) as usize;
    if count == 0 || count > VOTERS_MAX || body.len() != FIXED + count * 8 {
        return Err(format!("{count} voters in {} bytes", body.len()));
    }
    let voters = (0..count).map(|i| u64_at(FIXED + i * 8)).collect();
    Ok((
        hard_state,
        ConfState {
            voters,
            ..ConfState::default()
        },
        flags & FLAG_RECOVERING != 0,
    ))
}

fn storage_error(error: LogError) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(error)))
}

impl Storage for RaftLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.hard_state.clone(),
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<RaftEntry>> {
        if low < self.log.first_index().0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.log.last_index().0 + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if low == high {
            return Ok(Vec::new());
        }
        let max_size = max_size.into().unwrap_or(u64::MAX);
        let entries = self
            .log
            .read(LogIndex(low), LogIndex(high), max_size)
            .map_err(storage_error)?;
        Ok(entries
            .into_iter()
            .map(|entry| RaftEntry {
                entry_type: match entry.kind {
                    EntryKind::Normal => EntryType::EntryNormal,
                    EntryKind::ConfChange => EntryType::EntryConfChange,
                },
                term: entry.term.0,
                index: entry.index.0,
                data: Bytes::from(entry.payload),
                ..RaftEntry::default()
            })
            .collect())
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == 0 {
            return Ok(0);
        }
        match self.log.term(LogIndex(index)).map_err(storage_error)? {
            Some(term) => Ok(term.0),
            None if index < self.log.first_index().0 => {
                Err(raft::Error::Store(StorageError::Compacted))
            }
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.log.first_index().0)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.log.last_index().0)
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_rejects_damage() {
        let hs = HardState {
            term: 7,
            vote: 2,
            commit: 40,
            ..HardState::default()
        };
        let cs = ConfState {
            voters: vec![1, 2, 3],
            ..ConfState::default()
        };
        let bytes = encode_state(&hs, &cs, PartitionId(4), true);
        let (hs2, cs2, recovering) = decode_state(&bytes, PartitionId(4)).expect("decodes");
        assert_eq!((hs2.term, hs2.vote, hs2.commit), (7, 2, 40));
        assert_eq!(cs2.voters, vec![1, 2, 3]);
        assert!(recovering);
        let bytes = encode_state(&hs, &cs, PartitionId(4), false);
        assert!(!decode_state(&bytes, PartitionId(4)).expect("decodes").2);
        assert!(decode_state(&bytes, PartitionId(5)).is_err());
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            assert!(
                decode_state(&damaged, PartitionId(4)).is_err(),
                "flip at {i}"
            );
            assert!(
                decode_state(&bytes[..i], PartitionId(4)).is_err(),
                "cut at {i}"
            );
        }
    }
}
