//! The prost messages carried in frame bodies, and their conversions to typed values.
//!
//! The structs are written by hand with `#[derive(prost::Message)]` (no `.proto` files, no
//! build script), except the three a transfer batch is made of, whose encoding is written by
//! hand too (`messages/fixed.rs`: the same bytes, without a heap buffer per 128-bit field);
//! `docs/protocol.md` lists every field with its tag and type, and changes with these files.
//! Tags are never reused: a removed field's tag stays reserved.
//!
//! Layout: this file keeps the scalar helpers; `elements` has the records inside bodies,
//! and `handshake`, `create`, `lookups`, `queries`, `subscribe` and `errors` the bodies of each kind of
//! request and response.
//!
//! Encodings of the types protobuf lacks:
//! - a 128-bit integer (ids, balances, minor units, `user_data_128`) is `bytes`: either exactly
//!   16 bytes, little-endian, or empty, meaning zero. Encoders write zero as empty (the proto3
//!   default, so the field costs nothing); decoders accept both and reject any other length.
//! - a decimal amount is a [`WireDecimal`]: the `i128` mantissa as 16 little-endian bytes
//!   (or empty for zero) and the scale, rebuilt with `Decimal::try_from_i128_with_scale`, which
//!   rejects a scale above 28 and a mantissa beyond 96 bits. An absent amount is zero.
//! - `u16` and `u8` values (codes, flags, scales) travel as `uint32` and are range-checked.
//!
//! Validation happens in two places. [`Body::validate`] runs on every decode and encode and
//! enforces the sizes: element counts (also counted before decoding, see `scan.rs`), memo and
//! string lengths, the history page limit. The conversions to typed values (`TryFrom` on each
//! element, `to_*` on each body) then check every value's encoding: 128-bit lengths, decimal
//! ranges, `u16` ranges, required fields.

use bytes::Bytes;
use rust_decimal::Decimal;

use super::codes::{
    AccountResult, Direction, ErrorCode, HoldStatus, LedgerResult, TransferKind, TransferResult,
};
use super::frame::{Body, FrameError, Operation, RepeatedLimit};
use super::types::{
    Account, AccountFlags, AccountId, BalancePoint, ClusterInfo, Flows, FlowsQuery, HistoryEntry,
    HistoryPage, HistoryQuery, LedgerId, NewAccount, NewLedger, NewTransfer, NodeAddress,
    PartitionId, PartitionLeader, ReplicaStatus, SeriesQuery, ServerError, StageSummary, Timestamp,
    Transfer, TransferFlags, TransferId, TransferOutcome,
};
use super::{
    ADDRESS_SIZE_MAX, BATCH_EVENTS_MAX, HISTORY_ENTRIES_MAX, MEMO_SIZE_MAX, NODES_MAX,
    PARTITIONS_MAX, SERIES_POINTS_MAX, STAGES_MAX, TEXT_SIZE_MAX, U128_SIZE,
};

mod create;
mod elements;
mod errors;
mod fixed;
mod handshake;
mod lookups;
mod queries;
mod subscribe;

pub use create::*;
pub use elements::*;
pub use errors::*;
use fixed::balances_or_zero;
pub use fixed::{WireBalances, WireDecimal, WireNewTransfer};
pub use handshake::*;
pub use lookups::*;
pub use queries::*;
pub use subscribe::*;

// ---------------------------------------------------------------------------------------------
// Scalar helpers.

/// Encodes a 128-bit unsigned integer: empty for zero, else 16 little-endian bytes.
pub fn u128_to_bytes(value: u128) -> Bytes {
    if value == 0 {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(&value.to_le_bytes())
    }
}

/// Decodes a 128-bit unsigned integer written by [`u128_to_bytes`]: empty is zero, 16 bytes
/// are little-endian, any other length is an error naming `what`.
pub fn u128_from_bytes(bytes: &[u8], what: &'static str) -> Result<u128, FrameError> {
    Ok(u128::from_le_bytes(array16(bytes, what)?))
}

fn array16(bytes: &[u8], what: &'static str) -> Result<[u8; U128_SIZE], FrameError> {
    let mut out = [0u8; U128_SIZE];
    match bytes.len() {
        0 => Ok(out),
        U128_SIZE => {
            out.copy_from_slice(bytes);
            Ok(out)
        }
        _ => Err(FrameError::InvalidField {
            what,
            reason: "a 128-bit integer must be empty (zero) or exactly 16 bytes",
        }),
    }
}

fn to_u16(value: u32, what: &'static str) -> Result<u16, FrameError> {
    u16::try_from(value).map_err(|_| FrameError::InvalidField {
        what,
        reason: "exceeds u16::MAX",
    })
}

fn to_u8(value: u32, what: &'static str) -> Result<u8, FrameError> {
    u8::try_from(value).map_err(|_| FrameError::InvalidField {
        what,
        reason: "exceeds u8::MAX",
    })
}

fn check_count(count: usize, max: usize, what: &'static str) -> Result<(), FrameError> {
    if count > max {
        return Err(FrameError::TooMany { what, count, max });
    }
    Ok(())
}

fn check_size(size: usize, max: usize, what: &'static str) -> Result<(), FrameError> {
    if size > max {
        return Err(FrameError::TooLong { what, size, max });
    }
    Ok(())
}

fn optional_text(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

const fn limit(tag: u32, max: usize, packed: bool, what: &'static str) -> RepeatedLimit {
    RepeatedLimit {
        tag,
        max,
        packed,
        what,
    }
}
