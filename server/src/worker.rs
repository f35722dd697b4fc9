//! The partition worker: one OS thread per partition replica, owning the `Replica`.
//!
//! Everything that touches a partition goes through its two bounded inboxes: one for peer
//! messages (bounded by bytes), one for client proposals and linearizable reads (bounded by
//! count). The loop drains peer messages first, then client inputs, ticks Raft on time, runs
//! the Ready loop (one fsync per Ready, however many proposals it carries: group commit),
//! sends the outgoing messages to the peer transport, and answers the clients whose entries
//! were applied. Raft never waits behind clients: a full client inbox refuses clients, not
//! heartbeats.
//!
//! A storage failure stops the worker with its error (the node then exits: `node.rs`); a
//! message raft-rs refuses for any other reason is logged and dropped.
//!
//! A proposal is answered when the entry at its index is applied: with the outcome if that
//! entry has the term the proposal got, or `Dropped` if a new leader overwrote it (the client
//! retries with the same ids; idempotency makes that safe). A proposal or read that waits
//! longer than `WAIT_MAX` is answered `TimedOut`: the client cannot know whether it applied,
//! and retries.
//!
//! The inbox is bounded: when it is full, sessions answer `overloaded` at once instead of
//! queueing without limit. The worker never blocks on the network: outgoing messages go to
//! the transport's bounded queues and are dropped when those are full (Raft retransmits).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::time::{Duration, Instant};

use raft::eraftpb::Message;
use tally_engine::command::Command;
use tally_engine::index::{
    Flows, HistoryCursor, HistoryEntry, HistoryQuery, HourBalance, Index, IndexError,
};
use tally_engine::outcome::Outcome;
use tally_engine::partition::{Account, Partition, TransferRecord};
use tally_engine::types::{AccountId, Timestamp, TransferId};
use tokio::sync::oneshot;

use crate::clock::NodeClock;
use crate::links::{self, Links};
use crate::recovery::LocalState;
use crate::replica::{Applied, ProposeError, ReadReady, Replica, ReplicaError};
use crate::stages::{Stage, Stages};
use crate::transport::ReplicaState;

/// How long a proposal or read may wait for its answer.
pub const WAIT_MAX: Duration = Duration::from_secs(10);
/// Inputs handled per loop turn before the Ready is processed (a turn also stops taking
/// inputs after half a tick).
const INPUTS_PER_TURN_MAX: usize = 4096;
/// Bytes of peer messages a partition's inbox holds before new ones are dropped (Raft
/// retransmits).
pub const PEER_INBOX_BYTES_MAX: usize = 256 << 20;
/// Peer messages a partition's inbox holds.
const PEER_INBOX_DEPTH: usize = 65_536;

/// Why a request to a partition got no outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// This node does not lead the partition; `leader` is the one it knows (0: none).
    #[error("not the leader (leader: {leader})")]
    NotLeader {
        /// Node id of the leader, or 0.
        leader: u64,
    },
    /// The entry was overwritten by a new leader: not applied. Retry with the same ids.
    #[error("the proposal was dropped by a leader change")]
    Dropped,
    /// No answer in time: it may or may not have applied. Retry with the same ids.
    #[error("timed out")]
    TimedOut,
    /// This replica stopped leading while the proposal waited: it may still be committed by
    /// the new leader (`leader`, 0: unknown). Retry there with the same ids.
    #[error("leadership lost while waiting (new leader: {leader})")]
    LeaderLost {
        /// Node id of the new leader, or 0.
        leader: u64,
    },
    /// The partition's inbox is full.
    #[error("overloaded")]
    Overloaded,
    /// The request breaks a limit.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The partition stopped (shutdown or a storage failure).
    #[error("partition stopped")]
    Stopped,
}

/// A read served from the state machine after ReadIndex confirmed leadership.
#[derive(Clone, Debug)]
pub enum Query {
    /// Accounts by id.
    Accounts(Vec<AccountId>),
    /// Transfers by id.
    Transfers(Vec<TransferId>),
    /// One page of an account's history.
    History(AccountId, HistoryQuery),
    /// An account's incoming and outgoing posted totals over `[from, to)`.
    Flows(AccountId, Timestamp, Timestamp),
    /// An account's closing balance per hour over `[from, to)`.
    Series(AccountId, Timestamp, Timestamp),
}

/// One history entry with the other account of its transfer (zero if unknown).
#[derive(Clone, Debug)]
pub struct HistoryItem {
    /// The entry.
    pub entry: HistoryEntry,
    /// The other account of the transfer.
    pub counterparty: AccountId,
}

/// The answer to a [`Query`], in the order asked.
#[derive(Debug)]
pub enum Answer {
    /// Accounts (None: not found), with their ledger's scale.
    Accounts(Vec<Option<(Account, u8)>>),
    /// Transfers (None: not found), with their ledger's scale.
    Transfers(Vec<Option<(TransferRecord, u8)>>),
    /// A history page (entries, next cursor) and the account's scale.
    History(Result<(Vec<HistoryItem>, Option<HistoryCursor>, u8), IndexError>),
    /// Flows and the account's scale.
    Flows(Result<(Flows, u8), IndexError>),
    /// Hourly balances and the account's scale.
    Series(Result<(Vec<HourBalance>, u8), IndexError>),
}

fn scale_of(partition: &Partition, account: AccountId) -> u8 {
    partition
        .account(account)
        .and_then(|a| partition.ledger(a.ledger))
        .map_or(0, |l| l.scale)
}

fn answer(partition: &Partition, index: &Index, query: &Query) -> Answer {
    match query {
        Query::History(account, history) => {
            Answer::History(index.account_history(*account, history).map(|page| {
                let items = page
                    .entries
                    .into_iter()
                    .map(|entry| {
                        let counterparty =
                            partition
                                .transfer(entry.transfer)
                                .map_or(AccountId(0), |t| {
                                    if t.debit_account == *account {
                                        t.credit_account
                                    } else {
                                        t.debit_account
                                    }
                                });
                        HistoryItem {
                            entry,
                            counterparty,
                        }
                    })
                    .collect();
                (items, page.next, scale_of(partition, *account))
            }))
        }
        Query::Flows(account, from, to) => Answer::Flows(
            index
                .account_flows(*account, *from, *to)
                .map(|flows| (flows, scale_of(partition, *account))),
        ),
        Query::Series(account, from, to) => Answer::Series(
            index
                .balance_series(*account, *from, *to)
                .map(|series| (series, scale_of(partition, *account))),
        ),
        Query::Accounts(ids) => Answer::Accounts(
            ids.iter()
                .map(|id| {
                    partition.account(*id).map(|a| {
                        let scale = partition.ledger(a.ledger).map_or(0, |l| l.scale);
                        (*a, scale)
                    })
                })
                .collect(),
        ),
        // A claim of an id (its transfer lives on another partition) is not a transfer.
        Query::Transfers(ids) => Answer::Transfers(
            ids.iter()
                .map(|id| {
                    partition.decided_transfer(*id).map(|t| {
                        let scale = partition.ledger(t.ledger).map_or(0, |l| l.scale);
                        (t, scale)
                    })
                })
                .collect(),
        ),
    }
}

/// What a partition worker is asked to do by clients.
pub enum Input {
    /// A command to replicate and apply.
    Propose {
        /// The command.
        command: Command,
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<Outcome, PartitionError>>,
        /// When it was queued.
        sent: Instant,
    },
    /// A linearizable read.
    Read {
        /// What to read.
        query: Query,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Answer, PartitionError>>,
    },
    /// Who leads this partition (0: unknown), answered at once without Raft.
    Leader(oneshot::Sender<u64>),
}

/// State every worker of a node shares.
#[derive(Clone)]
pub struct Shared {
    /// The leader of each partition as its worker last saw it (0: unknown).
    pub leaders: Arc<Vec<AtomicU64>>,
    /// Set to stop every worker (graceful shutdown).
    pub stop: Arc<AtomicBool>,
    /// What this node answers to probes (each worker keeps its partition's part current).
    pub local: Arc<LocalState>,
    /// The cluster's time, which the leader stamps entries with (`clock.rs`).
    pub clock: Arc<NodeClock>,
    /// How well this node reaches its peers (`links.rs`).
    pub links: Arc<Links>,
    /// Where the node's time goes (`stages.rs`).
    pub stages: Arc<Stages>,
    /// What the node counts for Prometheus (`metrics.rs`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Sends Raft messages to peers (the transport); must not block.
pub trait PeerSender: Send {
    /// Queues `message` for node `message.to`, for `partition`; drops it if the queue is
    /// full.
    fn send(&self, partition: u32, message: Message);
}

/// A handle to a partition worker's inboxes.
#[derive(Clone)]
pub struct PartitionHandle {
    inbox: Sender<Input>,
    peers: PeerInbox,
}

/// The peer half of a partition's inbox, bounded by bytes.
#[derive(Clone)]
pub struct PeerInbox {
    sender: Sender<(Message, usize)>,
    bytes: Arc<AtomicUsize>,
}

impl PeerInbox {
    /// Bytes of messages waiting.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Queues a Raft message of `size` encoded bytes; drops it (Raft retransmits) when the
    /// inbox holds too many bytes already.
    pub fn deliver(&self, message: Message, size: usize) {
        let held = self.bytes.fetch_add(size, Ordering::Relaxed);
        if held + size > PEER_INBOX_BYTES_MAX || self.sender.try_send((message, size)).is_err() {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            tracing::debug!(held, "peer inbox full; message dropped");
        }
    }
}

/// The receiving halves of a partition's inboxes.
pub struct Inboxes {
    clients: Receiver<Input>,
    peers: Receiver<(Message, usize)>,
    peer_bytes: Arc<AtomicUsize>,
}

impl PartitionHandle {
    /// Where peer messages for this partition go.
    pub fn peer_inbox(&self) -> &PeerInbox {
        &self.peers
    }

    /// Queues an input; `Overloaded` if the inbox is full, `Stopped` if the worker is gone.
    pub fn try_send(&self, input: Input) -> Result<(), PartitionError> {
        self.inbox.try_send(input).map_err(|e| match e {
            TrySendError::Full(_) => PartitionError::Overloaded,
            TrySendError::Disconnected(_) => PartitionError::Stopped,
        })
    }

    /// Proposes a command and waits for its outcome.
    pub async fn propose(&self, command: Command) -> Result<Outcome, PartitionError> {
        let (reply, answer) = oneshot::channel();
        self.try_send(Input::Propose {
            command,
            reply,
            sent: Instant::now(),
        })?;
        answer.await.unwrap_or(Err(PartitionError::Stopped))
    }

    /// Reads linearizably.
    pub async fn read(&self, query: Query) -> Result<Answer, PartitionError> {
        let (reply, answer) = oneshot::channel();
        self.try_send(Input::Read { query, reply })?;
        answer.await.unwrap_or(Err(PartitionError::Stopped))
    }

    /// The partition's leader as this node knows it (0: unknown).
    pub async fn leader(&self) -> u64 {
        let (reply, answer) = oneshot::channel();
        if self.try_send(Input::Leader(reply)).is_err() {
            return 0;
        }
        answer.await.unwrap_or(0)
    }
}

/// Creates a worker's inboxes: `depth` client inputs, and peer messages up to
/// [`PEER_INBOX_BYTES_MAX`].
pub fn inbox(depth: usize) -> (PartitionHandle, Inboxes) {
    let (sender, clients) = crossbeam_channel::bounded(depth);
    let (peer_sender, peers) = crossbeam_channel::bounded(PEER_INBOX_DEPTH);
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        PartitionHandle {
            inbox: sender,
            peers: PeerInbox {
                sender: peer_sender,
                bytes: bytes.clone(),
            },
        },
        Inboxes {
            clients,
            peers,
            peer_bytes: bytes,
        },
    )
}

/// Feeds a peer message to the replica. Only storage failures stop the worker; anything
/// else raft-rs refuses is logged and dropped (a peer's message must never stop a
/// partition).
fn step(replica: &mut Replica, partition: u32, message: Message) -> Result<(), ReplicaError> {
    let kind = message.get_msg_type();
    let from = message.from;
    match replica.step(message) {
        Ok(()) => Ok(()),
        Err(ReplicaError::Raft(raft::Error::Store(error))) => {
            Err(ReplicaError::Raft(raft::Error::Store(error)))
        }
        Err(ReplicaError::Raft(error)) => {
            tracing::warn!(partition, from, ?kind, %error, "peer message refused");
            Ok(())
        }
        Err(other) => Err(other),
    }
}

/// A read waiting for ReadIndex: the query, when it arrived, where the answer goes.
type PendingRead = (
    Query,
    Instant,
    oneshot::Sender<Result<Answer, PartitionError>>,
);

struct Waiting<T> {
    term: u64,
    since: Instant,
    reply: oneshot::Sender<Result<T, PartitionError>>,
}

/// Runs a partition worker until every handle to its inbox is dropped. Returns the error
/// that stopped it, if any (a storage failure stops the replica: it must not go on).
pub fn run(
    partition: u32,
    mut replica: Replica,
    inboxes: Inboxes,
    peers: Box<dyn PeerSender>,
    tick: Duration,
    shared: Shared,
) -> Result<(), ReplicaError> {
    let mut ticks = 0u64;
    let mut proposals: BTreeMap<u64, Waiting<Outcome>> = BTreeMap::new();
    let mut reads: BTreeMap<u64, PendingRead> = BTreeMap::new();
    let mut confirmed: Vec<(u64, u64)> = Vec::new(); // (read index, read id)
    let mut next_read_id = 0u64;
    let mut next_tick = Instant::now() + tick;
    let mut was_leader = false;
    let mut outbox = Vec::new();
    let mut applied: Vec<Applied> = Vec::new();
    let mut ready_reads: Vec<ReadReady> = Vec::new();
    // A turn stops taking client inputs, and applying, after half a tick, so that the loop
    // comes back to ticking and to peers' messages: heartbeats go out on time under any load.
    let budget = tick / 2;
    let mut handover = Handover::new(tick, replica.election_tick());
    // Proposals are answered as soon as they are applied; their postings are indexed after.
    replica.defer_index();
    let mut term = replica.term();
    loop {
        if replica.term() != term {
            tracing::info!(
                partition,
                from = term,
                to = replica.term(),
                leader = replica.leader_id(),
                this_node = replica.node_id(),
                "term changed: an election took place (leader 0: not yet known)"
            );
            term = replica.term();
            shared.metrics.election(partition);
        }
        // Work left from the last turn (committed entries not yet applied) goes on at once.
        let wait = if replica.has_ready() {
            Duration::ZERO
        } else {
            next_tick.saturating_duration_since(Instant::now())
        };
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        shared.local.publish(
            partition,
            replica.term(),
            replica.last_index(),
            if replica.is_recovering() {
                ReplicaState::Recovering
            } else {
                ReplicaState::Normal
            },
        );
        shared
            .local
            .publish_status(tally_client::wire::ReplicaStatus {
                partition: tally_client::wire::PartitionId(partition),
                term: replica.term(),
                leader: if replica.is_leader() {
                    replica.node_id()
                } else {
                    replica.leader_id()
                },
                last_index: replica.last_index(),
                commit_index: replica.commit_index(),
                applied_index: replica.partition().applied_index().0,
                digest: replica.partition().digest(),
                recovering: replica.is_recovering(),
                queue_depth: inboxes.clients.len() as u32,
            });
        // Wait for the first input of either kind, or the next tick.
        let mut first_client = None;
        crossbeam_channel::select! {
            recv(inboxes.peers) -> message => {
                if let Ok((message, size)) = message {
                    inboxes.peer_bytes.fetch_sub(size, Ordering::Relaxed);
                    step(&mut replica, partition, message)?;
                }
            }
            recv(inboxes.clients) -> input => match input {
                Ok(input) => first_client = Some(input),
                Err(_) => return Ok(()),
            },
            default(wait) => {}
        }
        let turn = Instant::now();
        // Peers first: every message waiting (bounded), so heartbeats and acks are never
        // stuck behind client work.
        for _ in 0..INPUTS_PER_TURN_MAX {
            let Ok((message, size)) = inboxes.peers.try_recv() else {
                break;
            };
            inboxes.peer_bytes.fetch_sub(size, Ordering::Relaxed);
            step(&mut replica, partition, message)?;
        }
        let mut handled = 0;
        let mut input = first_client.or_else(|| inboxes.clients.try_recv().ok());
        while let Some(current) = input.take() {
            handled += 1;
            match current {
                Input::Propose {
                    command,
                    reply,
                    sent,
                } => {
                    let proposing = Instant::now();
                    shared.stages.record(Stage::Queue, proposing - sent);
                    let proposed = replica.propose(command, shared.clock.now());
                    shared.stages.record(Stage::Propose, proposing.elapsed());
                    match proposed {
                        Ok((index, term)) => {
                            // An index proposed again after a leader change replaces the
                            // old waiter, which can no longer succeed.
                            if let Some(old) = proposals.insert(
                                index,
                                Waiting {
                                    term,
                                    since: Instant::now(),
                                    reply,
                                },
                            ) {
                                let _ = old.reply.send(Err(PartitionError::Dropped));
                            }
                        }
                        Err(ProposeError::NotLeader { leader }) => {
                            let _ = reply.send(Err(PartitionError::NotLeader { leader }));
                        }
                        Err(ProposeError::Invalid(e)) => {
                            let _ = reply.send(Err(PartitionError::Invalid(e.to_string())));
                        }
                        Err(ProposeError::Dropped) => {
                            let _ = reply.send(Err(PartitionError::Dropped));
                        }
                    }
                }
                Input::Read { query, reply } => {
                    if replica.is_leader() {
                        next_read_id += 1;
                        replica.read_index(next_read_id.to_le_bytes().to_vec());
                        reads.insert(next_read_id, (query, Instant::now(), reply));
                    } else {
                        let _ = reply.send(Err(PartitionError::NotLeader {
                            leader: replica.leader_id(),
                        }));
                    }
                }
                Input::Leader(reply) => {
                    let _ = reply.send(replica.leader_id());
                }
            }
            if handled < INPUTS_PER_TURN_MAX && turn.elapsed() < budget {
                input = inboxes.clients.try_recv().ok();
            }
        }
        if Instant::now() >= next_tick {
            replica.tick(shared.clock.now());
            replica.poll_background()?;
            ticks += 1;
            let leader = if replica.is_leader() {
                replica.node_id()
            } else {
                replica.leader_id()
            };
            let previous = shared.leaders[partition as usize].swap(leader, Ordering::Relaxed);
            if previous != leader {
                shared.metrics.leader_change(partition);
                tracing::info!(
                    partition,
                    leader,
                    term = replica.term(),
                    this_node = replica.node_id(),
                    "leader changed (0: none known)"
                );
            }
            // Leaders of all partitions gather on partition 0's leader, so that one node
            // serves every request (clients need one connection); the partitions still run
            // in parallel on its cores.
            let leader_zero = shared.leaders[0].load(Ordering::Relaxed);
            if partition != 0 && replica.is_leader() && leader_zero != 0 && ticks.is_multiple_of(10)
            {
                replica.transfer_leader(leader_zero);
            }
            if partition == 0 {
                handover.tick(&mut replica, &shared.links);
            }
            next_tick = Instant::now() + tick;
            let now = Instant::now();
            let expired: Vec<u64> = proposals
                .iter()
                .filter(|(_, w)| now.duration_since(w.since) > WAIT_MAX)
                .map(|(index, _)| *index)
                .collect();
            for index in expired {
                if let Some(w) = proposals.remove(&index) {
                    let _ = w.reply.send(Err(PartitionError::TimedOut));
                }
            }
            let stale: Vec<u64> = reads
                .iter()
                .filter(|(_, (_, since, _))| now.duration_since(*since) > WAIT_MAX)
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                if let Some((_, _, reply)) = reads.remove(&id) {
                    let _ = reply.send(Err(PartitionError::TimedOut));
                }
            }
        }
        // A leader that stepped down answers what waits at once (clients go to the new one)
        // rather than letting it time out.
        if was_leader && !replica.is_leader() {
            let leader = replica.leader_id();
            tracing::info!(
                partition,
                leader,
                waiting = proposals.len() + reads.len(),
                "stepped down; answering what waited"
            );
            for (_, waiting) in std::mem::take(&mut proposals) {
                let _ = waiting
                    .reply
                    .send(Err(PartitionError::LeaderLost { leader }));
            }
            for (_, (_, _, reply)) in std::mem::take(&mut reads) {
                let _ = reply.send(Err(PartitionError::NotLeader { leader }));
            }
            confirmed.clear();
        }
        was_leader = replica.is_leader();
        // Process the Readies this turn produced, within the turn's budget (each applies a
        // bounded amount, `max_committed_size_per_ready`); the next turn goes on.
        loop {
            let mut send_early = |messages: Vec<Message>| {
                for message in messages {
                    peers.send(partition, message);
                }
            };
            replica.handle_ready(&mut send_early, &mut outbox, &mut applied, &mut ready_reads)?;
            if outbox.is_empty() && applied.is_empty() && ready_reads.is_empty() {
                break;
            }
            for message in outbox.drain(..) {
                peers.send(partition, message);
            }
            for entry in applied.drain(..) {
                if let Some(waiting) = proposals.remove(&entry.index.0) {
                    shared.stages.record(Stage::Commit, waiting.since.elapsed());
                    let result = if waiting.term == entry.term {
                        Ok(entry.outcome)
                    } else {
                        Err(PartitionError::Dropped)
                    };
                    let _ = waiting.reply.send(result);
                }
                // Proposals below an applied index that was not theirs can never apply.
                let stale: Vec<u64> = proposals
                    .range(..entry.index.0)
                    .map(|(index, _)| *index)
                    .collect();
                for index in stale {
                    if let Some(w) = proposals.remove(&index) {
                        let _ = w.reply.send(Err(PartitionError::Dropped));
                    }
                }
            }
            // Reads see the index of everything applied.
            replica.finish_applied()?;
            for read in ready_reads.drain(..) {
                let Ok(bytes) = <[u8; 8]>::try_from(read.context.as_slice()) else {
                    continue;
                };
                confirmed.push((read.index, u64::from_le_bytes(bytes)));
            }
            let applied_index = replica.partition().applied_index().0;
            confirmed.retain(|&(index, id)| {
                if index > applied_index {
                    return true;
                }
                if let Some((query, _, reply)) = reads.remove(&id) {
                    let _ = reply.send(Ok(answer(replica.partition(), replica.index(), &query)));
                }
                false
            });
            if turn.elapsed() >= budget {
                break;
            }
        }
    }
}

/// Partition 0's leader hands its leadership to a follower with better links when its own
/// are too lossy to make a quorum (`links.rs`); the other partitions follow partition 0.
/// It leads for a [`links::WINDOW`] first (so its view of the links is its own, not a
/// predecessor's), and while it still leads tries again — another follower first — once
/// raft-rs gave the transfer up (a transfer over a lossy link can time out).
struct Handover {
    /// How long after a try the next may come: an election timeout and two ticks.
    retry: Duration,
    /// Since when this replica leads.
    leading_since: Option<Instant>,
    /// When it last tried to hand over, and to whom.
    last: Option<(Instant, u64)>,
}

impl Handover {
    fn new(tick: Duration, election_tick: usize) -> Handover {
        let ticks = u32::try_from(election_tick + 2).unwrap_or(u32::MAX);
        Handover {
            retry: tick.saturating_mul(ticks),
            leading_since: None,
            last: None,
        }
    }

    fn tick(&mut self, replica: &mut Replica, links: &Links) {
        if !replica.is_leader() {
            self.leading_since = None;
            self.last = None;
            return;
        }
        let now = Instant::now();
        let since = *self.leading_since.get_or_insert(now);
        let window = Duration::from_nanos(links::WINDOW);
        if now.duration_since(since) < window
            || self
                .last
                .is_some_and(|(at, _)| now.duration_since(at) < self.retry)
        {
            return;
        }
        let followers: Vec<u64> = replica
            .voters()
            .iter()
            .copied()
            .filter(|&v| v != replica.node_id())
            .collect();
        let tried = self.last.map(|(_, target)| target);
        if let Some(target) = links.handover(&followers, replica.voters().len(), tried) {
            tracing::info!(
                partition = 0,
                to = target,
                healthy_links = links.healthy(),
                states = ?followers.iter().map(|&f| (f, links.state(f))).collect::<Vec<_>>(),
                "handing leadership over: this node's links are too lossy for a quorum"
            );
            replica.transfer_leader(target);
            self.last = Some((now, target));
        }
    }
}
