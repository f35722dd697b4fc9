//! The partition's records: ledgers, accounts and decided transfers.

use super::*;

/// A ledger: one asset or currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ledger {
    /// The ledger's id.
    pub id: LedgerId,
    /// Digits after the decimal point of its amounts.
    pub scale: u8,
    /// Application-defined classification.
    pub code: u16,
}

/// An account and its balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    /// The account's id.
    pub id: AccountId,
    /// Its ledger.
    pub ledger: LedgerId,
    /// Its kind, for the application.
    pub code: u16,
    /// See [`AccountFlags`].
    pub flags: AccountFlags,
    /// How far the balance flag may be exceeded, in minor units.
    pub limit: Option<u128>,
    /// External reference.
    pub user_data_128: u128,
    /// External reference.
    pub user_data_64: u64,
    /// External reference.
    pub user_data_32: u32,
    /// When it was created.
    pub timestamp: Timestamp,
    /// Its balances.
    pub balances: Balances,
}

/// What a recorded transfer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TransferKind {
    /// Moved money between posted balances.
    Plain = 0,
    /// Held money in pending balances.
    Pending = 1,
    /// Posted a hold.
    Post = 2,
    /// Voided a hold.
    Void = 3,
    /// Refunded (part of) a posted transfer.
    Refund = 4,
    /// Not a transfer: its id claimed, on the id's home partition, for a transfer applied on
    /// another partition (`Command::ClaimTransfers`), so that an id has one outcome in the
    /// whole cluster. Lookups and routing never treat it as a transfer. (6, not 5: the wire's
    /// kind 5 is a history entry's expired hold.)
    Claim = 6,
}

/// The state of a pending hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HoldStatus {
    /// Not a hold (or a hold that failed).
    NotAHold = 0,
    /// Holding its amount.
    Pending = 1,
    /// Posted (fully or partially; any remainder was released).
    Posted = 2,
    /// Voided.
    Voided = 3,
    /// Expired: its deadline passed before a post or void.
    Expired = 4,
}

/// A decided transfer, kept for idempotent retries, posts, voids and refunds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    /// The transfer's id.
    pub id: TransferId,
    /// Hash of the event's fields as sent, to tell a retry from a conflicting reuse of the id.
    pub fingerprint: u128,
    /// What it did; for a refusal, what it asked (by its flags).
    pub kind: TransferKind,
    /// The account debited (resolved from the original for posts, voids and refunds).
    pub debit_account: AccountId,
    /// The account credited.
    pub credit_account: AccountId,
    /// The ledger.
    pub ledger: LedgerId,
    /// The amount moved, in minor units (for a void: the amount released). For a refusal:
    /// the amount asked, in its ledger's minor units, or 0 if it has none (no such ledger,
    /// a negative amount, too many decimals).
    pub amount: u128,
    /// The hold posted or voided, or the transfer refunded (for a refusal: as asked).
    pub reference: TransferId,
    /// Seconds until a hold expires (zero: never).
    pub timeout_s: u32,
    /// The outcome returned to the client, and again to every retry.
    pub outcome: TransferOutcome,
    /// For holds: where the hold stands.
    pub hold: HoldStatus,
    /// For refundable transfers: the total refunded so far.
    pub refunded: u128,
    /// What the client sent for its own use (code, flags, user data, memo), returned by
    /// lookups as sent.
    pub details: TransferDetails,
}

/// The fields of a transfer the ledger keeps for the client without interpreting them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferDetails {
    /// The event's code.
    pub code: u16,
    /// The event's flags as sent.
    pub flags: TransferFlags,
    /// External reference.
    pub user_data_128: u128,
    /// External reference.
    pub user_data_64: u64,
    /// External reference.
    pub user_data_32: u32,
    /// The memo.
    pub memo: Memo,
}

impl TransferDetails {
    /// The details of an event as sent (its memo is at most [`MEMO_SIZE_MAX`] bytes:
    /// validated before apply).
    pub fn of(e: &NewTransfer) -> TransferDetails {
        TransferDetails {
            code: e.code,
            flags: e.flags,
            user_data_128: e.user_data_128,
            user_data_64: e.user_data_64,
            user_data_32: e.user_data_32,
            memo: Memo::new(&e.memo).expect("memo length validated before apply"),
        }
    }
}

/// A memo of at most [`MEMO_SIZE_MAX`] bytes, stored inline.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Memo {
    pub(super) len: u8,
    pub(super) bytes: [u8; MEMO_SIZE_MAX],
}

impl Memo {
    /// The memo holding `bytes`, if they fit.
    pub fn new(bytes: &[u8]) -> Option<Memo> {
        if bytes.len() > MEMO_SIZE_MAX {
            return None;
        }
        let mut memo = Memo {
            len: bytes.len() as u8,
            bytes: [0; MEMO_SIZE_MAX],
        };
        memo.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(memo)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memo({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl TransferRecord {
    /// When a pending hold expires, if it does.
    pub fn deadline(&self) -> Option<Timestamp> {
        (self.timeout_s > 0).then(|| {
            Timestamp(
                self.outcome
                    .timestamp
                    .0
                    .saturating_add(u64::from(self.timeout_s) * NANOS_PER_SECOND),
            )
        })
    }
}
