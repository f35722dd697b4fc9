//! Client connections: accepting them, reading frames, and writing answers — with every byte
//! a client can make the node hold bounded, and every wait timed.
//!
//! - **Memory follows bytes received.** A connection reads in chunks of [`READ_CHUNK`]; a
//!   frame header that announces a large body reserves nothing. A frame larger than one chunk
//!   may only grow while the node's budget of such bytes ([`LARGE_FRAMES_BUDGET`]) lasts;
//!   otherwise its reader waits. Small requests (nearly all: one transfer is a few hundred
//!   bytes) never need the budget, so clients that announce huge bodies and stall cannot keep
//!   the others from being served.
//! - **Answers a client does not read are bounded.** A connection with more than
//!   [`ANSWERS_SOFT_MAX`] bytes of answers queued reads no new requests; past
//!   [`ANSWERS_HARD_MAX`], or when one write blocks for [`WRITE_TIMEOUT`], it is closed and
//!   everything it held is freed.
//! - **Timeouts.** A new connection must send a complete first frame within
//!   [`FIRST_FRAME_TIMEOUT`]; a frame whose header arrived must complete within
//!   [`FRAME_READ_TIMEOUT`]; a connection with nothing in flight that sends nothing for
//!   [`IDLE_TIMEOUT`] is closed (the client crate reconnects by itself).
//! - **Connections.** At most `connections_max` clients at once (peers have a listener and a
//!   limit of their own). When the limit is reached, the connection idle the longest (nothing
//!   in flight) is closed to make room, so idle connections cannot lock new clients out.
//!
//! What a frame means is `session.rs`'s business: it parses each complete frame and answers it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tally_client::wire::codes::ErrorCode;
use tally_client::wire::FrameDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify, Semaphore};

use crate::session::{self, Failure, Node};
use crate::stages::Stage;

/// Bytes read at a time from a connection (a quarter of it when no frame is under way, so
/// that idle connections hold little).
pub const READ_CHUNK: usize = 16 << 10;
/// Bytes of frames larger than [`READ_CHUNK`] that all connections may hold while they
/// arrive (a batch of 8,190 transfers is about 1.5 MB).
pub const LARGE_FRAMES_BUDGET: usize = 8 << 20;
/// Bytes of queued answers above which a connection reads no new requests.
pub const ANSWERS_SOFT_MAX: usize = 4 << 20;
/// Bytes of queued answers above which a connection is closed.
pub const ANSWERS_HARD_MAX: usize = 32 << 20;
/// How long a new connection may take to send its first complete frame.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a frame may take to arrive once its header did.
pub const FRAME_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection with nothing in flight may stay silent.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one write of answers may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests one connection may have in flight.
pub const IN_FLIGHT_MAX: usize = 64;

/// What the node knows of each open client connection, to close the idlest when full.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<ConnectionState>>>,
    /// Bytes of large frames held by all connections ([`LARGE_FRAMES_BUDGET`]).
    large: AtomicUsize,
    large_freed: Notify,
}

/// One connection's state as the node sees it.
pub struct ConnectionState {
    in_flight: AtomicUsize,
    /// Bytes of answers waiting to be written to it.
    queued: Arc<AtomicUsize>,
    /// When it last sent or was answered, in milliseconds since the node started.
    active_at: AtomicU64,
    close: AtomicBool,
    closed: Notify,
}

impl Connections {
    fn register(&self) -> (u64, Arc<ConnectionState>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState {
            in_flight: AtomicUsize::new(0),
            queued: Arc::default(),
            active_at: AtomicU64::new(now_ms()),
            close: AtomicBool::new(false),
            closed: Notify::new(),
        });
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, state.clone());
        (id, state)
    }

    /// Open connections.
    pub fn open_count(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Bytes of large frames held now (at most [`LARGE_FRAMES_BUDGET`]).
    pub fn large_bytes(&self) -> usize {
        self.large.load(Ordering::Relaxed)
    }

    /// Bytes of answers waiting to be written, over every open connection.
    pub fn answer_bytes(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|c| c.queued.load(Ordering::Relaxed))
            .sum()
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Asks the connection idle the longest (nothing in flight) to close; false if none is.
    fn evict_idlest(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let idlest = open
            .values()
            .filter(|c| {
                c.in_flight.load(Ordering::Relaxed) == 0 && !c.close.load(Ordering::Relaxed)
            })
            .min_by_key(|c| c.active_at.load(Ordering::Relaxed));
        match idlest {
            Some(state) => {
                state.close.store(true, Ordering::Relaxed);
                state.closed.notify_one();
                true
            }
            None => false,
        }
    }

    /// Takes `bytes` of the large-frame budget, waiting while it is spent, until `deadline`.
    async fn take_large(&self, bytes: usize, deadline: Instant) -> bool {
        loop {
            let held = self.large.fetch_add(bytes, Ordering::Relaxed);
            if held + bytes <= LARGE_FRAMES_BUDGET {
                return true;
            }
            self.large.fetch_sub(bytes, Ordering::Relaxed);
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return false;
            }
            let freed = self.large_freed.notified();
            let _ = tokio::time::timeout(wait.min(Duration::from_millis(50)), freed).await;
        }
    }

    fn give_large(&self, bytes: usize) {
        if bytes > 0 {
            self.large.fetch_sub(bytes, Ordering::Relaxed);
            self.large_freed.notify_waiters();
        }
    }
}

fn now_ms() -> u64 {
    crate::clock::monotonic_nanos() / 1_000_000
}

/// Accepts client connections until the task is dropped.
pub async fn accept(listener: TcpListener, node: Arc<Node>) {
    let limit = Arc::new(Semaphore::new(node.config.connections_max));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let permit = match limit.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Full: make room by closing the idlest connection, if any is idle.
                if !node.connections.evict_idlest() {
                    tracing::warn!(%remote, "too many connections, none idle; refusing");
                    node.metrics.connection_refused();
                    continue;
                }
                match tokio::time::timeout(Duration::from_secs(1), limit.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        tracing::warn!(%remote, "too many connections; refusing");
                        node.metrics.connection_refused();
                        continue;
                    }
                }
            }
        };
        node.metrics.connection_accepted();
        let node = node.clone();
        tokio::spawn(async move {
            serve(stream, node).await;
            drop(permit);
        });
    }
}

/// Starts serving a `Subscribe` request on its connection (`changes::stream`); it holds an
/// in-flight slot until it ends. A node that is not up, or positions of partitions the
/// cluster does not have, are answered with an error instead.
fn subscribe(
    node: &Arc<Node>,
    state: &Arc<ConnectionState>,
    request_id: u64,
    (from, filter): (
        tally_client::wire::StreamFrom,
        tally_client::wire::StreamFilter,
    ),
    io: crate::changes::stream::StreamIo,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let refuse = |code: ErrorCode, message: String| {
        node.metrics.request("subscribe", code.name());
        let mut out = BytesMut::new();
        Failure::new(code, message).encode(request_id, &mut out);
        (io.send)(out);
    };
    if !node.ready.load(Ordering::Relaxed) {
        return refuse(
            ErrorCode::Unavailable,
            "this node is starting or recovering its data: subscribe here later or on another \
             node"
                .to_string(),
        );
    }
    let partitions = node.changes.len() as u32;
    if let tally_client::wire::StreamFrom::After(positions) = &from {
        if let Some(p) = positions.iter().find(|p| p.partition.0 >= partitions) {
            return refuse(
                ErrorCode::Malformed,
                format!(
                    "position {p} names partition {}, but the cluster has {partitions}",
                    p.partition.0
                ),
            );
        }
    }
    node.metrics.request("subscribe", "Ok");
    let feeds = node.changes.to_vec();
    let state = state.clone();
    state.in_flight.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        crate::changes::stream::serve(feeds, request_id, from, filter, io).await;
        state.in_flight.fetch_sub(1, Ordering::Relaxed);
        drop(permit);
    });
}

/// Serves one client connection until it closes, breaks the protocol or times out.
async fn serve(stream: TcpStream, node: Arc<Node>) {
    let _ = stream.set_nodelay(true);
    let (id, state) = node.connections.register();
    let (mut reader, mut writer) = stream.into_split();
    let queued = state.queued.clone();
    let drained = Arc::new(Notify::new());
    let (answers, mut outgoing) = mpsc::unbounded_channel::<BytesMut>();
    let writer_queued = queued.clone();
    let writer_drained = drained.clone();
    let writer_state = state.clone();
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = outgoing.recv().await {
            let size = bytes.len();
            let written = tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&bytes)).await;
            writer_queued.fetch_sub(size, Ordering::Relaxed);
            writer_drained.notify_waiters();
            if !matches!(written, Ok(Ok(()))) {
                // The client does not read (or is gone): close, dropping what waits.
                writer_state.close.store(true, Ordering::Relaxed);
                writer_state.closed.notify_one();
                return;
            }
            writer_state.active_at.store(now_ms(), Ordering::Relaxed);
        }
        let _ = writer.shutdown().await;
    });
    let send = {
        let queued = queued.clone();
        let state = state.clone();
        move |bytes: BytesMut| {
            let held = queued.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
            if held > ANSWERS_HARD_MAX {
                state.close.store(true, Ordering::Relaxed);
                state.closed.notify_one();
                return;
            }
            let _ = answers.send(bytes);
        }
    };
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let mut buffer = BytesMut::new();
    let mut decoder = FrameDecoder::new();
    let mut large_held = 0usize;
    let opened = Instant::now();
    let mut first_frame = true;
    let mut frame_started: Option<Instant> = None;
    'connection: loop {
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => {
                    first_frame = false;
                    frame_started = None;
                    state.active_at.store(now_ms(), Ordering::Relaxed);
                    node.connections.give_large(std::mem::take(&mut large_held));
                    let parsing = Instant::now();
                    let request = match session::parse(&frame) {
                        Ok(request) => {
                            if matches!(request, session::Request::CreateTransfers(_)) {
                                node.stages.record(Stage::Decode, parsing.elapsed());
                            }
                            request
                        }
                        Err(error) => {
                            let mut out = BytesMut::new();
                            Failure::new(error.error_code(), error.to_string())
                                .encode(frame.request_id, &mut out);
                            send(out);
                            break 'connection;
                        }
                    };
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        break 'connection;
                    };
                    if let session::Request::Subscribe(from, filter) = request {
                        let io = crate::changes::stream::StreamIo {
                            send: Box::new(send.clone()),
                            queued: queued.clone(),
                            drained: drained.clone(),
                            closed: {
                                let state = state.clone();
                                Box::new(move || state.close.load(Ordering::Relaxed))
                            },
                            behind_bytes_max: node.config.stream_behind_bytes_max,
                            leaders: node.leaders.clone(),
                        };
                        subscribe(&node, &state, frame.request_id, (from, filter), io, permit);
                        continue;
                    }
                    let node = node.clone();
                    let send = send.clone();
                    let state = state.clone();
                    state.in_flight.fetch_add(1, Ordering::Relaxed);
                    let request_id = frame.request_id;
                    tokio::spawn(async move {
                        let out = session::handle(&node, request_id, request).await;
                        send(out);
                        state.in_flight.fetch_sub(1, Ordering::Relaxed);
                        drop(permit);
                    });
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(%error, "malformed frame; closing the connection");
                    let mut out = BytesMut::new();
                    Failure::new(error.error_code(), error.to_string()).encode(0, &mut out);
                    send(out);
                    break 'connection;
                }
            }
        }
        // Answers pile up unread: read nothing more until they drain (or the writer gives up).
        while queued.load(Ordering::Relaxed) > ANSWERS_SOFT_MAX {
            if state.close.load(Ordering::Relaxed) {
                break 'connection;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), drained.notified()).await;
        }
        // When must the next bytes come?
        if frame_started.is_none() && !buffer.is_empty() {
            frame_started = Some(Instant::now());
        }
        let deadline = if first_frame {
            opened + FIRST_FRAME_TIMEOUT
        } else if let Some(started) = frame_started {
            started + FRAME_READ_TIMEOUT
        } else {
            Instant::now() + IDLE_TIMEOUT
        };
        // What is left after the complete frames is one partial frame: beyond a chunk, it
        // grows only within the node's budget.
        if buffer.len() >= READ_CHUNK {
            if !node.connections.take_large(READ_CHUNK, deadline).await {
                tracing::debug!("a large frame waited too long for memory; closing");
                break 'connection;
            }
            large_held += READ_CHUNK;
        }
        // At most one chunk per read (the budget counts what is read; the buffer's capacity
        // may run ahead of it by its growth, at most twice).
        let chunk = if buffer.is_empty() {
            READ_CHUNK / 4
        } else {
            READ_CHUNK
        };
        buffer.reserve(chunk);
        let wait = deadline.saturating_duration_since(Instant::now());
        let mut limited = (&mut reader).take(chunk as u64);
        tokio::select! {
            read = limited.read_buf(&mut buffer) => match read {
                Ok(0) | Err(_) => break 'connection,
                Ok(_) => {}
            },
            _ = tokio::time::sleep(wait) => {
                if !first_frame && frame_started.is_none()
                    && state.in_flight.load(Ordering::Relaxed) > 0
                {
                    // Silent, but a stream (or a long request) is under way.
                    continue 'connection;
                }
                if !first_frame && frame_started.is_none() {
                    tracing::debug!("idle client connection closed");
                } else {
                    tracing::debug!("client frame not complete in time; closing");
                    let mut out = BytesMut::new();
                    Failure::new(ErrorCode::Malformed, "frame not complete in time")
                        .encode(0, &mut out);
                    send(out);
                }
                break 'connection;
            }
            _ = state.closed.notified() => {
                tracing::debug!("client connection closed by the node");
                break 'connection;
            }
        }
        if state.close.load(Ordering::Relaxed) {
            break 'connection;
        }
    }
    node.connections.give_large(large_held);
    node.connections.remove(id);
    // Streams end when they see the connection closing.
    state.close.store(true, Ordering::Relaxed);
    drop(send);
    // Requests still running hold senders; the writer ends when they are done (or at once,
    // if it gave up on the client).
    let _ = writer_task.await;
}
