//! Outcomes: the result of every event, as data.
//!
//! Ledger rejections are not errors: they are replicated, deterministic, recorded (for
//! transfers, by id, so that a retry returns the original outcome) and returned to the client
//! as stable `u32` codes. The codes are ordered by precedence: when an event breaks several
//! rules, the one with the smallest code is reported, because the state machine checks them in
//! this order. Never renumber a code; add new ones at the end of their precedence group only
//! with a format version bump.

use crate::types::Timestamp;

macro_rules! result_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $code,)*
        }

        impl $name {
            /// Every result, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stable code.
            pub fn code(self) -> u32 {
                self as u32
            }

            /// The result with this code, if any.
            pub fn from_code(code: u32) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The variant's name, as used in logs, the CLI and documentation.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)*
                }
            }
        }
    };
}

result_enum!(
    /// The result of creating one ledger.
    LedgerResult {
        /// Created.
        Ok = 0,
        /// A ledger with this id and the same fields exists.
        Exists = 1,
        /// The id is zero.
        IdMustNotBeZero = 2,
        /// The scale exceeds [`crate::command::LEDGER_SCALE_MAX`].
        ScaleTooLarge = 3,
        /// A ledger with this id but different fields exists.
        ExistsWithDifferentFields = 4,
    }
);

result_enum!(
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
    }
);

result_enum!(
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
    }
);

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

impl TransferOutcome {
    pub(crate) fn failed(result: TransferResult, timestamp: Timestamp) -> TransferOutcome {
        assert_ne!(result, TransferResult::Ok);
        TransferOutcome {
            result,
            timestamp,
            debit_balances: Balances::default(),
            credit_balances: Balances::default(),
        }
    }
}

/// What a command came to: one result per event, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A tick has no events.
    Tick,
    /// One result per ledger.
    Ledgers(Vec<LedgerResult>),
    /// One result per account.
    Accounts(Vec<AccountResult>),
    /// One outcome per transfer.
    Transfers(Vec<TransferOutcome>),
}
