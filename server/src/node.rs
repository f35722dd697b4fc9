//! A running node: partition workers, the peer transport and the client listener.
//!
//! [`start`] opens every partition replica (recovering its log and checkpoint), starts one
//! worker thread per partition, the peer writers, and one listener on the node's address that
//! serves clients and peers alike (told apart by their first four bytes). [`NodeHandle::stop`]
//! shuts down gracefully: the listener stops accepting, workers finish their current turn
//! (everything acknowledged is already durable: nothing is answered before its fsync) and
//! exit.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tally_client::wire::MAGIC;
use tally_engine::types::PartitionId;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::NodeConfig;
use crate::replica::{Replica, ReplicaConfig};
use crate::session::{self, Node};
use crate::transport::{self, PEER_MAGIC};
use crate::worker::{self, Shared};

/// How long a new connection may take to send its first four bytes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A started node.
pub struct NodeHandle {
    /// Where it listens.
    pub address: SocketAddr,
    /// Held for the node's lifetime: an exclusive lock on `<data>/LOCK`, so that a second
    /// process can never open the same data directory.
    _lock: std::fs::File,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    listener: tokio::task::JoinHandle<()>,
}

impl NodeHandle {
    /// Stops the node and waits for its workers.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.listener.abort();
        for worker in self.workers {
            let _ = worker.join();
        }
    }

    /// Whether any partition worker has stopped (after a storage failure).
    pub fn is_degraded(&self) -> bool {
        self.workers.iter().any(|w| w.is_finished())
    }
}

/// Starts a node on `runtime`. Fails if the configuration is invalid, a replica cannot be
/// recovered, or the address cannot be bound.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, String> {
    config.validate().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    let lock = lock_data_dir(&config.data_dir)?;
    let listener = TcpListener::bind(config.address)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.address))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let voters = config.voters();
    let shared = Shared {
        leaders: Arc::new((0..config.partitions).map(|_| AtomicU64::new(0)).collect()),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let peers = transport::start_writers(
        &tokio::runtime::Handle::current(),
        config.node_id,
        config.address,
        &config.peers,
    );
    let mut handles = Vec::new();
    let mut workers = Vec::new();
    for partition in 0..config.partitions {
        let mut replica_config =
            ReplicaConfig::new(config.node_id, PartitionId(partition), voters.clone());
        replica_config.election_tick = config.election_ticks;
        replica_config.election_tick_spread = config.election_ticks;
        replica_config.heartbeat_tick = config.heartbeat_ticks;
        replica_config.tick_interval = (1000 / config.tick_ms).max(1);
        replica_config.checkpoint_interval_entries = config.checkpoint_interval_entries;
        replica_config.transfers_memory_max = config.transfers_memory_max;
        replica_config.background_checkpoints = true;
        let dir = config.partition_dir(partition);
        let mut replica = Replica::open(&dir, replica_config).map_err(|e| {
            format!(
                "partition {partition}: cannot recover {}: {e}",
                dir.display()
            )
        })?;
        if voters.len() == 1 {
            // A single node need not wait an election timeout to lead.
            replica.campaign().map_err(|e| e.to_string())?;
        }
        let (handle, inbox) = worker::inbox(config.queue_depth_max);
        handles.push(handle);
        let peers = Box::new(peers.clone());
        let tick = Duration::from_millis(config.tick_ms);
        let shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name(format!("partition-{partition}"))
            .spawn(move || {
                if let Err(error) = worker::run(partition, replica, inbox, peers, tick, shared) {
                    // The replica cannot go on without risking its data: stop it loudly.
                    tracing::error!(partition, %error, "partition stopped");
                }
            })
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        workers.push(worker);
    }
    let node = Arc::new(Node {
        partitions: Arc::new(handles),
        leaders: shared.leaders.clone(),
        config: config.clone(),
    });
    let listener_task = tokio::spawn(accept(listener, node));
    Ok(NodeHandle {
        address,
        _lock: lock,
        stop: shared.stop,
        workers,
        listener: listener_task,
    })
}

/// Takes the data directory's lock; fails at once if another process holds it.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, String> {
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

async fn accept(listener: TcpListener, node: Arc<Node>) {
    let connections = Arc::new(Semaphore::new(node.config.connections_max));
    loop {
        let (mut stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "too many connections; refusing");
            continue;
        };
        let node = node.clone();
        tokio::spawn(async move {
            let mut prefix = [0u8; 4];
            let read =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut prefix)).await;
            if !matches!(read, Ok(Ok(_))) {
                return;
            }
            if prefix == PEER_MAGIC {
                let peers = node.config.peers.clone();
                transport::serve_peer(
                    stream,
                    node.config.node_id,
                    move |id| peers.contains_key(&id),
                    node.partitions.clone(),
                )
                .await;
            } else {
                // Anything else is treated as a client; a wrong magic is answered with an
                // error frame by the session's decoder, then the connection is closed.
                let _ = MAGIC;
                session::serve(stream, prefix.to_vec(), node).await;
            }
            drop(permit);
        });
    }
}
