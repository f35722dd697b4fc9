//! The prost messages carried in frame bodies, and their conversions to typed values.
//!
//! The structs are written by hand with `#[derive(prost::Message)]` (no `.proto` files, no
//! build script), except the three a transfer batch is made of, whose encoding is written by
//! hand too (`messages/fixed.rs`: the same bytes, without a heap buffer per 128-bit field);
//! `docs/protocol.md` lists every field with its tag and type, and changes with this file.
//! Tags are never reused: a removed field's tag stays reserved.
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

mod fixed;
use fixed::balances_or_zero;
pub use fixed::{WireBalances, WireDecimal, WireNewTransfer};

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

// ---------------------------------------------------------------------------------------------
// Element messages.

/// A ledger to create.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireNewLedger {
    /// The ledger id.
    #[prost(uint32, tag = "1")]
    pub id: u32,
    /// Digits after the decimal point (`u8`).
    #[prost(uint32, tag = "2")]
    pub scale: u32,
    /// Application classification (`u16`).
    #[prost(uint32, tag = "3")]
    pub code: u32,
}

impl From<&NewLedger> for WireNewLedger {
    fn from(l: &NewLedger) -> WireNewLedger {
        WireNewLedger {
            id: l.id.0,
            scale: u32::from(l.scale),
            code: u32::from(l.code),
        }
    }
}

impl TryFrom<&WireNewLedger> for NewLedger {
    type Error = FrameError;

    fn try_from(w: &WireNewLedger) -> Result<NewLedger, FrameError> {
        Ok(NewLedger {
            id: LedgerId(w.id),
            scale: to_u8(w.scale, "ledger.scale")?,
            code: to_u16(w.code, "ledger.code")?,
        })
    }
}

/// An account to create.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireNewAccount {
    /// The account id (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub id: Bytes,
    /// Its ledger.
    #[prost(uint32, tag = "2")]
    pub ledger: u32,
    /// Its kind (`u16`).
    #[prost(uint32, tag = "3")]
    pub code: u32,
    /// [`AccountFlags`] (`u16`).
    #[prost(uint32, tag = "4")]
    pub flags: u32,
    /// The optional limit; absent means none.
    #[prost(message, optional, tag = "5")]
    pub limit: Option<WireDecimal>,
    /// External reference (128-bit).
    #[prost(bytes = "bytes", tag = "6")]
    pub user_data_128: Bytes,
    /// External reference.
    #[prost(uint64, tag = "7")]
    pub user_data_64: u64,
    /// External reference.
    #[prost(uint32, tag = "8")]
    pub user_data_32: u32,
}

impl From<&NewAccount> for WireNewAccount {
    fn from(a: &NewAccount) -> WireNewAccount {
        WireNewAccount {
            id: u128_to_bytes(a.id.0),
            ledger: a.ledger.0,
            code: u32::from(a.code),
            flags: u32::from(a.flags.0),
            limit: a.limit.map(WireDecimal::from),
            user_data_128: u128_to_bytes(a.user_data_128),
            user_data_64: a.user_data_64,
            user_data_32: a.user_data_32,
        }
    }
}

impl TryFrom<&WireNewAccount> for NewAccount {
    type Error = FrameError;

    fn try_from(w: &WireNewAccount) -> Result<NewAccount, FrameError> {
        Ok(NewAccount {
            id: AccountId(u128_from_bytes(&w.id, "account.id")?),
            ledger: LedgerId(w.ledger),
            code: to_u16(w.code, "account.code")?,
            flags: AccountFlags(to_u16(w.flags, "account.flags")?),
            limit: w.limit.as_ref().map(Decimal::try_from).transpose()?,
            user_data_128: u128_from_bytes(&w.user_data_128, "account.user_data_128")?,
            user_data_64: w.user_data_64,
            user_data_32: w.user_data_32,
        })
    }
}

/// What one transfer event came to.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireTransferOutcome {
    /// The [`TransferResult`] code.
    #[prost(uint32, tag = "1")]
    pub result: u32,
    /// The timestamp assigned, in nanoseconds.
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
    /// The debit account's balances after the transfer.
    #[prost(message, optional, tag = "3")]
    pub debit_balances: Option<WireBalances>,
    /// The credit account's balances after the transfer.
    #[prost(message, optional, tag = "4")]
    pub credit_balances: Option<WireBalances>,
}

impl From<&TransferOutcome> for WireTransferOutcome {
    fn from(o: &TransferOutcome) -> WireTransferOutcome {
        WireTransferOutcome {
            result: o.result.code(),
            timestamp: o.timestamp.0,
            debit_balances: Some(WireBalances::from(&o.debit_balances)),
            credit_balances: Some(WireBalances::from(&o.credit_balances)),
        }
    }
}

impl TryFrom<&WireTransferOutcome> for TransferOutcome {
    type Error = FrameError;

    fn try_from(w: &WireTransferOutcome) -> Result<TransferOutcome, FrameError> {
        Ok(TransferOutcome {
            result: TransferResult::from_code(w.result),
            timestamp: Timestamp(w.timestamp),
            debit_balances: balances_or_zero(w.debit_balances.as_ref())?,
            credit_balances: balances_or_zero(w.credit_balances.as_ref())?,
        })
    }
}

/// An account record, as looked up.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireAccount {
    /// The account id (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub id: Bytes,
    /// Its ledger.
    #[prost(uint32, tag = "2")]
    pub ledger: u32,
    /// Its ledger's scale (`u8`).
    #[prost(uint32, tag = "3")]
    pub scale: u32,
    /// Its kind (`u16`).
    #[prost(uint32, tag = "4")]
    pub code: u32,
    /// [`AccountFlags`] (`u16`).
    #[prost(uint32, tag = "5")]
    pub flags: u32,
    /// The limit in minor units (128-bit); absent means none.
    #[prost(bytes = "bytes", optional, tag = "6")]
    pub limit: Option<Bytes>,
    /// External reference (128-bit).
    #[prost(bytes = "bytes", tag = "7")]
    pub user_data_128: Bytes,
    /// External reference.
    #[prost(uint64, tag = "8")]
    pub user_data_64: u64,
    /// External reference.
    #[prost(uint32, tag = "9")]
    pub user_data_32: u32,
    /// Creation time, in nanoseconds.
    #[prost(uint64, tag = "10")]
    pub timestamp: u64,
    /// Its balances.
    #[prost(message, optional, tag = "11")]
    pub balances: Option<WireBalances>,
}

impl From<&Account> for WireAccount {
    fn from(a: &Account) -> WireAccount {
        WireAccount {
            id: u128_to_bytes(a.id.0),
            ledger: a.ledger.0,
            scale: u32::from(a.scale),
            code: u32::from(a.code),
            flags: u32::from(a.flags.0),
            limit: a.limit.map(u128_to_bytes),
            user_data_128: u128_to_bytes(a.user_data_128),
            user_data_64: a.user_data_64,
            user_data_32: a.user_data_32,
            timestamp: a.timestamp.0,
            balances: Some(WireBalances::from(&a.balances)),
        }
    }
}

impl TryFrom<&WireAccount> for Account {
    type Error = FrameError;

    fn try_from(w: &WireAccount) -> Result<Account, FrameError> {
        Ok(Account {
            id: AccountId(u128_from_bytes(&w.id, "account.id")?),
            ledger: LedgerId(w.ledger),
            scale: to_u8(w.scale, "account.scale")?,
            code: to_u16(w.code, "account.code")?,
            flags: AccountFlags(to_u16(w.flags, "account.flags")?),
            limit: w
                .limit
                .as_ref()
                .map(|b| u128_from_bytes(b, "account.limit"))
                .transpose()?,
            user_data_128: u128_from_bytes(&w.user_data_128, "account.user_data_128")?,
            user_data_64: w.user_data_64,
            user_data_32: w.user_data_32,
            timestamp: Timestamp(w.timestamp),
            balances: balances_or_zero(w.balances.as_ref())?,
        })
    }
}

/// A decided transfer, as looked up.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireTransfer {
    /// The transfer id (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub id: Bytes,
    /// The [`TransferKind`] code.
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// The debit account (128-bit).
    #[prost(bytes = "bytes", tag = "3")]
    pub debit_account: Bytes,
    /// The credit account (128-bit).
    #[prost(bytes = "bytes", tag = "4")]
    pub credit_account: Bytes,
    /// The ledger.
    #[prost(uint32, tag = "5")]
    pub ledger: u32,
    /// The ledger's scale (`u8`).
    #[prost(uint32, tag = "6")]
    pub scale: u32,
    /// The amount in minor units (128-bit).
    #[prost(bytes = "bytes", tag = "7")]
    pub amount: Bytes,
    /// The hold posted or voided, or the transfer refunded (128-bit).
    #[prost(bytes = "bytes", tag = "8")]
    pub reference: Bytes,
    /// Hold timeout in seconds.
    #[prost(uint32, tag = "9")]
    pub timeout_s: u32,
    /// Application classification (`u16`).
    #[prost(uint32, tag = "10")]
    pub code: u32,
    /// [`TransferFlags`] (`u16`).
    #[prost(uint32, tag = "11")]
    pub flags: u32,
    /// External reference (128-bit).
    #[prost(bytes = "bytes", tag = "12")]
    pub user_data_128: Bytes,
    /// External reference.
    #[prost(uint64, tag = "13")]
    pub user_data_64: u64,
    /// External reference.
    #[prost(uint32, tag = "14")]
    pub user_data_32: u32,
    /// The memo, at most [`MEMO_SIZE_MAX`] bytes.
    #[prost(bytes = "bytes", tag = "15")]
    pub memo: Bytes,
    /// The outcome; required.
    #[prost(message, optional, tag = "16")]
    pub outcome: Option<WireTransferOutcome>,
    /// The [`HoldStatus`] code.
    #[prost(uint32, tag = "17")]
    pub hold: u32,
    /// Total refunded so far, in minor units (128-bit).
    #[prost(bytes = "bytes", tag = "18")]
    pub refunded: Bytes,
}

impl From<&Transfer> for WireTransfer {
    fn from(t: &Transfer) -> WireTransfer {
        WireTransfer {
            id: u128_to_bytes(t.id.0),
            kind: t.kind.code(),
            debit_account: u128_to_bytes(t.debit_account.0),
            credit_account: u128_to_bytes(t.credit_account.0),
            ledger: t.ledger.0,
            scale: u32::from(t.scale),
            amount: u128_to_bytes(t.amount),
            reference: u128_to_bytes(t.reference.0),
            timeout_s: t.timeout_s,
            code: u32::from(t.code),
            flags: u32::from(t.flags.0),
            user_data_128: u128_to_bytes(t.user_data_128),
            user_data_64: t.user_data_64,
            user_data_32: t.user_data_32,
            memo: Bytes::copy_from_slice(&t.memo),
            outcome: Some(WireTransferOutcome::from(&t.outcome)),
            hold: t.hold.code(),
            refunded: u128_to_bytes(t.refunded),
        }
    }
}

impl TryFrom<&WireTransfer> for Transfer {
    type Error = FrameError;

    fn try_from(w: &WireTransfer) -> Result<Transfer, FrameError> {
        check_size(w.memo.len(), MEMO_SIZE_MAX, "transfer.memo")?;
        let outcome = w.outcome.as_ref().ok_or(FrameError::InvalidField {
            what: "transfer.outcome",
            reason: "missing",
        })?;
        Ok(Transfer {
            id: TransferId(u128_from_bytes(&w.id, "transfer.id")?),
            kind: TransferKind::from_code(w.kind),
            debit_account: AccountId(u128_from_bytes(&w.debit_account, "transfer.debit_account")?),
            credit_account: AccountId(u128_from_bytes(
                &w.credit_account,
                "transfer.credit_account",
            )?),
            ledger: LedgerId(w.ledger),
            scale: to_u8(w.scale, "transfer.scale")?,
            amount: u128_from_bytes(&w.amount, "transfer.amount")?,
            reference: TransferId(u128_from_bytes(&w.reference, "transfer.reference")?),
            timeout_s: w.timeout_s,
            code: to_u16(w.code, "transfer.code")?,
            flags: TransferFlags(to_u16(w.flags, "transfer.flags")?),
            user_data_128: u128_from_bytes(&w.user_data_128, "transfer.user_data_128")?,
            user_data_64: w.user_data_64,
            user_data_32: w.user_data_32,
            memo: w.memo.to_vec(),
            outcome: TransferOutcome::try_from(outcome)?,
            hold: HoldStatus::from_code(w.hold),
            refunded: u128_from_bytes(&w.refunded, "transfer.refunded")?,
        })
    }
}

/// One entry of an account's history.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireHistoryEntry {
    /// The transfer (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub transfer_id: Bytes,
    /// When it was applied, in nanoseconds.
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
    /// The [`TransferKind`] code.
    #[prost(uint32, tag = "3")]
    pub kind: u32,
    /// Whether the account was debited (else credited).
    #[prost(bool, tag = "4")]
    pub is_debit: bool,
    /// The other account (128-bit).
    #[prost(bytes = "bytes", tag = "5")]
    pub counterparty: Bytes,
    /// The amount in minor units (128-bit).
    #[prost(bytes = "bytes", tag = "6")]
    pub amount: Bytes,
    /// The account's balances after the entry.
    #[prost(message, optional, tag = "7")]
    pub balances: Option<WireBalances>,
}

impl From<&HistoryEntry> for WireHistoryEntry {
    fn from(e: &HistoryEntry) -> WireHistoryEntry {
        WireHistoryEntry {
            transfer_id: u128_to_bytes(e.transfer_id.0),
            timestamp: e.timestamp.0,
            kind: e.kind.code(),
            is_debit: e.is_debit,
            counterparty: u128_to_bytes(e.counterparty.0),
            amount: u128_to_bytes(e.amount),
            balances: Some(WireBalances::from(&e.balances)),
        }
    }
}

impl TryFrom<&WireHistoryEntry> for HistoryEntry {
    type Error = FrameError;

    fn try_from(w: &WireHistoryEntry) -> Result<HistoryEntry, FrameError> {
        Ok(HistoryEntry {
            transfer_id: TransferId(u128_from_bytes(&w.transfer_id, "entry.transfer_id")?),
            timestamp: Timestamp(w.timestamp),
            kind: TransferKind::from_code(w.kind),
            is_debit: w.is_debit,
            counterparty: AccountId(u128_from_bytes(&w.counterparty, "entry.counterparty")?),
            amount: u128_from_bytes(&w.amount, "entry.amount")?,
            balances: balances_or_zero(w.balances.as_ref())?,
        })
    }
}

/// An account's balances at the close of one hour.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireBalancePoint {
    /// Start of the hour, in nanoseconds.
    #[prost(uint64, tag = "1")]
    pub time_start: u64,
    /// The closing balances.
    #[prost(message, optional, tag = "2")]
    pub balances: Option<WireBalances>,
}

impl From<&BalancePoint> for WireBalancePoint {
    fn from(p: &BalancePoint) -> WireBalancePoint {
        WireBalancePoint {
            time_start: p.time_start.0,
            balances: Some(WireBalances::from(&p.balances)),
        }
    }
}

impl TryFrom<&WireBalancePoint> for BalancePoint {
    type Error = FrameError;

    fn try_from(w: &WireBalancePoint) -> Result<BalancePoint, FrameError> {
        Ok(BalancePoint {
            time_start: Timestamp(w.time_start),
            balances: balances_or_zero(w.balances.as_ref())?,
        })
    }
}

/// The leader of one partition.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WirePartitionLeader {
    /// The partition.
    #[prost(uint32, tag = "1")]
    pub partition: u32,
    /// The leader's client address (`host:port`); empty while unknown.
    #[prost(string, tag = "2")]
    pub address: String,
}

impl From<&PartitionLeader> for WirePartitionLeader {
    fn from(l: &PartitionLeader) -> WirePartitionLeader {
        WirePartitionLeader {
            partition: l.partition.0,
            address: l.address.clone().unwrap_or_default(),
        }
    }
}

impl From<&WirePartitionLeader> for PartitionLeader {
    fn from(w: &WirePartitionLeader) -> PartitionLeader {
        PartitionLeader {
            partition: PartitionId(w.partition),
            address: optional_text(&w.address),
        }
    }
}

/// One replica's status, as its node reports it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireReplicaStatus {
    /// The partition.
    #[prost(uint32, tag = "1")]
    pub partition: u32,
    /// Current term.
    #[prost(uint64, tag = "2")]
    pub term: u64,
    /// The leader it follows (0: none known).
    #[prost(uint64, tag = "3")]
    pub leader: u64,
    /// Last log index.
    #[prost(uint64, tag = "4")]
    pub last_index: u64,
    /// Commit index.
    #[prost(uint64, tag = "5")]
    pub commit_index: u64,
    /// Applied index.
    #[prost(uint64, tag = "6")]
    pub applied_index: u64,
    /// State digest, low 64 bits.
    #[prost(fixed64, tag = "7")]
    pub digest_low: u64,
    /// State digest, high 64 bits.
    #[prost(fixed64, tag = "8")]
    pub digest_high: u64,
    /// Recovering lost data.
    #[prost(bool, tag = "9")]
    pub recovering: bool,
    /// Client requests in its inbox.
    #[prost(uint32, tag = "10")]
    pub queue_depth: u32,
}

impl From<&ReplicaStatus> for WireReplicaStatus {
    fn from(r: &ReplicaStatus) -> WireReplicaStatus {
        WireReplicaStatus {
            partition: r.partition.0,
            term: r.term,
            leader: r.leader,
            last_index: r.last_index,
            commit_index: r.commit_index,
            applied_index: r.applied_index,
            digest_low: r.digest as u64,
            digest_high: (r.digest >> 64) as u64,
            recovering: r.recovering,
            queue_depth: r.queue_depth,
        }
    }
}

impl From<&WireReplicaStatus> for ReplicaStatus {
    fn from(w: &WireReplicaStatus) -> ReplicaStatus {
        ReplicaStatus {
            partition: PartitionId(w.partition),
            term: w.term,
            leader: w.leader,
            last_index: w.last_index,
            commit_index: w.commit_index,
            applied_index: w.applied_index,
            digest: u128::from(w.digest_high) << 64 | u128::from(w.digest_low),
            recovering: w.recovering,
            queue_depth: w.queue_depth,
        }
    }
}

/// One stage's timings, as a node reports them.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireStageSummary {
    /// The stage's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Times timed.
    #[prost(uint64, tag = "2")]
    pub count: u64,
    /// Total microseconds.
    #[prost(uint64, tag = "3")]
    pub total_us: u64,
    /// Median microseconds.
    #[prost(uint64, tag = "4")]
    pub p50_us: u64,
    /// 99th percentile microseconds.
    #[prost(uint64, tag = "5")]
    pub p99_us: u64,
    /// Longest, microseconds.
    #[prost(uint64, tag = "6")]
    pub max_us: u64,
}

impl From<&StageSummary> for WireStageSummary {
    fn from(s: &StageSummary) -> WireStageSummary {
        WireStageSummary {
            name: s.name.clone(),
            count: s.count,
            total_us: s.total_us,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
            max_us: s.max_us,
        }
    }
}

impl From<&WireStageSummary> for StageSummary {
    fn from(w: &WireStageSummary) -> StageSummary {
        StageSummary {
            name: w.name.clone(),
            count: w.count,
            total_us: w.total_us,
            p50_us: w.p50_us,
            p99_us: w.p99_us,
            max_us: w.max_us,
        }
    }
}

fn collect<'a, W: 'a, T>(wire: impl IntoIterator<Item = &'a W>) -> Result<Vec<T>, FrameError>
where
    T: TryFrom<&'a W, Error = FrameError>,
{
    wire.into_iter().map(T::try_from).collect()
}

// ---------------------------------------------------------------------------------------------
// Bodies: handshake.

/// Body of [`Operation::Hello`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HelloRequest {
    /// The client's software version, for the server's logs.
    #[prost(string, tag = "1")]
    pub client_version: String,
}

impl Body for HelloRequest {
    const OPERATION: Operation = Operation::Hello;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        check_size(self.client_version.len(), TEXT_SIZE_MAX, "client_version")
    }
}

/// Body of [`Operation::HelloResponse`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HelloResponse {
    /// The answering node.
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    /// Partitions in the cluster.
    #[prost(uint32, tag = "2")]
    pub partition_count: u32,
    /// The known leader of each partition.
    #[prost(message, repeated, tag = "3")]
    pub leaders: Vec<WirePartitionLeader>,
    /// The server's software version.
    #[prost(string, tag = "4")]
    pub server_version: String,
    /// The answering node's own replica of each partition.
    #[prost(message, repeated, tag = "5")]
    pub replicas: Vec<WireReplicaStatus>,
    /// How long the answering node has run, in milliseconds.
    #[prost(uint64, tag = "6")]
    pub uptime_ms: u64,
    /// Where the answering node's time went, per stage.
    #[prost(message, repeated, tag = "7")]
    pub stages: Vec<WireStageSummary>,
    /// Every node of the cluster and its client address.
    #[prost(message, repeated, tag = "8")]
    pub nodes: Vec<WireNodeAddress>,
}

/// A node and its client address.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireNodeAddress {
    /// The node's id.
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    /// Its client address; empty while unknown.
    #[prost(string, tag = "2")]
    pub address: String,
}

impl Body for HelloResponse {
    const OPERATION: Operation = Operation::HelloResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[
        limit(3, PARTITIONS_MAX, false, "hello.leaders"),
        limit(5, PARTITIONS_MAX, false, "hello.replicas"),
        limit(7, STAGES_MAX, false, "hello.stages"),
        limit(8, NODES_MAX, false, "hello.nodes"),
    ];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.leaders.len(), PARTITIONS_MAX, "hello.leaders")?;
        check_count(self.replicas.len(), PARTITIONS_MAX, "hello.replicas")?;
        check_count(self.stages.len(), STAGES_MAX, "hello.stages")?;
        check_count(self.nodes.len(), NODES_MAX, "hello.nodes")?;
        for node in &self.nodes {
            check_size(node.address.len(), ADDRESS_SIZE_MAX, "node.address")?;
        }
        for stage in &self.stages {
            check_size(stage.name.len(), TEXT_SIZE_MAX, "stage.name")?;
        }
        for leader in &self.leaders {
            check_size(leader.address.len(), ADDRESS_SIZE_MAX, "leader.address")?;
        }
        check_size(self.server_version.len(), TEXT_SIZE_MAX, "server_version")
    }
}

impl From<&ClusterInfo> for HelloResponse {
    fn from(c: &ClusterInfo) -> HelloResponse {
        HelloResponse {
            node_id: c.node_id,
            partition_count: c.partition_count,
            leaders: c.leaders.iter().map(WirePartitionLeader::from).collect(),
            server_version: c.server_version.clone(),
            replicas: c.replicas.iter().map(WireReplicaStatus::from).collect(),
            uptime_ms: c.uptime_ms,
            stages: c.stages.iter().map(WireStageSummary::from).collect(),
            nodes: c
                .nodes
                .iter()
                .map(|n| WireNodeAddress {
                    node_id: n.node_id,
                    address: n.address.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl HelloResponse {
    /// The typed cluster information.
    pub fn to_cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            node_id: self.node_id,
            partition_count: self.partition_count,
            leaders: self.leaders.iter().map(PartitionLeader::from).collect(),
            server_version: self.server_version.clone(),
            replicas: self.replicas.iter().map(ReplicaStatus::from).collect(),
            uptime_ms: self.uptime_ms,
            stages: self.stages.iter().map(StageSummary::from).collect(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeAddress {
                    node_id: n.node_id,
                    address: optional_text(&n.address),
                })
                .collect(),
        }
    }
}

/// Body of [`Operation::Ping`]: empty.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PingRequest {}

impl Body for PingRequest {
    const OPERATION: Operation = Operation::Ping;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}

/// Body of [`Operation::PingResponse`]: empty.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PingResponse {}

impl Body for PingResponse {
    const OPERATION: Operation = Operation::PingResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies: create.

/// Body of [`Operation::CreateLedgers`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateLedgersRequest {
    /// The ledgers, at most [`BATCH_EVENTS_MAX`].
    #[prost(message, repeated, tag = "1")]
    pub ledgers: Vec<WireNewLedger>,
}

impl Body for CreateLedgersRequest {
    const OPERATION: Operation = Operation::CreateLedgers;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "ledgers")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.ledgers.len(), BATCH_EVENTS_MAX, "ledgers")
    }
}

impl CreateLedgersRequest {
    /// A request creating `ledgers`.
    pub fn new(ledgers: &[NewLedger]) -> CreateLedgersRequest {
        CreateLedgersRequest {
            ledgers: ledgers.iter().map(WireNewLedger::from).collect(),
        }
    }

    /// The typed ledgers.
    pub fn to_ledgers(&self) -> Result<Vec<NewLedger>, FrameError> {
        collect(&self.ledgers)
    }
}

/// Body of [`Operation::CreateLedgersResponse`]: one [`LedgerResult`] code per ledger, in
/// request order.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateLedgersResponse {
    /// The result codes (packed).
    #[prost(uint32, repeated, packed = "true", tag = "1")]
    pub results: Vec<u32>,
}

impl Body for CreateLedgersResponse {
    const OPERATION: Operation = Operation::CreateLedgersResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, true, "ledger results")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.results.len(), BATCH_EVENTS_MAX, "ledger results")
    }
}

impl CreateLedgersResponse {
    /// A response carrying `results`.
    pub fn new(results: &[LedgerResult]) -> CreateLedgersResponse {
        CreateLedgersResponse {
            results: results.iter().map(|r| r.code()).collect(),
        }
    }

    /// The typed results.
    pub fn to_results(&self) -> Vec<LedgerResult> {
        self.results
            .iter()
            .copied()
            .map(LedgerResult::from_code)
            .collect()
    }
}

/// Body of [`Operation::CreateAccounts`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateAccountsRequest {
    /// The accounts, at most [`BATCH_EVENTS_MAX`].
    #[prost(message, repeated, tag = "1")]
    pub accounts: Vec<WireNewAccount>,
}

impl Body for CreateAccountsRequest {
    const OPERATION: Operation = Operation::CreateAccounts;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "accounts")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.accounts.len(), BATCH_EVENTS_MAX, "accounts")
    }
}

impl CreateAccountsRequest {
    /// A request creating `accounts`.
    pub fn new(accounts: &[NewAccount]) -> CreateAccountsRequest {
        CreateAccountsRequest {
            accounts: accounts.iter().map(WireNewAccount::from).collect(),
        }
    }

    /// The typed accounts.
    pub fn to_accounts(&self) -> Result<Vec<NewAccount>, FrameError> {
        collect(&self.accounts)
    }
}

/// Body of [`Operation::CreateAccountsResponse`]: one [`AccountResult`] code per account, in
/// request order.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateAccountsResponse {
    /// The result codes (packed).
    #[prost(uint32, repeated, packed = "true", tag = "1")]
    pub results: Vec<u32>,
}

impl Body for CreateAccountsResponse {
    const OPERATION: Operation = Operation::CreateAccountsResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, true, "account results")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.results.len(), BATCH_EVENTS_MAX, "account results")
    }
}

impl CreateAccountsResponse {
    /// A response carrying `results`.
    pub fn new(results: &[AccountResult]) -> CreateAccountsResponse {
        CreateAccountsResponse {
            results: results.iter().map(|r| r.code()).collect(),
        }
    }

    /// The typed results.
    pub fn to_results(&self) -> Vec<AccountResult> {
        self.results
            .iter()
            .copied()
            .map(AccountResult::from_code)
            .collect()
    }
}

/// Body of [`Operation::CreateTransfers`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateTransfersRequest {
    /// The transfers, at most [`BATCH_EVENTS_MAX`].
    #[prost(message, repeated, tag = "1")]
    pub transfers: Vec<WireNewTransfer>,
}

impl Body for CreateTransfersRequest {
    const OPERATION: Operation = Operation::CreateTransfers;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "transfers")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.transfers.len(), BATCH_EVENTS_MAX, "transfers")?;
        for transfer in &self.transfers {
            check_size(transfer.memo.len(), MEMO_SIZE_MAX, "transfer.memo")?;
        }
        Ok(())
    }
}

impl CreateTransfersRequest {
    /// A request creating `transfers`.
    pub fn new(transfers: &[NewTransfer]) -> CreateTransfersRequest {
        CreateTransfersRequest {
            transfers: transfers.iter().map(WireNewTransfer::from).collect(),
        }
    }

    /// The typed transfers.
    pub fn to_transfers(&self) -> Result<Vec<NewTransfer>, FrameError> {
        collect(&self.transfers)
    }
}

/// Body of [`Operation::CreateTransfersResponse`]: one outcome per transfer, in request order.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateTransfersResponse {
    /// The outcomes.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<WireTransferOutcome>,
}

impl Body for CreateTransfersResponse {
    const OPERATION: Operation = Operation::CreateTransfersResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "transfer results")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.results.len(), BATCH_EVENTS_MAX, "transfer results")
    }
}

impl CreateTransfersResponse {
    /// A response carrying `outcomes`.
    pub fn new(outcomes: &[TransferOutcome]) -> CreateTransfersResponse {
        CreateTransfersResponse {
            results: outcomes.iter().map(WireTransferOutcome::from).collect(),
        }
    }

    /// The typed outcomes.
    pub fn to_outcomes(&self) -> Result<Vec<TransferOutcome>, FrameError> {
        collect(&self.results)
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies: lookups.

/// Body of [`Operation::LookupAccounts`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LookupAccountsRequest {
    /// The account ids (128-bit each), at most [`BATCH_EVENTS_MAX`].
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub ids: Vec<Bytes>,
}

impl Body for LookupAccountsRequest {
    const OPERATION: Operation = Operation::LookupAccounts;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "account ids")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.ids.len(), BATCH_EVENTS_MAX, "account ids")
    }
}

impl LookupAccountsRequest {
    /// A request looking up `ids`.
    pub fn new(ids: &[AccountId]) -> LookupAccountsRequest {
        LookupAccountsRequest {
            ids: ids.iter().map(|id| u128_to_bytes(id.0)).collect(),
        }
    }

    /// The typed ids.
    pub fn to_ids(&self) -> Result<Vec<AccountId>, FrameError> {
        self.ids
            .iter()
            .map(|b| u128_from_bytes(b, "account id").map(AccountId))
            .collect()
    }
}

/// Body of [`Operation::LookupAccountsResponse`]: the accounts found, in request order; ids
/// not found are left out.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LookupAccountsResponse {
    /// The accounts.
    #[prost(message, repeated, tag = "1")]
    pub accounts: Vec<WireAccount>,
}

impl Body for LookupAccountsResponse {
    const OPERATION: Operation = Operation::LookupAccountsResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "accounts")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.accounts.len(), BATCH_EVENTS_MAX, "accounts")
    }
}

impl LookupAccountsResponse {
    /// A response carrying `accounts`.
    pub fn new(accounts: &[Account]) -> LookupAccountsResponse {
        LookupAccountsResponse {
            accounts: accounts.iter().map(WireAccount::from).collect(),
        }
    }

    /// The typed accounts.
    pub fn to_accounts(&self) -> Result<Vec<Account>, FrameError> {
        collect(&self.accounts)
    }
}

/// Body of [`Operation::LookupTransfers`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LookupTransfersRequest {
    /// The transfer ids (128-bit each), at most [`BATCH_EVENTS_MAX`].
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub ids: Vec<Bytes>,
}

impl Body for LookupTransfersRequest {
    const OPERATION: Operation = Operation::LookupTransfers;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "transfer ids")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.ids.len(), BATCH_EVENTS_MAX, "transfer ids")
    }
}

impl LookupTransfersRequest {
    /// A request looking up `ids`.
    pub fn new(ids: &[TransferId]) -> LookupTransfersRequest {
        LookupTransfersRequest {
            ids: ids.iter().map(|id| u128_to_bytes(id.0)).collect(),
        }
    }

    /// The typed ids.
    pub fn to_ids(&self) -> Result<Vec<TransferId>, FrameError> {
        self.ids
            .iter()
            .map(|b| u128_from_bytes(b, "transfer id").map(TransferId))
            .collect()
    }
}

/// Body of [`Operation::LookupTransfersResponse`]: the transfers found, in request order; ids
/// not found are left out.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LookupTransfersResponse {
    /// The transfers.
    #[prost(message, repeated, tag = "1")]
    pub transfers: Vec<WireTransfer>,
}

impl Body for LookupTransfersResponse {
    const OPERATION: Operation = Operation::LookupTransfersResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "transfers")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.transfers.len(), BATCH_EVENTS_MAX, "transfers")?;
        for transfer in &self.transfers {
            check_size(transfer.memo.len(), MEMO_SIZE_MAX, "transfer.memo")?;
        }
        Ok(())
    }
}

impl LookupTransfersResponse {
    /// A response carrying `transfers`.
    pub fn new(transfers: &[Transfer]) -> LookupTransfersResponse {
        LookupTransfersResponse {
            transfers: transfers.iter().map(WireTransfer::from).collect(),
        }
    }

    /// The typed transfers.
    pub fn to_transfers(&self) -> Result<Vec<Transfer>, FrameError> {
        collect(&self.transfers)
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies: queries.

/// Body of [`Operation::AccountHistory`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AccountHistoryRequest {
    /// The account (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub account: Bytes,
    /// Zero for the first page, else a previous page's `next_cursor`. Opaque.
    #[prost(uint64, tag = "2")]
    pub cursor: u64,
    /// Most entries to return, at most [`HISTORY_ENTRIES_MAX`].
    #[prost(uint32, tag = "3")]
    pub limit: u32,
    /// The [`Direction`] code.
    #[prost(uint32, tag = "4")]
    pub direction: u32,
    /// Only entries stamped at or after this time (nanoseconds).
    #[prost(uint64, optional, tag = "5")]
    pub time_min: Option<u64>,
    /// Only entries stamped before this time (nanoseconds).
    #[prost(uint64, optional, tag = "6")]
    pub time_max: Option<u64>,
}

impl Body for AccountHistoryRequest {
    const OPERATION: Operation = Operation::AccountHistory;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.limit as usize, HISTORY_ENTRIES_MAX, "history.limit")
    }
}

impl From<&HistoryQuery> for AccountHistoryRequest {
    fn from(q: &HistoryQuery) -> AccountHistoryRequest {
        AccountHistoryRequest {
            account: u128_to_bytes(q.account.0),
            cursor: q.cursor,
            limit: q.limit,
            direction: q.direction.code(),
            time_min: q.time_min.map(|t| t.0),
            time_max: q.time_max.map(|t| t.0),
        }
    }
}

impl AccountHistoryRequest {
    /// The typed query. An unknown direction is an error: the server must not guess.
    pub fn to_query(&self) -> Result<HistoryQuery, FrameError> {
        let direction = Direction::from_code(self.direction);
        if !direction.is_known() {
            return Err(FrameError::InvalidField {
                what: "history.direction",
                reason: "unknown direction",
            });
        }
        Ok(HistoryQuery {
            account: AccountId(u128_from_bytes(&self.account, "history.account")?),
            cursor: self.cursor,
            limit: self.limit,
            direction,
            time_min: self.time_min.map(Timestamp),
            time_max: self.time_max.map(Timestamp),
        })
    }
}

/// Body of [`Operation::AccountHistoryResponse`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AccountHistoryResponse {
    /// The account's ledger scale (`u8`).
    #[prost(uint32, tag = "1")]
    pub scale: u32,
    /// The entries, at most [`HISTORY_ENTRIES_MAX`].
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<WireHistoryEntry>,
    /// The next page's cursor; absent at the end of the history.
    #[prost(uint64, optional, tag = "3")]
    pub next_cursor: Option<u64>,
}

impl Body for AccountHistoryResponse {
    const OPERATION: Operation = Operation::AccountHistoryResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(2, HISTORY_ENTRIES_MAX, false, "history entries")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.entries.len(), HISTORY_ENTRIES_MAX, "history entries")
    }
}

impl From<&HistoryPage> for AccountHistoryResponse {
    fn from(p: &HistoryPage) -> AccountHistoryResponse {
        AccountHistoryResponse {
            scale: u32::from(p.scale),
            entries: p.entries.iter().map(WireHistoryEntry::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

impl AccountHistoryResponse {
    /// The typed page.
    pub fn to_page(&self) -> Result<HistoryPage, FrameError> {
        Ok(HistoryPage {
            scale: to_u8(self.scale, "history.scale")?,
            entries: collect(&self.entries)?,
            next_cursor: self.next_cursor,
        })
    }
}

/// Body of [`Operation::AccountFlows`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AccountFlowsRequest {
    /// The account (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub account: Bytes,
    /// Start of the window, inclusive (nanoseconds).
    #[prost(uint64, tag = "2")]
    pub time_min: u64,
    /// End of the window, exclusive (nanoseconds).
    #[prost(uint64, tag = "3")]
    pub time_max: u64,
}

impl Body for AccountFlowsRequest {
    const OPERATION: Operation = Operation::AccountFlows;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}

impl From<&FlowsQuery> for AccountFlowsRequest {
    fn from(q: &FlowsQuery) -> AccountFlowsRequest {
        AccountFlowsRequest {
            account: u128_to_bytes(q.account.0),
            time_min: q.time_min.0,
            time_max: q.time_max.0,
        }
    }
}

impl AccountFlowsRequest {
    /// The typed query.
    pub fn to_query(&self) -> Result<FlowsQuery, FrameError> {
        Ok(FlowsQuery {
            account: AccountId(u128_from_bytes(&self.account, "flows.account")?),
            time_min: Timestamp(self.time_min),
            time_max: Timestamp(self.time_max),
        })
    }
}

/// Body of [`Operation::AccountFlowsResponse`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AccountFlowsResponse {
    /// The account's ledger scale (`u8`).
    #[prost(uint32, tag = "1")]
    pub scale: u32,
    /// Total posted debits in the window, minor units (128-bit).
    #[prost(bytes = "bytes", tag = "2")]
    pub debits_total: Bytes,
    /// Total posted credits in the window, minor units (128-bit).
    #[prost(bytes = "bytes", tag = "3")]
    pub credits_total: Bytes,
    /// Number of posted debits in the window.
    #[prost(uint64, tag = "4")]
    pub debit_count: u64,
    /// Number of posted credits in the window.
    #[prost(uint64, tag = "5")]
    pub credit_count: u64,
}

impl Body for AccountFlowsResponse {
    const OPERATION: Operation = Operation::AccountFlowsResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}

impl From<&Flows> for AccountFlowsResponse {
    fn from(f: &Flows) -> AccountFlowsResponse {
        AccountFlowsResponse {
            scale: u32::from(f.scale),
            debits_total: u128_to_bytes(f.debits_total),
            credits_total: u128_to_bytes(f.credits_total),
            debit_count: f.debit_count,
            credit_count: f.credit_count,
        }
    }
}

impl AccountFlowsResponse {
    /// The typed flows.
    pub fn to_flows(&self) -> Result<Flows, FrameError> {
        Ok(Flows {
            scale: to_u8(self.scale, "flows.scale")?,
            debits_total: u128_from_bytes(&self.debits_total, "flows.debits_total")?,
            credits_total: u128_from_bytes(&self.credits_total, "flows.credits_total")?,
            debit_count: self.debit_count,
            credit_count: self.credit_count,
        })
    }
}

/// Body of [`Operation::BalanceSeries`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BalanceSeriesRequest {
    /// The account (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub account: Bytes,
    /// Start of the range, inclusive (nanoseconds).
    #[prost(uint64, tag = "2")]
    pub time_min: u64,
    /// End of the range, exclusive (nanoseconds), at most [`SERIES_POINTS_MAX`] hours on.
    #[prost(uint64, tag = "3")]
    pub time_max: u64,
}

impl Body for BalanceSeriesRequest {
    const OPERATION: Operation = Operation::BalanceSeries;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}

impl From<&SeriesQuery> for BalanceSeriesRequest {
    fn from(q: &SeriesQuery) -> BalanceSeriesRequest {
        BalanceSeriesRequest {
            account: u128_to_bytes(q.account.0),
            time_min: q.time_min.0,
            time_max: q.time_max.0,
        }
    }
}

impl BalanceSeriesRequest {
    /// The typed query.
    pub fn to_query(&self) -> Result<SeriesQuery, FrameError> {
        Ok(SeriesQuery {
            account: AccountId(u128_from_bytes(&self.account, "series.account")?),
            time_min: Timestamp(self.time_min),
            time_max: Timestamp(self.time_max),
        })
    }
}

/// Body of [`Operation::BalanceSeriesResponse`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BalanceSeriesResponse {
    /// The account's ledger scale (`u8`).
    #[prost(uint32, tag = "1")]
    pub scale: u32,
    /// One point per hour, oldest first, at most [`SERIES_POINTS_MAX`].
    #[prost(message, repeated, tag = "2")]
    pub points: Vec<WireBalancePoint>,
}

impl Body for BalanceSeriesResponse {
    const OPERATION: Operation = Operation::BalanceSeriesResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(2, SERIES_POINTS_MAX, false, "series points")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.points.len(), SERIES_POINTS_MAX, "series points")
    }
}

impl BalanceSeriesResponse {
    /// A response carrying `points` of a ledger with `scale`.
    pub fn new(scale: u8, points: &[BalancePoint]) -> BalanceSeriesResponse {
        BalanceSeriesResponse {
            scale: u32::from(scale),
            points: points.iter().map(WireBalancePoint::from).collect(),
        }
    }

    /// The ledger scale and the typed points.
    pub fn to_points(&self) -> Result<(u8, Vec<BalancePoint>), FrameError> {
        Ok((to_u8(self.scale, "series.scale")?, collect(&self.points)?))
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies: errors.

/// Body of [`Operation::Error`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ErrorResponse {
    /// The [`ErrorCode`].
    #[prost(uint32, tag = "1")]
    pub code: u32,
    /// A human-readable explanation, for logs only.
    #[prost(string, tag = "2")]
    pub message: String,
    /// For `NotLeader`: the leader's address; empty if unknown.
    #[prost(string, tag = "3")]
    pub leader_hint: String,
    /// For `Overloaded`: milliseconds to wait before retrying; zero if not given.
    #[prost(uint32, tag = "4")]
    pub retry_after_ms: u32,
}

impl Body for ErrorResponse {
    const OPERATION: Operation = Operation::Error;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        check_size(self.message.len(), TEXT_SIZE_MAX, "error.message")?;
        check_size(
            self.leader_hint.len(),
            ADDRESS_SIZE_MAX,
            "error.leader_hint",
        )
    }
}

impl From<&ServerError> for ErrorResponse {
    fn from(e: &ServerError) -> ErrorResponse {
        ErrorResponse {
            code: e.code.code(),
            message: e.message.clone(),
            leader_hint: e.leader_hint.clone().unwrap_or_default(),
            retry_after_ms: e.retry_after_ms.unwrap_or(0),
        }
    }
}

impl ErrorResponse {
    /// The typed error.
    pub fn to_server_error(&self) -> ServerError {
        ServerError {
            code: ErrorCode::from_code(self.code),
            message: self.message.clone(),
            leader_hint: optional_text(&self.leader_hint),
            retry_after_ms: (self.retry_after_ms != 0).then_some(self.retry_after_ms),
        }
    }
}
