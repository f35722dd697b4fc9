//! Peer transport: authenticated connections between the nodes of a cluster, carrying every
//! partition's Raft messages and the recovery probes, batched.
//!
//! Peers have a listener of their own (each node's entry in `peers`), apart from clients:
//! nothing a client port receives can reach Raft. Each node keeps one outgoing connection per
//! peer, opened from its own peer address (bound before connecting, so per-node firewall rules
//! on one machine can cut a single link). A writer task drains the peer's bounded queue into
//! one buffer — as many messages as are waiting, up to `BATCH_SIZE_MAX` bytes — and writes it
//! with one syscall. When the peer is unreachable its queued messages are dropped and the
//! connection is retried with backoff; Raft retransmits whatever matters. A connection whose
//! link went silent (no probe answered for a window, `links.rs`) or whose write made no
//! progress for 2 s (`WRITE_STALL_MAX`) is replaced by a new one: a TCP stream that lost
//! segments over and over backs off for seconds, long after the network healed. Connections carry
//! messages one way; answers come back on the other node's own connection. Before anything
//! else both ends prove they belong to the cluster (`handshake.rs`).
//!
//! # Frames
//!
//! | offset | width | field |
//! |---|---|---|
//! | 0 | 4 | length `n` of what follows the checksum (u32 LE), 1..=[`PEER_FRAME_SIZE_MAX`] |
//! | 4 | 4 | CRC32 of the next `n` bytes |
//! | 8 | 1 | kind: 0 Raft, 1 probe request, 2 probe reply, 3 clock ping, 4 clock pong |
//! | 9 | n − 1 | Raft: partition (u32 LE) and the raft-rs `Message` (protobuf); probe request: nonce (u64); probe reply: see [`ProbeReply`]; clock ping: the sender's monotonic time (u64 ns); clock pong: the ping's time, the answerer's wall time (u64 ns each), then how many of the answerer's links are healthy (u32, `links.rs`) |
//!
//! A frame's buffer grows as its bytes arrive (a header alone reserves nothing), and a
//! connection idle for [`PEER_IDLE_TIMEOUT`] is closed. Everything is checked before use: the
//! length, the checksum, the kind, the partition against the cluster's count, and a Raft
//! message's `from` and `to` against the handshake and this node. A peer that breaks any of
//! these is disconnected.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};

pub use crate::handshake::{accept_handshake, dial_handshake, HandshakeError};
use crate::links::{LinkState, Links};
use crate::worker::PeerSender;

/// The first bytes of a peer connection.
pub const PEER_MAGIC: [u8; 4] = *b"TLYP";
/// The peer protocol version.
pub const PEER_VERSION: u16 = 2;
/// Largest peer frame accepted.
pub const PEER_FRAME_SIZE_MAX: u32 = 16 << 20;
/// Messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_DEPTH: usize = 8192;
/// How long each handshake step may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// An incoming peer connection that delivers nothing for this long is closed (leaders send
/// heartbeats every few hundred milliseconds).
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Incoming peer connections served at once (apart from clients' limit).
pub const PEER_CONNECTIONS_MAX: usize = 64;
const BATCH_SIZE_MAX: usize = 4 << 20;
/// How often a writer asks whether its link went silent (`links.rs`).
const SILENCE_CHECK: Duration = Duration::from_millis(500);
/// A write to a peer that makes no progress for this long ends the connection (a new one
/// is opened): the peer is gone, paused, or the stream is stuck retransmitting.
const WRITE_STALL_MAX: Duration = Duration::from_secs(2);

const KIND_RAFT: u8 = 0;
const KIND_PROBE_REQUEST: u8 = 1;
const KIND_PROBE_REPLY: u8 = 2;
const KIND_CLOCK_PING: u8 = 3;
const KIND_CLOCK_PONG: u8 = 4;

/// How one replica of a partition stands, as a node tells its peers in a probe reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaState {
    /// The node holds no state for the partition (yet).
    Missing,
    /// The replica holds its own durable state.
    Normal,
    /// The replica lost state and is recovering it (its term proves nothing yet).
    Recovering,
}

/// One partition in a probe reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionProbe {
    /// The replica's current term.
    pub term: u64,
    /// The last index of its log.
    pub last_index: u64,
    /// How it stands.
    pub state: ReplicaState,
}

/// A node's answer to a probe: whether its directory belongs to the cluster, and each
/// partition's term. Encoded as nonce (u64), formed (u8), partition count (u32), then per
/// partition term (u64), last index (u64), state (u8: 0 missing, 1 normal, 2 recovering).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReply {
    /// The probe's nonce.
    pub nonce: u64,
    /// Whether the node's directory has a cluster identity.
    pub formed: bool,
    /// Every partition, in order.
    pub partitions: Vec<PartitionProbe>,
}

impl ProbeReply {
    /// Whether the node took part in the cluster already: a term, or entries.
    pub fn established(&self) -> bool {
        self.partitions
            .iter()
            .any(|p| p.state != ReplicaState::Missing && (p.term > 0 || p.last_index > 0))
    }
}

/// What travels between peers.
#[derive(Clone, Debug)]
pub enum PeerMessage {
    /// A Raft message of one partition.
    Raft {
        /// The partition.
        partition: u32,
        /// The message.
        message: Message,
    },
    /// "Tell me how you stand" (recovery and formation, `recovery.rs`).
    ProbeRequest {
        /// Echoed in the reply.
        nonce: u64,
    },
    /// The answer.
    ProbeReply(ProbeReply),
    /// "What time is it?" (`clock.rs`), with the sender's monotonic time in nanoseconds.
    ClockPing {
        /// The sender's monotonic time.
        sent: u64,
    },
    /// The answer: the ping's time, the answerer's wall time, and how many of the answerer's
    /// links are healthy (`links.rs`: the pings double as link probes).
    ClockPong {
        /// The ping's `sent`.
        sent: u64,
        /// The answerer's wall time when it answered.
        theirs: u64,
        /// How many of the answerer's links to its peers are healthy.
        healthy: u32,
    },
}

/// Where incoming peer messages go (the node).
pub trait Dispatch: Send + Sync + 'static {
    /// A message from authenticated peer `from`; `size` is its encoded size in bytes.
    fn deliver(&self, from: u64, message: PeerMessage, size: usize);
}

/// What the transport needs to know about this node and its cluster.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// This node.
    pub node_id: u64,
    /// Where it listens for peers and binds its outgoing connections.
    pub peer_address: SocketAddr,
    /// The address clients reach it on, announced to peers (for `not_leader` hints).
    pub client_address: String,
    /// The cluster id (`identity.rs`).
    pub cluster_id: u128,
    /// Partitions of the cluster.
    pub partitions: u32,
    /// Every voter's peer address, this node included.
    pub voters: BTreeMap<u64, SocketAddr>,
    /// The cluster secret.
    pub secret: Vec<u8>,
}

/// What peers told us about themselves: their client addresses.
#[derive(Default)]
pub struct Directory {
    client_addresses: RwLock<BTreeMap<u64, String>>,
}

impl Directory {
    /// The client address node `id` announced, if it did.
    pub fn client_address(&self, id: u64) -> Option<String> {
        self.client_addresses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Records node `id`'s client address.
    pub fn learn(&self, id: u64, address: String) {
        self.client_addresses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, address);
    }
}

/// The sending half: one bounded queue per peer.
#[derive(Clone)]
pub struct Peers {
    queues: Arc<BTreeMap<u64, mpsc::Sender<PeerMessage>>>,
}

impl Peers {
    /// Queues `message` for node `to`; drops it if the queue is full (Raft retransmits,
    /// probes repeat).
    pub fn send_to(&self, to: u64, message: PeerMessage) {
        if let Some(queue) = self.queues.get(&to) {
            let _ = queue.try_send(message);
        }
    }

    /// Every peer's id.
    pub fn ids(&self) -> Vec<u64> {
        self.queues.keys().copied().collect()
    }

    /// A sender that reaches nobody (a single node).
    pub fn none() -> Peers {
        Peers {
            queues: Arc::new(BTreeMap::new()),
        }
    }
}

impl PeerSender for Peers {
    fn send(&self, partition: u32, message: Message) {
        let to = message.to;
        self.send_to(to, PeerMessage::Raft { partition, message });
    }
}

/// Starts a writer task per peer (every voter but this node) and returns the sending half.
pub fn start_writers(
    runtime: &tokio::runtime::Handle,
    config: Arc<PeerConfig>,
    directory: Arc<Directory>,
    links: Arc<Links>,
) -> Peers {
    let mut queues = BTreeMap::new();
    for (&id, &address) in &config.voters {
        if id == config.node_id {
            continue;
        }
        let (sender, receiver) = mpsc::channel(PEER_QUEUE_DEPTH);
        queues.insert(id, sender);
        runtime.spawn(writer(
            config.clone(),
            directory.clone(),
            links.clone(),
            id,
            address,
            receiver,
        ));
    }
    Peers {
        queues: Arc::new(queues),
    }
}

async fn connect(own: SocketAddr, peer: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(own.ip(), 0))?;
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, socket.connect(peer))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    // Heartbeats and acks are a thin stream: without this, each retransmission of a lost
    // segment waits twice as long as the one before (0.2, 0.4, 0.8, 1.6 s...), and a lossy
    // link goes silent for seconds, past the election timeout, and stays so after it heals.
    // Linear timeouts retry every RTO for the first six attempts.
    socket2::SockRef::from(&stream).set_tcp_thin_linear_timeouts(true)?;
    Ok(stream)
}

/// Logs a recurring connection problem once when it starts or changes, then every minute.
struct Complaint {
    last: Option<(String, Instant)>,
}

impl Complaint {
    fn report(&mut self, peer: u64, message: String, serious: bool) {
        let now = Instant::now();
        let repeat = self.last.as_ref().is_some_and(|(m, at)| {
            *m == message && now.duration_since(*at) < Duration::from_secs(60)
        });
        if repeat {
            tracing::debug!(peer, %message, "peer connection failed");
            return;
        }
        if serious {
            tracing::error!(peer, %message, "peer connection refused");
        } else {
            tracing::info!(peer, %message, "peer unreachable");
        }
        self.last = Some((message, now));
    }
}

async fn writer(
    config: Arc<PeerConfig>,
    directory: Arc<Directory>,
    links: Arc<Links>,
    to: u64,
    address: SocketAddr,
    mut queue: mpsc::Receiver<PeerMessage>,
) {
    let mut backoff = Duration::from_millis(20);
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut complaint = Complaint { last: None };
    loop {
        let attempt = async {
            let mut stream = connect(config.peer_address, address)
                .await
                .map_err(HandshakeError::Io)?;
            let client_address = dial_handshake(&mut stream, &config, to).await?;
            Ok::<_, HandshakeError>((stream, client_address))
        };
        let mut stream = match attempt.await {
            Ok((stream, client_address)) => {
                directory.learn(to, client_address);
                if complaint.last.take().is_some() {
                    tracing::info!(peer = to, "peer connected");
                }
                stream
            }
            Err(error) => {
                let serious = matches!(
                    error,
                    HandshakeError::BadProof
                        | HandshakeError::OtherCluster(_)
                        | HandshakeError::Refused(_)
                );
                complaint.report(to, format!("{address}: {error}"), serious);
                // Drop what waits: it is stale by the time the peer is back.
                while queue.try_recv().is_ok() {}
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                if queue.is_closed() {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        let connected = Instant::now();
        let mut check = tokio::time::interval(SILENCE_CHECK);
        loop {
            let first = tokio::select! {
                first = queue.recv() => match first {
                    Some(first) => first,
                    None => return,
                },
                _ = check.tick() => {
                    // A TCP stream that lost segments over and over waits longer and longer
                    // between retransmissions, for seconds after the network healed: start
                    // a new one when the link has been silent for a whole window.
                    let window = Duration::from_nanos(crate::links::WINDOW);
                    if connected.elapsed() >= window && links.state(to) == LinkState::Silent {
                        tracing::info!(peer = to, "peer link silent; reconnecting");
                        abort(&stream);
                        break;
                    }
                    continue;
                }
            };
            buffer.clear();
            encode(&mut buffer, &first);
            while buffer.len() < BATCH_SIZE_MAX {
                match queue.try_recv() {
                    Ok(next) => encode(&mut buffer, &next),
                    Err(_) => break,
                }
            }
            match tokio::time::timeout(WRITE_STALL_MAX, stream.write_all(&buffer)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::debug!(peer = to, %error, "peer write failed; reconnecting");
                    break;
                }
                Err(_) => {
                    tracing::info!(peer = to, "peer write stalled; reconnecting");
                    abort(&stream);
                    break;
                }
            }
        }
    }
}

/// Makes dropping `stream` discard what it still holds (a reset, not a graceful close): a
/// backlog of heartbeats delivered seconds late would keep followers following a leader
/// that is gone.
fn abort(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Appends one frame carrying `message` to `buffer`.
pub fn encode(buffer: &mut Vec<u8>, message: &PeerMessage) {
    let start = buffer.len();
    buffer.extend_from_slice(&[0; 8]);
    match message {
        PeerMessage::Raft { partition, message } => {
            let Ok(bytes) = message.write_to_bytes() else {
                buffer.truncate(start);
                return;
            };
            buffer.push(KIND_RAFT);
            buffer.extend_from_slice(&partition.to_le_bytes());
            buffer.extend_from_slice(&bytes);
        }
        PeerMessage::ProbeRequest { nonce } => {
            buffer.push(KIND_PROBE_REQUEST);
            buffer.extend_from_slice(&nonce.to_le_bytes());
        }
        PeerMessage::ClockPing { sent } => {
            buffer.push(KIND_CLOCK_PING);
            buffer.extend_from_slice(&sent.to_le_bytes());
        }
        PeerMessage::ClockPong {
            sent,
            theirs,
            healthy,
        } => {
            buffer.push(KIND_CLOCK_PONG);
            buffer.extend_from_slice(&sent.to_le_bytes());
            buffer.extend_from_slice(&theirs.to_le_bytes());
            buffer.extend_from_slice(&healthy.to_le_bytes());
        }
        PeerMessage::ProbeReply(reply) => {
            buffer.push(KIND_PROBE_REPLY);
            buffer.extend_from_slice(&reply.nonce.to_le_bytes());
            buffer.push(u8::from(reply.formed));
            buffer.extend_from_slice(&(reply.partitions.len() as u32).to_le_bytes());
            for p in &reply.partitions {
                buffer.extend_from_slice(&p.term.to_le_bytes());
                buffer.extend_from_slice(&p.last_index.to_le_bytes());
                buffer.push(match p.state {
                    ReplicaState::Missing => 0,
                    ReplicaState::Normal => 1,
                    ReplicaState::Recovering => 2,
                });
            }
        }
    }
    let length = (buffer.len() - start - 8) as u32;
    let crc = crc32fast::hash(&buffer[start + 8..]);
    buffer[start..start + 4].copy_from_slice(&length.to_le_bytes());
    buffer[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the body of one frame (kind byte first). Never panics.
pub fn decode(body: &[u8], partitions: u32) -> Result<PeerMessage, String> {
    let (&kind, rest) = body.split_first().ok_or("empty frame")?;
    let u64_at = |bytes: &[u8], at: usize| -> Result<u64, String> {
        bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| "frame truncated".to_string())
    };
    match kind {
        KIND_RAFT => {
            let partition = rest
                .get(..4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .ok_or("frame truncated")?;
            if partition >= partitions {
                return Err(format!("partition {partition} of {partitions}"));
            }
            let message =
                Message::parse_from_bytes(&rest[4..]).map_err(|e| format!("raft message: {e}"))?;
            Ok(PeerMessage::Raft { partition, message })
        }
        KIND_PROBE_REQUEST => {
            if rest.len() != 8 {
                return Err("probe request size".into());
            }
            Ok(PeerMessage::ProbeRequest {
                nonce: u64_at(rest, 0)?,
            })
        }
        KIND_CLOCK_PING if rest.len() == 8 => Ok(PeerMessage::ClockPing {
            sent: u64_at(rest, 0)?,
        }),
        KIND_CLOCK_PONG if rest.len() == 20 => Ok(PeerMessage::ClockPong {
            sent: u64_at(rest, 0)?,
            theirs: u64_at(rest, 8)?,
            healthy: u32::from_le_bytes(rest[16..20].try_into().map_err(|_| "pong size")?),
        }),
        KIND_PROBE_REPLY => {
            let nonce = u64_at(rest, 0)?;
            let formed = match rest.get(8) {
                Some(0) => false,
                Some(1) => true,
                _ => return Err("probe reply: formed flag".into()),
            };
            let count = rest
                .get(9..13)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .ok_or("frame truncated")?;
            if count != partitions && count != 0 {
                return Err(format!(
                    "probe reply of {count} partitions, not {partitions}"
                ));
            }
            if rest.len() != 13 + count as usize * 17 {
                return Err("probe reply size".into());
            }
            let mut list = Vec::with_capacity(count as usize);
            for i in 0..count as usize {
                let at = 13 + i * 17;
                let state = match rest[at + 16] {
                    0 => ReplicaState::Missing,
                    1 => ReplicaState::Normal,
                    2 => ReplicaState::Recovering,
                    other => return Err(format!("probe reply: state {other}")),
                };
                list.push(PartitionProbe {
                    term: u64_at(rest, at)?,
                    last_index: u64_at(rest, at + 8)?,
                    state,
                });
            }
            Ok(PeerMessage::ProbeReply(ProbeReply {
                nonce,
                formed,
                partitions: list,
            }))
        }
        other => Err(format!("unknown frame kind {other}")),
    }
}

/// Accepts peer connections on `listener` until the task is dropped.
pub async fn listen(
    listener: TcpListener,
    config: Arc<PeerConfig>,
    directory: Arc<Directory>,
    dispatch: Arc<dyn Dispatch>,
) {
    let connections = Arc::new(Semaphore::new(PEER_CONNECTIONS_MAX));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "too many peer connections; refusing");
            continue;
        };
        let config = config.clone();
        let directory = directory.clone();
        let dispatch = dispatch.clone();
        tokio::spawn(async move {
            serve_peer(stream, remote, &config, &directory, dispatch.as_ref()).await;
            drop(permit);
        });
    }
}

/// Serves one incoming peer connection: the handshake, then frames until the peer
/// disconnects or breaks the protocol.
async fn serve_peer(
    mut stream: TcpStream,
    remote: SocketAddr,
    config: &PeerConfig,
    directory: &Directory,
    dispatch: &dyn Dispatch,
) {
    let _ = stream.set_nodelay(true);
    let from = match accept_handshake(&mut stream, config).await {
        Ok((from, client_address)) => {
            directory.learn(from, client_address);
            from
        }
        Err(error) => {
            match error {
                HandshakeError::BadProof | HandshakeError::OtherCluster(_) => {
                    tracing::warn!(%remote, %error, "peer connection refused")
                }
                _ => tracing::debug!(%remote, %error, "peer handshake failed"),
            }
            return;
        }
    };
    let mut header = [0u8; 8];
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(PEER_IDLE_TIMEOUT, stream.read_exact(&mut header)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::debug!(from, "idle peer connection closed");
                return;
            }
        }
        let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if !(1..=PEER_FRAME_SIZE_MAX).contains(&length) {
            tracing::warn!(
                from,
                length,
                "peer frame length out of range; disconnecting"
            );
            return;
        }
        // Grow with what arrives: a header alone reserves nothing.
        body.clear();
        let mut limited = (&mut stream).take(u64::from(length));
        let read = limited.read_to_end(&mut body);
        match tokio::time::timeout(PEER_IDLE_TIMEOUT, read).await {
            Ok(Ok(n)) if n == length as usize => {}
            _ => return,
        }
        if body.capacity() > 4 * BATCH_SIZE_MAX {
            body.shrink_to(BATCH_SIZE_MAX);
        }
        if crc32fast::hash(&body) != crc {
            tracing::warn!(from, "peer frame checksum mismatch; disconnecting");
            return;
        }
        let message = match decode(&body, config.partitions) {
            Ok(message) => message,
            Err(reason) => {
                tracing::warn!(from, %reason, "undecodable peer frame; disconnecting");
                return;
            }
        };
        if let PeerMessage::Raft { message, .. } = &message {
            if message.to != config.node_id || message.from != from {
                tracing::warn!(
                    from,
                    to = message.to,
                    claimed = message.from,
                    "raft message misaddressed; disconnecting"
                );
                return;
            }
        }
        dispatch.deliver(from, message, length as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_damage() {
        let reply = ProbeReply {
            nonce: 7,
            formed: true,
            partitions: vec![
                PartitionProbe {
                    term: 3,
                    last_index: 40,
                    state: ReplicaState::Normal,
                },
                PartitionProbe {
                    term: 0,
                    last_index: 0,
                    state: ReplicaState::Recovering,
                },
            ],
        };
        for message in [
            PeerMessage::ProbeRequest { nonce: 99 },
            PeerMessage::ProbeReply(reply.clone()),
            PeerMessage::ClockPing { sent: 12 },
            PeerMessage::ClockPong {
                sent: 12,
                theirs: 13,
                healthy: 2,
            },
        ] {
            let mut buffer = Vec::new();
            encode(&mut buffer, &message);
            let decoded = decode(&buffer[8..], 2).expect("decodes");
            assert_eq!(format!("{decoded:?}"), format!("{message:?}"));
            for cut in 0..buffer.len() - 8 {
                let _ = decode(&buffer[8..8 + cut], 2);
            }
        }
        let raft = Message {
            to: 2,
            ..Message::default()
        };
        let mut buffer = Vec::new();
        encode(
            &mut buffer,
            &PeerMessage::Raft {
                partition: 5,
                message: raft,
            },
        );
        assert!(
            decode(&buffer[8..], 2).is_err(),
            "partition beyond the count"
        );
        assert!(decode(&[9], 2).is_err());
        assert!(decode(&[], 2).is_err());
    }
}
