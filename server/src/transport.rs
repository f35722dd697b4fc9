//! Peer transport: Raft messages of every partition between two nodes share one TCP
//! connection, batched.
//!
//! Each node keeps one outgoing connection per peer, opened from its own address (bound
//! before connecting, so per-node firewall rules on one machine can cut a single link). A
//! writer task drains the peer's bounded queue into one buffer — as many messages as are
//! waiting, up to `BATCH_SIZE_MAX` bytes — and writes it with one syscall. When the peer is
//! unreachable the queue's messages are dropped and the connection is retried with backoff;
//! Raft retransmits whatever matters.
//!
//! Incoming peer connections arrive on the node's one listening port and are told apart from
//! clients by their first four bytes ([`PEER_MAGIC`]). Then comes the sender's node id, then
//! frames:
//!
//! | offset | width | field |
//! |---|---|---|
//! | 0 | 4 | length `n` of what follows the checksum (u32 LE), at most [`PEER_FRAME_SIZE_MAX`] |
//! | 4 | 4 | CRC32 of the next `n` bytes |
//! | 8 | 4 | partition (u32 LE) |
//! | 12 | n − 4 | the raft-rs `Message`, protobuf-encoded |
//!
//! Everything is checked before use: the length before allocating, the checksum, the
//! partition against the cluster's count, and the message's `from` and `to` against the
//! handshake and this node. A peer that breaks any of these is disconnected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use crate::worker::{Input, PartitionHandle, PeerSender};

/// The first bytes of a peer connection.
pub const PEER_MAGIC: [u8; 4] = *b"TLYP";
/// Largest peer frame accepted.
pub const PEER_FRAME_SIZE_MAX: u32 = 64 << 20;
/// Messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_DEPTH: usize = 8192;
const BATCH_SIZE_MAX: usize = 4 << 20;

/// The sending half: one bounded queue per peer.
#[derive(Clone)]
pub struct Peers {
    queues: Arc<std::collections::BTreeMap<u64, mpsc::Sender<(u32, Message)>>>,
}

impl PeerSender for Peers {
    fn send(&self, partition: u32, message: Message) {
        if let Some(queue) = self.queues.get(&message.to) {
            // Full or closed: drop; Raft retransmits.
            let _ = queue.try_send((partition, message));
        }
    }
}

/// Starts a writer task per peer (every node but `own_id`) and returns the sending half.
pub fn start_writers(
    runtime: &tokio::runtime::Handle,
    own_id: u64,
    own_address: SocketAddr,
    peers: &std::collections::BTreeMap<u64, SocketAddr>,
) -> Peers {
    let mut queues = std::collections::BTreeMap::new();
    for (&id, &address) in peers {
        if id == own_id {
            continue;
        }
        let (sender, receiver) = mpsc::channel(PEER_QUEUE_DEPTH);
        queues.insert(id, sender);
        runtime.spawn(writer(own_id, own_address, address, receiver));
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
    let stream = socket.connect(peer).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn writer(
    own_id: u64,
    own: SocketAddr,
    peer: SocketAddr,
    mut queue: mpsc::Receiver<(u32, Message)>,
) {
    let mut backoff = Duration::from_millis(20);
    let mut buffer = Vec::with_capacity(64 * 1024);
    loop {
        let mut stream = match connect(own, peer).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%peer, %error, "peer connect failed");
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
        let mut hello = PEER_MAGIC.to_vec();
        hello.extend_from_slice(&own_id.to_le_bytes());
        if stream.write_all(&hello).await.is_err() {
            continue;
        }
        loop {
            let Some(first) = queue.recv().await else {
                return;
            };
            buffer.clear();
            encode(&mut buffer, first);
            while buffer.len() < BATCH_SIZE_MAX {
                match queue.try_recv() {
                    Ok(next) => encode(&mut buffer, next),
                    Err(_) => break,
                }
            }
            if let Err(error) = stream.write_all(&buffer).await {
                tracing::debug!(%peer, %error, "peer write failed; reconnecting");
                break;
            }
        }
    }
}

fn encode(buffer: &mut Vec<u8>, (partition, message): (u32, Message)) {
    let Ok(bytes) = message.write_to_bytes() else {
        return;
    };
    let length = 4 + bytes.len() as u32;
    let start = buffer.len();
    buffer.extend_from_slice(&length.to_le_bytes());
    buffer.extend_from_slice(&[0; 4]);
    buffer.extend_from_slice(&partition.to_le_bytes());
    buffer.extend_from_slice(&bytes);
    let crc = crc32fast::hash(&buffer[start + 8..]);
    buffer[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Serves an incoming peer connection whose magic was already read: reads the node id, then
/// frames, and feeds each message to its partition. Returns when the peer disconnects or
/// breaks the protocol.
pub async fn serve_peer(
    mut stream: TcpStream,
    own_id: u64,
    known: impl Fn(u64) -> bool,
    partitions: Arc<Vec<PartitionHandle>>,
) {
    let mut id = [0u8; 8];
    if stream.read_exact(&mut id).await.is_err() {
        return;
    }
    let from = u64::from_le_bytes(id);
    if from == own_id || !known(from) {
        tracing::warn!(from, "peer connection from an unknown node refused");
        return;
    }
    let mut header = [0u8; 8];
    let mut body = Vec::new();
    loop {
        if stream.read_exact(&mut header).await.is_err() {
            return;
        }
        let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if !(4..=PEER_FRAME_SIZE_MAX).contains(&length) {
            tracing::warn!(
                from,
                length,
                "peer frame length out of range; disconnecting"
            );
            return;
        }
        body.resize(length as usize, 0);
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        if crc32fast::hash(&body) != crc {
            tracing::warn!(from, "peer frame checksum mismatch; disconnecting");
            return;
        }
        let partition = u32::from_le_bytes(body[..4].try_into().expect("4 bytes"));
        let Some(handle) = partitions.get(partition as usize) else {
            tracing::warn!(
                from,
                partition,
                "peer frame for an unknown partition; disconnecting"
            );
            return;
        };
        let Ok(message) = Message::parse_from_bytes(&body[4..]) else {
            tracing::warn!(from, "undecodable raft message; disconnecting");
            return;
        };
        if message.to != own_id || message.from != from {
            tracing::warn!(
                from,
                to = message.to,
                "raft message misaddressed; disconnecting"
            );
            return;
        }
        // A full inbox drops the message: Raft retransmits.
        let _ = handle.try_send(Input::Peer(message));
    }
}
