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
//! # Durability slots
//!
//! After each successful sync the log writes a small checksummed *slot* into the active
//! segment (two positions used in turn) saying how far the log is durable. It is not
//! fsynced itself: the next group commit carries it to disk, so the slot on disk never
//! claims more than the disk holds and trails the truth by at most one group commit. A
//! segment is marked `sealed` in its slot once its successor is durable. Layout and the
//! reasoning: `docs/format.md`, "Durability slots".
//!
//! # Recovery
//!
//! [`Log::open`] validates every segment header (a zero-filled last segment, or a short
//! one without a valid header and slot, is a torn creation and is removed), checks that
//! segments continue each other's indexes from 1, and scans every record. Everything up to
//! the durable prefix of the last segment's slot must be intact; after it comes the
//! unsynced tail, which a crash may have torn or written out of order, and which is cut at
//! its first bad record whatever follows (reported in [`RecoveryReport`]). A log that ends
//! before its durable prefix, whose durable entry has another term, or whose last segment
//! is sealed (a later one was lost) is damaged. Damage is [`LogError::Corrupt`] with the
//! segment and byte offset — never silently skipped — unless the caller asks
//! [`Log::open_repairing`] to cut it away (a replica whose peers still have the entries).
//! Open ends with an fdatasync of the last segment: bytes a crashed process left in the
//! page cache are not durable yet, and `synced_index` must not claim otherwise.
//!
//! # Deliberate omissions
//!
//! - No prefix compaction (`truncate_prefix`) and no way to start an empty log at an index
//!   other than 1 (needed for snapshot install); segment headers already carry their first
//!   index so both can be added without a format change.
//! - The durability slot on disk may trail the last group commit: damage to that one batch
//!   after it was synced looks like a torn write and is cut, not reported (format.md).
//! - The in-memory index costs 16 bytes per entry.

pub mod codec;
mod error;
mod log;

pub use codec::{
    check_record, decode_record, decode_segment_header, decode_slot, encode_record,
    encode_segment_header, encode_slot, newest_slot, DurabilitySlot, Entry, EntryKind, HeaderError,
    RecordError, RecordMeta, SegmentHeader, SlotError, DURABILITY_SLOT_OFFSETS,
    DURABILITY_SLOT_SIZE, ENTRY_PAYLOAD_SIZE_MAX, RECORD_HEADER_SIZE, RECORD_MARKER,
    SEGMENT_HEADER_SIZE, SEGMENT_RECORDS_OFFSET,
};
pub use error::{CorruptReason, IoOp, LogError};
pub use log::{
    segment_file_name, Log, LogConfig, LogFaults, LogStats, RecoveryReport, Repair,
    SEGMENT_SIZE_MAX_DEFAULT, SEGMENT_SIZE_MAX_LIMIT, SEGMENT_SIZE_MAX_MIN,
};
