//! One `Subscribe` request, served from the change logs of this node's replicas until the
//! connection closes or the consumer falls too far behind.
//!
//! Each partition has a [`ChangeReader`]; reads run on tokio's blocking pool, about
//! [`READ_BUDGET`] bytes at a time, and changes leave in frames of about [`FRAME_BUDGET`]
//! bytes. Nothing else is held: a stream costs its connection's queue (at most
//! [`STREAM_BUFFER_MAX`] bytes, then it waits) and one read. A consumer that leaves the queue
//! full while [`BEHIND_BYTES_MAX`] bytes (by default) of changes commit, or for [`STALL_TIMEOUT`], gets an
//! end `TooSlow` with the position to resume from, after everything already queued.
//!
//! A node that knows no leader of some partition for [`ISOLATED_AFTER`] may be cut off from
//! its peers: its streams end `Isolated`, so that consumers resume on another node.
//!
//! Frames carry the positions the stream stands at (past every change it read, those the
//! filter left out too), so a consumer resuming after them skips nothing and re-reads
//! nothing. Idle streams send such a frame every [`KEEPALIVE`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use prost::Message;
use tally_client::wire::changes::{StreamFilter, StreamFrom};
use tally_client::wire::codes::{ChangeKind, StreamEnd};
use tally_client::wire::messages::{
    u128_from_bytes, SubscribeResponse, WireChange, WirePosition, WireStreamEnd,
    CHANGES_PER_FRAME_MAX,
};
use tally_client::wire::{encode_body, encode_raw_frame, Operation, FRAME_BODY_SIZE_MAX};
use tokio::sync::Notify;

use super::log::{ChangeLogError, ChangeReader, Record};
use super::ChangeFeed;

/// Bytes of change-log bodies one read of one partition takes.
pub const READ_BUDGET: usize = 512 << 10;
/// Bytes of changes in one frame, about.
pub const FRAME_BUDGET: usize = 1 << 20;
/// Bytes queued on the connection above which a stream waits for the consumer (or the
/// stream's `behind_bytes_max`, if smaller).
pub const STREAM_BUFFER_MAX: usize = 4 << 20;
/// Bytes of changes that may commit while a stream waits on a full queue, by default
/// (`stream_behind_bytes_max` in the node's configuration).
pub const BEHIND_BYTES_MAX: u64 = 64 << 20;
/// How long a stream may wait on a full queue.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle stream says where it stands.
pub const KEEPALIVE: Duration = Duration::from_secs(2);
/// How long a node may know no leader of a partition before its streams end `Isolated`
/// (it may be cut off from its peers, and would stream nothing new; elections take well
/// under this).
pub const ISOLATED_AFTER: Duration = Duration::from_secs(5);

/// What a stream needs of its connection.
pub struct StreamIo {
    /// Queues a frame for the consumer.
    pub send: Box<dyn Fn(BytesMut) + Send + Sync>,
    /// Bytes queued and not yet written.
    pub queued: Arc<AtomicUsize>,
    /// Notified when queued bytes are written.
    pub drained: Arc<Notify>,
    /// Whether the connection is closing.
    pub closed: Box<dyn Fn() -> bool + Send + Sync>,
    /// Bytes of changes that may commit while the queue stays full ([`BEHIND_BYTES_MAX`]
    /// by default).
    pub behind_bytes_max: u64,
    /// The leader of each partition as this node sees it (0: none known).
    pub leaders: Arc<Vec<AtomicU64>>,
}

/// One partition's part of a stream.
struct Part {
    partition: u32,
    feed: Arc<ChangeFeed>,
    /// `None` while a read has it.
    reader: Option<ChangeReader>,
    /// Records read and not yet sent; the front one from change `cursor` on.
    pending: VecDeque<Record>,
    /// Byte offset and change number of the next change in the front record.
    cursor: (usize, u32),
    /// Changes of this entry up to and including this event are dropped (a resume in the
    /// middle of an entry).
    skip_through: Option<(u64, u32)>,
    /// Changes stamped before this are dropped.
    time_min: u64,
    /// Where the stream stands: everything up to and including this has been read.
    at: (u64, u32),
}

impl Part {
    fn caught_up(&self) -> bool {
        self.pending.is_empty()
            && self
                .reader
                .as_ref()
                .is_some_and(|r| r.last() >= self.feed.end())
    }
}

/// Whole-entry marker: a position `(index, WHOLE)` is past every change of the entry.
const WHOLE: u32 = u32::MAX;

/// Serves one subscription of request `request_id` until the connection closes or the end.
pub async fn serve(
    feeds: Vec<Arc<ChangeFeed>>,
    request_id: u64,
    from: StreamFrom,
    filter: StreamFilter,
    io: StreamIo,
) {
    let mut parts = match open_parts(&feeds, &from).await {
        Ok(parts) => parts,
        Err(error) => {
            end(
                &io,
                request_id,
                &[],
                StreamEnd::Unreadable,
                &error.to_string(),
            );
            return;
        }
    };
    let mut last_sent = Instant::now();
    let mut said_caught_up = false;
    let mut leaderless: Option<(usize, Instant)> = None;
    loop {
        if (io.closed)() {
            return;
        }
        match io
            .leaders
            .iter()
            .position(|l| l.load(Ordering::Relaxed) == 0)
        {
            None => leaderless = None,
            Some(p) => {
                let (_, since) = *leaderless.get_or_insert((p, Instant::now()));
                if since.elapsed() >= ISOLATED_AFTER {
                    let message = format!(
                        "this node has known no leader of partition {p} for {} s: it may be \
                         cut off from its peers; resume on another node",
                        since.elapsed().as_secs()
                    );
                    end(&io, request_id, &parts, StreamEnd::Isolated, &message);
                    return;
                }
            }
        }
        // Wait while the consumer has not read what is queued.
        let buffer_max = STREAM_BUFFER_MAX.min(io.behind_bytes_max as usize);
        if io.queued.load(Ordering::Relaxed) > buffer_max {
            let stalled = Instant::now();
            let written_at_stall: u64 = feeds.iter().map(|f| f.written()).sum();
            while io.queued.load(Ordering::Relaxed) > buffer_max {
                if (io.closed)() {
                    return;
                }
                let behind = feeds.iter().map(|f| f.written()).sum::<u64>() - written_at_stall;
                if behind > io.behind_bytes_max || stalled.elapsed() > STALL_TIMEOUT {
                    let message = format!(
                        "the consumer read nothing for {} ms while {behind} bytes of changes \
                         committed; resume from the positions given (read from disk)",
                        stalled.elapsed().as_millis()
                    );
                    end(&io, request_id, &parts, StreamEnd::TooSlow, &message);
                    return;
                }
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), io.drained.notified()).await;
            }
        }
        let stood: Vec<(u64, u32)> = parts.iter().map(|p| p.at).collect();
        if let Err(error) = fill(&mut parts).await {
            tracing::warn!(%error, "a change stream cannot read the change log");
            end(
                &io,
                request_id,
                &parts,
                StreamEnd::Unreadable,
                &error.to_string(),
            );
            return;
        }
        let mut frame = SubscribeResponse::default();
        let mut body = BytesMut::new();
        let mut changes = 0usize;
        take(&mut parts, &filter, &mut body, &mut changes);
        let caught_up = parts.iter().all(Part::caught_up);
        if changes > 0 || (caught_up && !said_caught_up) || last_sent.elapsed() >= KEEPALIVE {
            frame.positions = positions(&parts);
            frame.caught_up = caught_up;
            send_frame(&io, request_id, &frame, &body);
            last_sent = Instant::now();
            said_caught_up = caught_up;
        }
        let advanced = parts.iter().map(|p| p.at).ne(stood.iter().copied());
        if !caught_up && changes == 0 && !advanced {
            // Behind, yet nothing could be read: a record is still being written. Do not spin.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if caught_up {
            // Wait for any partition to move (checked again once the wait is registered, so
            // that no publish is missed), or the keepalive.
            let Some(moved) = feeds.first().map(|f| f.moved().clone()) else {
                return;
            };
            let notified = moved.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if parts.iter().all(Part::caught_up) {
                let wait = KEEPALIVE.saturating_sub(last_sent.elapsed());
                let _ = tokio::time::timeout(wait.min(Duration::from_millis(500)), notified).await;
            }
        }
    }
}

async fn open_parts(
    feeds: &[Arc<ChangeFeed>],
    from: &StreamFrom,
) -> Result<Vec<Part>, ChangeLogError> {
    let mut parts = Vec::with_capacity(feeds.len());
    for (partition, feed) in feeds.iter().enumerate() {
        let partition = partition as u32;
        let dir = feed.dir().to_path_buf();
        let (after, skip_through, time_min) = match from {
            StreamFrom::Start => (0, None, 0),
            StreamFrom::Now => (feed.end(), None, 0),
            StreamFrom::Time(t) => (0, None, t.0),
            StreamFrom::After(positions) => {
                match positions.iter().find(|p| p.partition.0 == partition) {
                    None => (0, None, 0),
                    Some(p) if p.event == WHOLE => (p.index, None, 0),
                    Some(p) => (p.index.saturating_sub(1), Some((p.index, p.event)), 0),
                }
            }
        };
        let reader = tokio::task::spawn_blocking(move || {
            if time_min > 0 {
                ChangeReader::from_time(&dir, time_min)
            } else {
                ChangeReader::after(&dir, after)
            }
        })
        .await
        .expect("a change reader's open does not panic")?;
        let at = match skip_through {
            Some(position) => position,
            None => (reader.last(), WHOLE),
        };
        parts.push(Part {
            partition,
            feed: feed.clone(),
            reader: Some(reader),
            pending: VecDeque::new(),
            cursor: (0, 0),
            skip_through,
            time_min,
            at,
        });
    }
    Ok(parts)
}

/// Reads more records for every partition that has none pending and is behind.
async fn fill(parts: &mut [Part]) -> Result<(), ChangeLogError> {
    for part in parts.iter_mut() {
        let end = part.feed.end();
        let behind = part.reader.as_ref().is_some_and(|r| r.last() < end);
        if !part.pending.is_empty() || !behind {
            continue;
        }
        let mut reader = part.reader.take().expect("no read is in progress");
        let (reader, read) = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let read = reader.read(end, READ_BUDGET, &mut out).map(|()| out);
            (reader, read)
        })
        .await
        .expect("a change read does not panic");
        let last = reader.last();
        part.reader = Some(reader);
        let records = read?;
        part.pending.extend(records);
        if part.pending.is_empty() {
            part.at = part.at.max((last, WHOLE));
        }
    }
    Ok(())
}

/// Moves changes from the partitions' pending records into `body` (each a field 1 of a
/// `SubscribeResponse`), round robin, until the frame is full.
fn take(parts: &mut [Part], filter: &StreamFilter, body: &mut BytesMut, changes: &mut usize) {
    let full = |body: &BytesMut, changes: usize| {
        body.len() >= FRAME_BUDGET || changes >= CHANGES_PER_FRAME_MAX - 1
    };
    let mut progress = true;
    while progress && !full(body, *changes) {
        progress = false;
        for part in parts.iter_mut() {
            let Some(record) = part.pending.front() else {
                continue;
            };
            let index = record.header.index;
            let mut per_part = 0;
            while per_part < 4096 && !full(body, *changes) {
                let (offset, event) = part.cursor;
                let Some((start, end)) = next_field(&record.body, offset) else {
                    break;
                };
                part.cursor = (end, event + 1);
                per_part += 1;
                progress = true;
                part.at = (index, event);
                let skipped = part
                    .skip_through
                    .is_some_and(|(i, e)| index < i || (index == i && event <= e));
                if skipped {
                    continue;
                }
                let encoded = &record.body[offset..end];
                if !filter.is_empty() || part.time_min > 0 {
                    let Ok(change) = WireChange::decode(&record.body[start..end]) else {
                        continue;
                    };
                    if change.timestamp < part.time_min || !keeps(filter, &change) {
                        continue;
                    }
                }
                body.extend_from_slice(encoded);
                *changes += 1;
            }
            if next_field(&record.body, part.cursor.0).is_none() {
                part.at = (index, WHOLE);
                part.pending.pop_front();
                part.cursor = (0, 0);
                progress = true;
            }
        }
    }
}

/// The field at `offset` of a record body (field 1, length-delimited): the start of its
/// value and the end of the field. `None` at the end (or on bytes that do not parse, which a
/// checksummed record written by this node never has).
fn next_field(body: &[u8], offset: usize) -> Option<(usize, usize)> {
    let mut rest = body.get(offset..)?;
    if rest.is_empty() {
        return None;
    }
    let before = rest.len();
    let key = prost::encoding::decode_varint(&mut rest).ok()?;
    if key != (1 << 3 | 2) {
        return None;
    }
    let len = prost::encoding::decode_varint(&mut rest).ok()? as usize;
    let start = offset + (before - rest.len());
    let end = start.checked_add(len).filter(|&e| e <= body.len())?;
    Some((start, end))
}

/// Whether `filter` keeps `change`.
fn keeps(filter: &StreamFilter, change: &WireChange) -> bool {
    let (ledger, code, accounts): (u32, u32, [u128; 2]) = match ChangeKind::from_code(change.kind) {
        ChangeKind::Ledger => {
            let l = change.ledger.as_ref();
            (l.map_or(0, |l| l.id), l.map_or(0, |l| l.code), [0, 0])
        }
        ChangeKind::Account => {
            let a = change.account.as_ref();
            let id = a
                .and_then(|a| u128_from_bytes(&a.id, "id").ok())
                .unwrap_or(0);
            (a.map_or(0, |a| a.ledger), a.map_or(0, |a| a.code), [id, 0])
        }
        _ => (
            change.ledger_id,
            change.code,
            [
                u128_from_bytes(&change.debit_account, "debit").unwrap_or(0),
                u128_from_bytes(&change.credit_account, "credit").unwrap_or(0),
            ],
        ),
    };
    (filter.ledgers.is_empty() || filter.ledgers.iter().any(|l| l.0 == ledger))
        && (filter.codes.is_empty() || filter.codes.iter().any(|&c| u32::from(c) == code))
        && (filter.accounts.is_empty()
            || filter
                .accounts
                .iter()
                .any(|a| a.0 != 0 && accounts.contains(&a.0)))
}

fn positions(parts: &[Part]) -> Vec<WirePosition> {
    parts
        .iter()
        .map(|p| WirePosition {
            partition: p.partition,
            index: p.at.0,
            event: p.at.1,
        })
        .collect()
}

/// Queues a frame: `frame`'s other fields after the raw changes in `changes`.
fn send_frame(io: &StreamIo, request_id: u64, frame: &SubscribeResponse, changes: &[u8]) {
    let mut rest = BytesMut::new();
    frame.encode(&mut rest).expect("BytesMut grows on demand");
    let mut body = BytesMut::with_capacity(changes.len() + rest.len());
    body.extend_from_slice(changes);
    body.extend_from_slice(&rest);
    debug_assert!(body.len() <= FRAME_BODY_SIZE_MAX);
    let mut out = BytesMut::with_capacity(body.len() + 32);
    if encode_raw_frame(Operation::SubscribeResponse, request_id, &body, &mut out).is_ok() {
        (io.send)(out);
    }
}

fn end(io: &StreamIo, request_id: u64, parts: &[Part], why: StreamEnd, message: &str) {
    let mut message = message.to_string();
    message.truncate(1024);
    let frame = SubscribeResponse {
        positions: positions(parts),
        end: Some(WireStreamEnd {
            result: why.code(),
            message,
        }),
        ..SubscribeResponse::default()
    };
    let mut out = BytesMut::new();
    if encode_body(request_id, &frame, &mut out).is_ok() {
        (io.send)(out);
    }
}
