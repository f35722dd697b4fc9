//! Bodies of a change stream: the subscription and the frames that answer it.

use super::*;
use crate::wire::changes::{
    Change, ChangeBody, Position, StreamFilter, StreamFrom, TransferChange,
};
use crate::wire::codes::{ChangeKind, StreamEnd};

/// Most changes in one [`SubscribeResponse`].
pub const CHANGES_PER_FRAME_MAX: usize = 65_536;
/// Most values in each filter list of a [`SubscribeRequest`].
pub const FILTER_VALUES_MAX: usize = 1024;

/// Where a stream stands on one partition.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WirePosition {
    /// The partition.
    #[prost(uint32, tag = "1")]
    pub partition: u32,
    /// The log index.
    #[prost(uint64, tag = "2")]
    pub index: u64,
    /// The event within the entry.
    #[prost(uint32, tag = "3")]
    pub event: u32,
}

impl From<&Position> for WirePosition {
    fn from(p: &Position) -> WirePosition {
        WirePosition {
            partition: p.partition.0,
            index: p.index,
            event: p.event,
        }
    }
}

impl From<&WirePosition> for Position {
    fn from(w: &WirePosition) -> Position {
        Position {
            partition: PartitionId(w.partition),
            index: w.index,
            event: w.event,
        }
    }
}

/// How [`SubscribeRequest::from`] is read.
const FROM_START: u32 = 0;
const FROM_NOW: u32 = 1;
const FROM_TIME: u32 = 2;
const FROM_AFTER: u32 = 3;

/// Body of [`Operation::Subscribe`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SubscribeRequest {
    /// 0 = from the start, 1 = from now, 2 = from `time`, 3 = right after `positions`.
    #[prost(uint32, tag = "1")]
    pub from: u32,
    /// With `from` = 2: nanoseconds since the Unix epoch.
    #[prost(uint64, tag = "2")]
    pub time: u64,
    /// With `from` = 3: the last position handled, at most one per partition.
    #[prost(message, repeated, tag = "3")]
    pub positions: Vec<WirePosition>,
    /// Keep changes of these ledgers (empty: all).
    #[prost(uint32, repeated, tag = "4")]
    pub ledgers: Vec<u32>,
    /// Keep changes of these accounts, 128-bit each (empty: all).
    #[prost(bytes = "bytes", repeated, tag = "5")]
    pub accounts: Vec<Bytes>,
    /// Keep changes with these codes, `u16` each (empty: all).
    #[prost(uint32, repeated, tag = "6")]
    pub codes: Vec<u32>,
}

impl Body for SubscribeRequest {
    const OPERATION: Operation = Operation::Subscribe;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[
        limit(3, PARTITIONS_MAX, false, "subscribe.positions"),
        limit(4, FILTER_VALUES_MAX, true, "subscribe.ledgers"),
        limit(5, FILTER_VALUES_MAX, false, "subscribe.accounts"),
        limit(6, FILTER_VALUES_MAX, true, "subscribe.codes"),
    ];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.positions.len(), PARTITIONS_MAX, "subscribe.positions")?;
        check_count(self.ledgers.len(), FILTER_VALUES_MAX, "subscribe.ledgers")?;
        check_count(self.accounts.len(), FILTER_VALUES_MAX, "subscribe.accounts")?;
        check_count(self.codes.len(), FILTER_VALUES_MAX, "subscribe.codes")
    }
}

impl SubscribeRequest {
    /// A subscription from `from`, keeping what `filter` keeps.
    pub fn new(from: &StreamFrom, filter: &StreamFilter) -> SubscribeRequest {
        let (code, time, positions) = match from {
            StreamFrom::Start => (FROM_START, 0, Vec::new()),
            StreamFrom::Now => (FROM_NOW, 0, Vec::new()),
            StreamFrom::Time(t) => (FROM_TIME, t.0, Vec::new()),
            StreamFrom::After(p) => (FROM_AFTER, 0, p.iter().map(WirePosition::from).collect()),
        };
        SubscribeRequest {
            from: code,
            time,
            positions,
            ledgers: filter.ledgers.iter().map(|l| l.0).collect(),
            accounts: filter.accounts.iter().map(|a| u128_to_bytes(a.0)).collect(),
            codes: filter.codes.iter().map(|&c| u32::from(c)).collect(),
        }
    }

    /// Where the stream starts. Two positions of one partition are an error.
    pub fn to_from(&self) -> Result<StreamFrom, FrameError> {
        Ok(match self.from {
            FROM_START => StreamFrom::Start,
            FROM_NOW => StreamFrom::Now,
            FROM_TIME => StreamFrom::Time(Timestamp(self.time)),
            FROM_AFTER => {
                let positions: Vec<Position> = self.positions.iter().map(Position::from).collect();
                let mut partitions: Vec<u32> = positions.iter().map(|p| p.partition.0).collect();
                partitions.sort_unstable();
                if partitions.windows(2).any(|w| w[0] == w[1]) {
                    return Err(FrameError::InvalidField {
                        what: "subscribe.positions",
                        reason: "two positions for one partition",
                    });
                }
                StreamFrom::After(positions)
            }
            _ => {
                return Err(FrameError::InvalidField {
                    what: "subscribe.from",
                    reason: "unknown start (0 start, 1 now, 2 time, 3 after positions)",
                })
            }
        })
    }

    /// What the stream keeps.
    pub fn to_filter(&self) -> Result<StreamFilter, FrameError> {
        Ok(StreamFilter {
            ledgers: self.ledgers.iter().map(|&l| LedgerId(l)).collect(),
            accounts: self
                .accounts
                .iter()
                .map(|a| u128_from_bytes(a, "subscribe.accounts").map(AccountId))
                .collect::<Result<_, _>>()?,
            codes: self
                .codes
                .iter()
                .map(|&c| to_u16(c, "subscribe.codes"))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// One committed change. Which of `ledger`, `account` and `transfer` is present follows
/// `kind`; for transfers and expiries the resolved fields (`ledger_id` to `credit_balances`)
/// say what the transfer did.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireChange {
    /// The partition.
    #[prost(uint32, tag = "1")]
    pub partition: u32,
    /// The log index of the entry.
    #[prost(uint64, tag = "2")]
    pub index: u64,
    /// The event within the entry.
    #[prost(uint32, tag = "3")]
    pub event: u32,
    /// The event's timestamp, in nanoseconds.
    #[prost(uint64, tag = "4")]
    pub timestamp: u64,
    /// The [`ChangeKind`] code.
    #[prost(uint32, tag = "5")]
    pub kind: u32,
    /// The result code (a [`LedgerResult`], [`AccountResult`] or [`TransferResult`]).
    #[prost(uint32, tag = "6")]
    pub result: u32,
    /// Kind 1: the ledger as asked.
    #[prost(message, optional, tag = "7")]
    pub ledger: Option<WireNewLedger>,
    /// Kind 2: the account as asked.
    #[prost(message, optional, tag = "8")]
    pub account: Option<WireNewAccount>,
    /// Kind 3: the transfer as asked.
    #[prost(message, optional, tag = "9")]
    pub transfer: Option<WireNewTransfer>,
    /// Kinds 3 and 4: the [`TransferKind`] code.
    #[prost(uint32, tag = "10")]
    pub transfer_kind: u32,
    /// Kinds 3 and 4: the amount moved, in minor units (128-bit).
    #[prost(bytes = "bytes", tag = "11")]
    pub amount: Bytes,
    /// Kinds 3 and 4: the ledger's scale (`u8`).
    #[prost(uint32, tag = "12")]
    pub scale: u32,
    /// Kinds 3 and 4: the ledger.
    #[prost(uint32, tag = "13")]
    pub ledger_id: u32,
    /// Kinds 3 and 4: the account debited (128-bit).
    #[prost(bytes = "bytes", tag = "14")]
    pub debit_account: Bytes,
    /// Kinds 3 and 4: the account credited (128-bit).
    #[prost(bytes = "bytes", tag = "15")]
    pub credit_account: Bytes,
    /// Kinds 3 and 4: the debit account's balances after.
    #[prost(message, optional, tag = "16")]
    pub debit_balances: Option<WireBalances>,
    /// Kinds 3 and 4: the credit account's balances after.
    #[prost(message, optional, tag = "17")]
    pub credit_balances: Option<WireBalances>,
    /// Kinds 3 and 4: the transfer (for an expiry: the hold), 128-bit.
    #[prost(bytes = "bytes", tag = "18")]
    pub transfer_id: Bytes,
    /// Kinds 3 and 4: the transfer's code (`u16`).
    #[prost(uint32, tag = "19")]
    pub code: u32,
}

impl TryFrom<&WireChange> for Change {
    type Error = FrameError;

    fn try_from(w: &WireChange) -> Result<Change, FrameError> {
        let missing = |what| FrameError::InvalidField {
            what,
            reason: "missing for this kind of change",
        };
        let body = match ChangeKind::from_code(w.kind) {
            ChangeKind::Ledger => ChangeBody::Ledger {
                ledger: NewLedger::try_from(w.ledger.as_ref().ok_or(missing("change.ledger"))?)?,
                result: LedgerResult::from_code(w.result),
            },
            ChangeKind::Account => ChangeBody::Account {
                account: NewAccount::try_from(
                    w.account.as_ref().ok_or(missing("change.account"))?,
                )?,
                result: AccountResult::from_code(w.result),
            },
            kind @ (ChangeKind::Transfer | ChangeKind::HoldExpired) => {
                let asked = match (kind, &w.transfer) {
                    (ChangeKind::Transfer, Some(t)) => Some(NewTransfer::try_from(t)?),
                    (ChangeKind::Transfer, None) => return Err(missing("change.transfer")),
                    _ => None,
                };
                ChangeBody::Transfer(TransferChange {
                    id: TransferId(u128_from_bytes(&w.transfer_id, "change.transfer_id")?),
                    asked,
                    result: TransferResult::from_code(w.result),
                    kind: TransferKind::from_code(w.transfer_kind),
                    ledger: LedgerId(w.ledger_id),
                    scale: to_u8(w.scale, "change.scale")?,
                    debit_account: AccountId(u128_from_bytes(
                        &w.debit_account,
                        "change.debit_account",
                    )?),
                    credit_account: AccountId(u128_from_bytes(
                        &w.credit_account,
                        "change.credit_account",
                    )?),
                    code: to_u16(w.code, "change.code")?,
                    amount: u128_from_bytes(&w.amount, "change.amount")?,
                    debit_balances: balances_or_zero(w.debit_balances.as_ref())?,
                    credit_balances: balances_or_zero(w.credit_balances.as_ref())?,
                })
            }
            ChangeKind::Unknown(_) => {
                return Err(FrameError::InvalidField {
                    what: "change.kind",
                    reason: "unknown kind of change",
                })
            }
        };
        Ok(Change {
            position: Position {
                partition: PartitionId(w.partition),
                index: w.index,
                event: w.event,
            },
            timestamp: Timestamp(w.timestamp),
            body,
        })
    }
}

/// Why a stream ended.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireStreamEnd {
    /// The [`StreamEnd`] code.
    #[prost(uint32, tag = "1")]
    pub result: u32,
    /// A sentence for people.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// Body of [`Operation::SubscribeResponse`]; a subscription is answered by many of them, all
/// with its request id, until one carries `end` (or the connection closes).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SubscribeResponse {
    /// Changes, in commit order per partition.
    #[prost(message, repeated, tag = "1")]
    pub changes: Vec<WireChange>,
    /// Where the stream stands after this frame, per partition: past every change it read,
    /// those the filter left out included. Resuming after these skips nothing.
    #[prost(message, repeated, tag = "2")]
    pub positions: Vec<WirePosition>,
    /// The stream had read everything committed when it sent this frame.
    #[prost(bool, tag = "3")]
    pub caught_up: bool,
    /// The stream ends here, and why.
    #[prost(message, optional, tag = "4")]
    pub end: Option<WireStreamEnd>,
}

impl Body for SubscribeResponse {
    const OPERATION: Operation = Operation::SubscribeResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[
        limit(1, CHANGES_PER_FRAME_MAX, false, "changes"),
        limit(2, PARTITIONS_MAX, false, "stream positions"),
    ];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.changes.len(), CHANGES_PER_FRAME_MAX, "changes")?;
        check_count(self.positions.len(), PARTITIONS_MAX, "stream positions")?;
        if let Some(end) = &self.end {
            check_size(end.message.len(), TEXT_SIZE_MAX, "stream end message")?;
        }
        Ok(())
    }
}

/// A [`SubscribeResponse`], typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFrame {
    /// The changes.
    pub changes: Vec<Change>,
    /// Where the stream stands after the frame, per partition.
    pub positions: Vec<Position>,
    /// The stream had caught up with what was committed.
    pub caught_up: bool,
    /// The stream ended, why, and the server's sentence.
    pub end: Option<(StreamEnd, String)>,
}

impl SubscribeResponse {
    /// The typed frame.
    pub fn to_frame(&self) -> Result<StreamFrame, FrameError> {
        Ok(StreamFrame {
            changes: collect(&self.changes)?,
            positions: self.positions.iter().map(Position::from).collect(),
            caught_up: self.caught_up,
            end: self
                .end
                .as_ref()
                .map(|e| (StreamEnd::from_code(e.result), e.message.clone())),
        })
    }
}
