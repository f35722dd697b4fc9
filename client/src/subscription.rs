//! Change streams: [`Client::subscribe`] and the [`Subscription`] it returns.
//!
//! A subscription has a connection of its own, apart from the client's shared request
//! connection, because it is answered by an endless run of frames under one request id, and
//! a slow consumer must hold back only its own stream. A spawned task owns that connection:
//! it opens TCP to one node, says `Hello` as every connection does (`connection.rs`), sends
//! one `Subscribe` frame, and then reads `SubscribeResponse` frames, turning their changes
//! into [`Streamed`] items on a bounded channel ([`SUBSCRIPTION_QUEUE_MAX`]); the
//! [`Subscription`] is that channel's receiving end. When the consumer falls behind the
//! channel fills, the task stops reading, TCP pushes back, and the node ends the stream as
//! `TooSlow` — after which the task resumes where it stood.
//!
//! The cursor: per partition, the last position the stream stands at — the greater of the
//! last change delivered and the positions the frames report (which move past changes the
//! filter left out). It starts at the positions of [`StreamFrom::After`], if given. A change
//! at or before the cursor is dropped, so a stream resumed after a reconnect delivers every
//! change once even though the protocol delivers at least once.
//!
//! Resuming: a connection that fails, stays silent for [`STREAM_SILENCE_MAX`] (the node sends
//! a keepalive about every 2 s while idle), answers with a retryable error code, or ends the
//! stream (`TooSlow`, `Unreadable`, `Isolated`) is replaced, and the new connection
//! subscribes again right after the cursor with the same filter. Every node has the same
//! positions for the same changes, so the task moves on to the next node it knows (the
//! addresses the nodes report in `Hello`), except after `TooSlow`, which it retries on the
//! same node at once. Pauses between failed attempts start at [`RESUBSCRIBE_BACKOFF_MIN`] and
//! double up to [`RESUBSCRIBE_BACKOFF_MAX`]; while the cluster cannot be reached the task
//! keeps trying, for a stream has no deadline. It gives up, with one `Err` item and then the
//! end of the stream, only on what retrying cannot fix: a subscription that breaks a limit of
//! the protocol ([`ClientError::Invalid`], before anything is sent), an error code that is not
//! retryable such as `malformed` ([`ClientError::Rejected`]), or [`STREAM_VIOLATIONS_MAX`]
//! attempts in a row whose node broke the protocol without the stream moving (a server newer
//! than this client, sending a kind of change it does not know; [`ClientError::Protocol`]).
//!
//! Invariants: every change delivered is strictly after the cursor of its partition, and the
//! cursor only moves forward; [`Streamed::CaughtUp`] comes once per change from behind to
//! caught up, reconnects included; a frame naming a partition the cluster does not have
//! breaks the protocol (which bounds the cursor by the partition count). Dropping the
//! [`Subscription`] aborts the task, which closes its connection.
//!
//! Deliberate omissions: the subscription does not read the client router's seed list (it is
//! private to the router); it starts from the nodes the client's current node reports, and
//! asks the client again when every known node has failed once in a row. A stream from
//! [`StreamFrom::Now`] that is interrupted before its first frame named every partition
//! resumes from "now" again, and may miss what committed in between on the partitions it had
//! seen (resuming after a partial cursor would replay the others from the start).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::connection::{connect_tcp, hello_answer, hello_request, EncodedRequest};
use crate::error::ClientError;
use crate::router::LEARNED_ADDRESSES_MAX;
use crate::wire::messages::{ErrorResponse, StreamFrame, SubscribeRequest, SubscribeResponse};
use crate::wire::{
    Change, ClusterInfo, Frame, FrameDecoder, Operation, PartitionId, Position, ServerError,
    StreamEnd, StreamFilter, StreamFrom,
};

/// Frames' worth of items a subscription buffers between its task and the consumer (a
/// frame holds up to about 1 MiB of changes). A full queue stops the task reading, and the
/// node then ends the stream as too slow (it resumes by itself). Items cross in batches, one
/// per frame, so that consumer and task do not wake each other for every change.
pub const SUBSCRIPTION_QUEUE_MAX: usize = 8;

/// Longest a subscription waits for the next frame before it presumes the connection dead.
/// The node sends a keepalive about every 2 s while it has nothing to send.
pub const STREAM_SILENCE_MAX: Duration = Duration::from_secs(10);

/// The pause after the first failed attempt to (re)subscribe.
pub const RESUBSCRIBE_BACKOFF_MIN: Duration = Duration::from_millis(50);

/// The longest pause between attempts to (re)subscribe, however many failed.
pub const RESUBSCRIBE_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Attempts in a row that end in a protocol violation, with the stream not moving, before the
/// subscription gives up.
pub const STREAM_VIOLATIONS_MAX: u32 = 8;

/// The request ids a subscription's connection uses: one `Hello`, then one `Subscribe`.
const HELLO_REQUEST_ID: u64 = 1;
const SUBSCRIBE_REQUEST_ID: u64 = 2;

/// Initial capacity of a subscription connection's receive buffer.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// What a [`Subscription`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "changes are the common item; boxing each would cost an allocation per change"
)]
pub enum Streamed {
    /// A committed change, in commit order within its partition, each at most once.
    Change(Change),
    /// The stream has read everything committed when the node sent this: where it stands,
    /// one position per partition. Yielded once each time the stream goes from behind to
    /// caught up (at the start too, if it starts caught up).
    CaughtUp(Vec<Position>),
}

/// One item of a [`Subscription`].
type Item = Result<Streamed, ClientError>;

/// A running change stream, from [`Client::subscribe`]. It is a
/// [`futures_core::Stream`] of `Result<Streamed, ClientError>`, and [`Subscription::recv`]
/// reads it without a stream combinator library. After an `Err` item the stream ends.
/// Dropping it stops the stream's task and closes its connection.
pub struct Subscription {
    items: mpsc::Receiver<Vec<Item>>,
    /// Where the task's cursor stood after the last batch it queued.
    positions: Arc<Mutex<Vec<Position>>>,
    /// The rest of the batch being read.
    batch: std::collections::VecDeque<Item>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("buffered", &(self.batch.len() + self.items.len()))
            .field("finished", &self.task.is_finished())
            .finish()
    }
}

impl Subscription {
    /// The next item; `None` once the stream has ended (after an `Err` item).
    pub async fn recv(&mut self) -> Option<Result<Streamed, ClientError>> {
        while self.batch.is_empty() {
            self.batch.extend(self.items.recv().await?);
        }
        self.batch.pop_front()
    }

    /// Where the stream stands, per partition: past every change queued for this
    /// subscription (those the filter left out too), as the frames said. Once
    /// [`Subscription::try_recv`] has found nothing ready, every change up to these
    /// positions has been received: a consumer waiting for the stream to reach a log index
    /// (say, the one a write was applied at) compares it with these.
    pub fn positions(&self) -> Vec<Position> {
        self.positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The next item if one is ready now (`None` if none is, or the stream has ended): a
    /// consumer that batches its output flushes when nothing is ready.
    pub fn try_recv(&mut self) -> Option<Result<Streamed, ClientError>> {
        while self.batch.is_empty() {
            self.batch.extend(self.items.try_recv().ok()?);
        }
        self.batch.pop_front()
    }
}

impl futures_core::Stream for Subscription {
    type Item = Result<Streamed, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        while self.batch.is_empty() {
            match self.items.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.batch.extend(batch),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(self.batch.pop_front())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Streams the changes the cluster commits: ledgers and accounts created (or refused),
    /// transfers decided with both accounts' balances right after, holds expired — starting
    /// at `from`, keeping what `filter` keeps, in commit order per partition, for as long as
    /// the [`Subscription`] lives.
    ///
    /// The subscription survives failures: when its connection breaks, goes silent, or the
    /// node ends the stream, it reconnects (to the next node it knows; any node serves the
    /// same positions) and resumes right after the last position it stood at, dropping any
    /// change it already delivered, so each change arrives once. [`Streamed::CaughtUp`] says
    /// when the stream has read everything committed, which tells a consumer that it has
    /// seen the whole backlog. To resume in a later process, keep the last position handled
    /// per partition and subscribe [`StreamFrom::After`] them.
    ///
    /// The stream ends, with one `Err` item, only on what retrying cannot fix:
    /// [`ClientError::Invalid`] if the subscription breaks a limit of the protocol (more than
    /// [`FILTER_VALUES_MAX`](crate::wire::messages::FILTER_VALUES_MAX) values in a filter
    /// list, two positions for one partition), [`ClientError::Rejected`] if a node refuses
    /// it with an error that is not retryable (`malformed`, e.g. for a filter the server
    /// refuses), [`ClientError::Protocol`] if nodes keep breaking the protocol without the
    /// stream moving. See the `subscription` module documentation for the details.
    ///
    /// Must be called inside a tokio runtime (it spawns the stream's task); the task holds a
    /// clone of this client.
    pub fn subscribe(&self, from: StreamFrom, filter: StreamFilter) -> Subscription {
        let (sender, items) = mpsc::channel(SUBSCRIPTION_QUEUE_MAX);
        let positions = Arc::new(Mutex::new(Cursor::new(&from).positions()));
        let feed = Feed::new(
            self.clone(),
            from,
            filter,
            sender.clone(),
            positions.clone(),
        );
        let task = tokio::spawn(async move {
            if let Err(error) = feed.run().await {
                // The consumer may be gone already; then nobody is left to tell.
                let _ = sender.send(vec![Err(error)]).await;
            }
        });
        Subscription {
            items,
            positions,
            batch: std::collections::VecDeque::new(),
            task,
        }
    }
}

/// Checks a subscription before anything is sent: it must encode within the protocol's
/// limits, and name each partition at most once.
fn validate(from: &StreamFrom, filter: &StreamFilter) -> Result<(), ClientError> {
    if let StreamFrom::After(positions) = from {
        let mut partitions: Vec<PartitionId> = positions.iter().map(|p| p.partition).collect();
        partitions.sort_unstable();
        if let Some(pair) = partitions.windows(2).find(|w| w[0] == w[1]) {
            return Err(ClientError::Invalid(format!(
                "StreamFrom::After names partition {} twice",
                pair[0]
            )));
        }
    }
    EncodedRequest::new(&SubscribeRequest::new(from, filter))
        .map(|_| ())
        .map_err(|e| ClientError::Invalid(format!("the subscription breaks a limit: {e}")))
}

/// Per partition, the last position the stream stands at (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Cursor {
    last: BTreeMap<PartitionId, Position>,
}

impl Cursor {
    /// The cursor of a stream that starts at `from`: the positions of `After`, else none.
    fn new(from: &StreamFrom) -> Cursor {
        let mut cursor = Cursor::default();
        if let StreamFrom::After(positions) = from {
            cursor.advance(positions);
        }
        cursor
    }

    /// Whether a change at `position` is new (strictly after the cursor of its partition);
    /// if so the cursor moves to it. A change at or before the cursor was delivered already.
    fn admit(&mut self, position: Position) -> bool {
        match self.last.get(&position.partition) {
            Some(last) if position <= *last => false,
            _ => {
                self.last.insert(position.partition, position);
                true
            }
        }
    }

    /// Moves the cursor up to `positions` where they are ahead; it never moves back.
    fn advance(&mut self, positions: &[Position]) {
        for &position in positions {
            let last = self.last.entry(position.partition).or_insert(position);
            if position > *last {
                *last = position;
            }
        }
    }

    /// One position per partition, in partition order.
    fn positions(&self) -> Vec<Position> {
        self.last.values().copied().collect()
    }

    /// Whether every partition of a cluster of `partition_count` has a position.
    fn covers(&self, partition_count: u32) -> bool {
        (0..partition_count).all(|p| self.last.contains_key(&PartitionId(p)))
    }
}

/// Where a stream that began at `original` resumes, given its cursor. From the start or after
/// positions, "after the cursor" is exact (a partition it does not name starts from the
/// start, as it did). From now or a time, it is exact only once the cursor names every
/// partition; before that the original start is asked again, and the cursor drops what was
/// delivered already.
fn resume_from(original: &StreamFrom, cursor: &Cursor, partition_count: u32) -> StreamFrom {
    let exact = match original {
        StreamFrom::Start | StreamFrom::After(_) => !cursor.last.is_empty(),
        StreamFrom::Now | StreamFrom::Time(_) => cursor.covers(partition_count),
    };
    if exact {
        StreamFrom::After(cursor.positions())
    } else {
        original.clone()
    }
}

/// What the stream has delivered: the cursor, and whether the last frame was caught up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct StreamState {
    cursor: Cursor,
    caught_up: bool,
}

impl StreamState {
    /// Takes one frame: the changes that are new, in order, then `CaughtUp` if the stream
    /// just caught up. Fails, taking nothing, if the frame names a partition outside a
    /// cluster of `partition_count` partitions.
    fn absorb(
        &mut self,
        frame: &StreamFrame,
        partition_count: u32,
    ) -> Result<Vec<Streamed>, String> {
        let partitions = frame
            .changes
            .iter()
            .map(|c| c.position.partition)
            .chain(frame.positions.iter().map(|p| p.partition));
        for partition in partitions {
            if partition.0 >= partition_count {
                return Err(format!(
                    "the stream names partition {partition} of a cluster of {partition_count}"
                ));
            }
        }
        let mut items: Vec<Streamed> = frame
            .changes
            .iter()
            .filter(|c| self.cursor.admit(c.position))
            .cloned()
            .map(Streamed::Change)
            .collect();
        self.cursor.advance(&frame.positions);
        if frame.caught_up && !self.caught_up {
            items.push(Streamed::CaughtUp(self.cursor.positions()));
        }
        self.caught_up = frame.caught_up;
        Ok(items)
    }
}

/// The addresses a subscription rotates through: the nodes of the cluster as reported in
/// `Hello`, at most [`LEARNED_ADDRESSES_MAX`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Nodes {
    addresses: Vec<String>,
    next: usize,
}

impl Nodes {
    /// Adds the addresses `info` reports that are new: the answering node's first (when the
    /// list is empty, it becomes the first to try), then the other nodes, then the leaders.
    fn learn(&mut self, info: &ClusterInfo) {
        let answering = info.nodes.iter().filter(|n| n.node_id == info.node_id);
        let others = info.nodes.iter().filter(|n| n.node_id != info.node_id);
        let reported = answering
            .chain(others)
            .filter_map(|n| n.address.as_ref())
            .chain(info.leaders.iter().filter_map(|l| l.address.as_ref()));
        for address in reported {
            if self.addresses.len() >= LEARNED_ADDRESSES_MAX {
                break;
            }
            if !self.addresses.contains(address) {
                self.addresses.push(address.clone());
            }
        }
    }

    /// The address to try now.
    fn current(&self) -> Option<&str> {
        self.addresses
            .get(self.next % self.addresses.len().max(1))
            .map(String::as_str)
    }

    /// Moves on to the next address.
    fn rotate(&mut self) {
        self.next = (self.next + 1) % self.addresses.len().max(1);
    }
}

/// How an attempt ended that the task retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// On the next node (the connection failed, went silent, or the node cannot serve).
    Elsewhere,
    /// On the same node, at once (it ended the stream as too slow).
    Here,
    /// On the next node, counted towards [`STREAM_VIOLATIONS_MAX`].
    Violation,
}

/// Why the task stops.
enum Stop {
    /// The consumer dropped the subscription.
    ConsumerGone,
    /// What retrying cannot fix.
    Failed(ClientError),
}

/// The stream's task: see the module documentation.
struct Feed {
    client: Client,
    from: StreamFrom,
    filter: StreamFilter,
    items: mpsc::Sender<Vec<Item>>,
    state: StreamState,
    nodes: Nodes,
    /// From the latest `Hello` on the stream's own connection.
    partition_count: u32,
    /// Frames absorbed over the task's life: an attempt that moved it made progress.
    frames_absorbed: u64,
    /// Bounds the connect and `Hello` steps, as the client's router does.
    connect_timeout: Duration,
    /// The cursor as of the last batch handed to the consumer ([`Subscription::positions`]).
    shared: Arc<Mutex<Vec<Position>>>,
}

impl Feed {
    fn new(
        client: Client,
        from: StreamFrom,
        filter: StreamFilter,
        items: mpsc::Sender<Vec<Item>>,
        shared: Arc<Mutex<Vec<Position>>>,
    ) -> Feed {
        let options = client.options();
        let connect_timeout = options
            .request_timeout
            .min(options.liveness_timeout.saturating_mul(2));
        Feed {
            state: StreamState {
                cursor: Cursor::new(&from),
                caught_up: false,
            },
            client,
            from,
            filter,
            items,
            nodes: Nodes::default(),
            partition_count: 0,
            shared,
            frames_absorbed: 0,
            connect_timeout,
        }
    }

    /// Runs attempts until the consumer leaves (`Ok`) or retrying cannot help (`Err`).
    async fn run(mut self) -> Result<(), ClientError> {
        validate(&self.from, &self.filter)?;
        // Attempts in a row that absorbed no frame, and that broke the protocol without the
        // cursor moving.
        let mut failures: u32 = 0;
        let mut violations: u32 = 0;
        loop {
            // Every known node failed once more in a row: the client (which knows the seeds)
            // may know better.
            let cycled = failures > 0
                && (failures as usize).is_multiple_of(self.nodes.addresses.len().max(1));
            if self.nodes.addresses.is_empty() || cycled {
                self.ask_client().await?;
            }
            let Some(address) = self.nodes.current().map(str::to_owned) else {
                // The client could not be asked, or its node reports no addresses: ask again.
                failures = failures.saturating_add(1);
                tokio::time::sleep(backoff(failures)).await;
                continue;
            };
            let frames_before = self.frames_absorbed;
            let cursor_before = self.state.cursor.clone();
            let (retry, reason) = match self.attempt(&address).await {
                Ok(ended) => ended,
                Err(Stop::ConsumerGone) => return Ok(()),
                Err(Stop::Failed(error)) => return Err(error),
            };
            failures = if self.frames_absorbed > frames_before {
                0
            } else {
                failures.saturating_add(1)
            };
            if retry == Retry::Violation && self.state.cursor == cursor_before {
                violations += 1;
                if violations >= STREAM_VIOLATIONS_MAX {
                    return Err(ClientError::Protocol(format!(
                        "the change stream made no progress: {violations} attempts in a row \
                         broke the protocol (is the server newer than this client?); last: \
                         {address}: {reason}"
                    )));
                }
            } else if self.state.cursor != cursor_before {
                violations = 0;
            }
            let pause = match retry {
                Retry::Here if failures == 0 => Duration::ZERO,
                Retry::Here => backoff(failures),
                Retry::Elsewhere | Retry::Violation => {
                    self.nodes.rotate();
                    backoff(failures)
                }
            };
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// Learns the cluster's node addresses from the client's own connection (which knows the
    /// seeds). Only a refusal that retrying cannot fix, or a closed client, stops the stream.
    /// The question is cut short after two connect timeouts (the client's own retries would
    /// go on for its whole retry deadline), so that an outage of the whole cluster is retried
    /// at the stream's own pace.
    async fn ask_client(&mut self) -> Result<(), ClientError> {
        let patience = self.connect_timeout.saturating_mul(2);
        let Ok(answer) = tokio::time::timeout(patience, self.client.cluster_info()).await else {
            return Ok(());
        };
        match answer {
            Ok(info) => {
                self.nodes.learn(&info);
                Ok(())
            }
            Err(ClientError::Rejected(e)) if !e.code.is_retryable() => {
                Err(ClientError::Rejected(e))
            }
            Err(ClientError::Closed) => Err(ClientError::Closed),
            // Unreachable for now: the stream goes on trying the nodes it knows, if any.
            Err(_) => Ok(()),
        }
    }

    /// One connection: connect, `Hello`, `Subscribe`, then frames until something ends it.
    /// Returns how to retry and why, or why the task must stop.
    async fn attempt(&mut self, address: &str) -> Result<(Retry, String), Stop> {
        let timeout = self.connect_timeout;
        let mut connection = match connect_tcp(address, timeout).await {
            Ok(stream) => FrameStream::new(stream),
            Err(e) => return Ok((Retry::Elsewhere, format!("connect: {e}"))),
        };
        let hello = hello_request().map_err(|e| Stop::Failed(ClientError::Invalid(e)))?;
        let said = tokio::time::timeout(timeout, async {
            connection.write(&hello, HELLO_REQUEST_ID).await?;
            loop {
                let frame = connection.read().await?;
                if frame.request_id == HELLO_REQUEST_ID || frame.request_id == 0 {
                    return hello_answer(&frame);
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer to hello within {timeout:?}")));
        let info = match said {
            Ok(info) => info,
            Err(e) => return Ok((Retry::Elsewhere, e)),
        };
        self.nodes.learn(&info);
        self.partition_count = info.partition_count;

        let from = resume_from(&self.from, &self.state.cursor, self.partition_count);
        let request =
            EncodedRequest::new(&SubscribeRequest::new(&from, &self.filter)).map_err(|e| {
                Stop::Failed(ClientError::Invalid(format!(
                    "the subscription breaks a limit: {e}"
                )))
            })?;
        let sent = tokio::time::timeout(timeout, connection.write(&request, SUBSCRIBE_REQUEST_ID))
            .await
            .unwrap_or_else(|_| Err(format!("could not send within {timeout:?}")));
        if let Err(e) = sent {
            return Ok((Retry::Elsewhere, e));
        }

        loop {
            let frame = match tokio::time::timeout(STREAM_SILENCE_MAX, connection.read()).await {
                Ok(Ok(frame)) => frame,
                Ok(Err(e)) => return Ok((Retry::Elsewhere, e)),
                Err(_) => {
                    return Ok((
                        Retry::Elsewhere,
                        format!("no frame for {STREAM_SILENCE_MAX:?}: presumed dead"),
                    ))
                }
            };
            if frame.op == Operation::Error {
                return match frame.decode_body::<ErrorResponse>() {
                    Ok(e) => refused(e.to_server_error()),
                    Err(e) => Ok((Retry::Violation, format!("undecodable error frame: {e}"))),
                };
            }
            if frame.request_id != SUBSCRIBE_REQUEST_ID || frame.op != Operation::SubscribeResponse
            {
                return Ok((
                    Retry::Violation,
                    format!(
                        "unexpected {} frame under request id {}",
                        frame.op.name(),
                        frame.request_id
                    ),
                ));
            }
            let typed = match decode_stream_frame(&frame) {
                Ok(typed) => typed,
                Err(e) => return Ok((Retry::Violation, e)),
            };
            let items = match self.state.absorb(&typed, self.partition_count) {
                Ok(items) => items,
                Err(e) => return Ok((Retry::Violation, e)),
            };
            self.frames_absorbed += 1;
            if !items.is_empty() {
                self.items
                    .send(items.into_iter().map(Ok).collect())
                    .await
                    .map_err(|_| Stop::ConsumerGone)?;
            }
            *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = self.state.cursor.positions();
            if let Some((reason, message)) = typed.end {
                let retry = match reason {
                    StreamEnd::TooSlow => Retry::Here,
                    _ => Retry::Elsewhere,
                };
                return Ok((
                    retry,
                    format!("stream ended: {} ({message})", reason.name()),
                ));
            }
        }
    }
}

/// What an `Error` frame on the stream means: retry elsewhere if its code allows, else stop.
fn refused(error: ServerError) -> Result<(Retry, String), Stop> {
    if error.code.is_retryable() {
        Ok((
            Retry::Elsewhere,
            format!("{}: {}", error.code.name(), error.message),
        ))
    } else {
        Err(Stop::Failed(ClientError::Rejected(error)))
    }
}

fn decode_stream_frame(frame: &Frame) -> Result<StreamFrame, String> {
    frame
        .decode_body::<SubscribeResponse>()
        .and_then(|body| body.to_frame())
        .map_err(|e| format!("bad stream frame: {e}"))
}

/// The pause after `failures` attempts in a row without progress: the minimum doubled per
/// failure after the first, capped at the maximum, times a random factor in `[0.5, 1]` so
/// that many subscribers cut off together do not come back together.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let pause = RESUBSCRIBE_BACKOFF_MIN
        .saturating_mul(1 << doublings)
        .min(RESUBSCRIBE_BACKOFF_MAX);
    pause.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// A subscription's connection: frames written whole, frames read one at a time.
struct FrameStream {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl FrameStream {
    fn new(stream: TcpStream) -> FrameStream {
        FrameStream {
            stream,
            buf: BytesMut::with_capacity(READ_BUFFER_SIZE),
            decoder: FrameDecoder::new(),
        }
    }

    async fn write(&mut self, request: &EncodedRequest, request_id: u64) -> Result<(), String> {
        self.stream
            .write_all(&request.frame(request_id))
            .await
            .map_err(|e| format!("write failed: {e}"))
    }

    /// The next frame. The decoder bounds each frame's size before its body is awaited.
    async fn read(&mut self) -> Result<Frame, String> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(format!("undecodable frame from the server: {e}")),
            }
            self.buf.reserve(READ_BUFFER_SIZE);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Err("connection closed by the server".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests;
