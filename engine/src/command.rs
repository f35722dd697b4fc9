//! Commands: what a log entry asks the state machine to do, and their byte encoding.
//!
//! A log entry's payload is one [`EntryPayload`]: the timestamp the leader stamped on it and a
//! [`Command`] carrying a batch of events. The state machine reads time only from here.
//!
//! The encoding is a hand-written little-endian format (documented in `docs/format.md`,
//! "Entry payloads"). It is on the hot path of apply and replay, so it avoids allocation per
//! event beyond the event vector itself. The decoder never panics on arbitrary bytes: every
//! length is checked against the remaining input and against a named maximum before anything
//! is allocated, and amounts are rebuilt with `Decimal::try_from_i128_with_scale`, which
//! rejects out-of-range scales.
//!
//! Amounts travel as `Decimal` (mantissa and scale) exactly as the client sent them. They are
//! validated against the ledger's scale inside the state machine, so a bad amount is a
//! replicated, recorded outcome like any other rejection.

use rust_decimal::Decimal;
use thiserror::Error;

use crate::types::{AccountId, LedgerId, Timestamp, TransferId};

/// Most events one command may carry (client batches are split to fit).
pub const EVENTS_PER_COMMAND_MAX: usize = 8190;
/// Longest memo a transfer may carry, in bytes.
pub const MEMO_SIZE_MAX: usize = 32;
/// Largest ledger scale (digits after the decimal point); `Decimal` carries at most 28.
pub const LEDGER_SCALE_MAX: u8 = 28;

/// Format version of entry payloads; the first byte of every payload.
pub const PAYLOAD_VERSION: u8 = 1;

/// Account flags (a `u16` bit set on disk and on the wire).
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

/// Transfer flags (a `u16` bit set on disk and on the wire).
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
    /// Relaxes the balance flag by this much: with `DEBITS_MUST_NOT_EXCEED_CREDITS`, an
    /// allowed overdraft; with `CREDITS_MUST_NOT_EXCEED_DEBITS`, an allowed excess of credits.
    /// Requires exactly one of the two flags.
    pub limit: Option<Decimal>,
    /// External references (player id, game id, …).
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
    /// A short note, at most [`MEMO_SIZE_MAX`] bytes.
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

/// What a log entry asks of the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Nothing but the passage of time: lets holds expire when the partition is idle.
    Tick,
    /// Create ledgers.
    CreateLedgers(Vec<NewLedger>),
    /// Create accounts.
    CreateAccounts(Vec<NewAccount>),
    /// Create transfers.
    CreateTransfers(Vec<NewTransfer>),
    /// Claim transfer ids on their home partition for transfers applied on other partitions:
    /// each event's id is recorded with the event's fingerprint, or found recorded with the
    /// same one (`Ok`), or with another (`ExistsWithDifferentFields`). Nothing else happens.
    ClaimTransfers(Vec<NewTransfer>),
}

/// One log entry's payload: the leader's timestamp and the command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPayload {
    /// Stamped by the leader, monotonic within the partition.
    pub timestamp: Timestamp,
    /// What to do.
    pub command: Command,
}

/// Why a payload could not be decoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the named field.
    #[error("payload truncated while reading {0}")]
    Truncated(&'static str),
    /// The payload's version byte is not one we know.
    #[error("unknown payload version {0}")]
    Version(u8),
    /// The command tag is not one we know.
    #[error("unknown command tag {0}")]
    Tag(u8),
    /// The byte saying whether an account has a limit is neither 0 nor 1.
    #[error("invalid limit tag {0}")]
    LimitTag(u8),
    /// More events than [`EVENTS_PER_COMMAND_MAX`].
    #[error("{0} events exceed the maximum of {EVENTS_PER_COMMAND_MAX}")]
    TooManyEvents(u32),
    /// A memo longer than [`MEMO_SIZE_MAX`].
    #[error("memo of {0} bytes exceeds the maximum of {MEMO_SIZE_MAX}")]
    MemoTooLong(u8),
    /// An amount whose mantissa or scale is out of `Decimal`'s range.
    #[error("invalid decimal amount")]
    Decimal,
    /// Bytes left over after the command.
    #[error("{0} trailing bytes after the command")]
    Trailing(usize),
}

const TAG_TICK: u8 = 0;
const TAG_LEDGERS: u8 = 1;
const TAG_ACCOUNTS: u8 = 2;
const TAG_TRANSFERS: u8 = 3;
const TAG_CLAIMS: u8 = 4;

impl EntryPayload {
    /// Appends this payload's encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(PAYLOAD_VERSION);
        out.extend_from_slice(&self.timestamp.0.to_le_bytes());
        match &self.command {
            Command::Tick => out.push(TAG_TICK),
            Command::CreateLedgers(events) => {
                out.push(TAG_LEDGERS);
                put_count(out, events.len());
                for ledger in events {
                    out.extend_from_slice(&ledger.id.0.to_le_bytes());
                    out.push(ledger.scale);
                    out.extend_from_slice(&ledger.code.to_le_bytes());
                }
            }
            Command::CreateAccounts(events) => {
                out.push(TAG_ACCOUNTS);
                put_count(out, events.len());
                for account in events {
                    encode_account(account, out);
                }
            }
            Command::CreateTransfers(events) | Command::ClaimTransfers(events) => {
                out.push(if matches!(self.command, Command::CreateTransfers(_)) {
                    TAG_TRANSFERS
                } else {
                    TAG_CLAIMS
                });
                put_count(out, events.len());
                out.reserve(events.len() * TRANSFER_SIZE_MIN);
                for transfer in events {
                    encode_transfer(transfer, out);
                }
            }
        }
    }

    /// Checks the limits the encoder asserts: at most [`EVENTS_PER_COMMAND_MAX`] events and
    /// memos of at most [`MEMO_SIZE_MAX`] bytes. Callers with outside input check this first.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let count = match &self.command {
            Command::Tick => 0,
            Command::CreateLedgers(events) => events.len(),
            Command::CreateAccounts(events) => events.len(),
            Command::CreateTransfers(events) | Command::ClaimTransfers(events) => {
                if let Some(t) = events.iter().find(|t| t.memo.len() > MEMO_SIZE_MAX) {
                    return Err(DecodeError::MemoTooLong(t.memo.len().min(255) as u8));
                }
                events.len()
            }
        };
        if count > EVENTS_PER_COMMAND_MAX {
            return Err(DecodeError::TooManyEvents(
                count.min(u32::MAX as usize) as u32
            ));
        }
        Ok(())
    }

    /// This payload's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Decodes a payload, checking every bound.
    pub fn decode(bytes: &[u8]) -> Result<EntryPayload, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u8("version")?;
        if version != PAYLOAD_VERSION {
            return Err(DecodeError::Version(version));
        }
        let timestamp = Timestamp(r.u64("timestamp")?);
        let tag = r.u8("tag")?;
        let command = match tag {
            TAG_TICK => Command::Tick,
            TAG_LEDGERS => {
                let count = r.count(LEDGER_SIZE)?;
                let mut events = Vec::with_capacity(count);
                for _ in 0..count {
                    events.push(NewLedger {
                        id: LedgerId(r.u32("ledger id")?),
                        scale: r.u8("ledger scale")?,
                        code: r.u16("ledger code")?,
                    });
                }
                Command::CreateLedgers(events)
            }
            TAG_ACCOUNTS => {
                let count = r.count(ACCOUNT_SIZE_MIN)?;
                let mut events = Vec::with_capacity(count);
                for _ in 0..count {
                    events.push(decode_account(&mut r)?);
                }
                Command::CreateAccounts(events)
            }
            TAG_TRANSFERS | TAG_CLAIMS => {
                let count = r.count(TRANSFER_SIZE_MIN)?;
                let mut events = Vec::with_capacity(count);
                for _ in 0..count {
                    events.push(decode_transfer(&mut r)?);
                }
                if tag == TAG_TRANSFERS {
                    Command::CreateTransfers(events)
                } else {
                    Command::ClaimTransfers(events)
                }
            }
            other => return Err(DecodeError::Tag(other)),
        };
        if r.pos != bytes.len() {
            return Err(DecodeError::Trailing(bytes.len() - r.pos));
        }
        Ok(EntryPayload { timestamp, command })
    }
}

const LEDGER_SIZE: usize = 4 + 1 + 2;
const DECIMAL_SIZE: usize = 16 + 1;
/// An account without a limit: id, ledger, code, flags, limit tag, user data.
const ACCOUNT_SIZE_MIN: usize = 16 + 4 + 2 + 2 + 1 + 16 + 8 + 4;
/// A transfer with an empty memo.
const TRANSFER_SIZE_MIN: usize =
    16 + 16 + 16 + DECIMAL_SIZE + 4 + 2 + 2 + 16 + 16 + 4 + 16 + 8 + 4 + 1;

fn put_count(out: &mut Vec<u8>, count: usize) {
    assert!(
        count <= EVENTS_PER_COMMAND_MAX,
        "{count} events in one command"
    );
    out.extend_from_slice(&(count as u32).to_le_bytes());
}

fn put_decimal(out: &mut Vec<u8>, value: Decimal) {
    out.extend_from_slice(&value.mantissa().to_le_bytes());
    // Decimal scales are at most 28, so they always fit in a byte.
    out.push(value.scale() as u8);
}

fn encode_account(account: &NewAccount, out: &mut Vec<u8>) {
    out.extend_from_slice(&account.id.0.to_le_bytes());
    out.extend_from_slice(&account.ledger.0.to_le_bytes());
    out.extend_from_slice(&account.code.to_le_bytes());
    out.extend_from_slice(&account.flags.0.to_le_bytes());
    match account.limit {
        None => out.push(0),
        Some(limit) => {
            out.push(1);
            put_decimal(out, limit);
        }
    }
    out.extend_from_slice(&account.user_data_128.to_le_bytes());
    out.extend_from_slice(&account.user_data_64.to_le_bytes());
    out.extend_from_slice(&account.user_data_32.to_le_bytes());
}

fn decode_account(r: &mut Reader<'_>) -> Result<NewAccount, DecodeError> {
    Ok(NewAccount {
        id: AccountId(r.u128("account id")?),
        ledger: LedgerId(r.u32("account ledger")?),
        code: r.u16("account code")?,
        flags: AccountFlags(r.u16("account flags")?),
        limit: match r.u8("limit tag")? {
            0 => None,
            1 => Some(r.decimal("account limit")?),
            other => return Err(DecodeError::LimitTag(other)),
        },
        user_data_128: r.u128("user_data_128")?,
        user_data_64: r.u64("user_data_64")?,
        user_data_32: r.u32("user_data_32")?,
    })
}

/// Appends the encoding of one transfer event; also used to fingerprint transfers for the
/// idempotency check.
pub(crate) fn encode_transfer(t: &NewTransfer, out: &mut Vec<u8>) {
    assert!(
        t.memo.len() <= MEMO_SIZE_MAX,
        "memo of {} bytes",
        t.memo.len()
    );
    out.extend_from_slice(&t.id.0.to_le_bytes());
    out.extend_from_slice(&t.debit_account.0.to_le_bytes());
    out.extend_from_slice(&t.credit_account.0.to_le_bytes());
    put_decimal(out, t.amount);
    out.extend_from_slice(&t.ledger.0.to_le_bytes());
    out.extend_from_slice(&t.code.to_le_bytes());
    out.extend_from_slice(&t.flags.0.to_le_bytes());
    out.extend_from_slice(&t.pending_id.0.to_le_bytes());
    out.extend_from_slice(&t.refund_of.0.to_le_bytes());
    out.extend_from_slice(&t.timeout_s.to_le_bytes());
    out.extend_from_slice(&t.user_data_128.to_le_bytes());
    out.extend_from_slice(&t.user_data_64.to_le_bytes());
    out.extend_from_slice(&t.user_data_32.to_le_bytes());
    out.push(t.memo.len() as u8);
    out.extend_from_slice(&t.memo);
}

fn decode_transfer(r: &mut Reader<'_>) -> Result<NewTransfer, DecodeError> {
    let mut t = NewTransfer {
        id: TransferId(r.u128("transfer id")?),
        debit_account: AccountId(r.u128("debit account")?),
        credit_account: AccountId(r.u128("credit account")?),
        amount: r.decimal("amount")?,
        ledger: LedgerId(r.u32("transfer ledger")?),
        code: r.u16("transfer code")?,
        flags: TransferFlags(r.u16("transfer flags")?),
        pending_id: TransferId(r.u128("pending id")?),
        refund_of: TransferId(r.u128("refund of")?),
        timeout_s: r.u32("timeout")?,
        user_data_128: r.u128("user_data_128")?,
        user_data_64: r.u64("user_data_64")?,
        user_data_32: r.u32("user_data_32")?,
        memo: Vec::new(),
    };
    let memo_len = r.u8("memo length")?;
    if usize::from(memo_len) > MEMO_SIZE_MAX {
        return Err(DecodeError::MemoTooLong(memo_len));
    }
    t.memo = r.take(usize::from(memo_len), "memo")?.to_vec();
    Ok(t)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or(DecodeError::Truncated(what))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated(what))?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn u128(&mut self, what: &'static str) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array(what)?))
    }
    fn decimal(&mut self, what: &'static str) -> Result<Decimal, DecodeError> {
        let mantissa = i128::from_le_bytes(self.array(what)?);
        let scale = self.u8(what)?;
        Decimal::try_from_i128_with_scale(mantissa, u32::from(scale))
            .map_err(|_| DecodeError::Decimal)
    }

    /// Reads an event count and checks it against the maximum and against the bytes left, so
    /// that a forged count cannot make us allocate more than the input could describe.
    fn count(&mut self, event_size_min: usize) -> Result<usize, DecodeError> {
        let count = self.u32("event count")?;
        if count as usize > EVENTS_PER_COMMAND_MAX {
            return Err(DecodeError::TooManyEvents(count));
        }
        let count = count as usize;
        if count * event_size_min > self.bytes.len() - self.pos {
            return Err(DecodeError::Truncated("events"));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> EntryPayload {
        let mut t = NewTransfer::plain(
            TransferId(7),
            AccountId(1),
            AccountId(2),
            Decimal::new(12345, 2),
            LedgerId(1),
        );
        t.memo = b"hello".to_vec();
        EntryPayload {
            timestamp: Timestamp(99),
            command: Command::CreateTransfers(vec![t.clone(), t]),
        }
    }

    #[test]
    fn round_trip() {
        let payload = sample();
        assert_eq!(EntryPayload::decode(&payload.encode()), Ok(payload));
        let accounts = EntryPayload {
            timestamp: Timestamp(1),
            command: Command::CreateAccounts(vec![NewAccount {
                id: AccountId(5),
                ledger: LedgerId(2),
                code: 3,
                flags: AccountFlags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
                limit: Some(Decimal::new(-5, 1)),
                user_data_128: 1,
                user_data_64: 2,
                user_data_32: 3,
            }]),
        };
        assert_eq!(EntryPayload::decode(&accounts.encode()), Ok(accounts));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(
                EntryPayload::decode(&bytes[..len]).is_err(),
                "prefix of {len} decoded"
            );
        }
    }

    #[test]
    fn forged_count_is_rejected_before_allocating() {
        let mut bytes = vec![PAYLOAD_VERSION];
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.push(TAG_TRANSFERS);
        bytes.extend_from_slice(&8000u32.to_le_bytes());
        assert_eq!(
            EntryPayload::decode(&bytes),
            Err(DecodeError::Truncated("events"))
        );
        bytes.truncate(10);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            EntryPayload::decode(&bytes),
            Err(DecodeError::TooManyEvents(u32::MAX))
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = EntryPayload::decode(&bytes);
        }

        #[test]
        fn mutated_payloads_never_panic(index in 0usize..400, byte in any::<u8>()) {
            let mut bytes = sample().encode();
            let index = index % bytes.len();
            bytes[index] = byte;
            if let Ok(decoded) = EntryPayload::decode(&bytes) {
                prop_assert_eq!(decoded.encode(), bytes);
            }
        }
    }
}
