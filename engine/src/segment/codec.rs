//! Byte codec for segment headers and log records.
//!
//! This file is the only place that knows the byte layout described in `docs/format.md`
//! ("Log segments"). Everything is little-endian. The functions here are pure: they take
//! slices and return values or typed errors, so they can be fuzzed directly
//! (`fuzz/segment_record`) and never panic on arbitrary input.
//!
//! Decoding checks every length against the slice and against [`ENTRY_PAYLOAD_SIZE_MAX`]
//! *before* it allocates, and verifies the checksum before it trusts any other field.
//! [`check_record`] validates a record without copying its payload; recovery uses it to
//! scan whole segments without allocating, and [`decode_record`] builds on it.

use crate::types::{LogIndex, PartitionId, SegmentId, Term};

/// The largest payload one entry may carry. A length field above this is corruption, so a
/// flipped bit in a length can never make a decoder allocate gigabytes.
pub const ENTRY_PAYLOAD_SIZE_MAX: u32 = 64 * 1024 * 1024;

/// Marks the start of every record ("TREC" read as little-endian bytes). Recovery searches
/// for it when it must decide whether garbage is followed by a valid record.
pub const RECORD_MARKER: u32 = u32::from_le_bytes(*b"TREC");

/// Size in bytes of the fixed record header that precedes each payload.
pub const RECORD_HEADER_SIZE: usize = 32;

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TALLYLOG";

/// The segment format version written by this code; any other value is rejected.
/// Version 2 added the durability slots after the header.
pub const SEGMENT_FORMAT_VERSION: u16 = 2;

/// Size in bytes of the segment header at offset 0 of every segment file.
pub const SEGMENT_HEADER_SIZE: usize = 32;

/// Size in bytes of one durability slot ([`DurabilitySlot`]).
pub const DURABILITY_SLOT_SIZE: usize = 48;

/// Offsets of the two durability slots, right after the header. Writes alternate between
/// them, so a torn slot write leaves the other one intact.
pub const DURABILITY_SLOT_OFFSETS: [usize; 2] = [
    SEGMENT_HEADER_SIZE,
    SEGMENT_HEADER_SIZE + DURABILITY_SLOT_SIZE,
];

/// Where the first record of a segment starts: after the header and both slots.
pub const SEGMENT_RECORDS_OFFSET: usize = SEGMENT_HEADER_SIZE + 2 * DURABILITY_SLOT_SIZE;

/// Marks a durability slot ("TDUR" read as little-endian bytes).
pub const DURABILITY_SLOT_MARKER: u32 = u32::from_le_bytes(*b"TDUR");

/// The in-memory mirror of the record header layout, kept only so that the compiler checks
/// the documented size: the codec writes fields one by one at the offsets below.
#[repr(C)]
#[allow(dead_code)]
struct RecordHeader {
    marker: u32,
    payload_size: u32,
    checksum: u32,
    kind: u8,
    reserved: [u8; 3],
    index: u64,
    term: u64,
}
const _: () = assert!(std::mem::size_of::<RecordHeader>() == RECORD_HEADER_SIZE);

/// The in-memory mirror of the segment header layout (see [`RecordHeader`]). The first index
/// is split into two u32 halves because it sits at offset 20, which is not 8-byte aligned.
#[repr(C)]
#[allow(dead_code)]
struct SegmentHeaderLayout {
    magic: [u8; 8],
    version: u16,
    reserved: u16,
    partition: u32,
    segment: u32,
    first_index_low: u32,
    first_index_high: u32,
    checksum: u32,
}
const _: () = assert!(std::mem::size_of::<SegmentHeaderLayout>() == SEGMENT_HEADER_SIZE);

// Record header field offsets.
const RECORD_MARKER_OFFSET: usize = 0;
const RECORD_PAYLOAD_SIZE_OFFSET: usize = 4;
const RECORD_CHECKSUM_OFFSET: usize = 8;
const RECORD_KIND_OFFSET: usize = 12;
const RECORD_RESERVED_OFFSET: usize = 13;
const RECORD_INDEX_OFFSET: usize = 16;
const RECORD_TERM_OFFSET: usize = 24;

// Segment header field offsets.
const HEADER_VERSION_OFFSET: usize = 8;
const HEADER_RESERVED_OFFSET: usize = 10;
const HEADER_PARTITION_OFFSET: usize = 12;
const HEADER_SEGMENT_OFFSET: usize = 16;
const HEADER_FIRST_INDEX_OFFSET: usize = 20;
const HEADER_CHECKSUM_OFFSET: usize = 28;

/// What an entry means to the layer above. Stored as one byte; any other value is corruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// An ordinary command for the state machine.
    Normal = 0,
    /// A Raft configuration change (thesis §4).
    ConfChange = 1,
}

impl EntryKind {
    /// Decodes the on-disk byte, or `None` for a value no version of the format defines.
    pub fn from_u8(value: u8) -> Option<EntryKind> {
        match value {
            0 => Some(EntryKind::Normal),
            1 => Some(EntryKind::ConfChange),
            _ => None,
        }
    }
}

/// One log entry: its Raft position, the term of the leader that created it, and an opaque
/// payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log; the first entry of a log has index 1.
    pub index: LogIndex,
    /// Term of the leader that appended the entry.
    pub term: Term,
    /// Whether this is a normal command or a configuration change.
    pub kind: EntryKind,
    /// Opaque bytes for the layer above, at most [`ENTRY_PAYLOAD_SIZE_MAX`] long.
    pub payload: Vec<u8>,
}

impl Entry {
    /// The number of bytes this entry occupies in a segment file.
    pub fn record_size(&self) -> u64 {
        RECORD_HEADER_SIZE as u64 + self.payload.len() as u64
    }
}

/// Why a byte slice is not a valid record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The slice ends before the record does.
    #[error("record truncated: needs {needed} bytes, {available} available")]
    Truncated {
        /// Bytes the record needs (header, or header plus payload).
        needed: u64,
        /// Bytes actually present.
        available: u64,
    },
    /// The first four bytes are not [`RECORD_MARKER`].
    #[error("bad record marker {found:#010x}")]
    BadMarker {
        /// The four bytes found, read little-endian.
        found: u32,
    },
    /// The length field exceeds [`ENTRY_PAYLOAD_SIZE_MAX`].
    #[error("payload size {size} exceeds maximum {ENTRY_PAYLOAD_SIZE_MAX}")]
    PayloadTooLarge {
        /// The stored payload size.
        size: u32,
    },
    /// The stored checksum does not match the bytes.
    #[error("record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum stored in the record header.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
    /// The kind byte is not an [`EntryKind`].
    #[error("unknown entry kind {kind}")]
    UnknownKind {
        /// The stored kind byte.
        kind: u8,
    },
    /// The reserved bytes after the kind are not zero.
    #[error("reserved record bytes are not zero")]
    ReservedNonZero,
    /// Index 0 is never stored: the first entry of a log has index 1.
    #[error("record has index 0")]
    IndexZero,
}

/// The fields of a validated record, without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// The entry's index.
    pub index: LogIndex,
    /// The entry's term.
    pub term: Term,
    /// The entry's kind.
    pub kind: EntryKind,
    /// Payload size in bytes.
    pub payload_size: u32,
}

impl RecordMeta {
    /// Header plus payload, in bytes.
    pub fn record_size(&self) -> usize {
        RECORD_HEADER_SIZE + self.payload_size as usize
    }
}

fn read_u16(bytes: &[u8], offset: usize) -> u16 {
    crate::le::u16(&bytes[offset..offset + 2])
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    crate::le::u32(&bytes[offset..offset + 4])
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    crate::le::u64(&bytes[offset..offset + 8])
}

/// The record checksum: crc32 over the payload-size field and everything after the checksum
/// field (kind, reserved, index, term, payload). Covering the size too means a flipped length
/// bit is caught even if it happened to select a range whose crc matched.
fn record_checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[RECORD_PAYLOAD_SIZE_OFFSET..RECORD_CHECKSUM_OFFSET]);
    hasher.update(&header[RECORD_KIND_OFFSET..RECORD_HEADER_SIZE]);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends the encoding of `entry` to `out`.
///
/// Panics if the payload exceeds [`ENTRY_PAYLOAD_SIZE_MAX`] or the index is 0: callers
/// ([`super::Log::append`]) reject such entries with an error before encoding.
pub fn encode_record(entry: &Entry, out: &mut Vec<u8>) {
    let payload_size = entry.payload.len();
    assert!(
        payload_size <= ENTRY_PAYLOAD_SIZE_MAX as usize,
        "payload size {payload_size} exceeds maximum {ENTRY_PAYLOAD_SIZE_MAX}"
    );
    assert!(
        entry.index.0 > 0,
        "entry index must be positive, got {}",
        entry.index
    );
    let payload_size = payload_size as u32;

    let mut header = [0u8; RECORD_HEADER_SIZE];
    header[RECORD_MARKER_OFFSET..RECORD_MARKER_OFFSET + 4]
        .copy_from_slice(&RECORD_MARKER.to_le_bytes());
    header[RECORD_PAYLOAD_SIZE_OFFSET..RECORD_PAYLOAD_SIZE_OFFSET + 4]
        .copy_from_slice(&payload_size.to_le_bytes());
    header[RECORD_KIND_OFFSET] = entry.kind as u8;
    header[RECORD_INDEX_OFFSET..RECORD_INDEX_OFFSET + 8]
        .copy_from_slice(&entry.index.0.to_le_bytes());
    header[RECORD_TERM_OFFSET..RECORD_TERM_OFFSET + 8].copy_from_slice(&entry.term.0.to_le_bytes());
    let checksum = record_checksum(&header, &entry.payload);
    header[RECORD_CHECKSUM_OFFSET..RECORD_CHECKSUM_OFFSET + 4]
        .copy_from_slice(&checksum.to_le_bytes());

    let start = out.len();
    out.extend_from_slice(&header);
    out.extend_from_slice(&entry.payload);

    // Pair the checks: what we are about to write must pass the same validation as what we
    // read back. O(payload) for the checksum, hence debug only.
    debug_assert_eq!(
        check_record(&out[start..]),
        Ok(RecordMeta {
            index: entry.index,
            term: entry.term,
            kind: entry.kind,
            payload_size
        }),
        "freshly encoded record does not validate"
    );
}

/// Validates the record at the start of `bytes` without copying its payload.
///
/// Checks, in order: enough bytes for a header, the marker, the payload size against
/// [`ENTRY_PAYLOAD_SIZE_MAX`] and against the slice, the checksum, then the fields it covers.
/// Trailing bytes after the record are ignored.
pub fn check_record(bytes: &[u8]) -> Result<RecordMeta, RecordError> {
    if bytes.len() < RECORD_HEADER_SIZE {
        return Err(RecordError::Truncated {
            needed: RECORD_HEADER_SIZE as u64,
            available: bytes.len() as u64,
        });
    }
    let header = &bytes[..RECORD_HEADER_SIZE];
    let marker = read_u32(header, RECORD_MARKER_OFFSET);
    if marker != RECORD_MARKER {
        return Err(RecordError::BadMarker { found: marker });
    }
    let payload_size = read_u32(header, RECORD_PAYLOAD_SIZE_OFFSET);
    if payload_size > ENTRY_PAYLOAD_SIZE_MAX {
        return Err(RecordError::PayloadTooLarge { size: payload_size });
    }
    let record_size = RECORD_HEADER_SIZE + payload_size as usize;
    if bytes.len() < record_size {
        return Err(RecordError::Truncated {
            needed: record_size as u64,
            available: bytes.len() as u64,
        });
    }
    let payload = &bytes[RECORD_HEADER_SIZE..record_size];
    let stored = read_u32(header, RECORD_CHECKSUM_OFFSET);
    let computed = record_checksum(header, payload);
    if stored != computed {
        return Err(RecordError::ChecksumMismatch { stored, computed });
    }
    let kind_byte = header[RECORD_KIND_OFFSET];
    let kind = EntryKind::from_u8(kind_byte).ok_or(RecordError::UnknownKind { kind: kind_byte })?;
    if header[RECORD_RESERVED_OFFSET..RECORD_INDEX_OFFSET]
        .iter()
        .any(|&b| b != 0)
    {
        return Err(RecordError::ReservedNonZero);
    }
    let index = read_u64(header, RECORD_INDEX_OFFSET);
    if index == 0 {
        return Err(RecordError::IndexZero);
    }
    let term = read_u64(header, RECORD_TERM_OFFSET);
    Ok(RecordMeta {
        index: LogIndex(index),
        term: Term(term),
        kind,
        payload_size,
    })
}

/// Decodes the record at the start of `bytes`, returning the entry and the number of bytes
/// it occupied. Never panics; allocates only after the length and checksum were verified.
pub fn decode_record(bytes: &[u8]) -> Result<(Entry, usize), RecordError> {
    let meta = check_record(bytes)?;
    let record_size = meta.record_size();
    let payload = bytes[RECORD_HEADER_SIZE..record_size].to_vec();
    Ok((
        Entry {
            index: meta.index,
            term: meta.term,
            kind: meta.kind,
            payload,
        },
        record_size,
    ))
}

/// The header at offset 0 of every segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The partition whose log this segment belongs to.
    pub partition: PartitionId,
    /// This segment's id; must match the file name.
    pub segment: SegmentId,
    /// Index of the first record in the segment (or of the next one appended, if empty).
    pub first_index: LogIndex,
}

/// Why a byte slice is not a valid segment header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer than [`SEGMENT_HEADER_SIZE`] bytes.
    #[error("segment header truncated: {available} of {SEGMENT_HEADER_SIZE} bytes")]
    Truncated {
        /// Bytes present.
        available: u64,
    },
    /// The first eight bytes are not [`SEGMENT_MAGIC`].
    #[error("bad segment magic {found:02x?}")]
    BadMagic {
        /// The eight bytes found.
        found: [u8; 8],
    },
    /// The stored checksum does not match the header bytes.
    #[error("segment header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The stored checksum.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
    /// A version this code does not understand.
    #[error("unsupported segment format version {version}")]
    UnsupportedVersion {
        /// The stored version.
        version: u16,
    },
    /// The reserved field is not zero.
    #[error("reserved segment header bytes are not zero")]
    ReservedNonZero,
    /// Index 0 is never stored.
    #[error("segment header has first index 0")]
    IndexZero,
}

/// Encodes a segment header.
pub fn encode_segment_header(header: &SegmentHeader) -> [u8; SEGMENT_HEADER_SIZE] {
    assert!(
        header.first_index.0 > 0,
        "segment first index must be positive"
    );
    let mut bytes = [0u8; SEGMENT_HEADER_SIZE];
    bytes[..8].copy_from_slice(&SEGMENT_MAGIC);
    bytes[HEADER_VERSION_OFFSET..HEADER_VERSION_OFFSET + 2]
        .copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    bytes[HEADER_PARTITION_OFFSET..HEADER_PARTITION_OFFSET + 4]
        .copy_from_slice(&header.partition.0.to_le_bytes());
    bytes[HEADER_SEGMENT_OFFSET..HEADER_SEGMENT_OFFSET + 4]
        .copy_from_slice(&header.segment.0.to_le_bytes());
    bytes[HEADER_FIRST_INDEX_OFFSET..HEADER_FIRST_INDEX_OFFSET + 8]
        .copy_from_slice(&header.first_index.0.to_le_bytes());
    let checksum = crc32fast::hash(&bytes[..HEADER_CHECKSUM_OFFSET]);
    bytes[HEADER_CHECKSUM_OFFSET..].copy_from_slice(&checksum.to_le_bytes());
    debug_assert_eq!(decode_segment_header(&bytes), Ok(*header));
    bytes
}

/// Decodes and validates the segment header at the start of `bytes`. Never panics.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
    if bytes.len() < SEGMENT_HEADER_SIZE {
        return Err(HeaderError::Truncated {
            available: bytes.len() as u64,
        });
    }
    let bytes = &bytes[..SEGMENT_HEADER_SIZE];
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&bytes[..8]);
    if magic != SEGMENT_MAGIC {
        return Err(HeaderError::BadMagic { found: magic });
    }
    let stored = read_u32(bytes, HEADER_CHECKSUM_OFFSET);
    let computed = crc32fast::hash(&bytes[..HEADER_CHECKSUM_OFFSET]);
    if stored != computed {
        return Err(HeaderError::ChecksumMismatch { stored, computed });
    }
    let version = read_u16(bytes, HEADER_VERSION_OFFSET);
    if version != SEGMENT_FORMAT_VERSION {
        return Err(HeaderError::UnsupportedVersion { version });
    }
    if read_u16(bytes, HEADER_RESERVED_OFFSET) != 0 {
        return Err(HeaderError::ReservedNonZero);
    }
    let first_index = read_u64(bytes, HEADER_FIRST_INDEX_OFFSET);
    if first_index == 0 {
        return Err(HeaderError::IndexZero);
    }
    Ok(SegmentHeader {
        partition: PartitionId(read_u32(bytes, HEADER_PARTITION_OFFSET)),
        segment: SegmentId(read_u32(bytes, HEADER_SEGMENT_OFFSET)),
        first_index: LogIndex(first_index),
    })
}

/// What a segment says about the log's durable prefix: every entry up to `durable` (whose
/// term is `durable_term`) was made durable by an fsync before this slot was written. The
/// log writes a slot of its last segment after every successful sync (and never claims more
/// than that sync covered), so the slot on disk trails the durable prefix by at most one
/// group commit; see `docs/format.md`, "Durability slots".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurabilitySlot {
    /// Set once a later segment exists: this segment is complete and must not be the last.
    pub sealed: bool,
    /// Increases with every slot write of a segment; the valid slot with the larger one wins.
    pub sequence: u64,
    /// The durable prefix ends at this index (0: nothing was durable yet).
    pub durable: LogIndex,
    /// The term of the entry at `durable` (0 when `durable` is 0).
    pub durable_term: Term,
}

/// Why a durability slot does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// Fewer than [`DURABILITY_SLOT_SIZE`] bytes.
    #[error("durability slot truncated: {available} of {DURABILITY_SLOT_SIZE} bytes")]
    Truncated {
        /// Bytes present.
        available: u64,
    },
    /// The first four bytes are not [`DURABILITY_SLOT_MARKER`] (e.g. a slot never written).
    #[error("no durability slot marker")]
    BadMarker,
    /// The stored checksum does not match.
    #[error("durability slot checksum mismatch")]
    ChecksumMismatch,
    /// Flags or reserved bytes hold values no version defines.
    #[error("durability slot has unknown flags {flags:#x} or reserved bytes set")]
    Reserved {
        /// The flags field.
        flags: u32,
    },
}

const SLOT_FLAGS_OFFSET: usize = 4;
const SLOT_SEQUENCE_OFFSET: usize = 8;
const SLOT_DURABLE_OFFSET: usize = 16;
const SLOT_TERM_OFFSET: usize = 24;
const SLOT_RESERVED_OFFSET: usize = 32;
const SLOT_CHECKSUM_OFFSET: usize = 44;
const SLOT_FLAG_SEALED: u32 = 1;

/// Encodes a durability slot.
pub fn encode_slot(slot: &DurabilitySlot) -> [u8; DURABILITY_SLOT_SIZE] {
    let mut bytes = [0u8; DURABILITY_SLOT_SIZE];
    bytes[..4].copy_from_slice(&DURABILITY_SLOT_MARKER.to_le_bytes());
    let flags = if slot.sealed { SLOT_FLAG_SEALED } else { 0 };
    bytes[SLOT_FLAGS_OFFSET..SLOT_FLAGS_OFFSET + 4].copy_from_slice(&flags.to_le_bytes());
    bytes[SLOT_SEQUENCE_OFFSET..SLOT_SEQUENCE_OFFSET + 8]
        .copy_from_slice(&slot.sequence.to_le_bytes());
    bytes[SLOT_DURABLE_OFFSET..SLOT_DURABLE_OFFSET + 8]
        .copy_from_slice(&slot.durable.0.to_le_bytes());
    bytes[SLOT_TERM_OFFSET..SLOT_TERM_OFFSET + 8]
        .copy_from_slice(&slot.durable_term.0.to_le_bytes());
    let checksum = crc32fast::hash(&bytes[..SLOT_CHECKSUM_OFFSET]);
    bytes[SLOT_CHECKSUM_OFFSET..].copy_from_slice(&checksum.to_le_bytes());
    debug_assert_eq!(decode_slot(&bytes), Ok(*slot));
    bytes
}

/// Decodes and validates the durability slot at the start of `bytes`. Never panics.
pub fn decode_slot(bytes: &[u8]) -> Result<DurabilitySlot, SlotError> {
    if bytes.len() < DURABILITY_SLOT_SIZE {
        return Err(SlotError::Truncated {
            available: bytes.len() as u64,
        });
    }
    let bytes = &bytes[..DURABILITY_SLOT_SIZE];
    if read_u32(bytes, 0) != DURABILITY_SLOT_MARKER {
        return Err(SlotError::BadMarker);
    }
    if crc32fast::hash(&bytes[..SLOT_CHECKSUM_OFFSET]) != read_u32(bytes, SLOT_CHECKSUM_OFFSET) {
        return Err(SlotError::ChecksumMismatch);
    }
    let flags = read_u32(bytes, SLOT_FLAGS_OFFSET);
    if flags & !SLOT_FLAG_SEALED != 0
        || bytes[SLOT_RESERVED_OFFSET..SLOT_CHECKSUM_OFFSET]
            .iter()
            .any(|&b| b != 0)
    {
        return Err(SlotError::Reserved { flags });
    }
    Ok(DurabilitySlot {
        sealed: flags & SLOT_FLAG_SEALED != 0,
        sequence: read_u64(bytes, SLOT_SEQUENCE_OFFSET),
        durable: LogIndex(read_u64(bytes, SLOT_DURABLE_OFFSET)),
        durable_term: Term(read_u64(bytes, SLOT_TERM_OFFSET)),
    })
}

/// The newer of a segment's two slots that decode, if any (`bytes` is the whole segment or
/// at least its first [`SEGMENT_RECORDS_OFFSET`] bytes), and the position (0 or 1) it is in.
pub fn newest_slot(bytes: &[u8]) -> Option<(usize, DurabilitySlot)> {
    DURABILITY_SLOT_OFFSETS
        .iter()
        .enumerate()
        .filter_map(|(position, &offset)| {
            let slot = decode_slot(bytes.get(offset..)?).ok()?;
            Some((position, slot))
        })
        .max_by_key(|(_, slot)| slot.sequence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(index: u64, term: u64, kind: EntryKind, payload: &[u8]) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            kind,
            payload: payload.to_vec(),
        }
    }

    fn encoded(e: &Entry) -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(e, &mut out);
        out
    }

    #[test]
    fn round_trip_simple() {
        for e in [
            entry(1, 0, EntryKind::Normal, b""),
            entry(7, 3, EntryKind::ConfChange, b"hello"),
            entry(u64::MAX, u64::MAX, EntryKind::Normal, &[0xAB; 1000]),
        ] {
            let bytes = encoded(&e);
            assert_eq!(bytes.len() as u64, e.record_size());
            let (decoded, consumed) = decode_record(&bytes).expect("valid record");
            assert_eq!(decoded, e);
            assert_eq!(consumed, bytes.len());
        }
    }

    #[test]
    fn layout_matches_format_doc() {
        let bytes = encoded(&entry(0x0102, 0x0304, EntryKind::ConfChange, b"xy"));
        assert_eq!(&bytes[0..4], b"TREC");
        assert_eq!(&bytes[4..8], &2u32.to_le_bytes());
        assert_eq!(bytes[12], 1);
        assert_eq!(&bytes[13..16], &[0, 0, 0]);
        assert_eq!(&bytes[16..24], &0x0102u64.to_le_bytes());
        assert_eq!(&bytes[24..32], &0x0304u64.to_le_bytes());
        assert_eq!(&bytes[32..], b"xy");

        let header = SegmentHeader {
            partition: PartitionId(9),
            segment: SegmentId(4),
            first_index: LogIndex(77),
        };
        let bytes = encode_segment_header(&header);
        assert_eq!(&bytes[0..8], b"TALLYLOG");
        assert_eq!(&bytes[8..10], &2u16.to_le_bytes());
        assert_eq!(&bytes[12..16], &9u32.to_le_bytes());
        assert_eq!(&bytes[16..20], &4u32.to_le_bytes());
        assert_eq!(&bytes[20..28], &77u64.to_le_bytes());
        assert_eq!(decode_segment_header(&bytes), Ok(header));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encoded(&entry(5, 2, EntryKind::Normal, b"some payload bytes"));
        for len in 0..bytes.len() {
            let result = decode_record(&bytes[..len]);
            assert!(
                matches!(result, Err(RecordError::Truncated { .. })),
                "len {len}: {result:?}"
            );
        }
        let header = encode_segment_header(&SegmentHeader {
            partition: PartitionId(1),
            segment: SegmentId(0),
            first_index: LogIndex(1),
        });
        for len in 0..header.len() {
            assert!(matches!(
                decode_segment_header(&header[..len]),
                Err(HeaderError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let bytes = encoded(&entry(5, 2, EntryKind::Normal, b"payload"));
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = decode_record(&flipped);
            assert!(result.is_err(), "bit {bit} flip undetected: {result:?}");
        }
        let header = encode_segment_header(&SegmentHeader {
            partition: PartitionId(1),
            segment: SegmentId(2),
            first_index: LogIndex(3),
        });
        for bit in 0..header.len() * 8 {
            let mut flipped = header;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_segment_header(&flipped).is_err(),
                "header bit {bit} flip undetected"
            );
        }
    }

    #[test]
    fn oversized_length_rejected_before_allocation() {
        let mut bytes = encoded(&entry(5, 2, EntryKind::Normal, b""));
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode_record(&bytes),
            Err(RecordError::PayloadTooLarge { size: u32::MAX })
        );
    }

    #[test]
    fn unknown_kind_and_reserved_rejected() {
        // Re-sign the mutated header so that only the field check can fail.
        let resign = |bytes: &mut Vec<u8>| {
            let (header, payload) = bytes.split_at(RECORD_HEADER_SIZE);
            let checksum = record_checksum(header, payload);
            bytes[8..12].copy_from_slice(&checksum.to_le_bytes());
        };
        let mut bytes = encoded(&entry(5, 2, EntryKind::Normal, b"p"));
        bytes[12] = 2;
        resign(&mut bytes);
        assert_eq!(
            decode_record(&bytes),
            Err(RecordError::UnknownKind { kind: 2 })
        );

        let mut bytes = encoded(&entry(5, 2, EntryKind::Normal, b"p"));
        bytes[14] = 1;
        resign(&mut bytes);
        assert_eq!(decode_record(&bytes), Err(RecordError::ReservedNonZero));

        let mut bytes = encoded(&entry(5, 2, EntryKind::Normal, b"p"));
        bytes[16..24].copy_from_slice(&0u64.to_le_bytes());
        resign(&mut bytes);
        assert_eq!(decode_record(&bytes), Err(RecordError::IndexZero));
    }

    #[test]
    fn slots_round_trip_and_reject_damage() {
        let slot = DurabilitySlot {
            sealed: true,
            sequence: 9,
            durable: LogIndex(1234),
            durable_term: Term(5),
        };
        let bytes = encode_slot(&slot);
        assert_eq!(&bytes[..4], b"TDUR");
        assert_eq!(decode_slot(&bytes), Ok(slot));
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_slot(&flipped).is_err(),
                "slot bit {bit} flip undetected"
            );
        }
        for len in 0..bytes.len() {
            assert!(decode_slot(&bytes[..len]).is_err());
        }
        assert_eq!(
            decode_slot(&[0; DURABILITY_SLOT_SIZE]),
            Err(SlotError::BadMarker)
        );
    }

    #[test]
    fn the_newest_valid_slot_wins() {
        let mut area = vec![0u8; SEGMENT_RECORDS_OFFSET];
        assert_eq!(newest_slot(&area), None);
        let slot = |sequence| DurabilitySlot {
            sealed: false,
            sequence,
            durable: LogIndex(sequence * 10),
            durable_term: Term(1),
        };
        area[DURABILITY_SLOT_OFFSETS[0]..][..DURABILITY_SLOT_SIZE]
            .copy_from_slice(&encode_slot(&slot(4)));
        area[DURABILITY_SLOT_OFFSETS[1]..][..DURABILITY_SLOT_SIZE]
            .copy_from_slice(&encode_slot(&slot(5)));
        assert_eq!(newest_slot(&area), Some((1, slot(5))));
        area[DURABILITY_SLOT_OFFSETS[1] + 20] ^= 1;
        assert_eq!(newest_slot(&area), Some((0, slot(4))));
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            1..=u64::MAX,
            any::<u64>(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..512),
        )
            .prop_map(|(index, term, conf, payload)| Entry {
                index: LogIndex(index),
                term: Term(term),
                kind: if conf {
                    EntryKind::ConfChange
                } else {
                    EntryKind::Normal
                },
                payload,
            })
    }

    proptest! {
        // proptest prints the minimal failing input; its seed is persisted in
        // proptest-regressions/ and replayed on later runs.
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn prop_round_trip(e in arb_entry(), trailing in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut bytes = encoded(&e);
            let size = bytes.len();
            bytes.extend_from_slice(&trailing);
            let (decoded, consumed) = decode_record(&bytes).expect("valid record");
            prop_assert_eq!(decoded, e);
            prop_assert_eq!(consumed, size);
        }

        #[test]
        fn prop_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok((e, consumed)) = decode_record(&bytes) {
                prop_assert!(consumed <= bytes.len());
                prop_assert_eq!(consumed as u64, e.record_size());
            }
            let _ = decode_segment_header(&bytes);
        }

        #[test]
        fn prop_marker_prefixed_garbage_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = RECORD_MARKER.to_le_bytes().to_vec();
            bytes.extend_from_slice(&tail);
            if let Ok((_, consumed)) = decode_record(&bytes) {
                prop_assert!(consumed <= bytes.len());
            }
        }
    }
}
