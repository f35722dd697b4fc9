//! The segmented, append-only log of one partition.
//!
//! This is the storage under the partition's Raft log: every [`Entry`] carries its Raft
//! index and term, and the operations are the ones a Raft storage needs — append a batch,
//! make it durable with one group commit, read ranges and terms, and throw away an
//! uncommitted suffix when a new leader overwrites it (Raft thesis §3.5).
//!
//! # Data flow
//!
//! The log lives in one directory as numbered segment files, `0000000000.seg`,
//! `0000000001.seg`, ... Each starts with a checksummed [`SegmentHeader`] naming the
//! partition, the segment id and the index of its first record; then come records, each a
//! 32-byte checksummed header followed by the payload. The exact bytes are in
//! `docs/format.md` ("Log segments") and in [`codec`].
//!
//! - [`Log::append`] encodes a batch into one buffer and writes it with one positioned write
//!   per touched segment. Nothing is fsynced. When the next record would push the active
//!   segment past `segment_size_max`, the active segment is fdatasynced, sealed and
//!   memory-mapped, and a new segment is created (file fsync, then directory fsync). A
//!   record larger than the maximum goes alone into a fresh segment.
//! - [`Log::sync`] is the group commit: one fdatasync per file written since the last sync
//!   (in practice only the active one, because sealing already synced the others), after
//!   which [`Log::synced_index`] covers everything appended.
//! - [`Log::read`] and [`Log::term`] use an in-memory index — per segment, the offset and
//!   term of every record — so they seek instead of scanning. Sealed segments are read
//!   through their memory map, the active one with positioned reads. Every record read is
//!   validated again (checksum, index, term) before it is returned.
//! - [`Log::truncate_suffix`] deletes whole later segments, newest first, fsyncs the
//!   directory, then shortens the segment that holds the cut and fsyncs it.
//!
//! # Invariants
//!
//! - Indexes are contiguous across records and segments; terms never decrease.
//! - Every segment except the last is sealed: fully durable, never written again unless a
//!   suffix truncation makes it the last. Hence a bad record in a non-last segment can only
//!   be corruption, never a torn write.
//! - Entries at or below the committed index are never removed.
//! - After a failed write, fsync, truncation or deletion the log is poisoned: every later
//!   call returns [`LogError::Poisoned`]. fsync is never retried, because after a failed
//!   fsync Linux may already have dropped the dirty pages and a second fsync would lie.
//!
//! # Recovery
//!
//! [`Log::open`] validates every segment header (a short or all-zero last segment is a torn
//! creation and is removed), checks that segments continue each other's indexes, and scans
//! every record. In the last segment, an invalid record is a torn tail only if no valid
//! record (marker found, checksum verifies) exists anywhere after it; the file is then cut
//! there and fsynced, and the cut is reported in [`RecoveryReport`]. Anything else is
//! [`LogError::Corrupt`] with the segment and byte offset — never silently skipped. Open ends
//! with an fdatasync of the last segment: bytes a crashed process left in the page cache
//! are not durable yet, and `synced_index` must not claim otherwise.
//!
//! # Deliberate omissions
//!
//! - No prefix compaction (`truncate_prefix`) and no way to start an empty log at an index
//!   other than 1 (needed for snapshot install); segment headers already carry their first
//!   index so both can be added without a format change.
//! - No directory lock: two processes opening the same directory corrupt it.
//! - Writes within one unsynced batch may reach the disk out of order. If a crash persists
//!   a later record but not an earlier one, recovery reports corruption rather than
//!   guessing; Raft can rebuild the replica from its peers. Likewise a torn record whose
//!   surviving payload happens to contain a complete valid record is reported as corrupt.
//! - The in-memory index costs 16 bytes per entry.

pub mod codec;
mod error;
mod log;

pub use codec::{
    check_record, decode_record, decode_segment_header, encode_record, encode_segment_header,
    Entry, EntryKind, HeaderError, RecordError, RecordMeta, SegmentHeader, ENTRY_PAYLOAD_SIZE_MAX,
    RECORD_HEADER_SIZE, RECORD_MARKER, SEGMENT_HEADER_SIZE,
};
pub use error::{CorruptReason, IoOp, LogError};
pub use log::{
    segment_file_name, Log, LogConfig, LogStats, RecoveryReport, SEGMENT_SIZE_MAX_DEFAULT,
    SEGMENT_SIZE_MAX_LIMIT, SEGMENT_SIZE_MAX_MIN,
};
