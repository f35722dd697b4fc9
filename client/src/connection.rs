//! One TCP connection to one node: a writer task, a reader task, and the table of requests
//! waiting for their answers.
//!
//! Data flow: a caller registers a reply slot under a fresh request id in the pending table,
//! then queues the frame for the writer task. The writer drains its queue, coalescing every
//! frame already queued into one socket write (pipelining: many requests are in flight on one
//! connection at once), and tells whoever asked that their frame was written. The reader task
//! splits frames off the socket with [`FrameDecoder`] and hands each to the slot registered
//! under its request id; responses may arrive in any order. A response whose id has no slot
//! (its caller timed out and forgot it) is dropped.
//!
//! Invariants: the pending table is closed exactly once, by the first failure (read error,
//! end of stream, undecodable frame, connection-level `Error` frame, write error) or by
//! [`Connection::close`]; closing fails every waiting slot with the reason, and a slot
//! registered afterwards fails at once, so no caller waits on a dead connection. Dropping the
//! last handle to a [`Connection`] stops both tasks.
//!
//! Liveness: while requests wait on a connection and it delivers nothing, a watcher pings the
//! node; if the ping goes unanswered for `liveness_timeout` too, the connection is closed as
//! dead and its requests fail at once, so that callers retry elsewhere. A paused process whose
//! kernel still accepts and acknowledges TCP is thus found out in about two liveness timeouts
//! instead of a whole request timeout; a busy node answers pings (they need no partition).
//!
//! The connect and `Hello` steps are functions of their own, because a change stream
//! (`subscription.rs`) opens its connection the same way and then reads it by itself.
//!
//! Deliberate omissions: no TLS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::wire::messages::{ErrorResponse, HelloRequest, HelloResponse};
use crate::wire::{
    Body, ClusterInfo, Frame, FrameDecoder, FrameHeader, Operation, FRAME_BODY_SIZE_MAX,
    PARTITIONS_MAX,
};

/// Frames queued for the writer task of one connection. Callers wait for room, so memory
/// stays bounded; the client's in-flight limit normally keeps the queue far from full.
pub const OUTGOING_QUEUE_MAX: usize = 1024;

/// Most bytes the writer coalesces into one socket write before writing.
pub const WRITE_COALESCE_SIZE_MAX: usize = 1024 * 1024;

/// Initial capacity of a connection's receive buffer.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// The version string this client sends in `Hello`.
pub const CLIENT_VERSION: &str = concat!("tally-client/", env!("CARGO_PKG_VERSION"));

/// A request body, validated and encoded once, that can be framed under any request id. A
/// retry reuses the same bytes, so it carries the same events and ids by construction.
#[derive(Clone, Debug)]
pub(crate) struct EncodedRequest {
    op: Operation,
    body: Bytes,
    body_checksum: u32,
}

impl EncodedRequest {
    /// Validates and encodes `body`. Fails if it breaks a bound of the protocol.
    pub(crate) fn new<T: Body>(body: &T) -> Result<EncodedRequest, String> {
        body.validate().map_err(|e| e.to_string())?;
        let size = body.encoded_len();
        if size > FRAME_BODY_SIZE_MAX {
            return Err(format!(
                "request body of {size} bytes exceeds the maximum of {FRAME_BODY_SIZE_MAX}"
            ));
        }
        let body = Bytes::from(body.encode_to_vec());
        let body_checksum = crc32fast::hash(&body);
        Ok(EncodedRequest {
            op: T::OPERATION,
            body,
            body_checksum,
        })
    }

    /// The request's operation.
    pub(crate) fn op(&self) -> Operation {
        self.op
    }

    /// The request framed under `request_id`, ready to write.
    pub(crate) fn frame(&self, request_id: u64) -> Bytes {
        let header = FrameHeader {
            op: self.op,
            request_id,
            body_size: u32::try_from(self.body.len()).expect("checked in EncodedRequest::new"),
            body_checksum: self.body_checksum,
        };
        let mut frame = BytesMut::with_capacity(header.encode().len() + self.body.len());
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(&self.body);
        frame.freeze()
    }
}

/// Opens a TCP connection to `address` within `timeout`, with Nagle's algorithm off.
pub(crate) async fn connect_tcp(address: &str, timeout: Duration) -> Result<TcpStream, String> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| format!("connect timed out after {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    // Latency matters more than packet count here; writers already coalesce frames.
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// The `Hello` that opens every connection.
pub(crate) fn hello_request() -> Result<EncodedRequest, String> {
    EncodedRequest::new(&HelloRequest {
        client_version: CLIENT_VERSION.to_owned(),
    })
}

/// Reads the answer to `Hello`: the cluster's layout, or why the node refused. A layout of
/// zero partitions, or more than [`PARTITIONS_MAX`], breaks the protocol.
pub(crate) fn hello_answer(frame: &Frame) -> Result<ClusterInfo, String> {
    let info = match frame.op {
        Operation::HelloResponse => frame
            .decode_body::<HelloResponse>()
            .map_err(|e| format!("bad hello response: {e}"))?
            .to_cluster_info(),
        Operation::Error => {
            let error = frame
                .decode_body::<ErrorResponse>()
                .map_err(|e| format!("bad error response: {e}"))?
                .to_server_error();
            return Err(format!(
                "hello refused: {} ({})",
                error.code.name(),
                error.message
            ));
        }
        other => return Err(format!("hello answered with {}", other.name())),
    };
    let partitions = info.partition_count as usize;
    if partitions == 0 || partitions > PARTITIONS_MAX {
        return Err(format!("hello reports {partitions} partitions"));
    }
    Ok(info)
}

/// What a waiting caller receives: the response frame, or why the connection died first.
type Reply = Result<Frame, String>;

#[derive(Default)]
struct Pending {
    replies: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set when the connection died: the reason, given to every later registration.
    closed: Option<String>,
}

struct Shared {
    pending: Mutex<Pending>,
    frames_received: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock leaves a consistent map (every operation on it is
        // a single insert, remove or drain), so a poisoned lock is safe to keep using.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail_all(&self, reason: &str) {
        let replies = {
            let mut pending = self.lock();
            if pending.closed.is_none() {
                pending.closed = Some(reason.to_owned());
            }
            std::mem::take(&mut pending.replies)
        };
        for (_, reply) in replies {
            // The caller may have given up already; nothing to do then.
            let _ = reply.send(Err(reason.to_owned()));
        }
    }
}

struct Outgoing {
    frame: Bytes,
    written: Option<oneshot::Sender<()>>,
}

/// A request that was queued on a connection: its id and where its answer will arrive.
pub(crate) struct Sent {
    pub(crate) request_id: u64,
    pub(crate) reply: oneshot::Receiver<Reply>,
}

/// A live connection to one node. Cheap to share behind an `Arc`; dropping the last handle
/// stops its tasks and closes the socket.
pub(crate) struct Connection {
    address: String,
    outgoing: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
    request_id_next: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// Set when the liveness watch closed it: the node answered nothing, not even a ping.
    presumed_dead: AtomicBool,
}

impl Connection {
    /// Connects to `address`, starts the reader and writer tasks and says `Hello`. Each of the
    /// two steps must finish within `timeout`.
    pub(crate) async fn open(
        address: &str,
        timeout: Duration,
        liveness: Duration,
    ) -> Result<(Arc<Connection>, ClusterInfo), String> {
        let stream = connect_tcp(address, timeout).await?;
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            frames_received: AtomicU64::new(0),
        });
        let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE_MAX);
        let (shutdown, shutdown_rx) = watch::channel(false);
        tokio::spawn(read_loop(read, shared.clone(), shutdown_rx.clone()));
        tokio::spawn(write_loop(
            write,
            outgoing_rx,
            shared.clone(),
            shutdown_rx.clone(),
        ));
        let connection = Arc::new(Connection {
            address: address.to_owned(),
            outgoing,
            shared,
            request_id_next: AtomicU64::new(1),
            shutdown,
            presumed_dead: AtomicBool::new(false),
        });

        let sent = connection.send(&hello_request()?, None).await?;
        let frame = tokio::time::timeout(timeout, sent.reply)
            .await
            .map_err(|_| format!("no answer to hello within {timeout:?}"))?
            .map_err(|_| "connection closed during hello".to_owned())??;
        let info = hello_answer(&frame)?;
        tokio::spawn(watch_liveness(
            Arc::downgrade(&connection),
            liveness,
            shutdown_rx,
        ));
        Ok((connection, info))
    }

    /// The address this connection was opened to.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Whether the liveness watch closed the connection: the node answered nothing, not
    /// even a ping (paused, or cut off).
    pub(crate) fn is_presumed_dead(&self) -> bool {
        self.presumed_dead.load(Ordering::Relaxed)
    }

    /// Whether the connection has failed or been closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// Fails every waiting request with `reason` and stops the tasks.
    pub(crate) fn close(&self, reason: &str) {
        self.shared.fail_all(reason);
        let _ = self.shutdown.send(true);
    }

    /// How many frames the reader has delivered so far: a caller whose request timed out
    /// compares it with the value from before sending to tell a slow server from a dead
    /// connection.
    pub(crate) fn frames_received(&self) -> u64 {
        self.shared.frames_received.load(Ordering::Relaxed)
    }

    /// Registers a reply slot and queues the frame. `written` fires once the frame is on the
    /// socket. An error means the frame was *not* queued, so the server never saw it.
    pub(crate) async fn send(
        &self,
        request: &EncodedRequest,
        written: Option<oneshot::Sender<()>>,
    ) -> Result<Sent, String> {
        let request_id = self.request_id_next.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply) = oneshot::channel();
        {
            let mut pending = self.shared.lock();
            if let Some(reason) = &pending.closed {
                return Err(reason.clone());
            }
            pending.replies.insert(request_id, reply_tx);
        }
        let outgoing = Outgoing {
            frame: request.frame(request_id),
            written,
        };
        if self.outgoing.send(outgoing).await.is_err() {
            self.forget(request_id);
            return Err("connection writer stopped".to_owned());
        }
        Ok(Sent { request_id, reply })
    }

    /// Drops the reply slot of a request whose caller stopped waiting; a late answer to it
    /// is then discarded by the reader.
    pub(crate) fn forget(&self, request_id: u64) {
        self.shared.lock().replies.remove(&request_id);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close("connection dropped by the client");
    }
}

async fn read_loop(
    mut read: OwnedReadHalf,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::with_capacity(READ_BUFFER_SIZE);
    let mut decoder = FrameDecoder::new();
    let reason = 'connection: loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Err(reason) = deliver(&shared, frame) {
                        break 'connection reason;
                    }
                }
                Ok(None) => break,
                Err(e) => break 'connection format!("undecodable frame from the server: {e}"),
            }
        }
        // The decoder reserves nothing: grow by a read's worth at a time.
        buf.reserve(READ_BUFFER_SIZE);
        tokio::select! {
            result = read.read_buf(&mut buf) => match result {
                Ok(0) => break "connection closed by the server".to_owned(),
                Ok(_) => {}
                Err(e) => break format!("read failed: {e}"),
            },
            _ = shutdown.changed() => break "connection closed by the client".to_owned(),
        }
    };
    shared.fail_all(&reason);
}

/// Hands `frame` to its waiting caller. An `Error` frame with request id 0 concerns the whole
/// connection (the server closes it after sending one), so it ends the connection.
fn deliver(shared: &Shared, frame: Frame) -> Result<(), String> {
    shared.frames_received.fetch_add(1, Ordering::Relaxed);
    if frame.request_id == 0 {
        let detail = match frame.decode_body::<ErrorResponse>() {
            Ok(e) => {
                let e = e.to_server_error();
                format!("{} ({})", e.code.name(), e.message)
            }
            Err(e) => e.to_string(),
        };
        return Err(format!("the server closed the connection: {detail}"));
    }
    let reply = shared.lock().replies.remove(&frame.request_id);
    if let Some(reply) = reply {
        let _ = reply.send(Ok(frame));
    }
    Ok(())
}

/// Pings the node when requests wait and nothing arrives; closes the connection when the
/// ping goes unanswered for `liveness` (see the module documentation).
async fn watch_liveness(
    connection: std::sync::Weak<Connection>,
    liveness: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let ping = match EncodedRequest::new(&crate::wire::messages::PingRequest {}) {
        Ok(ping) => ping,
        Err(_) => return,
    };
    let mut seen = 0;
    let mut pinged: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(liveness / 2) => {}
            _ = shutdown.changed() => return,
        }
        let Some(connection) = connection.upgrade() else {
            return;
        };
        let received = connection.frames_received();
        let waiting = !connection.shared.lock().replies.is_empty();
        if received != seen || !waiting {
            seen = received;
            pinged = None;
            continue;
        }
        match pinged {
            None => {
                // The answer has no slot: the reader drops it, having counted a frame.
                if let Ok(sent) = connection.send(&ping, None).await {
                    connection.forget(sent.request_id);
                }
                pinged = Some(tokio::time::Instant::now());
            }
            Some(at) if at.elapsed() >= liveness => {
                connection.presumed_dead.store(true, Ordering::Relaxed);
                connection.close(&format!(
                    "{} answered nothing, not even a ping, for {:?}: presumed paused or cut off",
                    connection.address,
                    liveness + liveness / 2
                ));
                return;
            }
            Some(_) => {}
        }
    }
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut outgoing: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::new();
    let mut written = Vec::new();
    loop {
        let first = tokio::select! {
            first = outgoing.recv() => first,
            _ = shutdown.changed() => None,
        };
        let Some(first) = first else { break };
        buf.clear();
        buf.extend_from_slice(&first.frame);
        written.extend(first.written);
        while buf.len() < WRITE_COALESCE_SIZE_MAX {
            let Ok(next) = outgoing.try_recv() else { break };
            buf.extend_from_slice(&next.frame);
            written.extend(next.written);
        }
        if let Err(e) = write.write_all(&buf).await {
            shared.fail_all(&format!("write failed: {e}"));
            break;
        }
        for signal in written.drain(..) {
            let _ = signal.send(());
        }
    }
}
