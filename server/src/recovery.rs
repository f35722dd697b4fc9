//! How a node finds its place in the cluster when its data directory cannot tell it: a new
//! directory (form a new cluster, or rejoin one after losing a disk?), and replicas that lost
//! their state file (which term may they safely start at?).
//!
//! Nodes ask each other with probes (`transport.rs`): a reply says whether the node's
//! directory has a cluster identity, and for each partition the replica's term, last index
//! and whether it holds its own durable state.
//!
//! # Form or join
//!
//! A node whose directory has no identity, in a cluster of more than one node, probes every
//! other voter ([`decide`]):
//! - if any of them took part in the cluster already (a term or log entries), this node lost
//!   its disk, or joins late: it *joins*, and every partition replica starts recovering;
//! - if every other voter answered and none took part yet, nothing was ever voted or
//!   committed, so forming is safe: it *forms* a new cluster (fresh replicas at term 0);
//! - otherwise it waits and asks again.
//!
//! Forming needs every voter's answer, not a majority's: a node that lost its disk while
//! another was down must not form a cluster with the nodes that never saw anything, while
//! the one holding the data is away. A node that joins late (its peers formed and elected
//! without it) is treated as recovering, which only costs it one catch-up.
//!
//! # The term of a replica that lost its state
//!
//! A replica that lost its state file does not know which terms it voted in. It must start
//! at a term at least as high as every term it took part in, and count as having voted in
//! that term, or it could vote twice in one term (two leaders), or acknowledge appends of a
//! deposed leader and help it commit what a newer leader overwrites. Any term it voted or
//! acknowledged in was also held by a majority of the voters, so by a majority minus itself;
//! the replies of `n − majority + 1` *other* voters whose replicas hold their own state must
//! include one of them ([`term_floor`]). Their highest term is the floor. In a 3-node
//! cluster that is both other nodes: a replica that lost its disk waits until both are
//! reachable, which is the price of never losing an acknowledged write.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::transport::{PartitionProbe, PeerMessage, Peers, ProbeReply, ReplicaState};

/// How often a waiting node asks its peers again.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// How often a waiting node says what it waits for.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// What a node with no identity does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Form a new cluster: no voter took part in one yet.
    Form,
    /// Join the existing cluster as a recovering member.
    Join,
}

/// The decision for node `own` among `voters`, given the replies so far (see the module
/// documentation), or `None` to keep waiting.
pub fn decide(voters: &[u64], own: u64, replies: &BTreeMap<u64, ProbeReply>) -> Option<Decision> {
    if replies
        .iter()
        .any(|(id, reply)| *id != own && reply.established())
    {
        return Some(Decision::Join);
    }
    let all = voters
        .iter()
        .filter(|id| **id != own)
        .all(|id| replies.contains_key(id));
    all.then_some(Decision::Form)
}

/// How many other voters' answers prove a term floor: `n − majority + 1`.
pub fn floor_quorum(voters: usize) -> usize {
    voters - (voters / 2 + 1) + 1
}

/// The lowest term a replica of `partition` that lost its state may start at (module
/// documentation), or `None` while too few other voters with state of their own answered.
pub fn term_floor(
    voters: &[u64],
    own: u64,
    partition: usize,
    replies: &BTreeMap<u64, ProbeReply>,
) -> Option<u64> {
    let terms: Vec<u64> = replies
        .iter()
        .filter(|(id, _)| **id != own && voters.contains(id))
        .filter_map(|(_, reply)| reply.partitions.get(partition))
        .filter(|p| p.state == ReplicaState::Normal)
        .map(|p| p.term)
        .collect();
    (terms.len() >= floor_quorum(voters.len())).then(|| terms.into_iter().max().unwrap_or(0))
}

/// This node's answer to probes: kept current by the partition workers.
pub struct LocalState {
    formed: AtomicBool,
    partitions: Vec<PartitionBoard>,
}

#[derive(Default)]
struct PartitionBoard {
    term: AtomicU64,
    last_index: AtomicU64,
    state: AtomicU8,
    /// The rest of what `tally status` shows, taken together.
    status: Mutex<Option<tally_client::wire::ReplicaStatus>>,
}

fn state_code(state: ReplicaState) -> u8 {
    match state {
        ReplicaState::Missing => 0,
        ReplicaState::Normal => 1,
        ReplicaState::Recovering => 2,
    }
}

impl LocalState {
    /// A node with `partitions` partitions, none known yet.
    pub fn new(partitions: u32) -> LocalState {
        LocalState {
            formed: AtomicBool::new(false),
            partitions: (0..partitions).map(|_| PartitionBoard::default()).collect(),
        }
    }

    /// Records that the directory has its identity.
    pub fn set_formed(&self) {
        self.formed.store(true, Ordering::Relaxed);
    }

    /// Records how a partition's replica stands.
    pub fn publish(&self, partition: u32, term: u64, last_index: u64, state: ReplicaState) {
        let board = &self.partitions[partition as usize];
        board.term.store(term, Ordering::Relaxed);
        board.last_index.store(last_index, Ordering::Relaxed);
        board.state.store(state_code(state), Ordering::Relaxed);
    }

    /// Records a partition's full status (the worker, once per turn).
    pub fn publish_status(&self, status: tally_client::wire::ReplicaStatus) {
        let board = &self.partitions[status.partition.0 as usize];
        *board.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }

    /// Every partition's status, for those whose replica runs.
    pub fn statuses(&self) -> Vec<tally_client::wire::ReplicaStatus> {
        self.partitions
            .iter()
            .filter_map(|board| {
                board
                    .status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            })
            .collect()
    }

    /// The reply to a probe with `nonce`.
    pub fn reply(&self, nonce: u64) -> ProbeReply {
        let formed = self.formed.load(Ordering::Relaxed);
        ProbeReply {
            nonce,
            formed,
            partitions: self
                .partitions
                .iter()
                .map(|board| PartitionProbe {
                    term: board.term.load(Ordering::Relaxed),
                    last_index: board.last_index.load(Ordering::Relaxed),
                    state: match board.state.load(Ordering::Relaxed) {
                        1 => ReplicaState::Normal,
                        2 => ReplicaState::Recovering,
                        _ => ReplicaState::Missing,
                    },
                })
                .collect(),
        }
    }
}

/// Probes and the replies they got (one probe round per [`PROBE_INTERVAL`]).
pub struct Prober {
    session: u64,
    replies: Mutex<BTreeMap<u64, ProbeReply>>,
    arrived: Notify,
}

impl Default for Prober {
    fn default() -> Prober {
        Prober {
            session: rand::random::<u64>() | 1,
            replies: Mutex::new(BTreeMap::new()),
            arrived: Notify::new(),
        }
    }
}

impl Prober {
    /// Records a reply from `from` (only to probes of this process).
    pub fn receive(&self, from: u64, reply: ProbeReply) {
        if reply.nonce != self.session {
            return;
        }
        self.replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(from, reply);
        self.arrived.notify_waiters();
    }

    /// Asks every peer until `done` finds its answer in the replies, logging what it waits
    /// for with `waiting` every few seconds.
    pub async fn until<T>(
        &self,
        peers: &Peers,
        mut done: impl FnMut(&BTreeMap<u64, ProbeReply>) -> Option<T>,
        waiting: impl Fn(&BTreeMap<u64, ProbeReply>) -> String,
    ) -> T {
        let mut logged = Instant::now();
        loop {
            {
                let replies = self.replies.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(answer) = done(&replies) {
                    return answer;
                }
                if logged.elapsed() >= PROGRESS_LOG_INTERVAL {
                    tracing::info!("{}", waiting(&replies));
                    logged = Instant::now();
                }
            }
            for id in peers.ids() {
                peers.send_to(
                    id,
                    PeerMessage::ProbeRequest {
                        nonce: self.session,
                    },
                );
            }
            let _ = tokio::time::timeout(PROBE_INTERVAL, self.arrived.notified()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(partitions: &[(u64, u64, ReplicaState)]) -> ProbeReply {
        ProbeReply {
            nonce: 1,
            formed: true,
            partitions: partitions
                .iter()
                .map(|&(term, last_index, state)| PartitionProbe {
                    term,
                    last_index,
                    state,
                })
                .collect(),
        }
    }

    #[test]
    fn form_only_when_every_other_voter_is_new() {
        let voters = [1, 2, 3];
        let fresh = reply(&[(0, 0, ReplicaState::Normal)]);
        let mut replies = BTreeMap::new();
        assert_eq!(decide(&voters, 1, &replies), None);
        replies.insert(2, fresh.clone());
        assert_eq!(
            decide(&voters, 1, &replies),
            None,
            "node 3 may hold the data"
        );
        replies.insert(3, fresh);
        assert_eq!(decide(&voters, 1, &replies), Some(Decision::Form));
        replies.insert(3, reply(&[(4, 0, ReplicaState::Normal)]));
        assert_eq!(decide(&voters, 1, &replies), Some(Decision::Join));
        let mut one = BTreeMap::new();
        one.insert(2, reply(&[(0, 9, ReplicaState::Normal)]));
        assert_eq!(
            decide(&voters, 1, &one),
            Some(Decision::Join),
            "one is enough"
        );
    }

    #[test]
    fn the_term_floor_needs_enough_replicas_with_their_own_state() {
        assert_eq!(floor_quorum(1), 1);
        assert_eq!(floor_quorum(3), 2);
        assert_eq!(floor_quorum(5), 3);
        let voters = [1, 2, 3];
        let mut replies = BTreeMap::new();
        replies.insert(2, reply(&[(7, 10, ReplicaState::Normal)]));
        assert_eq!(term_floor(&voters, 1, 0, &replies), None);
        replies.insert(3, reply(&[(5, 10, ReplicaState::Recovering)]));
        assert_eq!(
            term_floor(&voters, 1, 0, &replies),
            None,
            "a recovering replica proves nothing"
        );
        replies.insert(3, reply(&[(9, 10, ReplicaState::Normal)]));
        assert_eq!(term_floor(&voters, 1, 0, &replies), Some(9));
        assert_eq!(
            term_floor(&voters, 1, 1, &replies),
            None,
            "no such partition"
        );
        // Its own reply never counts.
        replies.insert(1, reply(&[(99, 10, ReplicaState::Normal)]));
        assert_eq!(term_floor(&voters, 1, 0, &replies), Some(9));
    }
}
