//! Pins every numeric code of the wire protocol so that none can change silently.
//!
//! The result codes are the engine's, passed through by the server as plain numbers; a
//! renumbering on either side would make clients misread outcomes (a rejected transfer read
//! as applied). The first tests compare each enum against a literal table copied from
//! `engine/src/outcome.rs` and `docs/protocol.md`. The last one reads the engine's source
//! (without depending on the engine crate, which the client must not) and requires that every
//! `Name = code` line of each result enum matches this crate's, in both directions.

use tally_client::wire::*;

const LEDGER: &[(&str, u32)] = &[
    ("Ok", 0),
    ("Exists", 1),
    ("IdMustNotBeZero", 2),
    ("ScaleTooLarge", 3),
    ("ExistsWithDifferentFields", 4),
];

const ACCOUNT: &[(&str, u32)] = &[
    ("Ok", 0),
    ("LinkedEventFailed", 1),
    ("LinkedEventChainOpen", 2),
    ("IdMustNotBeZero", 3),
    ("ReservedFlag", 4),
    ("FlagsAreMutuallyExclusive", 5),
    ("Exists", 6),
    ("ExistsWithDifferentFields", 7),
    ("LedgerMustNotBeZero", 8),
    ("LedgerNotFound", 9),
    ("LimitRequiresBalanceFlag", 10),
    ("LimitMustNotBeNegative", 11),
    ("LimitTooManyDecimals", 12),
    ("LimitOverflow", 13),
];

const TRANSFER: &[(&str, u32)] = &[
    ("Ok", 0),
    ("LinkedEventFailed", 1),
    ("LinkedEventChainOpen", 2),
    ("IdMustNotBeZero", 3),
    ("ReservedFlag", 4),
    ("FlagsAreMutuallyExclusive", 5),
    ("PendingIdMustBeZero", 6),
    ("PendingIdMustNotBeZero", 7),
    ("PendingIdMustBeDifferent", 8),
    ("RefundOfMustBeDifferent", 9),
    ("TimeoutReservedForPendingTransfer", 10),
    ("ExistsWithDifferentFields", 11),
    ("DebitAccountIdMustNotBeZero", 12),
    ("CreditAccountIdMustNotBeZero", 13),
    ("AccountsMustBeDifferent", 14),
    ("AmountMustNotBeNegative", 15),
    ("AmountMustNotBeZero", 16),
    ("LedgerMustNotBeZero", 17),
    ("LedgerNotFound", 18),
    ("PendingTransferNotFound", 19),
    ("PendingTransferNotPending", 20),
    ("RefundOfNotFound", 21),
    ("RefundOfNotRefundable", 22),
    ("DifferentDebitAccount", 23),
    ("DifferentCreditAccount", 24),
    ("DifferentLedger", 25),
    ("AmountTooManyDecimals", 26),
    ("AmountOverflow", 27),
    ("DebitAccountNotFound", 28),
    ("CreditAccountNotFound", 29),
    ("AccountsMustHaveTheSameLedger", 30),
    ("LedgerMismatch", 31),
    ("PendingTransferAlreadyPosted", 32),
    ("PendingTransferAlreadyVoided", 33),
    ("HoldExpired", 34),
    ("ExceedsPendingTransferAmount", 35),
    ("PendingTransferHasDifferentAmount", 36),
    ("RefundExceedsRemaining", 37),
    ("BalanceOverflow", 38),
    ("ExceedsCredits", 39),
    ("ExceedsDebits", 40),
];

const ERROR: &[(&str, u32)] = &[
    ("Malformed", 1),
    ("UnsupportedVersion", 2),
    ("Overloaded", 3),
    ("NotLeader", 4),
    ("Internal", 5),
    ("CrossPartitionUnsupported", 6),
    ("Timeout", 7),
    ("Unavailable", 8),
];

const KIND: &[(&str, u32)] = &[
    ("Plain", 0),
    ("Pending", 1),
    ("Post", 2),
    ("Void", 3),
    ("Refund", 4),
    ("Expired", 5),
];

const HOLD: &[(&str, u32)] = &[
    ("NotAHold", 0),
    ("Pending", 1),
    ("Posted", 2),
    ("Voided", 3),
    ("Expired", 4),
];

const CHANGE: &[(&str, u32)] = &[
    ("Ledger", 1),
    ("Account", 2),
    ("Transfer", 3),
    ("HoldExpired", 4),
];

const STREAM_END: &[(&str, u32)] = &[("TooSlow", 1), ("Unreadable", 2), ("Isolated", 3)];

const OPERATIONS: &[(&str, u16)] = &[
    ("Hello", 1),
    ("HelloResponse", 0x8001),
    ("Ping", 2),
    ("PingResponse", 0x8002),
    ("CreateLedgers", 3),
    ("CreateLedgersResponse", 0x8003),
    ("CreateAccounts", 4),
    ("CreateAccountsResponse", 0x8004),
    ("CreateTransfers", 5),
    ("CreateTransfersResponse", 0x8005),
    ("LookupAccounts", 6),
    ("LookupAccountsResponse", 0x8006),
    ("LookupTransfers", 7),
    ("LookupTransfersResponse", 0x8007),
    ("AccountHistory", 8),
    ("AccountHistoryResponse", 0x8008),
    ("AccountFlows", 9),
    ("AccountFlowsResponse", 0x8009),
    ("BalanceSeries", 10),
    ("BalanceSeriesResponse", 0x800a),
    ("Subscribe", 11),
    ("SubscribeResponse", 0x800b),
    ("Error", 0xffff),
];

/// Checks one enum against its table: same count, same name for every code, and the
/// `Unknown` fallback for the first code past the table.
macro_rules! pin {
    ($enum:ident, $table:expr) => {{
        let table: &[(&str, u32)] = $table;
        assert_eq!(
            $enum::KNOWN.len(),
            table.len(),
            "{} variant count",
            stringify!($enum)
        );
        for (value, (name, code)) in $enum::KNOWN.iter().zip(table) {
            assert_eq!(
                (value.name(), value.code()),
                (*name, *code),
                "{}",
                stringify!($enum)
            );
            assert_eq!($enum::from_code(*code), *value);
            assert_eq!(u32::from(*value), *code);
        }
        let next = table.iter().map(|(_, code)| code).max().unwrap() + 1;
        assert_eq!($enum::from_code(next), $enum::Unknown(next));
        assert_eq!($enum::from_code(next).code(), next);
        assert!(!$enum::from_code(next).is_known());
    }};
}

#[test]
fn result_codes_are_pinned() {
    pin!(LedgerResult, LEDGER);
    // Codes from 1000 up are the server's own (cross_partition, timed_out), not the engine's.
    let account: Vec<(&str, u32)> = ACCOUNT
        .iter()
        .copied()
        .chain([("CrossPartition", 1000), ("TimedOut", 1001)])
        .collect();
    pin!(AccountResult, &account);
    let transfer: Vec<(&str, u32)> = TRANSFER
        .iter()
        .copied()
        .chain([("CrossPartition", 1000), ("TimedOut", 1001)])
        .collect();
    pin!(TransferResult, &transfer);
}

#[test]
fn other_codes_are_pinned() {
    pin!(ErrorCode, ERROR);
    pin!(TransferKind, KIND);
    pin!(HoldStatus, HOLD);
    pin!(ChangeKind, CHANGE);
    pin!(StreamEnd, STREAM_END);
    assert_eq!(Direction::Forward.code(), 0);
    assert_eq!(Direction::Backward.code(), 1);
    assert_eq!(Operation::ALL.len(), OPERATIONS.len());
    for (name, number) in OPERATIONS {
        let op = Operation::from_u16(*number).unwrap_or_else(|| panic!("{name}"));
        assert_eq!((op.name(), op.as_u16()), (*name, *number));
    }
}

#[test]
fn retry_guidance_is_pinned() {
    let retryable: Vec<_> = ErrorCode::KNOWN
        .iter()
        .filter(|code| code.is_retryable())
        .map(|code| code.name())
        .collect();
    assert_eq!(
        retryable,
        [
            "Overloaded",
            "NotLeader",
            "Internal",
            "Timeout",
            "Unavailable"
        ]
    );
    assert!(!ErrorCode::Unknown(100).is_retryable());
}

/// `(enum name, variant name, code)` for every `Variant = code,` line inside a
/// `result_enum!( ... Name { ... } )` block of the engine's source.
fn engine_codes(source: &str) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in source.lines().map(str::trim) {
        if let Some(name) = line.strip_suffix(" {") {
            if name.ends_with("Result") && !name.contains(' ') {
                current = Some(name.to_owned());
                continue;
            }
        }
        if line.starts_with('}') {
            current = None;
            continue;
        }
        let Some(enum_name) = &current else { continue };
        if let Some((variant, code)) = line.trim_end_matches(',').split_once(" = ") {
            if let Ok(code) = code.parse() {
                out.push((enum_name.clone(), variant.to_owned(), code));
            }
        }
    }
    out
}

#[test]
fn result_codes_match_the_engine_source() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../engine/src/outcome.rs");
    let source = std::fs::read_to_string(path).expect("engine/src/outcome.rs is in the workspace");
    let engine = engine_codes(&source);
    let client: Vec<(String, String, u32)> = [
        ("LedgerResult", LEDGER),
        ("AccountResult", ACCOUNT),
        ("TransferResult", TRANSFER),
    ]
    .iter()
    .flat_map(|(enum_name, table)| {
        table
            .iter()
            .map(move |(name, code)| (enum_name.to_string(), name.to_string(), *code))
    })
    .collect();
    assert_eq!(engine, client, "engine and client result codes differ");
}
