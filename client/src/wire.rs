//! The wire protocol: versioned, checksummed frames carrying prost-encoded bodies.
//!
//! A connection carries a stream of frames in each direction. Every frame is a fixed 32-byte
//! little-endian header ([`FrameHeader`]) followed by a body of at most
//! [`FRAME_BODY_SIZE_MAX`] bytes. The header names the protocol version, the [`Operation`],
//! the client-chosen request id (echoed by the response, so that many requests can be in
//! flight on one connection and answered in any order), the body's size and CRC32, and ends
//! with a CRC32 of the header itself. `docs/protocol.md` is the byte-level specification and
//! changes in the same commit as this module.
//!
//! Data flow, receiving: bytes from the socket are appended to a `BytesMut`;
//! [`FrameDecoder::decode`] validates each header as soon as its 32 bytes have arrived (magic,
//! version, header checksum, reserved flags, operation, body size against the maximum) and
//! only then waits for, and makes room for, the body; once the body is complete its checksum is
//! verified and a [`Frame`] is split off without copying. [`Frame::decode_body`] then checks
//! that the operation matches the expected body type, counts the body's top-level repeated
//! fields against their maximums *before* prost allocates anything for them, decodes, and
//! validates the remaining bounds (memo and string sizes). Sending is the mirror image:
//! [`encode_body`] validates the body, then [`encode_frame`] writes header and body.
//!
//! Bodies are plain prost messages ([`messages`]) whose 128-bit integers travel as `bytes` and
//! whose amounts travel as a mantissa and a scale. The typed Rust values a program works with
//! (ids as newtypes, amounts as `rust_decimal::Decimal`, results as enums) live in [`types`]
//! and [`codes`]; the conversions between the two check every length and range, so no
//! malformed value reaches the rest of the client or the server.
//!
//! Invariants: a decoder never panics on bytes it receives, never recurses on peer input, and
//! never allocates more than a bounded multiple of a size it has already checked. Result codes
//! are numbers on the wire; a code this client does not know decodes to `Unknown(code)` rather
//! than failing, so an older client keeps working against a newer server.
//!
//! Deliberate omissions: no compression, no encryption or authentication (run behind TLS or a
//! private network for now), and the query operations (history, flows, series) take one account each rather than a batch,
//! because batching them would make a response's size unbounded.

pub mod changes;
pub mod codes;
pub mod frame;
pub mod messages;
pub mod types;

mod scan;

pub use changes::{Change, ChangeBody, Position, StreamFilter, StreamFrom, TransferChange};
pub use codes::{
    AccountResult, ChangeKind, Direction, ErrorCode, HoldStatus, LedgerResult, StreamEnd,
    TransferKind, TransferResult,
};
pub use frame::{
    decode_body_bytes, decode_frame, encode_body, encode_frame, encode_raw_frame, Body, Frame,
    FrameDecoder, FrameError, FrameHeader, Operation, RepeatedLimit,
};
pub use types::{
    partition_of, Account, AccountFlags, AccountId, BalancePoint, Balances, ClusterInfo, Flows,
    FlowsQuery, HistoryEntry, HistoryPage, HistoryQuery, LedgerId, NewAccount, NewLedger,
    NewTransfer, NodeAddress, PartitionId, PartitionLeader, ReplicaStatus, SeriesQuery,
    ServerError, StageSummary, Timestamp, Transfer, TransferFlags, TransferId, TransferOutcome,
};

/// The first four bytes of every frame. They never change between protocol versions, so a
/// peer can always tell a Tally frame (of any version) from other traffic. The last byte is
/// part of the constant, not a version number.
pub const MAGIC: [u8; 4] = *b"TLY\x01";

/// The protocol version this crate speaks, carried in bytes 4..6 of every header. Like the
/// magic, its position never changes, so a server can always name the version it rejects.
pub const PROTOCOL_VERSION: u16 = 1;

/// Size of the fixed frame header, in bytes.
pub const HEADER_SIZE: usize = 32;

/// Largest body a frame may carry, in bytes. Checked on the header, before the body is waited
/// for or any memory is reserved for it. A full batch of [`BATCH_EVENTS_MAX`] transfers with
/// maximal memos encodes to under 2 MiB, so this leaves ample room.
pub const FRAME_BODY_SIZE_MAX: usize = 16 * 1024 * 1024;

/// Most events (ledgers, accounts, transfers, looked-up ids, or their results) in one request
/// or response. Equal to the engine's events-per-command maximum, so a request never has to
/// be split on the server.
pub const BATCH_EVENTS_MAX: usize = 8190;

/// Longest memo a transfer may carry, in bytes.
pub const MEMO_SIZE_MAX: usize = 32;

/// Most entries one `account_history` page may return.
pub const HISTORY_ENTRIES_MAX: usize = 8190;

/// Most hourly points one `balance_series` response may return (a leap year of hours).
pub const SERIES_POINTS_MAX: usize = 24 * 366;

/// Most partitions a cluster may report in its `hello` response.
pub const PARTITIONS_MAX: usize = 4096;

/// Longest network address (`host:port`) carried in a leader hint, in bytes.
pub const ADDRESS_SIZE_MAX: usize = 256;

/// Longest free-text field (an error message, a version string), in bytes.
pub const TEXT_SIZE_MAX: usize = 4096;

/// Most stage summaries in a `hello` answer.
pub const STAGES_MAX: usize = 64;

/// Most nodes in a `hello` answer.
pub const NODES_MAX: usize = 1024;

/// Size of a non-zero 128-bit integer on the wire, in bytes (little-endian).
pub const U128_SIZE: usize = 16;
