//! A running node: its data directory's identity, the partition workers, the peer transport
//! and the client listener.
//!
//! [`start`] checks the directory's identity against the configuration (a disagreement stops
//! the node, naming both values: `identity.rs`), binds the client listener and, in a cluster,
//! the peer listener, and brings the partitions up:
//!
//! - a directory with an identity opens every replica; one whose log is damaged is repaired
//!   from its peers (it recovers: `replica.rs`), and one whose state file is gone first learns
//!   from its peers which term it may start at (`recovery.rs`);
//! - a new directory of a single node forms its one-node cluster at once (the README's one
//!   run command needs nothing else);
//! - a new directory in a cluster asks every peer: if any took part already, it lost its disk
//!   (or joins late) and rejoins recovering, granting no votes until it holds what the cluster
//!   committed; if none did, it forms the cluster with them.
//!
//! Until its partitions are up the node answers clients `unavailable`; what needs peers runs
//! in the background, so the listening line comes at once. A lone node never guesses: damage
//! or lost state refuses to start with the location, since no copy exists elsewhere.
//!
//! A partition that cannot read or write its disk stops the whole node ([`NodeHandle::failed`]
//! fires and `tally start` exits with the error): a half-alive node that answers `internal`
//! and points clients at itself is worse than an absent one, which the cluster routes around.
//! [`NodeHandle::stop`] shuts down gracefully: the listeners stop accepting, workers finish
//! their current turn (everything acknowledged is already durable) and exit.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tally_engine::segment::SEGMENT_RECORDS_OFFSET;
use tally_engine::types::PartitionId;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::{self, NodeClock};
use crate::config::NodeConfig;
use crate::identity::Identity;
use crate::links::{self, LinkState, Links};
use crate::raft_storage::{self, Damage, MissingState};
use crate::recovery::{self, Decision, LocalState, Prober};
use crate::replica::{Replica, ReplicaConfig};
use crate::session::Node;
use crate::transport::{self, Directory, Dispatch, PeerConfig, PeerMessage, Peers, ReplicaState};
use crate::worker::{self, Inboxes, PartitionHandle, Shared};

/// A started node.
pub struct NodeHandle {
    /// Where it listens for clients.
    pub address: SocketAddr,
    /// Where it listens for peers (in a cluster).
    pub peer_address: Option<SocketAddr>,
    /// Where it serves `/metrics`, `/healthz` and `/readyz` (with `metrics_address`).
    pub metrics_address: Option<SocketAddr>,
    /// Held for the node's lifetime: an exclusive lock on `<data>/LOCK`, so that a second
    /// process can never open the same data directory.
    _lock: std::fs::File,
    stop: Arc<AtomicBool>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    failed: watch::Receiver<Option<String>>,
}

impl NodeHandle {
    /// Stops the node and waits for its workers.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for worker in workers {
            let _ = worker.join();
        }
    }

    /// Resolves with the reason once the node cannot go on (a partition lost its disk, or
    /// bringing a partition up failed); `tally start` then exits with it.
    pub async fn failed(&mut self) -> String {
        loop {
            if let Some(reason) = self.failed.borrow().clone() {
                return reason;
            }
            if self.failed.changed().await.is_err() {
                return "the node's failure channel closed".into();
            }
        }
    }
}

/// Delivers peer messages: Raft messages to their partition's peer inbox, probes answered
/// from the local state, probe replies to the prober.
struct PeerDispatch {
    partitions: Arc<Vec<PartitionHandle>>,
    local: Arc<LocalState>,
    prober: Arc<Prober>,
    peers: Peers,
    clock: Arc<NodeClock>,
    links: Arc<Links>,
}

impl Dispatch for PeerDispatch {
    fn deliver(&self, from: u64, message: PeerMessage, size: usize) {
        match message {
            PeerMessage::Raft { partition, message } => {
                if let Some(handle) = self.partitions.get(partition as usize) {
                    handle.peer_inbox().deliver(message, size);
                }
            }
            PeerMessage::ProbeRequest { nonce } => {
                self.peers
                    .send_to(from, PeerMessage::ProbeReply(self.local.reply(nonce)));
            }
            PeerMessage::ProbeReply(reply) => self.prober.receive(from, reply),
            PeerMessage::ClockPing { sent } => self.peers.send_to(
                from,
                PeerMessage::ClockPong {
                    sent,
                    theirs: clock::wall_nanos(),
                    healthy: self.links.healthy(),
                },
            ),
            PeerMessage::ClockPong {
                sent,
                theirs,
                healthy,
            } => {
                self.clock.sample(from, sent, theirs);
                self.links.answered(from, sent, healthy);
            }
        }
    }
}

/// Starts a node on the current runtime. Fails if the configuration is invalid or
/// disagrees with the data directory's identity, a lone node's data is damaged, or an
/// address cannot be bound. See the module documentation.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, String> {
    config.validate().map_err(|e| e.to_string())?;
    if !config.unsafe_bugs.is_empty() {
        tracing::error!(
            bugs = ?config.unsafe_bugs,
            "UNSAFE: bugs planted on purpose (--unsafe-bug): this node loses or corrupts data"
        );
    }
    let secret = config.read_secret().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    let lock = lock_data_dir(&config.data_dir)?;
    let stored = Identity::read(&config.data_dir).map_err(|e| e.to_string())?;
    match &stored {
        Some(identity) => identity.check(&config).map_err(|e| e.to_string())?,
        None => refuse_unidentified_data(&config)?,
    }
    let listener = TcpListener::bind(config.address)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.address))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics_listener = match config.metrics_address {
        Some(address) => Some(crate::metrics::bind(address).await?),
        None => None,
    };

    let local = Arc::new(LocalState::new(config.partitions));
    if stored.is_some() {
        local.set_formed();
    }
    for partition in 0..config.partitions {
        let dir = config.partition_dir(partition);
        match raft_storage::read_term(&dir, PartitionId(partition)) {
            Some((term, recovering)) => {
                let state = if recovering {
                    ReplicaState::Recovering
                } else {
                    ReplicaState::Normal
                };
                local.publish(partition, term, 0, state);
            }
            None => local.publish(partition, 0, 0, ReplicaState::Missing),
        }
    }
    let mut handles = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..config.partitions {
        let (handle, inbox) = worker::inbox(config.queue_depth_max);
        handles.push(handle);
        inboxes.push(inbox);
    }
    let partitions = Arc::new(handles);
    let directory = Arc::new(Directory::default());
    let prober = Arc::new(Prober::default());
    let node_clock = Arc::new(NodeClock::new(config.peers.len()));
    let links = Arc::new(Links::default());
    let mut tasks = Vec::new();
    let (peers, peer_address) = match &secret {
        Some(secret) if config.is_cluster() => {
            let peer_config = Arc::new(PeerConfig {
                node_id: config.node_id,
                peer_address: config.peer_address(),
                client_address: address.to_string(),
                cluster_id: Identity::of_config(&config).cluster_id,
                partitions: config.partitions,
                voters: config.peers.clone(),
                secret: secret.clone(),
            });
            let peer_listener = TcpListener::bind(config.peer_address())
                .await
                .map_err(|e| {
                    format!("cannot listen for peers on {}: {e}", config.peer_address())
                })?;
            let peer_address = peer_listener.local_addr().map_err(|e| e.to_string())?;
            let peers = transport::start_writers(
                &tokio::runtime::Handle::current(),
                peer_config.clone(),
                directory.clone(),
                links.clone(),
            );
            let dispatch = Arc::new(PeerDispatch {
                partitions: partitions.clone(),
                local: local.clone(),
                prober: prober.clone(),
                peers: peers.clone(),
                clock: node_clock.clone(),
                links: links.clone(),
            });
            tasks.push(tokio::spawn(transport::listen(
                peer_listener,
                peer_config,
                directory.clone(),
                dispatch,
            )));
            tasks.push(tokio::spawn(probe_peers(
                peers.clone(),
                node_clock.clone(),
                links.clone(),
            )));
            (peers, Some(peer_address))
        }
        _ => (Peers::none(), None),
    };

    let shared = Shared {
        leaders: Arc::new((0..config.partitions).map(|_| AtomicU64::new(0)).collect()),
        stop: Arc::new(AtomicBool::new(false)),
        local: local.clone(),
        clock: node_clock,
        links,
        stages: Arc::default(),
        metrics: Arc::new(crate::metrics::Metrics::new(config.partitions)),
    };
    let ready = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(tokio::sync::Notify::new());
    let changes: Arc<Vec<_>> = Arc::new(
        (0..config.partitions)
            .map(|p| {
                Arc::new(crate::changes::ChangeFeed::new(
                    &config.partition_dir(p).join("changes"),
                    moved.clone(),
                ))
            })
            .collect(),
    );
    let node = Arc::new(Node {
        changes: changes.clone(),
        partitions: partitions.clone(),
        leaders: shared.leaders.clone(),
        config: config.clone(),
        address,
        directory: directory.clone(),
        ready: ready.clone(),
        connections: crate::connection::Connections::default(),
        local: local.clone(),
        started: std::time::Instant::now(),
        stages: shared.stages.clone(),
        metrics: shared.metrics.clone(),
    });
    let (fail, failed) = watch::channel(None);
    let fail = Arc::new(fail);
    let workers = Arc::new(Mutex::new(Vec::new()));
    let bring_up = BringUp {
        config: config.clone(),
        stored,
        peers: peers.clone(),
        prober,
        shared: shared.clone(),
        inboxes,
        workers: workers.clone(),
        fail: fail.clone(),
        ready,
        changes,
    };
    if config.is_cluster() && bring_up.needs_peers() {
        // Forming, rejoining or recovering state needs the peers' answers: in the background,
        // while clients are told the node is unavailable.
        tasks.push(tokio::spawn(async move {
            if let Err(reason) = bring_up.run().await {
                tracing::error!(%reason, "cannot bring the node up");
                let _ = fail.send(Some(reason));
            }
        }));
    } else {
        bring_up.run().await?;
    }
    let metrics_address = match metrics_listener {
        Some(listener) => {
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            tasks.push(tokio::spawn(crate::metrics::serve(listener, node.clone())));
            Some(bound)
        }
        None => None,
    };
    tasks.push(tokio::spawn(crate::connection::accept(listener, node)));
    Ok(NodeHandle {
        address,
        peer_address,
        metrics_address,
        _lock: lock,
        stop: shared.stop,
        workers,
        tasks,
        failed,
    })
}

/// Everything needed to open the partitions and start their workers.
struct BringUp {
    config: NodeConfig,
    stored: Option<Identity>,
    peers: Peers,
    prober: Arc<Prober>,
    shared: Shared,
    inboxes: Vec<Inboxes>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    fail: Arc<watch::Sender<Option<String>>>,
    ready: Arc<AtomicBool>,
    changes: Arc<Vec<Arc<crate::changes::ChangeFeed>>>,
}

impl BringUp {
    /// Partitions whose state file is missing or unreadable.
    fn lost_state(&self) -> Vec<u32> {
        (0..self.config.partitions)
            .filter(|&p| {
                raft_storage::read_term(&self.config.partition_dir(p), PartitionId(p)).is_none()
            })
            .collect()
    }

    fn needs_peers(&self) -> bool {
        self.stored.is_none() || !self.lost_state().is_empty()
    }

    async fn run(self) -> Result<(), String> {
        let config = &self.config;
        let voters = config.voters();
        // Which replicas are new (a cluster being formed) and which lost state they had.
        let fresh = match &self.stored {
            Some(_) => false,
            None if !config.is_cluster() => true,
            None => {
                tracing::info!(
                    node = config.node_id,
                    "new data directory: asking the peers whether the cluster exists"
                );
                let decision = self
                    .prober
                    .until(
                        &self.peers,
                        |replies| recovery::decide(&voters, config.node_id, replies),
                        |replies| {
                            format!(
                                "waiting for every peer to answer before forming the cluster \
                                 ({} of {} answered; a node that lost its disk must not form a \
                                 new cluster while the one holding the data is away)",
                                replies.len(),
                                voters.len() - 1
                            )
                        },
                    )
                    .await;
                match decision {
                    Decision::Form => {
                        tracing::info!("no peer took part in a cluster yet: forming it");
                        true
                    }
                    Decision::Join => {
                        tracing::warn!(
                            "the cluster exists and this directory is new: this node lost its \
                             data (or joins late); it rejoins recovering and votes only once it \
                             holds what the cluster committed"
                        );
                        false
                    }
                }
            }
        };
        if !fresh {
            let lost = self.lost_state();
            if !lost.is_empty() && !config.is_cluster() {
                return Err(format!(
                    "partition(s) {lost:?} of {} lost their state file: this node has no \
                     peers to recover from; restore the data directory from a backup",
                    config.data_dir.display()
                ));
            }
            for &partition in &lost {
                let term = self
                    .prober
                    .until(
                        &self.peers,
                        |replies| {
                            recovery::term_floor(
                                &voters,
                                config.node_id,
                                partition as usize,
                                replies,
                            )
                        },
                        |replies| {
                            format!(
                                "partition {partition} lost its state: waiting for {} other \
                                 node(s) holding theirs to tell its term ({} answered)",
                                recovery::floor_quorum(voters.len()),
                                replies.len()
                            )
                        },
                    )
                    .await;
                tracing::warn!(
                    partition,
                    term,
                    "replica lost its state: starting recovering at the peers' term"
                );
                raft_storage::create_recovering(
                    &config.partition_dir(partition),
                    PartitionId(partition),
                    &voters,
                    config.node_id,
                    term,
                    config.segment_size_max,
                )
                .map_err(|e| format!("partition {partition}: {e}"))?;
            }
        }
        let mut replicas = Vec::new();
        for partition in 0..config.partitions {
            let mut replica = tokio::task::block_in_place(|| {
                open_replica(config, partition, fresh, &self.changes[partition as usize])
            })?;
            replica.set_stages(self.shared.stages.clone());
            replicas.push(replica);
        }
        // The identity is written once every partition has its state: a crash before it
        // leaves fresh replicas only, which the next start forms again.
        if self.stored.is_none() {
            Identity::of_config(config)
                .write(&config.data_dir)
                .map_err(|e| e.to_string())?;
        }
        self.shared.local.set_formed();
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        for ((partition, mut replica), inboxes) in
            (0..config.partitions).zip(replicas).zip(self.inboxes)
        {
            if voters.len() == 1 {
                // A single node need not wait an election timeout to lead.
                replica.campaign().map_err(|e| e.to_string())?;
            }
            let peers = Box::new(self.peers.clone());
            let tick = Duration::from_millis(config.tick_ms);
            let shared = self.shared.clone();
            let fail = self.fail.clone();
            let shared_metrics = self.shared.metrics.clone();
            let worker = std::thread::Builder::new()
                .name(format!("partition-{partition}"))
                .spawn(move || {
                    if let Err(error) =
                        worker::run(partition, replica, inboxes, peers, tick, shared)
                    {
                        // The replica cannot go on without risking its data: stop the node.
                        shared_metrics.storage_error();
                        let reason = format!("partition {partition} stopped: {error}");
                        tracing::error!("{reason}");
                        let _ = fail.send(Some(reason));
                    }
                })
                .map_err(|e| format!("cannot start a worker thread: {e}"))?;
            workers.push(worker);
        }
        self.ready.store(true, Ordering::Relaxed);
        tracing::info!(node = config.node_id, "partitions up");
        Ok(())
    }
}

fn open_replica(
    config: &NodeConfig,
    partition: u32,
    fresh: bool,
    changes: &Arc<crate::changes::ChangeFeed>,
) -> Result<Replica, String> {
    let mut replica_config =
        ReplicaConfig::new(config.node_id, PartitionId(partition), config.voters());
    replica_config.change_feed = Some(changes.clone());
    replica_config.election_tick = config.election_ticks;
    replica_config.election_tick_spread = config.election_ticks;
    replica_config.heartbeat_tick = config.heartbeat_ticks;
    replica_config.tick_interval = (1000 / config.tick_ms).max(1);
    replica_config.checkpoint_interval_entries = config.checkpoint_interval_entries;
    replica_config.transfers_memory_max = config.transfers_memory_max;
    replica_config.background_checkpoints = true;
    replica_config.segment_size_max = config.segment_size_max;
    for bug in &config.unsafe_bugs {
        use crate::config::UnsafeBug;
        match bug {
            UnsafeBug::SkipFsync => replica_config.bug_skip_fsync = true,
            UnsafeBug::ApplyBeforeCommit => replica_config.bug_apply_before_commit = true,
            UnsafeBug::SkipVote => replica_config.bug_skip_vote = true,
            UnsafeBug::LeaseReads => replica_config.bug_lease_reads = true,
        }
    }
    // Only a replica with peers can be rebuilt from them.
    replica_config.damage = if config.is_cluster() {
        Damage::Repair
    } else {
        Damage::Refuse
    };
    replica_config.missing_state = if fresh {
        MissingState::Create
    } else {
        MissingState::Refuse
    };
    let dir = config.partition_dir(partition);
    Replica::open(&dir, replica_config).map_err(|e| {
        let what = if config.is_cluster() {
            "cannot recover"
        } else {
            "refusing to start: this node has no peers to repair from, so the data exists \
             nowhere else; restore the data directory from a backup (see the README, \
             \"Operations\")"
        };
        format!("partition {partition}: {what} {}: {e}", dir.display())
    })
}

/// Pings every peer twenty times a second, for its clock (`clock.rs`) and as a probe of the
/// link (`links.rs`), and says when this node's clock is far from the cluster's.
async fn probe_peers(peers: Peers, clock: Arc<NodeClock>, links: Arc<Links>) {
    const SKEW_WARNING: i128 = 1_000_000_000;
    let mut warned = false;
    let mut interval = tokio::time::interval(links::PROBE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut states = std::collections::BTreeMap::new();
    loop {
        for id in peers.ids() {
            let sent = clock::monotonic_nanos();
            links.sent(id, sent);
            peers.send_to(id, PeerMessage::ClockPing { sent });
            let state = links.state(id);
            let before = states.insert(id, state).unwrap_or(LinkState::Unknown);
            if before != state && !(before == LinkState::Unknown && state == LinkState::Healthy) {
                tracing::info!(peer = id, ?state, "link to peer changed");
            }
        }
        interval.tick().await;
        let skew = clock.skew();
        if skew.abs() > SKEW_WARNING && !warned {
            tracing::warn!(
                skew_ms = (skew / 1_000_000) as i64,
                "this node's clock is far from its peers'; entries are stamped with theirs"
            );
        }
        warned = skew.abs() > SKEW_WARNING;
    }
}

/// A directory without an identity must not hold Raft state: it was written by another
/// version, or its identity file was removed, and guessing could re-route every account.
fn refuse_unidentified_data(config: &NodeConfig) -> Result<(), String> {
    let Ok(items) = std::fs::read_dir(&config.data_dir) else {
        return Ok(());
    };
    for item in items.flatten() {
        let name = item.file_name().to_string_lossy().to_string();
        let Some(number) = name.strip_prefix("partition-") else {
            continue;
        };
        let Ok(partition) = number.parse::<u32>() else {
            continue;
        };
        if partition_established(&item.path(), partition) {
            return Err(format!(
                "{} holds a partition with Raft state ({name}) but no identity file: it was \
                 written by an older version, or its identity was removed; refusing to guess \
                 its cluster (move it away to start afresh)",
                config.data_dir.display()
            ));
        }
    }
    Ok(())
}

/// Whether a partition directory took part in a cluster: a term, a vote, or log records.
fn partition_established(dir: &Path, partition: u32) -> bool {
    if raft_storage::read_term(dir, PartitionId(partition)).is_some_and(|(term, _)| term > 0) {
        return true;
    }
    let Ok(segments) = std::fs::read_dir(dir.join("log")) else {
        return false;
    };
    segments.flatten().any(|segment| {
        segment
            .metadata()
            .is_ok_and(|m| m.len() > SEGMENT_RECORDS_OFFSET as u64)
    })
}

/// Takes the data directory's lock; fails at once if another process holds it.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, String> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "data directory {} is in use by another process",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}
