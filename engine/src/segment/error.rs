//! The log's operating errors (STYLE.md, "Errors: three kinds").
//!
//! Corruption always carries a typed location — the segment and the byte offset of the
//! header or record that failed — plus a typed reason, so an operator (or a test) can find
//! the exact bytes. Each error answers [`LogError::is_deterministic`]: errors caused by the
//! caller's input are deterministic (every replica would get the same one), errors caused by
//! this machine's disk are not.

use std::path::PathBuf;

use super::codec::{HeaderError, RecordError};
use crate::types::{LogIndex, PartitionId, SegmentId, Term};

/// Why bytes on disk were rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CorruptReason {
    /// The segment header failed validation.
    #[error("{0}")]
    Header(HeaderError),
    /// A record failed validation, and it is not a torn tail (see the recovery rules).
    #[error("{0}")]
    Record(RecordError),
    /// The header names another partition.
    #[error("segment belongs to partition {found}, expected {expected}")]
    PartitionMismatch {
        /// The partition this log was opened for.
        expected: PartitionId,
        /// The partition in the header.
        found: PartitionId,
    },
    /// The header's segment id differs from the file name's.
    #[error("segment header names segment {found}")]
    SegmentIdMismatch {
        /// The id in the header.
        found: SegmentId,
    },
    /// A segment or record does not carry the next index in sequence.
    #[error("index gap: expected {expected}, found {found}")]
    IndexGap {
        /// The index that should come next.
        expected: LogIndex,
        /// The index stored.
        found: LogIndex,
    },
    /// A record's term is lower than its predecessor's; Raft log terms never decrease.
    #[error("term regressed at index {index}: {term} after {previous}")]
    TermRegressed {
        /// The record's index.
        index: LogIndex,
        /// The record's term.
        term: Term,
        /// The previous record's term.
        previous: Term,
    },
    /// A segment file is longer than any segment this code writes.
    #[error("segment file is {size} bytes, more than the maximum {max}")]
    FileTooLarge {
        /// The file's size.
        size: u64,
        /// The largest size a segment can legitimately have.
        max: u64,
    },
    /// Neither durability slot of the last segment decodes, though records follow them.
    #[error("no valid durability slot: {0}")]
    Slots(super::codec::SlotError),
    /// The log ends before the prefix its durability slot says was made durable: a segment
    /// was shortened or removed.
    #[error("the log ends at index {last}, but entries up to {durable} were made durable")]
    DurableMissing {
        /// The durable prefix the slot records.
        durable: LogIndex,
        /// The last index the log still holds.
        last: LogIndex,
    },
    /// The entry at the end of the durable prefix has another term than the slot recorded.
    #[error("entry {index} has term {found}, but term {expected} was made durable there")]
    DurableTermMismatch {
        /// The index.
        index: LogIndex,
        /// The term the slot recorded.
        expected: Term,
        /// The term found.
        found: Term,
    },
    /// The last segment says a later one was created, and there is none.
    #[error("the segment is sealed, but the segment after it is missing")]
    SuccessorMissing,
    /// A record read back does not match the in-memory index built when it was written.
    #[error("record at index {index} does not match the in-memory index")]
    IndexMismatch {
        /// The index that was requested.
        index: LogIndex,
    },
}

/// Where a failed IO operation was heading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// Creating the directory or a segment file.
    Create,
    /// Opening or listing.
    Open,
    /// Reading.
    Read,
    /// Writing.
    Write,
    /// fsync / fdatasync of a file or directory.
    Sync,
    /// Shortening a file.
    Truncate,
    /// Deleting a file.
    Remove,
    /// Memory-mapping a sealed segment.
    Map,
}

/// The log's error type.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The operating system reported an error.
    #[error("{op:?} {path}: {source}")]
    Io {
        /// What was being attempted.
        op: IoOp,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes on disk failed validation.
    #[error("corrupt segment {segment} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        segment: SegmentId,
        /// Byte offset in the file of the header (0) or record that failed.
        offset: u64,
        /// What was wrong.
        reason: CorruptReason,
    },
    /// An earlier write or fsync failed; the log must be reopened (recovered) before use.
    /// fsync is never retried: after a failure the kernel may have dropped the dirty pages.
    #[error("log is poisoned by an earlier IO failure; reopen it")]
    Poisoned,
    /// Appended entries do not continue the log.
    #[error("entry index {found} does not follow the log, expected {expected}")]
    NotContiguous {
        /// The next index the log expects.
        expected: LogIndex,
        /// The index offered.
        found: LogIndex,
    },
    /// An appended entry has a lower term than its predecessor.
    #[error("entry {index} has term {term}, lower than the previous term {previous}")]
    TermRegressed {
        /// The entry's index.
        index: LogIndex,
        /// The entry's term.
        term: Term,
        /// The term of the entry before it.
        previous: Term,
    },
    /// An appended entry's payload exceeds `ENTRY_PAYLOAD_SIZE_MAX`.
    #[error("entry {index} payload of {size} bytes exceeds the maximum")]
    PayloadTooLarge {
        /// The entry's index.
        index: LogIndex,
        /// Its payload size.
        size: u64,
    },
    /// A suffix truncation would remove committed entries.
    #[error("cannot truncate from {from}: entries up to {committed} are committed")]
    TruncateCommitted {
        /// The first index to remove.
        from: LogIndex,
        /// The committed index.
        committed: LogIndex,
    },
    /// A read or truncation names indexes the log does not hold.
    #[error("range [{from}, {to}) is outside the log [{first}, {last}]")]
    OutOfRange {
        /// Start of the requested range.
        from: LogIndex,
        /// End (exclusive) of the requested range.
        to: LogIndex,
        /// The log's first index.
        first: LogIndex,
        /// The log's last index.
        last: LogIndex,
    },
    /// The configuration is outside the supported limits.
    #[error(
        "invalid log configuration: segment_size_max {segment_size_max} not in [{min}, {max}]"
    )]
    InvalidConfig {
        /// The configured value.
        segment_size_max: u64,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
    },
}

impl LogError {
    /// True if every replica given the same input would get the same error (caller
    /// mistakes); false for errors that come from this machine's disk or OS. On the apply
    /// path a non-deterministic error must panic the replica rather than diverge.
    pub fn is_deterministic(&self) -> bool {
        match self {
            LogError::Io { .. } | LogError::Corrupt { .. } | LogError::Poisoned => false,
            LogError::NotContiguous { .. }
            | LogError::TermRegressed { .. }
            | LogError::PayloadTooLarge { .. }
            | LogError::TruncateCommitted { .. }
            | LogError::OutOfRange { .. }
            | LogError::InvalidConfig { .. } => true,
        }
    }
}
