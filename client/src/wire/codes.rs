//! Numeric codes carried on the wire: result codes, record kinds, error codes.
//!
//! Every code travels as a plain `u32`. The result enums mirror the engine's
//! `tally_engine::outcome` exactly, name for name and number for number, because the server
//! passes the engine's codes through unchanged; `client/tests/wire_codes.rs` pins every number
//! against a table and against the engine's source, so neither side can drift silently.
//!
//! Each enum has an `Unknown(u32)` fallback: a code this client does not know (the server is
//! newer) decodes to `Unknown(code)` instead of failing the whole response. Always build
//! values from numbers with `from_code`, which maps every known number to its named variant;
//! `Unknown` holding a known number is never produced by decoding.
//!
//! Result codes are ordered by precedence, as in the engine: when an event breaks several
//! rules, the smallest code is reported.

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A code this client does not know, kept as received (the server is newer).
            Unknown(u32),
        }

        impl $name {
            /// Every known value, in code order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant,)*];

            /// The code on the wire.
            pub const fn code(self) -> u32 {
                match self {
                    $($name::$variant => $code,)*
                    $name::Unknown(code) => code,
                }
            }

            /// The value with this code; `Unknown(code)` if the code is not known.
            pub const fn from_code(code: u32) -> $name {
                match code {
                    $($code => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }

            /// The variant's name, as used in logs and documentation (`"Unknown"` for codes
            /// this client does not know).
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)*
                    $name::Unknown(_) => "Unknown",
                }
            }

            /// Whether this client knows the code.
            pub const fn is_known(self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl From<u32> for $name {
            fn from(code: u32) -> $name {
                $name::from_code(code)
            }
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                value.code()
            }
        }
    };
}

code_enum!(
    /// The result of creating one ledger.
    LedgerResult {
        /// Created.
        Ok = 0,
        /// A ledger with this id and the same fields exists.
        Exists = 1,
        /// The id is zero.
        IdMustNotBeZero = 2,
        /// The scale exceeds the engine's maximum (28).
        ScaleTooLarge = 3,
        /// A ledger with this id but different fields exists.
        ExistsWithDifferentFields = 4,
    }
);

code_enum!(
    /// The result of creating one account.
    AccountResult {
        /// Created.
        Ok = 0,
        /// Another event of its linked chain failed; nothing of the chain was applied.
        LinkedEventFailed = 1,
        /// The batch ended inside a linked chain (the last event carries `LINKED`).
        LinkedEventChainOpen = 2,
        /// The id is zero.
        IdMustNotBeZero = 3,
        /// A reserved flag bit is set.
        ReservedFlag = 4,
        /// Both balance flags are set.
        FlagsAreMutuallyExclusive = 5,
        /// An account with this id and the same fields exists (a retry): treat as success.
        Exists = 6,
        /// An account with this id but different fields exists.
        ExistsWithDifferentFields = 7,
        /// The ledger is zero.
        LedgerMustNotBeZero = 8,
        /// The ledger does not exist.
        LedgerNotFound = 9,
        /// A limit is given without exactly one balance flag.
        LimitRequiresBalanceFlag = 10,
        /// The limit is negative.
        LimitMustNotBeNegative = 11,
        /// The limit has more decimals than the ledger's scale.
        LimitTooManyDecimals = 12,
        /// The limit does not fit in minor units.
        LimitOverflow = 13,
        /// Produced by the server, not the engine: a linked chain of accounts spans
        /// partitions, which is not supported yet. Nothing of it was applied.
        CrossPartition = 1000,
        /// Produced by the server: this account's partition did not answer while other
        /// partitions of the request did. It may or may not have been created: retry it
        /// with the same id to learn its outcome.
        TimedOut = 1001,
    }
);

code_enum!(
    /// The result of creating one transfer.
    TransferResult {
        /// Applied.
        Ok = 0,
        /// Another event of its linked chain failed; nothing of the chain was applied.
        LinkedEventFailed = 1,
        /// The batch ended inside a linked chain (the last event carries `LINKED`).
        LinkedEventChainOpen = 2,
        /// The id is zero.
        IdMustNotBeZero = 3,
        /// A reserved flag bit is set.
        ReservedFlag = 4,
        /// More than one of pending, post, void and refund.
        FlagsAreMutuallyExclusive = 5,
        /// `pending_id` is set on a transfer that is neither a post nor a void.
        PendingIdMustBeZero = 6,
        /// A post or void without `pending_id`.
        PendingIdMustNotBeZero = 7,
        /// `pending_id` equals the transfer's own id.
        PendingIdMustBeDifferent = 8,
        /// `refund_of` equals the transfer's own id.
        RefundOfMustBeDifferent = 9,
        /// A timeout on a transfer that is not a pending hold.
        TimeoutReservedForPendingTransfer = 10,
        /// A transfer with this id but different fields was already decided.
        ExistsWithDifferentFields = 11,
        /// The debit account is zero (plain or pending transfer).
        DebitAccountIdMustNotBeZero = 12,
        /// The credit account is zero (plain or pending transfer).
        CreditAccountIdMustNotBeZero = 13,
        /// Debit and credit account are the same.
        AccountsMustBeDifferent = 14,
        /// The amount is negative.
        AmountMustNotBeNegative = 15,
        /// The amount is zero where a positive amount is required.
        AmountMustNotBeZero = 16,
        /// The ledger is zero (plain or pending transfer).
        LedgerMustNotBeZero = 17,
        /// The ledger does not exist.
        LedgerNotFound = 18,
        /// The hold named by `pending_id` does not exist.
        PendingTransferNotFound = 19,
        /// The transfer named by `pending_id` is not a pending hold.
        PendingTransferNotPending = 20,
        /// The transfer named by `refund_of` does not exist.
        RefundOfNotFound = 21,
        /// The transfer named by `refund_of` did not post money (a hold, a void, a refund, or
        /// a failed transfer).
        RefundOfNotRefundable = 22,
        /// A post, void or refund names a debit account other than the original's.
        DifferentDebitAccount = 23,
        /// A post, void or refund names a credit account other than the original's.
        DifferentCreditAccount = 24,
        /// A post, void or refund names a ledger other than the original's.
        DifferentLedger = 25,
        /// The amount has more decimals than the ledger's scale.
        AmountTooManyDecimals = 26,
        /// The amount does not fit in minor units.
        AmountOverflow = 27,
        /// The debit account does not exist.
        DebitAccountNotFound = 28,
        /// The credit account does not exist.
        CreditAccountNotFound = 29,
        /// The two accounts are on different ledgers.
        AccountsMustHaveTheSameLedger = 30,
        /// The transfer's ledger is not the accounts' ledger.
        LedgerMismatch = 31,
        /// The hold was already posted.
        PendingTransferAlreadyPosted = 32,
        /// The hold was already voided.
        PendingTransferAlreadyVoided = 33,
        /// The hold expired before this post or void.
        HoldExpired = 34,
        /// A post for more than the hold.
        ExceedsPendingTransferAmount = 35,
        /// A void whose amount is neither zero nor the hold's.
        PendingTransferHasDifferentAmount = 36,
        /// The refunds of the original would exceed its amount.
        RefundExceedsRemaining = 37,
        /// A balance would overflow 128 bits.
        BalanceOverflow = 38,
        /// The debit account's flag forbids debits beyond its credits (insufficient funds).
        ExceedsCredits = 39,
        /// The credit account's flag forbids credits beyond its debits.
        ExceedsDebits = 40,
        /// Produced by the server, not the engine: the transfer's accounts (or its linked
        /// chain) span partitions, which is not supported yet. Nothing of it was applied.
        CrossPartition = 1000,
        /// Produced by the server: this transfer's partition did not answer while other
        /// partitions of the request did. It may or may not have been applied: retry it with
        /// the same id to learn its outcome.
        TimedOut = 1001,
    }
);

code_enum!(
    /// What a recorded transfer did (the engine's `TransferKind`).
    TransferKind {
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
        /// In an account's history only: a hold that expired and released its amount.
        Expired = 5,
    }
);

code_enum!(
    /// What a committed change is (a `Subscribe` stream's events).
    ChangeKind {
        /// A ledger creation was decided (its result says whether it was created).
        Ledger = 1,
        /// An account creation was decided.
        Account = 2,
        /// A transfer was decided: plain, hold, post, void or refund, with its result.
        Transfer = 3,
        /// A pending hold expired and released its amount (no event of its own in the log).
        HoldExpired = 4,
    }
);

code_enum!(
    /// Why the server ended a `Subscribe` stream. The end names where the stream stands:
    /// resume from there.
    StreamEnd {
        /// The consumer read too slowly: the node's buffer for it stayed full. Resume from
        /// the position given; the node reads the rest from its log on disk.
        TooSlow = 1,
        /// The node's change log could not be read. Resume on another node.
        Unreadable = 2,
        /// The node has known no leader of some partition for a while: it may be cut off
        /// from its peers, and would stream nothing new. Resume on another node.
        Isolated = 3,
    }
);

code_enum!(
    /// Where a pending hold stands (the engine's `HoldStatus`).
    HoldStatus {
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
);

code_enum!(
    /// The order of an `account_history` page.
    Direction {
        /// Oldest first, from the cursor onwards.
        Forward = 0,
        /// Newest first, from the cursor backwards.
        Backward = 1,
    }
);

code_enum!(
    /// Why a server answered a request (or the connection) with an `Error` frame instead of
    /// the operation's response. These are operating errors, not ledger outcomes: a ledger
    /// rejection always arrives as a result code inside the normal response.
    ErrorCode {
        /// The frame or its body is malformed. Do not retry the same bytes; the server closes
        /// the connection after a frame-level error.
        Malformed = 1,
        /// The server does not speak the frame's protocol version.
        UnsupportedVersion = 2,
        /// The server is overloaded: retry the same request (same ids) after `retry_after_ms`.
        Overloaded = 3,
        /// This node does not lead the partition: resend to `leader_hint` (same ids).
        NotLeader = 4,
        /// The server failed internally. The outcome is unknown: retry with the same ids.
        Internal = 5,
        /// The batch spans partitions in a way the server does not support yet.
        CrossPartitionUnsupported = 6,
        /// The request timed out inside the cluster. The outcome is unknown: retry with the
        /// same ids.
        Timeout = 7,
        /// This node cannot serve now (it is starting, or recovering its data from its
        /// peers). Nothing was applied: retry on another node, or here later.
        Unavailable = 8,
    }
);

impl ErrorCode {
    /// Whether resending the same request (with the same ids, so that it is idempotent) can
    /// succeed. For `Internal` and `Timeout` the first attempt may or may not have been
    /// applied; the retry returns its original outcome either way.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Overloaded
                | ErrorCode::NotLeader
                | ErrorCode::Internal
                | ErrorCode::Timeout
                | ErrorCode::Unavailable
        )
    }
}
