//! The client's typed values: identities, new events, records, query results.
//!
//! These mirror the engine's types field for field but are defined here, because the client
//! crate depends on no workspace crate: the wire format and the disk format version apart, and
//! the server converts between the two. Every identity is a newtype so that two of them can
//! never be swapped by accident. Amounts a client *sends* are `rust_decimal::Decimal`, as in
//! the engine's commands; amounts and balances the server *reports* are integer minor units
//! (`u128`) together with the ledger's scale, exactly as the engine stores them, with
//! [`to_decimal`] to turn them back into decimals.
//!
//! The conversions to and from the prost messages live in [`super::messages`].

use std::fmt;

use rust_decimal::Decimal;

use super::codes::{Direction, ErrorCode};
use super::codes::{HoldStatus, TransferKind, TransferResult};

macro_rules! newtype {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

newtype!(
    /// An account, chosen by the client. Zero is never a valid account id.
    AccountId(u128)
);
newtype!(
    /// A transfer, chosen by the client; it is also the idempotency key, so a retry must reuse
    /// it. Zero is never valid.
    TransferId(u128)
);
newtype!(
    /// A ledger: one asset or currency. Zero is never valid.
    LedgerId(u32)
);
newtype!(
    /// A partition: one Raft group and one state machine.
    PartitionId(u32)
);
newtype!(
    /// Nanoseconds since the Unix epoch, as stamped by the partition's leader.
    Timestamp(u64)
);

impl Timestamp {
    /// As UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ` (what the CLI prints).
    pub fn utc(self) -> String {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(self.0);
        humantime::format_rfc3339_millis(time).to_string()
    }
}

/// Account flags (a `u16` bit set), with the engine's bit values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccountFlags(pub u16);

impl AccountFlags {
    /// Consecutive events flagged `LINKED` succeed or fail together.
    pub const LINKED: u16 = 1 << 0;
    /// Debits (pending + posted) may not exceed posted credits (plus `limit`): no overdraft.
    pub const DEBITS_MUST_NOT_EXCEED_CREDITS: u16 = 1 << 1;
    /// Credits (pending + posted) may not exceed posted debits (plus `limit`).
    pub const CREDITS_MUST_NOT_EXCEED_DEBITS: u16 = 1 << 2;
    /// Every bit defined above; the others are reserved.
    pub const ALL: u16 =
        Self::LINKED | Self::DEBITS_MUST_NOT_EXCEED_CREDITS | Self::CREDITS_MUST_NOT_EXCEED_DEBITS;

    /// Whether `bit` is set.
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// Transfer flags (a `u16` bit set), with the engine's bit values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TransferFlags(pub u16);

impl TransferFlags {
    /// Consecutive events flagged `LINKED` succeed or fail together.
    pub const LINKED: u16 = 1 << 0;
    /// A hold: the amount moves into the pending balances until posted, voided or expired.
    pub const PENDING: u16 = 1 << 1;
    /// Posts the hold named by `pending_id` (fully, or partially with a smaller amount).
    pub const POST_PENDING: u16 = 1 << 2;
    /// Voids the hold named by `pending_id`.
    pub const VOID_PENDING: u16 = 1 << 3;
    /// Every bit defined above; the others are reserved.
    pub const ALL: u16 = Self::LINKED | Self::PENDING | Self::POST_PENDING | Self::VOID_PENDING;

    /// Whether `bit` is set.
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// A ledger to create: one asset or currency with a fixed decimal scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLedger {
    /// Must not be zero.
    pub id: LedgerId,
    /// Digits after the decimal point (0 for whole units such as gems or items).
    pub scale: u8,
    /// Free-form classification for the application.
    pub code: u16,
}

/// An account to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    /// Must not be zero.
    pub id: AccountId,
    /// The ledger whose units this account holds; it must exist.
    pub ledger: LedgerId,
    /// The account's kind (player wallet, revenue, issuer, …), for the application.
    pub code: u16,
    /// See [`AccountFlags`].
    pub flags: AccountFlags,
    /// Relaxes the balance flag by this much (an allowed overdraft, or excess of credits).
    /// Requires exactly one of the two balance flags.
    pub limit: Option<Decimal>,
    /// External reference (player id, game id, …).
    pub user_data_128: u128,
    /// External reference.
    pub user_data_64: u64,
    /// External reference.
    pub user_data_32: u32,
}

/// A transfer to create: plain, a pending hold, the post or void of a hold, or a refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTransfer {
    /// Must not be zero; the idempotency key.
    pub id: TransferId,
    /// The account debited. May be zero for post, void and refund (taken from the original).
    pub debit_account: AccountId,
    /// The account credited. May be zero for post, void and refund.
    pub credit_account: AccountId,
    /// Positive; at most the ledger's scale in decimals. For a post, zero means the whole
    /// hold; for a void, zero or the hold's amount.
    pub amount: Decimal,
    /// The ledger. May be zero for post, void and refund.
    pub ledger: LedgerId,
    /// Free-form classification for the application.
    pub code: u16,
    /// See [`TransferFlags`].
    pub flags: TransferFlags,
    /// The hold posted or voided (with `POST_PENDING` / `VOID_PENDING`), else zero.
    pub pending_id: TransferId,
    /// The posted transfer this one refunds, else zero.
    pub refund_of: TransferId,
    /// Seconds after which a pending hold expires; zero never expires. Only for `PENDING`.
    pub timeout_s: u32,
    /// External reference.
    pub user_data_128: u128,
    /// External reference.
    pub user_data_64: u64,
    /// External reference.
    pub user_data_32: u32,
    /// A short note, at most [`super::MEMO_SIZE_MAX`] bytes.
    pub memo: Vec<u8>,
}

impl NewTransfer {
    /// A plain transfer with every optional field empty.
    pub fn plain(
        id: TransferId,
        debit_account: AccountId,
        credit_account: AccountId,
        amount: Decimal,
        ledger: LedgerId,
    ) -> NewTransfer {
        NewTransfer {
            id,
            debit_account,
            credit_account,
            amount,
            ledger,
            code: 1,
            flags: TransferFlags(0),
            pending_id: TransferId(0),
            refund_of: TransferId(0),
            timeout_s: 0,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
            memo: Vec::new(),
        }
    }
}

/// The four balances of an account, in minor units of its ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Balances {
    /// Held by pending transfers debiting the account.
    pub debits_pending: u128,
    /// Posted debits.
    pub debits_posted: u128,
    /// Held by pending transfers crediting the account.
    pub credits_pending: u128,
    /// Posted credits.
    pub credits_posted: u128,
}

/// What one transfer event came to. A retry of the same event returns this same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransferOutcome {
    /// The result code.
    pub result: TransferResult,
    /// The timestamp assigned to the event (zero if the event was never decided on its own).
    pub timestamp: Timestamp,
    /// Balances of the debit account right after the transfer (only for `Ok`).
    pub debit_balances: Balances,
    /// Balances of the credit account right after the transfer (only for `Ok`).
    pub credit_balances: Balances,
}

/// An account as looked up: its fields, creation time and balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The account's id.
    pub id: AccountId,
    /// Its ledger.
    pub ledger: LedgerId,
    /// Its ledger's scale, to read the minor units below.
    pub scale: u8,
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
    /// Its balances, in minor units.
    pub balances: Balances,
}

/// A decided transfer as looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The transfer's id.
    pub id: TransferId,
    /// What it did (meaningful only if `result` is `Ok`).
    pub kind: TransferKind,
    /// The account debited (resolved from the original for posts, voids and refunds).
    pub debit_account: AccountId,
    /// The account credited.
    pub credit_account: AccountId,
    /// The ledger.
    pub ledger: LedgerId,
    /// The ledger's scale, to read the minor units below.
    pub scale: u8,
    /// The amount moved, in minor units (for a void: the amount released).
    pub amount: u128,
    /// The hold posted or voided, or the transfer refunded; else zero.
    pub reference: TransferId,
    /// Seconds until a hold expires (zero: never).
    pub timeout_s: u32,
    /// The application's classification.
    pub code: u16,
    /// The flags as sent.
    pub flags: TransferFlags,
    /// External reference.
    pub user_data_128: u128,
    /// External reference.
    pub user_data_64: u64,
    /// External reference.
    pub user_data_32: u32,
    /// The memo as sent.
    pub memo: Vec<u8>,
    /// The outcome, as returned to the original request and every retry.
    pub outcome: TransferOutcome,
    /// For holds: where the hold stands.
    pub hold: HoldStatus,
    /// For refundable transfers: the total refunded so far, in minor units.
    pub refunded: u128,
}

/// One page request of an account's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The account.
    pub account: AccountId,
    /// Where to start: zero for the first page, else a previous page's `next_cursor`.
    pub cursor: u64,
    /// Most entries to return, at most [`super::HISTORY_ENTRIES_MAX`].
    pub limit: u32,
    /// Oldest first or newest first.
    pub direction: Direction,
    /// Only entries stamped at or after this time.
    pub time_min: Option<Timestamp>,
    /// Only entries stamped before this time.
    pub time_max: Option<Timestamp>,
}

/// One entry of an account's history: a transfer that touched it and its balances after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The transfer.
    pub transfer_id: TransferId,
    /// When it was applied.
    pub timestamp: Timestamp,
    /// What it did.
    pub kind: TransferKind,
    /// Whether the account was debited (else credited).
    pub is_debit: bool,
    /// The other account of the transfer.
    pub counterparty: AccountId,
    /// The amount, in minor units.
    pub amount: u128,
    /// The account's balances right after this entry.
    pub balances: Balances,
}

/// One page of an account's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    /// The ledger's scale, to read the minor units.
    pub scale: u8,
    /// The entries, in the requested direction.
    pub entries: Vec<HistoryEntry>,
    /// The cursor of the next page, or `None` at the end of the history.
    pub next_cursor: Option<u64>,
}

/// A request for an account's incoming and outgoing totals over `[time_min, time_max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowsQuery {
    /// The account.
    pub account: AccountId,
    /// Start of the window, inclusive.
    pub time_min: Timestamp,
    /// End of the window, exclusive.
    pub time_max: Timestamp,
}

/// An account's posted flows over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flows {
    /// The ledger's scale, to read the minor units.
    pub scale: u8,
    /// Total posted debits (money out), in minor units.
    pub debits_total: u128,
    /// Total posted credits (money in), in minor units.
    pub credits_total: u128,
    /// Number of posted debits.
    pub debit_count: u64,
    /// Number of posted credits.
    pub credit_count: u64,
}

/// A request for an account's hourly closing balances over `[time_min, time_max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesQuery {
    /// The account.
    pub account: AccountId,
    /// Start of the range, inclusive (rounded down to the hour by the server).
    pub time_min: Timestamp,
    /// End of the range, exclusive; at most [`super::SERIES_POINTS_MAX`] hours after the start.
    pub time_max: Timestamp,
}

/// The balances of an account at the end of one hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalancePoint {
    /// Start of the hour.
    pub time_start: Timestamp,
    /// The balances when the hour closed, in minor units.
    pub balances: Balances,
}

/// The leader of one partition, as known to the answering node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLeader {
    /// The partition.
    pub partition: PartitionId,
    /// The leader's client address (`host:port`), or `None` while no leader is known.
    pub address: Option<String>,
}

/// What a node reports in answer to `hello`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The answering node.
    pub node_id: u64,
    /// Partitions in the cluster, fixed at its creation.
    pub partition_count: u32,
    /// The known leaders.
    pub leaders: Vec<PartitionLeader>,
    /// The server's software version.
    pub server_version: String,
    /// The answering node's own replica of each partition (empty from older servers).
    pub replicas: Vec<ReplicaStatus>,
    /// How long the answering node has been running, in milliseconds.
    pub uptime_ms: u64,
    /// Where the answering node's time went, per stage of the write path (empty from older
    /// servers).
    pub stages: Vec<StageSummary>,
    /// Every node of the cluster with the client address the answering node knows for it
    /// (empty from older servers).
    pub nodes: Vec<NodeAddress>,
}

/// A node of the cluster and its client address, as the answering node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    /// The node's id.
    pub node_id: u64,
    /// Its client address (`host:port`), or `None` while it has not announced one.
    pub address: Option<String>,
}

/// How one node's replica of one partition stands, as that node reports it (not a
/// linearizable read: a snapshot of the node's own state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The partition.
    pub partition: PartitionId,
    /// The replica's current term.
    pub term: u64,
    /// The leader it follows (its own id when it leads; 0 when none is known).
    pub leader: u64,
    /// The last index in its log.
    pub last_index: u64,
    /// Its commit index.
    pub commit_index: u64,
    /// The last index its state machine applied.
    pub applied_index: u64,
    /// The state digest at `applied_index`: replicas at the same applied index have the same.
    pub digest: u128,
    /// Whether it is recovering lost data (it takes no part in elections meanwhile).
    pub recovering: bool,
    /// Client requests waiting in its inbox.
    pub queue_depth: u32,
}

/// How long one stage of a node's write path took, over the node's life (see the server's
/// `stages` module for what each stage covers). Times are microseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageSummary {
    /// The stage: `decode`, `queue`, `propose`, `append`, `fsync`, `apply`, `index`,
    /// `index_flush`, `checkpoint`, `commit` or `request`.
    pub name: String,
    /// How many times it was timed.
    pub count: u64,
    /// The time spent in it, in all.
    pub total_us: u64,
    /// The median.
    pub p50_us: u64,
    /// The 99th percentile.
    pub p99_us: u64,
    /// The longest.
    pub max_us: u64,
}

/// An `Error` frame's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// What went wrong; see [`ErrorCode`] for what to do about it.
    pub code: ErrorCode,
    /// A human-readable explanation, for logs only.
    pub message: String,
    /// For `NotLeader`: the leader's address, if known.
    pub leader_hint: Option<String>,
    /// For `Overloaded`: how long to wait before retrying.
    pub retry_after_ms: Option<u32>,
}

/// Turns `minor` units of a ledger with `scale` decimals into a `Decimal`, or `None` if the
/// value does not fit `Decimal`'s 96-bit mantissa or the scale exceeds 28.
pub fn to_decimal(minor: u128, scale: u8) -> Option<Decimal> {
    let mantissa = i128::try_from(minor).ok()?;
    Decimal::try_from_i128_with_scale(mantissa, u32::from(scale)).ok()
}

/// The partition that owns an id (an account, or an id chosen to live beside an account) in a
/// cluster of `partitions` partitions. Server and client must agree on this function, so it
/// is part of the protocol (`docs/protocol.md`, "Partitioning"): fold the two 64-bit halves
/// with xor, multiply by 2^64/φ (Fibonacci hashing), and reduce the high 32 bits modulo the
/// partition count.
pub fn partition_of(id: u128, partitions: u32) -> u32 {
    assert!(partitions > 0, "a cluster has at least one partition");
    let folded = (id as u64) ^ ((id >> 64) as u64);
    let mixed = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mixed >> 32) % u64::from(partitions)) as u32
}

#[cfg(test)]
mod partition_tests {
    use super::partition_of;

    #[test]
    fn partition_of_is_pinned_and_spreads_ids() {
        // Pinned values: changing the function moves every account of every cluster.
        assert_eq!(partition_of(0, 1), 0);
        assert_eq!(
            partition_of(1, 4),
            ((0x9E37_79B9_7F4A_7C15u64 >> 32) % 4) as u32
        );
        let mut counts = [0u32; 4];
        for id in 1..=4000u128 {
            counts[partition_of(id, 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}

#[cfg(test)]
mod timestamp_tests {
    use super::Timestamp;

    #[test]
    fn timestamps_format_as_utc() {
        assert_eq!(Timestamp(0).utc(), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z, a leap day.
        assert_eq!(
            Timestamp(1_709_210_096_789_000_000).utc(),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(
            Timestamp(951_782_400_000_000_000).utc(),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
