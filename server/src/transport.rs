//! Peer transport: authenticated connections between the nodes of a cluster, carrying every
//! partition's Raft messages and the recovery probes, batched.
//!
//! Peers have a listener of their own (each node's entry in `peers`), apart from clients:
//! nothing a client port receives can reach Raft. Each node keeps one outgoing connection per
//! peer, opened from its own peer address (bound before connecting, so per-node firewall rules
//! on one machine can cut a single link). A writer task drains the peer's bounded queue into
//! one buffer — as many messages as are waiting, up to `BATCH_SIZE_MAX` bytes — and writes it
//! with one syscall. When the peer is unreachable its queued messages are dropped and the
//! connection is retried with backoff; Raft retransmits whatever matters. Connections carry
//! messages one way; answers come back on the other node's own connection.
//!
//! # Handshake
//!
//! Both ends prove they hold the cluster secret (HMAC-SHA256 challenge and response over
//! fresh nonces, so nothing recorded can be replayed), and the acceptor checks that the
//! dialer belongs to the same cluster (the id derived from partitions and voters,
//! `identity.rs`) and is a configured node other than itself. Until both proofs verify, the
//! acceptor reads only the fixed-size handshake and nothing reaches raft-rs. Every step has a
//! timeout.
//!
//! | step | from | bytes |
//! |---|---|---|
//! | hello | dialer | `TLYP`, version u16 (2), reserved u16, cluster id u128, from u64, to u64, nonce (16), client address (u8 length + text) |
//! | challenge | acceptor | `TLYP`, version u16, status u16, node id u64, nonce (16), proof (32) = HMAC(secret, `tally-accept` ‖ hello nonce ‖ own nonce ‖ from ‖ to ‖ cluster id) |
//! | proof | dialer | HMAC(secret, `tally-dial` ‖ challenge nonce ‖ hello nonce ‖ from ‖ to ‖ cluster id) (32) |
//! | result | acceptor | status u16, cluster id u128, partitions u32, voter count u8, voter ids (8 each), client address (u8 length + text) |
//!
//! A status other than 0 ends the connection: 1 unsupported version, 2 the acceptor is not
//! node `to` or does not know node `from`, 3 another cluster (the result then says which
//! layout the acceptor has, so the dialer can name both). Only authenticated dialers learn
//! the acceptor's layout.
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

use hmac::{Hmac, Mac};
use protobuf::Message as _;
use raft::eraftpb::Message;
use rand::RngCore;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};

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
/// Longest client address announced in a handshake.
const ADDRESS_SIZE_MAX: usize = 64;
const BATCH_SIZE_MAX: usize = 4 << 20;
const NONCE_SIZE: usize = 16;
const PROOF_SIZE: usize = 32;

const KIND_RAFT: u8 = 0;
const KIND_PROBE_REQUEST: u8 = 1;
const KIND_PROBE_REPLY: u8 = 2;
const KIND_CLOCK_PING: u8 = 3;
const KIND_CLOCK_PONG: u8 = 4;

const STATUS_OK: u16 = 0;
const STATUS_VERSION: u16 = 1;
const STATUS_UNKNOWN_NODE: u16 = 2;
const STATUS_OTHER_CLUSTER: u16 = 3;

type HmacSha256 = Hmac<Sha256>;

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
            id,
            address,
            receiver,
        ));
    }
    Peers {
        queues: Arc::new(queues),
    }
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The connection failed or timed out.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A step did not arrive in time.
    #[error("no answer within {HANDSHAKE_TIMEOUT:?}")]
    Timeout,
    /// The other side does not speak this protocol.
    #[error("not a Tally peer: {0}")]
    Protocol(String),
    /// The other side refused us.
    #[error("refused: {0}")]
    Refused(String),
    /// The other side's proof does not verify: it does not hold the cluster secret.
    #[error("the peer's proof does not verify: it does not hold this cluster's secret")]
    BadProof,
    /// The other side belongs to another cluster.
    #[error("it belongs to another cluster ({0}); this node's is different: check --partitions and --peers")]
    OtherCluster(String),
}

async fn timed<T>(
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, HandshakeError> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, step).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(HandshakeError::Timeout),
    }
}

fn proof(
    secret: &[u8],
    label: &[u8],
    first: &[u8; NONCE_SIZE],
    second: &[u8; NONCE_SIZE],
    from: u64,
    to: u64,
    cluster_id: u128,
) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label);
    mac.update(first);
    mac.update(second);
    mac.update(&from.to_le_bytes());
    mac.update(&to.to_le_bytes());
    mac.update(&cluster_id.to_le_bytes());
    mac
}

fn nonce() -> [u8; NONCE_SIZE] {
    let mut nonce = [0u8; NONCE_SIZE];
    rand::thread_rng().fill_bytes(&mut nonce);
    nonce
}

async fn read_address<S: AsyncRead + Unpin>(stream: &mut S) -> Result<String, HandshakeError> {
    let length = timed(stream.read_u8()).await? as usize;
    if length > ADDRESS_SIZE_MAX {
        return Err(HandshakeError::Protocol(format!(
            "address of {length} bytes"
        )));
    }
    let mut bytes = vec![0u8; length];
    timed(stream.read_exact(&mut bytes)).await?;
    String::from_utf8(bytes).map_err(|_| HandshakeError::Protocol("address not UTF-8".into()))
}

fn put_address(out: &mut Vec<u8>, address: &str) {
    let bytes = &address.as_bytes()[..address.len().min(ADDRESS_SIZE_MAX)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// The dialer's side of the handshake with node `to`; returns its client address.
pub async fn dial_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &PeerConfig,
    to: u64,
) -> Result<String, HandshakeError> {
    let own = nonce();
    let mut hello = Vec::with_capacity(64 + ADDRESS_SIZE_MAX);
    hello.extend_from_slice(&PEER_MAGIC);
    hello.extend_from_slice(&PEER_VERSION.to_le_bytes());
    hello.extend_from_slice(&0u16.to_le_bytes());
    hello.extend_from_slice(&config.cluster_id.to_le_bytes());
    hello.extend_from_slice(&config.node_id.to_le_bytes());
    hello.extend_from_slice(&to.to_le_bytes());
    hello.extend_from_slice(&own);
    put_address(&mut hello, &config.client_address);
    timed(stream.write_all(&hello)).await?;

    let mut challenge = [0u8; 4 + 2 + 2 + 8 + NONCE_SIZE + PROOF_SIZE];
    timed(stream.read_exact(&mut challenge)).await?;
    if challenge[..4] != PEER_MAGIC {
        return Err(HandshakeError::Protocol("bad magic".into()));
    }
    let status = u16::from_le_bytes([challenge[6], challenge[7]]);
    match status {
        STATUS_OK => {}
        STATUS_VERSION => {
            return Err(HandshakeError::Refused(
                "it does not speak peer protocol version 2".into(),
            ))
        }
        STATUS_UNKNOWN_NODE => {
            return Err(HandshakeError::Refused(format!(
                "it is not node {to}, or does not know node {}",
                config.node_id
            )))
        }
        other => return Err(HandshakeError::Refused(format!("status {other}"))),
    }
    let their_id = u64::from_le_bytes(challenge[8..16].try_into().expect("8 bytes"));
    if their_id != to {
        return Err(HandshakeError::Refused(format!(
            "it says it is node {their_id}, not {to}"
        )));
    }
    let theirs: [u8; NONCE_SIZE] = challenge[16..32].try_into().expect("16 bytes");
    proof(
        &config.secret,
        b"tally-accept",
        &own,
        &theirs,
        config.node_id,
        to,
        config.cluster_id,
    )
    .verify_slice(&challenge[32..])
    .map_err(|_| HandshakeError::BadProof)?;
    let answer = proof(
        &config.secret,
        b"tally-dial",
        &theirs,
        &own,
        config.node_id,
        to,
        config.cluster_id,
    )
    .finalize()
    .into_bytes();
    timed(stream.write_all(&answer)).await?;

    let mut result = [0u8; 2 + 16 + 4 + 1];
    timed(stream.read_exact(&mut result)).await?;
    let status = u16::from_le_bytes([result[0], result[1]]);
    let partitions = u32::from_le_bytes(result[18..22].try_into().expect("4 bytes"));
    let voter_count = result[22] as usize;
    if voter_count > crate::config::NODES_MAX {
        return Err(HandshakeError::Protocol(format!("{voter_count} voters")));
    }
    let mut voters = vec![0u8; voter_count * 8];
    timed(stream.read_exact(&mut voters)).await?;
    let client_address = read_address(stream).await?;
    if status == STATUS_OTHER_CLUSTER {
        let ids: Vec<String> = voters
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")).to_string())
            .collect();
        return Err(HandshakeError::OtherCluster(format!(
            "{partitions} partition(s), nodes {}",
            ids.join(",")
        )));
    }
    if status != STATUS_OK {
        return Err(HandshakeError::Refused(format!("status {status}")));
    }
    Ok(client_address)
}

/// The acceptor's side of the handshake; returns the dialer's node id and client address.
pub async fn accept_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &PeerConfig,
) -> Result<(u64, String), HandshakeError> {
    let mut hello = [0u8; 4 + 2 + 2 + 16 + 8 + 8 + NONCE_SIZE];
    timed(stream.read_exact(&mut hello)).await?;
    if hello[..4] != PEER_MAGIC {
        return Err(HandshakeError::Protocol("bad magic".into()));
    }
    let version = u16::from_le_bytes([hello[4], hello[5]]);
    let cluster_id = u128::from_le_bytes(hello[8..24].try_into().expect("16 bytes"));
    let from = u64::from_le_bytes(hello[24..32].try_into().expect("8 bytes"));
    let to = u64::from_le_bytes(hello[32..40].try_into().expect("8 bytes"));
    let theirs: [u8; NONCE_SIZE] = hello[40..56].try_into().expect("16 bytes");
    let client_address = read_address(stream).await?;
    let own = nonce();
    let status = if version != PEER_VERSION {
        STATUS_VERSION
    } else if to != config.node_id || from == config.node_id || !config.voters.contains_key(&from) {
        STATUS_UNKNOWN_NODE
    } else {
        STATUS_OK
    };
    let mut challenge = Vec::with_capacity(64);
    challenge.extend_from_slice(&PEER_MAGIC);
    challenge.extend_from_slice(&PEER_VERSION.to_le_bytes());
    challenge.extend_from_slice(&status.to_le_bytes());
    challenge.extend_from_slice(&config.node_id.to_le_bytes());
    challenge.extend_from_slice(&own);
    if status == STATUS_OK {
        let mac = proof(
            &config.secret,
            b"tally-accept",
            &theirs,
            &own,
            from,
            to,
            cluster_id,
        );
        challenge.extend_from_slice(&mac.finalize().into_bytes());
    } else {
        challenge.extend_from_slice(&[0; PROOF_SIZE]);
    }
    timed(stream.write_all(&challenge)).await?;
    if status != STATUS_OK {
        return Err(HandshakeError::Refused(format!(
            "node {from} asked for node {to} with protocol version {version}"
        )));
    }
    let mut answer = [0u8; PROOF_SIZE];
    timed(stream.read_exact(&mut answer)).await?;
    proof(
        &config.secret,
        b"tally-dial",
        &own,
        &theirs,
        from,
        to,
        cluster_id,
    )
    .verify_slice(&answer)
    .map_err(|_| HandshakeError::BadProof)?;
    let status = if cluster_id == config.cluster_id {
        STATUS_OK
    } else {
        STATUS_OTHER_CLUSTER
    };
    let mut result = Vec::with_capacity(64);
    result.extend_from_slice(&status.to_le_bytes());
    result.extend_from_slice(&config.cluster_id.to_le_bytes());
    result.extend_from_slice(&config.partitions.to_le_bytes());
    result.push(config.voters.len() as u8);
    for id in config.voters.keys() {
        result.extend_from_slice(&id.to_le_bytes());
    }
    put_address(&mut result, &config.client_address);
    timed(stream.write_all(&result)).await?;
    if status != STATUS_OK {
        return Err(HandshakeError::OtherCluster(format!(
            "node {from} is configured for another cluster"
        )));
    }
    Ok((from, client_address))
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
        loop {
            let Some(first) = queue.recv().await else {
                return;
            };
            buffer.clear();
            encode(&mut buffer, &first);
            while buffer.len() < BATCH_SIZE_MAX {
                match queue.try_recv() {
                    Ok(next) => encode(&mut buffer, &next),
                    Err(_) => break,
                }
            }
            if let Err(error) = stream.write_all(&buffer).await {
                tracing::debug!(peer = to, %error, "peer write failed; reconnecting");
                break;
            }
        }
    }
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

    fn config(node_id: u64, secret: &[u8], partitions: u32) -> PeerConfig {
        let voters: BTreeMap<u64, SocketAddr> = (1..=3)
            .map(|i| (i, format!("127.0.0.{}:7100", i + 1).parse().expect("addr")))
            .collect();
        PeerConfig {
            node_id,
            peer_address: voters[&node_id],
            client_address: format!("127.0.0.{}:7000", node_id + 1),
            cluster_id: crate::identity::cluster_id(partitions, &voters),
            partitions,
            voters,
            secret: secret.to_vec(),
        }
    }

    async fn handshake(
        dialer: PeerConfig,
        acceptor: PeerConfig,
        to: u64,
    ) -> (
        Result<String, HandshakeError>,
        Result<(u64, String), HandshakeError>,
    ) {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let dial = async move { dial_handshake(&mut a, &dialer, to).await };
        let accept = async move { accept_handshake(&mut b, &acceptor).await };
        tokio::join!(dial, accept)
    }

    #[tokio::test]
    async fn peers_with_the_secret_connect() {
        let secret = b"a secret of sixteen bytes";
        let (dial, accept) = handshake(config(1, secret, 2), config(2, secret, 2), 2).await;
        assert_eq!(dial.expect("dialer"), "127.0.0.3:7000");
        assert_eq!(accept.expect("acceptor"), (1, "127.0.0.2:7000".to_string()));
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_on_both_sides() {
        let (dial, accept) = handshake(
            config(1, b"one secret of sixteen", 2),
            config(2, b"another secret of sixteen", 2),
            2,
        )
        .await;
        assert!(matches!(dial, Err(HandshakeError::BadProof)), "{dial:?}");
        assert!(accept.is_err());
    }

    #[tokio::test]
    async fn another_cluster_is_refused_and_named() {
        let secret = b"a secret of sixteen bytes";
        let (dial, accept) = handshake(config(1, secret, 3), config(2, secret, 2), 2).await;
        match dial {
            Err(HandshakeError::OtherCluster(layout)) => {
                assert!(layout.contains("2 partition(s)"), "{layout}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(accept, Err(HandshakeError::OtherCluster(_))));
    }

    #[tokio::test]
    async fn an_unknown_or_impersonated_node_is_refused() {
        let secret = b"a secret of sixteen bytes";
        let mut stranger = config(1, secret, 2);
        stranger.node_id = 9;
        let (dial, _) = handshake(stranger, config(2, secret, 2), 2).await;
        assert!(matches!(dial, Err(HandshakeError::Refused(_))), "{dial:?}");
        // Asking node 2's port for node 3.
        let (dial, _) = handshake(config(1, secret, 2), config(2, secret, 2), 3).await;
        assert!(matches!(dial, Err(HandshakeError::Refused(_))), "{dial:?}");
    }

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
