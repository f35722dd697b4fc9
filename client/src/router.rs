//! Finding, following and replacing the connection to the cluster's leader.
//!
//! The cluster co-locates the leaders of all partitions on one node, which serves every
//! request; any other node answers writes and reads with `not_leader` and a hint naming the
//! leader's client address. The router keeps one current [`Connection`] and knows three kinds
//! of addresses: the seeds the application gave, the leader addresses learned from `Hello`
//! answers, and the latest hint. When the current connection is missing or dead it tries, in
//! order: the hinted address, the leader of partition 0 as last reported, the seeds, the other
//! reported leaders; an address that answered `not_leader` without a hint goes last, so the
//! client does not keep asking the same follower. A node whose connection the liveness watch
//! found dead (it answered nothing, not even a ping: paused or cut off, `connection.rs`) is
//! *suspect* for [`SUSPECT_FOR`]: it goes after every other address, and a hint naming it is
//! not followed. Until an election ends the followers of a paused leader keep naming it, and a
//! paused process's kernel still accepts connections, so following the hint would wait out the
//! hello timeout there on every round.
//!
//! Invariants: at most one task connects at a time (the others wait for its result rather
//! than opening connections of their own), and a connection is only replaced by the caller
//! that saw it fail (`reset` and `follow` compare identity), so a late failure report about an
//! old connection never tears down its successor.
//!
//! Deliberate omissions: one connection, not one per node or per partition, because the
//! cluster serves everything from one node; when leaders are spread out this becomes a map
//! from partition to connection.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::wire::{ClusterInfo, PartitionId};

/// Most addresses one connection round tries. Bounds the time a round can take when the
/// cluster reports many leaders.
pub const CONNECT_CANDIDATES_MAX: usize = 64;

/// Most addresses remembered from `Hello` answers and hints, besides the seeds.
pub const LEARNED_ADDRESSES_MAX: usize = 64;

/// How long a node whose connection was found dead stays suspect (see the module
/// documentation): longer than an election after a leader stops.
pub const SUSPECT_FOR: Duration = Duration::from_secs(3);

struct RouterState {
    seeds: Vec<String>,
    learned: Vec<String>,
    preferred: Option<String>,
    demoted: Option<String>,
    /// A node whose connection was found dead, and when.
    suspect: Option<(String, Instant)>,
    cluster: Option<ClusterInfo>,
}

impl RouterState {
    /// The suspect address, while it is one.
    fn suspect(&self) -> Option<&str> {
        self.suspect
            .as_ref()
            .filter(|(_, at)| at.elapsed() < SUSPECT_FOR)
            .map(|(address, _)| address.as_str())
    }
}

/// Owns the current connection; see the module documentation.
pub(crate) struct Router {
    current: Mutex<Option<Arc<Connection>>>,
    state: tokio::sync::Mutex<RouterState>,
    connect_timeout: Duration,
    liveness_timeout: Duration,
    partition_count: AtomicU32,
}

impl Router {
    pub(crate) fn new(
        seeds: Vec<String>,
        connect_timeout: Duration,
        liveness_timeout: Duration,
    ) -> Router {
        Router {
            current: Mutex::new(None),
            state: tokio::sync::Mutex::new(RouterState {
                seeds,
                learned: Vec::new(),
                preferred: None,
                demoted: None,
                suspect: None,
                cluster: None,
            }),
            connect_timeout,
            liveness_timeout,
            partition_count: AtomicU32::new(0),
        }
    }

    fn live_current(&self) -> Option<Arc<Connection>> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    /// The current connection, connecting first if there is none (or it died).
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>, String> {
        if let Some(connection) = self.live_current() {
            return Ok(connection);
        }
        let mut state = self.state.lock().await;
        // Another task may have connected while this one waited for the lock.
        if let Some(connection) = self.live_current() {
            return Ok(connection);
        }
        let mut errors = Vec::new();
        for address in candidates(&state) {
            match Connection::open(&address, self.connect_timeout, self.liveness_timeout).await {
                Ok((connection, info)) => {
                    self.learn(&mut state, info);
                    state.preferred = Some(address);
                    *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(connection.clone());
                    return Ok(connection);
                }
                Err(e) => errors.push(format!("{address}: {e}")),
            }
        }
        if errors.is_empty() {
            errors.push("no addresses to connect to".to_owned());
        }
        Err(errors.join("; "))
    }

    fn learn(&self, state: &mut RouterState, info: ClusterInfo) {
        self.partition_count
            .store(info.partition_count, Ordering::Relaxed);
        for leader in &info.leaders {
            if let Some(address) = &leader.address {
                remember(state, address);
            }
        }
        state.cluster = Some(info);
    }

    /// Records a fresh `Hello` answer (from [`crate::Client::cluster_info`]).
    pub(crate) async fn update(&self, info: ClusterInfo) {
        let mut state = self.state.lock().await;
        self.learn(&mut state, info);
    }

    /// Closes `connection` (if it is still the current one) so the next request reconnects,
    /// to the other nodes first: a node that failed (paused, cut off, dead) goes last.
    pub(crate) async fn reset(&self, connection: &Arc<Connection>, reason: &str) {
        {
            let mut state = self.state.lock().await;
            if state.preferred.as_deref() == Some(connection.address()) {
                state.preferred = None;
            }
            state.demoted = Some(connection.address().to_owned());
            if connection.is_presumed_dead() {
                state.suspect = Some((connection.address().to_owned(), Instant::now()));
            }
        }
        self.drop_current(connection, reason);
    }

    fn drop_current(&self, connection: &Arc<Connection>, reason: &str) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, connection)) {
            *current = None;
        }
        drop(current);
        connection.close(reason);
    }

    /// Handles a `not_leader` answer from `connection`: reconnect to `hint`, or, without a
    /// hint, anywhere but the node that answered.
    pub(crate) async fn follow(&self, connection: &Arc<Connection>, hint: Option<String>) {
        {
            let mut state = self.state.lock().await;
            match &hint {
                Some(address) if state.suspect() != Some(address.as_str()) => {
                    remember(&mut state, address);
                    state.preferred = Some(address.clone());
                }
                _ => state.preferred = None,
            }
            // The refusing node goes last either way: right after a leader dies, its
            // followers keep naming the dead leader until an election ends, and the hint
            // alone would send us back and forth between the dead node and this one.
            if hint.as_deref() != Some(connection.address()) {
                state.demoted = Some(connection.address().to_owned());
            }
        }
        self.drop_current(connection, "the node is not the leader");
    }

    /// The cluster's partition count, from the latest `Hello` (zero before the first).
    pub(crate) fn partition_count(&self) -> u32 {
        self.partition_count.load(Ordering::Relaxed)
    }
}

fn remember(state: &mut RouterState, address: &str) {
    let known = state
        .seeds
        .iter()
        .chain(&state.learned)
        .any(|a| a == address);
    if !known && state.learned.len() < LEARNED_ADDRESSES_MAX {
        state.learned.push(address.to_owned());
    }
}

/// The addresses to try, best first, without repeats.
fn candidates(state: &RouterState) -> Vec<String> {
    let leader_zero = state.cluster.as_ref().and_then(|info| {
        info.leaders
            .iter()
            .find(|l| l.partition == PartitionId(0))
            .and_then(|l| l.address.clone())
    });
    let ordered = state
        .preferred
        .iter()
        .chain(leader_zero.iter())
        .chain(state.seeds.iter())
        .chain(state.learned.iter());
    let suspect = state.suspect();
    let mut out: Vec<String> = Vec::new();
    for address in ordered {
        if !out.contains(address)
            && state.demoted.as_ref() != Some(address)
            && suspect != Some(address.as_str())
        {
            out.push(address.clone());
        }
    }
    if let Some(demoted) = state
        .demoted
        .as_ref()
        .filter(|d| suspect != Some(d.as_str()))
    {
        out.push(demoted.clone());
    }
    if let Some(suspect) = suspect {
        out.push(suspect.to_owned());
    }
    out.truncate(CONNECT_CANDIDATES_MAX);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PartitionLeader;

    fn state() -> RouterState {
        RouterState {
            seeds: vec!["a:1".into(), "b:1".into(), "c:1".into()],
            learned: vec!["d:1".into()],
            preferred: None,
            demoted: None,
            suspect: None,
            cluster: None,
        }
    }

    #[test]
    fn candidates_prefer_the_hint_then_the_reported_leader() {
        let mut s = state();
        assert_eq!(candidates(&s), ["a:1", "b:1", "c:1", "d:1"]);
        s.cluster = Some(ClusterInfo {
            node_id: 1,
            partition_count: 2,
            leaders: vec![PartitionLeader {
                partition: PartitionId(0),
                address: Some("c:1".into()),
            }],
            server_version: String::new(),
            replicas: Vec::new(),
            uptime_ms: 0,
            stages: Vec::new(),
            nodes: Vec::new(),
        });
        assert_eq!(candidates(&s), ["c:1", "a:1", "b:1", "d:1"]);
        s.preferred = Some("d:1".into());
        assert_eq!(candidates(&s), ["d:1", "c:1", "a:1", "b:1"]);
        s.preferred = None;
        s.demoted = Some("c:1".into());
        assert_eq!(candidates(&s), ["a:1", "b:1", "d:1", "c:1"]);
        // A suspect goes after the demoted address, even when it is the reported leader,
        // and only while it is suspect.
        s.demoted = Some("b:1".into());
        s.suspect = Some(("c:1".into(), Instant::now()));
        assert_eq!(candidates(&s), ["a:1", "d:1", "b:1", "c:1"]);
        s.suspect = Some(("c:1".into(), Instant::now() - SUSPECT_FOR));
        assert_eq!(candidates(&s), ["c:1", "a:1", "d:1", "b:1"]);
    }
}
