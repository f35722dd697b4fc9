//! Typed values of a `Subscribe` stream: where it starts, what it keeps, and the changes.
//!
//! A stream carries every decision the cluster committed, in commit order per partition: a
//! ledger or account created (or refused), a transfer decided with its result and both
//! accounts' balances right after it, a hold expired. Each change has a [`Position`]
//! (partition, log index, event within the entry); a consumer that keeps the last position it
//! handled per partition resumes exactly after it ([`StreamFrom::After`]). Delivery is
//! at-least-once: a consumer dedupes by position.

use super::codes::{AccountResult, ChangeKind, LedgerResult, TransferKind, TransferResult};
use super::types::{
    AccountId, Balances, LedgerId, NewAccount, NewLedger, NewTransfer, PartitionId, Timestamp,
    TransferId,
};

/// Where a change stands: event `event` (from 0) of log entry `index` of `partition`.
/// Positions of one partition are totally ordered by `(index, event)`; the same position names
/// the same change on every node of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// The partition.
    pub partition: PartitionId,
    /// The log entry.
    pub index: u64,
    /// The event within the entry (a hold expiring before the entry's first event counts as an
    /// event of its own).
    pub event: u32,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}.{}", self.partition.0, self.index, self.event)
    }
}

impl std::str::FromStr for Position {
    type Err = String;

    /// Parses `PARTITION:INDEX.EVENT`, as [`Position`]'s `Display` writes it.
    fn from_str(text: &str) -> Result<Position, String> {
        let bad = || format!("{text:?} is not a position (PARTITION:INDEX.EVENT, e.g. 0:1234.5)");
        let (partition, rest) = text.split_once(':').ok_or_else(bad)?;
        let (index, event) = rest.split_once('.').ok_or_else(bad)?;
        Ok(Position {
            partition: PartitionId(partition.parse().map_err(|_| bad())?),
            index: index.parse().map_err(|_| bad())?,
            event: event.parse().map_err(|_| bad())?,
        })
    }
}

/// Where a stream starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamFrom {
    /// From the first entry of every partition: the whole history.
    Start,
    /// From what commits after the subscription arrives.
    Now,
    /// From the first change stamped at or after this time, per partition.
    Time(Timestamp),
    /// Right after these positions (at most one per partition): the last change a consumer
    /// handled. Partitions not named start from the start.
    After(Vec<Position>),
}

/// Which changes a stream keeps. Empty lists keep everything; each non-empty list must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamFilter {
    /// Keep changes of these ledgers.
    pub ledgers: Vec<LedgerId>,
    /// Keep changes of these accounts (either side of a transfer).
    pub accounts: Vec<AccountId>,
    /// Keep changes with these codes (the account's or the transfer's code).
    pub codes: Vec<u16>,
}

impl StreamFilter {
    /// Whether the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        self.ledgers.is_empty() && self.accounts.is_empty() && self.codes.is_empty()
    }
}

/// One committed change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Where it stands in the stream.
    pub position: Position,
    /// The event's timestamp (for an expiry: the expiring entry's time).
    pub timestamp: Timestamp,
    /// What it was.
    pub body: ChangeBody,
}

impl Change {
    /// The kind of change.
    pub fn kind(&self) -> ChangeKind {
        match &self.body {
            ChangeBody::Ledger { .. } => ChangeKind::Ledger,
            ChangeBody::Account { .. } => ChangeKind::Account,
            ChangeBody::Transfer(t) if t.kind == TransferKind::Expired => ChangeKind::HoldExpired,
            ChangeBody::Transfer(_) => ChangeKind::Transfer,
        }
    }
}

/// What a change was.
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "transfers are nearly every change: boxing them would allocate for each"
)]
pub enum ChangeBody {
    /// A ledger creation, as asked, and its result.
    Ledger {
        /// The ledger as asked.
        ledger: NewLedger,
        /// Its result (`Ok` if created).
        result: LedgerResult,
    },
    /// An account creation, as asked, and its result.
    Account {
        /// The account as asked.
        account: NewAccount,
        /// Its result (`Ok` if created).
        result: AccountResult,
    },
    /// A transfer decided, or a hold expired ([`TransferKind::Expired`]).
    Transfer(TransferChange),
}

/// A transfer decided (or a hold expired), with what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferChange {
    /// The transfer (for an expiry: the hold).
    pub id: TransferId,
    /// The event as the client sent it; `None` for an expiry, which has no event.
    pub asked: Option<NewTransfer>,
    /// Its result. An expiry is `Ok`.
    pub result: TransferResult,
    /// What it did (for a refusal: what it asked to do).
    pub kind: TransferKind,
    /// The ledger (taken from the original for posts, voids, refunds and expiries).
    pub ledger: LedgerId,
    /// The ledger's scale, to read the minor units (0 if the ledger does not exist).
    pub scale: u8,
    /// The account debited (for a refund: the original's credit account).
    pub debit_account: AccountId,
    /// The account credited.
    pub credit_account: AccountId,
    /// The transfer's code (for an expiry: the hold's).
    pub code: u16,
    /// The amount moved, in minor units (see [`TransferKind`]; zero for a refusal).
    pub amount: u128,
    /// The debit account's balances right after (zeros for a refusal).
    pub debit_balances: Balances,
    /// The credit account's balances right after (zeros for a refusal).
    pub credit_balances: Balances,
}
