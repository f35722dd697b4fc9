//! One replica of one partition: a raft-rs `RawNode` over [`RaftLog`], and the partition's
//! state machine.
//!
//! The driver (the server's partition thread, or the simulator) calls [`Replica::tick`],
//! [`Replica::step`] and [`Replica::propose`], then [`Replica::handle_ready`], which follows
//! raft-rs's Ready contract:
//!
//! 1. append the Ready's entries to the log (truncating a conflicting uncommitted tail) and
//!    fsync once for all of them — group commit: however many client batches arrived since
//!    the last Ready, one fsync;
//! 2. persist a changed term or vote;
//! 3. only then hand out the Ready's persisted messages, so no peer ever sees a vote or an
//!    ack that is not on disk. A leader's messages (raft-rs's early messages: appends and
//!    heartbeats) go out first, before anything is applied or written, so that followers
//!    write a batch while the leader applies the previous one and syncs this one (Raft
//!    thesis 10.2.1); the leader counts itself towards a quorum only after its own fsync;
//! 4. apply committed entries in order, `advance`, and apply what the LightReady commits;
//! 5. `advance_apply`.
//!
//! Time: the leader stamps every proposal with `max(time, last stamp + 1)`, where `time` is
//! the cluster's clock (`clock.rs`: the median of the voters' clocks) when enough peers' clocks
//! were heard ([`Now`]). When they were not (just after a restart), a leader never trusts its
//! own wall clock with a partition that has a history: it advances time only by its
//! monotonic clock from the last stamp it saw when it became leader (or last stamped with
//! the cluster's time). The state machine also keeps its clock monotonic across leaders, so a
//! new leader whose clock is behind cannot move time backwards. When the leader has proposed
//! nothing for `tick_interval` ticks it proposes a `Tick` entry, so holds expire on time while
//! idle.
//!
//! Reads are linearizable through ReadIndex (raft-rs `ReadOnlyOption::Safe`): the leader
//! confirms its leadership with a heartbeat round before it serves a read at the commit index
//! it had when the read arrived. Unlike lease-based reads this does not depend on bounded
//! clock drift, which matters on machines whose clocks we skew in chaos tests.
//!
//! Checkpoints are written every `checkpoint_interval_entries` applied entries; a restarted
//! replica loads the newest valid one and raft-rs re-delivers the committed entries after it.
//!
//! Recovery: a replica that lost durable state (its log was damaged and cut, or its state
//! file lost; see `raft_storage.rs`) is *recovering*. It acknowledges appends (they are
//! durable when it does) but takes no part in elections: it never campaigns, ignores vote and
//! pre-vote requests and leadership handovers. Once it knows a leader it asks it, with a
//! ReadIndex request of its own, for the leader's commit index: the leader answers only after
//! committing an entry of its own term and confirming with a heartbeat round that it still
//! leads, so that index covers every entry committed before the question — before the loss
//! included, the entries this replica once acknowledged and lost among them. When its log holds
//! that index durably, matched against the leader's (raft-rs's follower commit index reaches
//! it), its votes are safe again. Its term is at least every term it took part in before (the
//! state file kept it, or its peers supplied it: `recovery.rs`), so it cannot help a deposed
//! leader commit either.
//!
//! (An earlier version ended recovery on any entry the leader had committed in its own term,
//! reported in an append; the simulator found the hole: entries committed later in that same
//! term were still missing, and a stale report from before the loss could satisfy it.)
//!
//! The `bug_*` fields of [`ReplicaConfig`] exist only so the simulator can prove it catches
//! the classic mistakes (skipping the fsync, applying before commit, losing a vote); they are
//! off unless a test turns them on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use raft::eraftpb::{Entry as RaftEntry, EntryType, Message, MessageType};
use raft::{Config, RawNode, ReadOnlyOption, StateRole};
use tally_engine::checkpoint::{self, RunsConfig, Schedule};
use tally_engine::command::{Command, DecodeError, EntryPayload};
use tally_engine::index::{Index, IndexError, Posting, PostingKind};
use tally_engine::outcome::Outcome;
use tally_engine::partition::{Partition, Snapshot};
use tally_engine::types::{LogIndex, PartitionId, Timestamp};
use thiserror::Error;

use crate::changes::log::{ChangeLog, ChangeLogError};
use crate::changes::{record, ChangeFeed};
use crate::raft_storage::{Damage, MissingState, RaftLog, RaftStorageError};
pub use crate::refusal::refusal;
use crate::stages::{Stage, Stages};

mod checkpoints;

/// How a replica runs.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This node's Raft id (never 0).
    pub node_id: u64,
    /// The partition.
    pub partition: PartitionId,
    /// Every voter of the group, including this node, for a new replica.
    pub voters: Vec<u64>,
    /// Ticks without a heartbeat before a follower campaigns. raft-rs draws each election
    /// timeout from `[election_tick, election_tick + 1)`, so this value is the timeout: give
    /// each node a different one (the simulator draws them from its seed).
    pub election_tick: usize,
    /// raft-rs draws each election timeout from `[election_tick, election_tick + spread)`.
    /// The simulator uses 1 (deterministic); real nodes use a wider spread so that split
    /// votes resolve quickly.
    pub election_tick_spread: usize,
    /// Ticks between leader heartbeats.
    pub heartbeat_tick: usize,
    /// Idle ticks after which the leader proposes a `Tick` entry.
    pub tick_interval: u64,
    /// Largest segment file of the log.
    pub segment_size_max: u64,
    /// Applied entries between checkpoints (0: never).
    pub checkpoint_interval_entries: u64,
    /// Checkpoints kept.
    pub checkpoints_kept: usize,
    /// Per-account index entries kept in memory before they are written to a run file.
    pub index_memory_entries_max: usize,
    /// Most transfer records kept in memory before the oldest are spilled to transfer run
    /// files (0: keep every record in memory).
    pub transfers_memory_max: usize,
    /// Write checkpoints on a background thread (the server) rather than on the applying
    /// thread (the simulator, which must stay deterministic).
    pub background_checkpoints: bool,
    /// What to do with damaged data: refuse (a lone replica), or cut it and recover from
    /// peers.
    pub damage: Damage,
    /// What to do when the replica has no state file yet.
    pub missing_state: MissingState,
    /// The feed the replica's change log publishes to (the node's streams wait on it); a
    /// replica without one makes its own.
    pub change_feed: Option<Arc<ChangeFeed>>,
    /// Largest file of the change log.
    pub change_segment_size_max: u64,
    /// Simulator fault: never fsync the log.
    #[doc(hidden)]
    pub bug_skip_fsync: bool,
    /// Simulator fault: apply entries when appended rather than when committed.
    #[doc(hidden)]
    pub bug_apply_before_commit: bool,
    /// Simulator fault: never persist term and vote.
    #[doc(hidden)]
    pub bug_skip_vote: bool,
    /// Simulator fault: serve reads on the leader's lease instead of confirming leadership.
    #[doc(hidden)]
    pub bug_lease_reads: bool,
}

impl ReplicaConfig {
    /// Defaults for a replica of `partition` on `node_id` among `voters`.
    pub fn new(node_id: u64, partition: PartitionId, voters: Vec<u64>) -> ReplicaConfig {
        ReplicaConfig {
            node_id,
            partition,
            voters,
            election_tick: 10,
            election_tick_spread: 1,
            heartbeat_tick: 2,
            tick_interval: 10,
            segment_size_max: tally_engine::segment::SEGMENT_SIZE_MAX_DEFAULT,
            checkpoint_interval_entries: 10_000,
            checkpoints_kept: 2,
            index_memory_entries_max: tally_engine::index::MEMORY_ENTRIES_MAX_DEFAULT,
            transfers_memory_max: tally_engine::transfer_runs::TRANSFERS_MEMORY_MAX_DEFAULT,
            background_checkpoints: false,
            damage: Damage::Repair,
            missing_state: MissingState::Create,
            change_feed: None,
            change_segment_size_max: crate::changes::log::SEGMENT_SIZE_MAX,
            bug_skip_fsync: false,
            bug_apply_before_commit: false,
            bug_skip_vote: false,
            bug_lease_reads: false,
        }
    }
}

/// Why a replica failed. Every variant stops the replica: its driver must not continue.
#[derive(Debug, Error)]
pub enum ReplicaError {
    /// The log or state file failed.
    #[error(transparent)]
    Storage(#[from] RaftStorageError),
    /// raft-rs refused something.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    /// The per-account index could not be opened or written.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Transfer records could not be written to their run files (the partition would keep
    /// them in memory without bound).
    #[error("transfer records could not be written to disk: {0}")]
    Spill(String),
    /// The change log could not be opened or written.
    #[error(transparent)]
    Changes(#[from] ChangeLogError),
    /// A checkpoint thread failed without an error of its own.
    #[error("the checkpoint thread panicked")]
    CheckpointPanicked,
    /// A committed entry does not decode: a bug or undetected corruption.
    #[error("committed entry {index} does not decode: {source}")]
    Payload {
        /// The entry.
        index: u64,
        /// Why.
        source: DecodeError,
    },
}

/// Why a proposal was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposeError {
    /// This replica is not the leader; `leader` is the one it knows of (0: none).
    #[error("not the leader (leader: {leader})")]
    NotLeader {
        /// The leader's node id, or 0.
        leader: u64,
    },
    /// The payload breaks a limit of the entry format.
    #[error("invalid payload: {0}")]
    Invalid(DecodeError),
    /// raft-rs dropped the proposal (e.g. a leadership transfer is under way).
    #[error("proposal dropped")]
    Dropped,
}

/// The time a driver hands the replica to stamp entries with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// The cluster's time, when enough voters' clocks were heard to know it (`clock.rs`).
    pub cluster: Option<Timestamp>,
    /// This node's wall clock (used alone only for a partition without any history yet).
    pub wall: Timestamp,
    /// This node's monotonic clock, in nanoseconds from any origin.
    pub monotonic: u64,
}

impl Now {
    /// A time everyone agrees on (tests, benches, a single node).
    pub fn agreed(time: Timestamp) -> Now {
        Now {
            cluster: Some(time),
            wall: time,
            monotonic: 0,
        }
    }
}

/// A committed entry as applied.
#[derive(Clone, Debug)]
pub struct Applied {
    /// Its index.
    pub index: LogIndex,
    /// Its term.
    pub term: u64,
    /// Its payload, if it carried a command (empty leader entries carry none).
    pub payload: Option<EntryPayload>,
    /// What it came to.
    pub outcome: Outcome,
    /// The raw bytes, for log-matching checks.
    pub data: Bytes,
    /// The state digest right after applying it.
    pub digest: u128,
}

/// A read confirmed by ReadIndex: it may be served once `applied_index() >= index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadReady {
    /// The read's context, as passed to [`Replica::read_index`].
    pub context: Vec<u8>,
    /// The commit index the read must wait for.
    pub index: u64,
}

/// The ReadIndex context of a recovering replica's question to its leader.
const RECOVERY_CONTEXT: &[u8] = b"tally-recovery";

/// A checkpoint being written in the background: it returns the applied index and the spill
/// count it names.
type CheckpointThread =
    std::thread::JoinHandle<Result<(LogIndex, u64), checkpoint::CheckpointError>>;

/// One partition replica. See the module documentation.
pub struct Replica {
    node: RawNode<RaftLog>,
    partition: Partition,
    index: Index,
    postings: Vec<Posting>,
    /// What each applied entry decided, for change streams.
    changes: ChangeLog,
    /// Scratch for one entry's changes.
    change_body: Vec<u8>,
    config: ReplicaConfig,
    checkpoint_dir: PathBuf,
    /// When the next checkpoint is due; merged transfer runs the kept ones need.
    schedule: Schedule,
    /// The checkpoint being written in the background, if any; it returns the spill count
    /// it names.
    checkpointing: Option<CheckpointThread>,
    /// A background checkpoint's snapshot, waiting for the index flush that covers it.
    waiting_checkpoint: Option<Snapshot>,
    last_stamp: u64,
    /// While leader: a stamp and the monotonic time it was taken at, from which time may
    /// advance by the monotonic clock alone while the cluster's clock is unknown.
    anchor: Option<(u64, u64)>,
    idle_ticks: u64,
    /// The last index known durable (what survives a crash).
    durable_index: u64,
    /// With `bug_apply_before_commit`: the highest index applied early.
    applied_early: u64,
    /// While recovering: ticks so far, and when the leader was last asked for its commit.
    recovery_ticks: u64,
    recovery_asked: Option<u64>,
    /// While recovering: the leader's commit index it answered, which the log must reach.
    recovery_target: Option<u64>,
    /// The last leader this replica knew, and its term (raft-rs forgets the leader when it
    /// starts a pre-vote).
    last_leader: (u64, u64),
    /// Where the time goes (shared with the node's other workers; see `stages.rs`).
    stages: Arc<Stages>,
    /// Whether indexing what was applied waits for [`Replica::finish_applied`] (the worker:
    /// it answers the proposals first).
    defer_index: bool,
    /// Entries were applied whose postings are not indexed yet.
    index_pending: bool,
}

impl Replica {
    /// Opens (or creates) the replica in `dir`: recovers the log, loads the newest valid
    /// checkpoint, and starts raft-rs after it.
    pub fn open(dir: &Path, config: ReplicaConfig) -> Result<Replica, ReplicaError> {
        let (mut raft_log, report) = RaftLog::open(
            dir,
            config.partition,
            &config.voters,
            config.segment_size_max,
            config.damage,
            config.missing_state,
        )?;
        let partition_id = config.partition;
        if let Some((segment, offset)) = report.truncated_at {
            tracing::info!(
                partition = %partition_id,
                %segment,
                offset,
                bytes = report.truncated_bytes,
                reordered = report.reordered_tail,
                durable = %report.durable,
                "cut the unsynced tail of the log"
            );
        }
        for repair in &report.repairs {
            tracing::warn!(partition = %partition_id, %repair, "cut damaged log entries; recovering them from peers");
        }
        let checkpoint_dir = dir.join("checkpoints");
        let (index, _index_report) = Index::open(
            &dir.join("index"),
            config.partition,
            raft_log.log().last_index(),
            config.index_memory_entries_max,
        )?;
        let changes_dir = dir.join("changes");
        let feed = config.change_feed.clone().unwrap_or_else(|| {
            Arc::new(ChangeFeed::new(
                &changes_dir,
                Arc::new(tokio::sync::Notify::new()),
            ))
        });
        let (changes, changes_report) =
            ChangeLog::open(&changes_dir, feed, config.change_segment_size_max)?;
        if let Some((path, offset, reason)) = &changes_report.cut {
            tracing::info!(
                partition = %partition_id,
                path = %path.display(),
                offset,
                reason,
                "cut the unsynced tail of the change log"
            );
        }
        // A checkpoint the change log does not reach would leave a hole in it.
        let derived_durable = index.durable().min(LogIndex(changes.end()));
        let runs_dir = dir.join("transfers");
        let runs_config = RunsConfig {
            dir: &runs_dir,
            transfers_memory_max: config.transfers_memory_max,
            keep_merged: true,
        };
        let log_last = raft_log.log().last_index();
        let restore = || {
            checkpoint::restore(
                &checkpoint_dir,
                config.partition,
                log_last,
                derived_durable,
                &runs_config,
            )
        };
        let restored = match restore() {
            // A checkpoint holds entries the log lost: with peers, start from an older state
            // and fetch them again.
            Err(checkpoint::CheckpointError::AheadOfLog {
                checkpoint,
                log_last,
            }) if config.damage == Damage::Repair => {
                tracing::warn!(
                    partition = %partition_id,
                    %checkpoint,
                    %log_last,
                    "a checkpoint is ahead of the log: entries were lost; recovering them from peers"
                );
                checkpoint::remove_ahead(&checkpoint_dir, log_last)?;
                raft_log.set_recovering()?;
                restore()?
            }
            other => other?,
        };
        for reason in &restored.rejected {
            tracing::warn!(partition = %config.partition, %reason, "checkpoint skipped");
        }
        // Checkpoints were rejected: the next one is written as soon as entries are applied.
        let schedule = Schedule::new(
            config.checkpoint_interval_entries,
            config.checkpoints_kept,
            &restored,
        );
        let mut partition = restored.partition;
        partition.set_postings_enabled(true);
        let applied = partition.applied_index().0;
        raft_log.raise_commit(applied);
        let durable_index = raft_log.log().last_index().0;
        let raft_config = Config {
            id: config.node_id,
            election_tick: config.election_tick,
            heartbeat_tick: config.heartbeat_tick,
            min_election_tick: config.election_tick,
            max_election_tick: config.election_tick + config.election_tick_spread.max(1),
            applied,
            max_size_per_msg: 1 << 20,
            // Apply at most this much per Ready (at least one entry), so that one turn of
            // the worker never applies for long: ticks and heartbeats come between.
            max_committed_size_per_ready: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            read_only_option: if config.bug_lease_reads {
                ReadOnlyOption::LeaseBased
            } else {
                ReadOnlyOption::Safe
            },
            ..Config::default()
        };
        let node = RawNode::new(
            &raft_config,
            raft_log,
            &crate::raft_log::logger(config.partition.0),
        )?;
        Ok(Replica {
            node,
            schedule,
            last_stamp: partition.last_timestamp().0,
            partition,
            index,
            postings: Vec::new(),
            changes,
            change_body: Vec::new(),
            config,
            checkpoint_dir,
            checkpointing: None,
            waiting_checkpoint: None,
            anchor: None,
            idle_ticks: 0,
            durable_index,
            applied_early: 0,
            recovery_ticks: 0,
            last_leader: (0, 0),
            recovery_asked: None,
            recovery_target: None,
            stages: Arc::default(),
            defer_index: false,
            index_pending: false,
        })
    }

    /// From now on [`Replica::handle_ready`] leaves indexing what it applied (and starting
    /// index flushes and checkpoints) to [`Replica::finish_applied`], which the caller must
    /// call before it reads the index or answers reads: the worker answers the proposals
    /// applied in between, so their replies do not wait for the index.
    pub fn defer_index(&mut self) {
        self.defer_index = true;
    }

    /// Records this replica's stage timings into `stages` (the node's, shared by its
    /// workers) from now on.
    pub fn set_stages(&mut self, stages: Arc<Stages>) {
        self.stages = stages;
    }

    /// Installs injected log faults (the simulator only).
    #[doc(hidden)]
    pub fn set_log_faults(&mut self, faults: Arc<tally_engine::segment::LogFaults>) {
        self.node.mut_store().set_log_faults(faults);
    }

    /// The state machine.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// The per-account index (history, flows, hourly series).
    pub fn index(&self) -> &Index {
        debug_assert!(!self.index_pending, "the index read before finish_applied");
        &self.index
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.config.node_id
    }

    /// The partition's voters.
    pub fn voters(&self) -> &[u64] {
        &self.config.voters
    }

    /// The election timeout, in ticks.
    pub fn election_tick(&self) -> usize {
        self.config.election_tick
    }

    /// Whether this replica is the leader.
    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// The leader this replica knows of (0: none).
    pub fn leader_id(&self) -> u64 {
        self.node.raft.leader_id
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    /// The commit index.
    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The last index in the log.
    pub fn last_index(&self) -> u64 {
        self.node.store().log().last_index().0
    }

    /// The last index that a crash cannot lose.
    pub fn durable_index(&self) -> u64 {
        self.durable_index
    }

    /// The term of a stored entry.
    pub fn entry_term(&self, index: u64) -> Option<u64> {
        self.node
            .store()
            .log()
            .term(LogIndex(index))
            .ok()
            .flatten()
            .map(|t| t.0)
    }

    /// Advances Raft's clock by one tick; the leader proposes a `Tick` entry when idle, so
    /// holds expire on time. `now` is the time as the driver knows it.
    pub fn tick(&mut self, now: Now) {
        if self.is_recovering() {
            // A recovering replica never campaigns: its election clock stands still. It asks
            // its leader for the commit index to reach, again every election timeout until
            // answered (the leader drops the question until it has committed in its term).
            self.recovery_ticks += 1;
            let due = self
                .recovery_asked
                .is_none_or(|at| self.recovery_ticks >= at + self.config.election_tick as u64);
            if self.recovery_target.is_none() && due && self.leader_id() != 0 {
                self.node.read_index(RECOVERY_CONTEXT.to_vec());
                self.recovery_asked = Some(self.recovery_ticks);
            }
            return;
        }
        self.remember_leader();
        self.node.tick();
        if !self.is_leader() {
            self.anchor = None;
        }
        if self.is_leader() {
            self.idle_ticks += 1;
            if self.idle_ticks >= self.config.tick_interval {
                // Best effort: a dropped tick is retried at the next interval.
                let _ = self.propose(Command::Tick, now);
            }
        } else {
            self.idle_ticks = 0;
        }
    }

    /// Feeds a message from a peer. Messages for another group or node are refused; a
    /// message raft-rs would reject, or abort on, is dropped and logged ([`refusal`]).
    pub fn step(&mut self, mut message: Message) -> Result<(), ReplicaError> {
        if message.to != self.config.node_id {
            return Err(ReplicaError::Raft(raft::Error::StepPeerNotFound));
        }
        if let Some(reason) = refusal(&message, &self.config.voters) {
            tracing::warn!(
                partition = %self.config.partition,
                from = message.from,
                kind = ?message.get_msg_type(),
                reason,
                "peer message dropped"
            );
            return Ok(());
        }
        if self.is_recovering()
            && matches!(
                message.get_msg_type(),
                MessageType::MsgRequestVote
                    | MessageType::MsgRequestPreVote
                    | MessageType::MsgTimeoutNow
            )
        {
            return Ok(());
        }
        if message.get_msg_type() == MessageType::MsgTimeoutNow {
            let term = self.node.raft.term;
            self.remember_leader();
            if message.term != term || self.last_leader != (term, message.from) {
                // Only the leader hands its leadership over; from anyone else it would start
                // an election that ignores the lease.
                tracing::warn!(
                    partition = %self.config.partition,
                    from = message.from,
                    leader = self.leader_id(),
                    "peer message dropped: TimeoutNow from a node that does not lead"
                );
                return Ok(());
            }
            if self.node.raft.state == StateRole::PreCandidate {
                // A lossy link to the leader made this replica start a pre-vote, which
                // forgot the leader; raft-rs would ignore the handover. The leader of this
                // very term hands over: follow it again, then take the handover.
                self.node.raft.become_follower(term, message.from);
            }
        }
        if message.get_msg_type() == MessageType::MsgHeartbeat {
            // A leader that still remembers how far this replica's log went before it lost
            // entries sends a commit index beyond it; raft-rs would abort. What the replica
            // holds up to its last index matches the leader's log (it was acknowledged to
            // this leader, or appended after its consistency check), so the clamp is exact.
            message.commit = message.commit.min(self.last_index());
        }
        let stepped = self.node.step(message);
        self.remember_leader();
        match stepped {
            // A message from a peer we do not know (e.g. a stale configuration) is ignored.
            Err(raft::Error::StepPeerNotFound) | Err(raft::Error::StepLocalMsg) => Ok(()),
            other => Ok(other?),
        }
    }

    fn remember_leader(&mut self) {
        if self.leader_id() != 0 {
            self.last_leader = (self.node.raft.term, self.leader_id());
        }
    }

    /// Proposes a command; only the leader accepts. The leader stamps the entry with
    /// `max(now, last stamp + 1)`. Returns the entry's index and term: the proposal took
    /// effect if and only if the entry applied at that index has that term (otherwise a new
    /// leader overwrote it, and the client must retry — safely, with the same ids).
    pub fn propose(&mut self, command: Command, now: Now) -> Result<(u64, u64), ProposeError> {
        if !self.is_leader() {
            self.anchor = None;
            return Err(ProposeError::NotLeader {
                leader: self.leader_id(),
            });
        }
        let stamp = self.time(now).max(self.last_stamp + 1);
        let payload = EntryPayload {
            timestamp: Timestamp(stamp),
            command,
        };
        payload.validate().map_err(ProposeError::Invalid)?;
        self.node
            .propose(Vec::new(), payload.encode())
            .map_err(|_| ProposeError::Dropped)?;
        self.last_stamp = stamp;
        self.idle_ticks = 0;
        Ok((self.node.raft.raft_log.last_index(), self.node.raft.term))
    }

    /// What time it is for this leader (see the module documentation).
    fn time(&mut self, now: Now) -> u64 {
        if self.anchor.is_none() {
            // Entries in the log may not be applied yet (just after a restart): the newest
            // stamp it holds is the time the partition had reached.
            self.last_stamp = self.last_stamp.max(self.newest_logged_stamp());
            self.anchor = Some((self.last_stamp, now.monotonic));
        }
        let (anchor, at) = self.anchor.expect("set above");
        match now.cluster {
            Some(time) => {
                self.anchor = Some((time.0.max(self.last_stamp), now.monotonic));
                time.0
            }
            None if self.last_stamp == 0 => now.wall.0,
            None => anchor + now.monotonic.saturating_sub(at),
        }
    }

    /// The timestamp of the newest entry in the log that carries one (0 if none of the last
    /// few does).
    fn newest_logged_stamp(&self) -> u64 {
        const SEARCHED_MAX: u64 = 64;
        let log = self.node.store().log();
        let last = log.last_index().0;
        let first = last.saturating_sub(SEARCHED_MAX).max(1);
        if last == 0 {
            return 0;
        }
        let Ok(entries) = log.read(LogIndex(first), LogIndex(last + 1), u64::MAX) else {
            return 0;
        };
        entries
            .iter()
            .rev()
            .filter(|e| e.kind == tally_engine::segment::EntryKind::Normal)
            .find_map(|e| EntryPayload::decode(&e.payload).ok())
            .map_or(0, |payload| payload.timestamp.0)
    }

    /// Starts a linearizable read; it comes back from [`Replica::handle_ready`] as a
    /// [`ReadReady`] once leadership is confirmed.
    pub fn read_index(&mut self, context: Vec<u8>) {
        self.node.read_index(context);
    }

    /// Hands leadership to `to` (raft-rs leadership transfer); a no-op unless leader.
    pub fn transfer_leader(&mut self, to: u64) {
        if self.is_leader() && to != self.config.node_id {
            self.node.transfer_leader(to);
        }
    }

    /// Campaigns at once (tests and leadership handover); a recovering replica does not.
    pub fn campaign(&mut self) -> Result<(), ReplicaError> {
        if self.is_recovering() {
            return Ok(());
        }
        Ok(self.node.campaign()?)
    }

    /// Whether this replica lost durable state and takes no part in elections yet (see the
    /// module documentation).
    pub fn is_recovering(&self) -> bool {
        self.node.store().is_recovering()
    }

    /// Ends recovery once this replica holds durably an entry that the leader of its term
    /// committed in that term (module documentation).
    fn maybe_finish_recovery(&mut self) -> Result<(), ReplicaError> {
        if !self.is_recovering() || self.is_leader() {
            return Ok(());
        }
        let Some(target) = self.recovery_target else {
            return Ok(());
        };
        let raft_log = &self.node.raft.raft_log;
        let held = raft_log
            .committed
            .min(raft_log.persisted)
            .min(self.durable_index);
        if held < target {
            return Ok(());
        }
        self.node.mut_store().finish_recovery()?;
        self.recovery_target = None;
        self.recovery_asked = None;
        tracing::info!(
            partition = %self.config.partition,
            index = held,
            term = self.term(),
            leader = self.leader_id(),
            "recovered: the log holds what the cluster committed; voting again"
        );
        Ok(())
    }

    /// Whether raft-rs has work for [`Replica::handle_ready`] (e.g. committed entries left
    /// unapplied by the last one).
    pub fn has_ready(&self) -> bool {
        self.node.has_ready()
    }

    /// Processes one Ready, if any: hands a leader's messages to `send_early` at once (before
    /// anything is applied or persisted), persists, then appends the messages that had to wait
    /// for persistence to `outbox`, the applied entries to `applied` and confirmed reads to
    /// `reads`.
    pub fn handle_ready(
        &mut self,
        send_early: &mut dyn FnMut(Vec<Message>),
        outbox: &mut Vec<Message>,
        applied: &mut Vec<Applied>,
        reads: &mut Vec<ReadReady>,
    ) -> Result<(), ReplicaError> {
        self.finish_applied()?;
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.node.ready();
        assert!(
            ready.snapshot().is_empty(),
            "snapshots are never produced: nothing is compacted"
        );
        // A leader's messages (appends, heartbeats) may leave before its own write (raft-rs
        // puts a non-leader's in the persisted messages instead): the followers write the
        // entries while this replica applies and syncs. The leader still counts itself
        // towards a quorum only once its own fsync is done (`advance`).
        let early_messages = ready.take_messages();
        if !early_messages.is_empty() {
            send_early(early_messages);
        }
        for read in ready.take_read_states() {
            if read.request_ctx == RECOVERY_CONTEXT {
                let target = self.recovery_target.get_or_insert(read.index);
                *target = (*target).max(read.index);
                continue;
            }
            reads.push(ReadReady {
                context: read.request_ctx,
                index: read.index,
            });
        }
        // Committed entries in a Ready are already durable here: apply them first.
        let committed = ready.take_committed_entries();
        self.apply_entries(committed, applied)?;
        if !ready.entries().is_empty() {
            let entries = ready.take_entries();
            let appending = Instant::now();
            self.node.mut_store().append(&entries)?;
            self.stages.record(Stage::Append, appending.elapsed());
            let last = self.last_index();
            self.durable_index = self.durable_index.min(entries[0].index.saturating_sub(1));
            if !self.config.bug_skip_fsync {
                let syncing = Instant::now();
                self.node.mut_store().sync()?;
                self.stages.record(Stage::Fsync, syncing.elapsed());
                self.durable_index = last;
            }
            if self.config.bug_apply_before_commit {
                self.apply_early(&entries, applied)?;
            }
        }
        if let Some(hard_state) = ready.hs() {
            let hard_state = hard_state.clone();
            let persist = !self.config.bug_skip_vote;
            self.node.mut_store().set_hard_state(&hard_state, persist)?;
        }
        outbox.extend(ready.take_persisted_messages());
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().set_commit(commit);
        }
        outbox.extend(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply_entries(committed, applied)?;
        self.node.advance_apply();
        self.maybe_finish_recovery()
    }

    fn apply_early(
        &mut self,
        entries: &[RaftEntry],
        applied: &mut Vec<Applied>,
    ) -> Result<(), ReplicaError> {
        let fresh: Vec<RaftEntry> = entries
            .iter()
            .filter(|e| e.index > self.applied_early && e.index > self.partition.applied_index().0)
            .cloned()
            .collect();
        if let Some(last) = fresh.last() {
            self.applied_early = last.index;
        }
        self.apply_entries(fresh, applied)
    }

    fn apply_entries(
        &mut self,
        entries: Vec<RaftEntry>,
        applied: &mut Vec<Applied>,
    ) -> Result<(), ReplicaError> {
        let any = !entries.is_empty();
        let applying = Instant::now();
        for entry in entries {
            if entry.index <= self.partition.applied_index().0 {
                // Re-delivered after a checkpoint, or already applied early (fault mode).
                continue;
            }
            let index = LogIndex(entry.index);
            let (payload, outcome) = if entry.entry_type != EntryType::EntryNormal
                || entry.data.is_empty()
            {
                self.partition.skip(index);
                (None, Outcome::Tick)
            } else {
                let payload =
                    EntryPayload::decode(&entry.data).map_err(|source| ReplicaError::Payload {
                        index: entry.index,
                        source,
                    })?;
                let before = record::Before::of(&self.partition);
                let postings_before = self.partition.postings().len();
                let outcome = self.partition.apply(index, &payload);
                self.record_changes(index, &payload, &outcome, before, postings_before)?;
                self.last_stamp = self.last_stamp.max(self.partition.last_timestamp().0);
                (Some(payload), outcome)
            };
            applied.push(Applied {
                index,
                term: entry.term,
                payload,
                outcome,
                data: entry.data,
                digest: self.partition.digest(),
            });
            self.schedule.applied(1);
        }
        if let Some(error) = self.partition.transfer_spill_error() {
            return Err(ReplicaError::Spill(error.to_string()));
        }
        if any {
            self.stages.record(Stage::Apply, applying.elapsed());
            self.index_pending = true;
        }
        if self.defer_index {
            return Ok(());
        }
        self.finish_applied()
    }

    /// Records what entry `index` decided in the change log (written by
    /// [`Replica::finish_applied`]).
    fn record_changes(
        &mut self,
        index: LogIndex,
        payload: &EntryPayload,
        outcome: &Outcome,
        before: record::Before,
        postings_before: usize,
    ) -> Result<(), ReplicaError> {
        if index.0 <= self.changes.end() {
            return Ok(());
        }
        let postings = &self.partition.postings()[postings_before..];
        let expired = postings
            .iter()
            .position(|p| p.kind != PostingKind::Expired)
            .unwrap_or(postings.len());
        self.change_body.clear();
        if let Some((first, last)) = record::encode_entry(
            self.config.partition.0,
            index,
            payload,
            outcome,
            before,
            &postings[..expired],
            &self.partition,
            &mut self.change_body,
        ) {
            self.changes
                .record(index.0, first, last, &self.change_body)?;
        }
        Ok(())
    }

    /// Indexes the postings of what was applied, starts an index flush if the index wants
    /// one and a checkpoint if one is due, and installs finished background work. Called by
    /// `handle_ready` itself unless [`Replica::defer_index`] was asked for.
    pub fn finish_applied(&mut self) -> Result<(), ReplicaError> {
        if self.index_pending {
            self.index_pending = false;
            let indexing = Instant::now();
            self.partition.drain_postings(&mut self.postings);
            self.index
                .ingest(&self.postings, self.partition.applied_index());
            self.postings.clear();
            self.stages.record(Stage::Index, indexing.elapsed());
            self.changes.flush(self.partition.applied_index().0)?;
        }
        if self.index.wants_flush() {
            // Written on the index's thread; this waits only for a previous flush.
            let flushing = Instant::now();
            self.index.start_flush()?;
            self.stages.record(Stage::IndexFlush, flushing.elapsed());
        }
        if self.schedule.is_due(&self.partition) {
            self.schedule.started(&self.partition);
            let checkpointing = Instant::now();
            self.start_checkpoint()?;
            self.stages
                .record(Stage::Checkpoint, checkpointing.elapsed());
        }
        self.poll_background()
    }
}
