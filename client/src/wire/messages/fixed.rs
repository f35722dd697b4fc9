//! The messages of a transfer batch, encoded by hand: [`WireNewTransfer`], [`WireDecimal`]
//! and [`WireBalances`].
//!
//! Their 128-bit fields are `bytes` on the wire (16 bytes little-endian, or empty for zero;
//! see the parent module), which prost's derive holds as one heap buffer each: six per new
//! transfer and eight per transfer outcome, allocated, copied and freed on both sides of
//! every batch (`benches/benches/wire_codec.rs`: 4.0 ms to encode a request of 8190
//! transfers, 6.0 ms to encode its response). Here they are held as integers and written from
//! the stack. The bytes on the wire are exactly what the derive wrote (the tests compare
//! them with derived twins of these structs), and decoding accepts exactly what it accepted:
//! a 128-bit field of a length other than 0 or 16 decodes, and its conversion to a typed
//! value is refused naming the field, as before.

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use prost::DecodeError;
use rust_decimal::Decimal;

use super::{check_size, to_u16, FrameError};
use crate::wire::types::{AccountId, Balances, LedgerId, NewTransfer, TransferFlags, TransferId};
use crate::wire::{MEMO_SIZE_MAX, U128_SIZE};

/// The refusal of a 128-bit field of the wrong length (the same as `u128_from_bytes`).
fn malformed(what: &'static str) -> FrameError {
    FrameError::InvalidField {
        what,
        reason: "a 128-bit integer must be empty (zero) or exactly 16 bytes",
    }
}

fn u128_len(tag: u32, value: u128) -> usize {
    if value == 0 {
        0
    } else {
        encoding::key_len(tag) + 1 + U128_SIZE
    }
}

fn put_u128(tag: u32, value: u128, buf: &mut impl BufMut) {
    if value != 0 {
        encoding::encode_key(tag, WireType::LengthDelimited, buf);
        buf.put_u8(U128_SIZE as u8);
        buf.put_slice(&value.to_le_bytes());
    }
}

/// The error prost gives a field longer than what is left of the buffer. Its constructor is
/// deprecated (prost means to keep error kinds private): this is the one place that calls it.
#[allow(deprecated)]
fn underflow() -> DecodeError {
    DecodeError::new("buffer underflow")
}

/// Decodes a 128-bit field into `value`; returns whether its length was valid (0 or 16).
/// As with a derived `bytes` field, a later occurrence replaces an earlier one.
fn merge_u128(
    wire_type: WireType,
    value: &mut u128,
    buf: &mut impl Buf,
) -> Result<bool, DecodeError> {
    encoding::check_wire_type(WireType::LengthDelimited, wire_type)?;
    let len = encoding::decode_varint(buf)?;
    if len > buf.remaining() as u64 {
        return Err(underflow());
    }
    let len = len as usize;
    *value = 0;
    match len {
        0 => Ok(true),
        U128_SIZE => {
            let mut bytes = [0u8; U128_SIZE];
            buf.copy_to_slice(&mut bytes);
            *value = u128::from_le_bytes(bytes);
            Ok(true)
        }
        _ => {
            buf.advance(len);
            Ok(false)
        }
    }
}

/// Which 128-bit fields (by tag) arrived with a wrong length; the first one is reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Malformed(u32);

impl Malformed {
    fn set(&mut self, tag: u32, valid: bool) {
        if valid {
            self.0 &= !(1 << tag);
        } else {
            self.0 |= 1 << tag;
        }
    }

    fn check(self, tag: u32, what: &'static str) -> Result<(), FrameError> {
        if self.0 & (1 << tag) != 0 {
            return Err(malformed(what));
        }
        Ok(())
    }
}

fn u32_len(tag: u32, value: u32) -> usize {
    if value == 0 {
        0
    } else {
        encoding::uint32::encoded_len(tag, &value)
    }
}

fn put_u32(tag: u32, value: u32, buf: &mut impl BufMut) {
    if value != 0 {
        encoding::uint32::encode(tag, &value, buf);
    }
}

/// A decimal amount: `mantissa × 10^-scale` (tag 1: the `i128` mantissa as 128-bit bytes;
/// tag 2: the scale, `uint32`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireDecimal {
    /// The mantissa.
    pub mantissa: i128,
    /// Digits after the decimal point, at most 28.
    pub scale: u32,
    malformed: Malformed,
}

impl WireDecimal {
    /// A decimal of `mantissa × 10^-scale`, unchecked (conversion checks it).
    pub fn new(mantissa: i128, scale: u32) -> WireDecimal {
        WireDecimal {
            mantissa,
            scale,
            malformed: Malformed::default(),
        }
    }
}

impl prost::Message for WireDecimal {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        put_u128(1, self.mantissa as u128, buf);
        put_u32(2, self.scale, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => {
                let mut value = 0u128;
                let valid = merge_u128(wire_type, &mut value, buf)?;
                self.mantissa = value as i128;
                self.malformed.set(1, valid);
                Ok(())
            }
            2 => encoding::uint32::merge(wire_type, &mut self.scale, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        u128_len(1, self.mantissa as u128) + u32_len(2, self.scale)
    }

    fn clear(&mut self) {
        *self = WireDecimal::default();
    }
}

impl From<Decimal> for WireDecimal {
    fn from(value: Decimal) -> WireDecimal {
        WireDecimal::new(value.mantissa(), value.scale())
    }
}

impl TryFrom<&WireDecimal> for Decimal {
    type Error = FrameError;

    fn try_from(wire: &WireDecimal) -> Result<Decimal, FrameError> {
        wire.malformed.check(1, "decimal mantissa")?;
        Decimal::try_from_i128_with_scale(wire.mantissa, wire.scale).map_err(|_| {
            FrameError::InvalidField {
                what: "decimal",
                reason: "mantissa exceeds 96 bits or scale exceeds 28",
            }
        })
    }
}

pub(super) fn decimal_or_zero(wire: Option<&WireDecimal>) -> Result<Decimal, FrameError> {
    wire.map_or(Ok(Decimal::ZERO), Decimal::try_from)
}

/// The four balances of an account, each a 128-bit integer in minor units (tags 1–4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireBalances {
    /// Held by pending debits.
    pub debits_pending: u128,
    /// Posted debits.
    pub debits_posted: u128,
    /// Held by pending credits.
    pub credits_pending: u128,
    /// Posted credits.
    pub credits_posted: u128,
    malformed: Malformed,
}

impl WireBalances {
    fn fields(&self) -> [u128; 4] {
        [
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
        ]
    }
}

impl prost::Message for WireBalances {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for (tag, value) in (1..).zip(self.fields()) {
            put_u128(tag, value, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let field = match tag {
            1 => &mut self.debits_pending,
            2 => &mut self.debits_posted,
            3 => &mut self.credits_pending,
            4 => &mut self.credits_posted,
            _ => return encoding::skip_field(wire_type, tag, buf, ctx),
        };
        let valid = merge_u128(wire_type, field, buf)?;
        self.malformed.set(tag, valid);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        (1..)
            .zip(self.fields())
            .map(|(tag, v)| u128_len(tag, v))
            .sum()
    }

    fn clear(&mut self) {
        *self = WireBalances::default();
    }
}

impl From<&Balances> for WireBalances {
    fn from(b: &Balances) -> WireBalances {
        WireBalances {
            debits_pending: b.debits_pending,
            debits_posted: b.debits_posted,
            credits_pending: b.credits_pending,
            credits_posted: b.credits_posted,
            malformed: Malformed::default(),
        }
    }
}

impl TryFrom<&WireBalances> for Balances {
    type Error = FrameError;

    fn try_from(w: &WireBalances) -> Result<Balances, FrameError> {
        w.malformed.check(1, "debits_pending")?;
        w.malformed.check(2, "debits_posted")?;
        w.malformed.check(3, "credits_pending")?;
        w.malformed.check(4, "credits_posted")?;
        Ok(Balances {
            debits_pending: w.debits_pending,
            debits_posted: w.debits_posted,
            credits_pending: w.credits_pending,
            credits_posted: w.credits_posted,
        })
    }
}

/// Absent balances are all zero (the proto3 default).
pub(super) fn balances_or_zero(wire: Option<&WireBalances>) -> Result<Balances, FrameError> {
    wire.map_or(Ok(Balances::default()), Balances::try_from)
}

/// A transfer to create. Tags: 1 `id`, 2 `debit_account`, 3 `credit_account` (128-bit), 4
/// `amount` ([`WireDecimal`]; absent is zero), 5 `ledger`, 6 `code` (`u16`), 7 `flags`
/// (`u16`), 8 `pending_id`, 9 `refund_of` (128-bit), 10 `timeout_s`, 11 `user_data_128`
/// (128-bit), 12 `user_data_64` (`uint64`), 13 `user_data_32`, 14 `memo` (`bytes`, at most
/// [`MEMO_SIZE_MAX`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireNewTransfer {
    /// The transfer id, the idempotency key.
    pub id: u128,
    /// The debit account.
    pub debit_account: u128,
    /// The credit account.
    pub credit_account: u128,
    /// The amount; absent means zero.
    pub amount: Option<WireDecimal>,
    /// The ledger.
    pub ledger: u32,
    /// Application classification (`u16`).
    pub code: u32,
    /// [`TransferFlags`] (`u16`).
    pub flags: u32,
    /// The hold posted or voided.
    pub pending_id: u128,
    /// The transfer refunded.
    pub refund_of: u128,
    /// Hold timeout in seconds.
    pub timeout_s: u32,
    /// External reference.
    pub user_data_128: u128,
    /// External reference.
    pub user_data_64: u64,
    /// External reference.
    pub user_data_32: u32,
    /// At most [`MEMO_SIZE_MAX`] bytes.
    pub memo: Bytes,
    malformed: Malformed,
}

impl prost::Message for WireNewTransfer {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        put_u128(1, self.id, buf);
        put_u128(2, self.debit_account, buf);
        put_u128(3, self.credit_account, buf);
        if let Some(amount) = &self.amount {
            encoding::message::encode(4, amount, buf);
        }
        put_u32(5, self.ledger, buf);
        put_u32(6, self.code, buf);
        put_u32(7, self.flags, buf);
        put_u128(8, self.pending_id, buf);
        put_u128(9, self.refund_of, buf);
        put_u32(10, self.timeout_s, buf);
        put_u128(11, self.user_data_128, buf);
        if self.user_data_64 != 0 {
            encoding::uint64::encode(12, &self.user_data_64, buf);
        }
        put_u32(13, self.user_data_32, buf);
        if !self.memo.is_empty() {
            encoding::bytes::encode(14, &self.memo, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let field = match tag {
            1 => &mut self.id,
            2 => &mut self.debit_account,
            3 => &mut self.credit_account,
            8 => &mut self.pending_id,
            9 => &mut self.refund_of,
            11 => &mut self.user_data_128,
            4 => {
                let amount = self.amount.get_or_insert_with(WireDecimal::default);
                return encoding::message::merge(wire_type, amount, buf, ctx);
            }
            5 => return encoding::uint32::merge(wire_type, &mut self.ledger, buf, ctx),
            6 => return encoding::uint32::merge(wire_type, &mut self.code, buf, ctx),
            7 => return encoding::uint32::merge(wire_type, &mut self.flags, buf, ctx),
            10 => return encoding::uint32::merge(wire_type, &mut self.timeout_s, buf, ctx),
            12 => return encoding::uint64::merge(wire_type, &mut self.user_data_64, buf, ctx),
            13 => return encoding::uint32::merge(wire_type, &mut self.user_data_32, buf, ctx),
            14 => return encoding::bytes::merge(wire_type, &mut self.memo, buf, ctx),
            _ => return encoding::skip_field(wire_type, tag, buf, ctx),
        };
        let valid = merge_u128(wire_type, field, buf)?;
        self.malformed.set(tag, valid);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        u128_len(1, self.id)
            + u128_len(2, self.debit_account)
            + u128_len(3, self.credit_account)
            + self
                .amount
                .as_ref()
                .map_or(0, |amount| encoding::message::encoded_len(4, amount))
            + u32_len(5, self.ledger)
            + u32_len(6, self.code)
            + u32_len(7, self.flags)
            + u128_len(8, self.pending_id)
            + u128_len(9, self.refund_of)
            + u32_len(10, self.timeout_s)
            + u128_len(11, self.user_data_128)
            + if self.user_data_64 == 0 {
                0
            } else {
                encoding::uint64::encoded_len(12, &self.user_data_64)
            }
            + u32_len(13, self.user_data_32)
            + if self.memo.is_empty() {
                0
            } else {
                encoding::bytes::encoded_len(14, &self.memo)
            }
    }

    fn clear(&mut self) {
        *self = WireNewTransfer::default();
    }
}

impl From<&NewTransfer> for WireNewTransfer {
    fn from(t: &NewTransfer) -> WireNewTransfer {
        WireNewTransfer {
            id: t.id.0,
            debit_account: t.debit_account.0,
            credit_account: t.credit_account.0,
            amount: Some(WireDecimal::from(t.amount)),
            ledger: t.ledger.0,
            code: u32::from(t.code),
            flags: u32::from(t.flags.0),
            pending_id: t.pending_id.0,
            refund_of: t.refund_of.0,
            timeout_s: t.timeout_s,
            user_data_128: t.user_data_128,
            user_data_64: t.user_data_64,
            user_data_32: t.user_data_32,
            memo: Bytes::copy_from_slice(&t.memo),
            malformed: Malformed::default(),
        }
    }
}

impl TryFrom<&WireNewTransfer> for NewTransfer {
    type Error = FrameError;

    fn try_from(w: &WireNewTransfer) -> Result<NewTransfer, FrameError> {
        check_size(w.memo.len(), MEMO_SIZE_MAX, "transfer.memo")?;
        for (tag, what) in [
            (1, "transfer.id"),
            (2, "transfer.debit_account"),
            (3, "transfer.credit_account"),
            (8, "transfer.pending_id"),
            (9, "transfer.refund_of"),
            (11, "transfer.user_data_128"),
        ] {
            w.malformed.check(tag, what)?;
        }
        Ok(NewTransfer {
            id: TransferId(w.id),
            debit_account: AccountId(w.debit_account),
            credit_account: AccountId(w.credit_account),
            amount: decimal_or_zero(w.amount.as_ref())?,
            ledger: LedgerId(w.ledger),
            code: to_u16(w.code, "transfer.code")?,
            flags: TransferFlags(to_u16(w.flags, "transfer.flags")?),
            pending_id: TransferId(w.pending_id),
            refund_of: TransferId(w.refund_of),
            timeout_s: w.timeout_s,
            user_data_128: w.user_data_128,
            user_data_64: w.user_data_64,
            user_data_32: w.user_data_32,
            memo: w.memo.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    //! The hand-written encodings against prost-derived twins with the old field types.
    use super::*;
    use prost::Message;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[derive(Clone, PartialEq, prost::Message)]
    struct DerivedDecimal {
        #[prost(bytes = "bytes", tag = "1")]
        mantissa: Bytes,
        #[prost(uint32, tag = "2")]
        scale: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct DerivedBalances {
        #[prost(bytes = "bytes", tag = "1")]
        debits_pending: Bytes,
        #[prost(bytes = "bytes", tag = "2")]
        debits_posted: Bytes,
        #[prost(bytes = "bytes", tag = "3")]
        credits_pending: Bytes,
        #[prost(bytes = "bytes", tag = "4")]
        credits_posted: Bytes,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct DerivedNewTransfer {
        #[prost(bytes = "bytes", tag = "1")]
        id: Bytes,
        #[prost(bytes = "bytes", tag = "2")]
        debit_account: Bytes,
        #[prost(bytes = "bytes", tag = "3")]
        credit_account: Bytes,
        #[prost(message, optional, tag = "4")]
        amount: Option<DerivedDecimal>,
        #[prost(uint32, tag = "5")]
        ledger: u32,
        #[prost(uint32, tag = "6")]
        code: u32,
        #[prost(uint32, tag = "7")]
        flags: u32,
        #[prost(bytes = "bytes", tag = "8")]
        pending_id: Bytes,
        #[prost(bytes = "bytes", tag = "9")]
        refund_of: Bytes,
        #[prost(uint32, tag = "10")]
        timeout_s: u32,
        #[prost(bytes = "bytes", tag = "11")]
        user_data_128: Bytes,
        #[prost(uint64, tag = "12")]
        user_data_64: u64,
        #[prost(uint32, tag = "13")]
        user_data_32: u32,
        #[prost(bytes = "bytes", tag = "14")]
        memo: Bytes,
    }

    fn b(value: u128) -> Bytes {
        if value == 0 {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(&value.to_le_bytes())
        }
    }

    /// A value that is zero a third of the time (so fields are left out), else of any size.
    fn sparse(rng: &mut ChaCha8Rng) -> u128 {
        match rng.gen_range(0..3) {
            0 => 0,
            1 => rng.gen_range(1..1 << 20),
            _ => rng.gen(),
        }
    }

    fn twins(rng: &mut ChaCha8Rng) -> (WireNewTransfer, DerivedNewTransfer) {
        let (id, debit, credit, pending, refund, data) = (
            sparse(rng),
            sparse(rng),
            sparse(rng),
            sparse(rng),
            sparse(rng),
            sparse(rng),
        );
        let mantissa = sparse(rng) as i128 >> rng.gen_range(0..100);
        let scale = rng.gen_range(0..3) * rng.gen_range(0..40);
        let small = |rng: &mut ChaCha8Rng| rng.gen_range(0..2) * rng.gen::<u32>();
        let (ledger, code, flags, timeout, d32) =
            (small(rng), small(rng), small(rng), small(rng), small(rng));
        let d64 = rng.gen_range(0..2) * rng.gen::<u64>();
        let memo = Bytes::from(vec![7u8; rng.gen_range(0..3) * 5]);
        let with_amount = rng.gen_bool(0.8);
        let ours = WireNewTransfer {
            id,
            debit_account: debit,
            credit_account: credit,
            amount: with_amount.then(|| WireDecimal::new(mantissa, scale)),
            ledger,
            code,
            flags,
            pending_id: pending,
            refund_of: refund,
            timeout_s: timeout,
            user_data_128: data,
            user_data_64: d64,
            user_data_32: d32,
            memo: memo.clone(),
            malformed: Malformed::default(),
        };
        let derived = DerivedNewTransfer {
            id: b(id),
            debit_account: b(debit),
            credit_account: b(credit),
            amount: with_amount.then(|| DerivedDecimal {
                mantissa: b(mantissa as u128),
                scale,
            }),
            ledger,
            code,
            flags,
            pending_id: b(pending),
            refund_of: b(refund),
            timeout_s: timeout,
            user_data_128: b(data),
            user_data_64: d64,
            user_data_32: d32,
            memo,
        };
        (ours, derived)
    }

    #[test]
    fn new_transfers_encode_as_the_derive_did_and_decode_back() {
        let seed = 20261201;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for case in 0..2000 {
            let (ours, derived) = twins(&mut rng);
            let bytes = ours.encode_to_vec();
            assert_eq!(bytes, derived.encode_to_vec(), "seed {seed} case {case}");
            assert_eq!(ours.encoded_len(), bytes.len(), "seed {seed} case {case}");
            let back = WireNewTransfer::decode(bytes.as_slice()).expect("decode");
            assert_eq!(back, ours, "seed {seed} case {case}");
        }
    }

    #[test]
    fn balances_encode_as_the_derive_did_and_decode_back() {
        let seed = 8189;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for case in 0..2000 {
            let values = [
                sparse(&mut rng),
                sparse(&mut rng),
                sparse(&mut rng),
                sparse(&mut rng),
            ];
            let ours = WireBalances::from(&Balances {
                debits_pending: values[0],
                debits_posted: values[1],
                credits_pending: values[2],
                credits_posted: values[3],
            });
            let derived = DerivedBalances {
                debits_pending: b(values[0]),
                debits_posted: b(values[1]),
                credits_pending: b(values[2]),
                credits_posted: b(values[3]),
            };
            let bytes = ours.encode_to_vec();
            assert_eq!(bytes, derived.encode_to_vec(), "seed {seed} case {case}");
            assert_eq!(ours.encoded_len(), bytes.len());
            assert_eq!(
                WireBalances::decode(bytes.as_slice()).expect("decode"),
                ours
            );
        }
    }

    #[test]
    fn a_128_bit_field_of_another_length_is_refused_on_conversion_naming_it() {
        for len in [1, 15, 17, 32] {
            let bad = DerivedNewTransfer {
                id: b(5),
                debit_account: Bytes::from(vec![1u8; len]),
                amount: Some(DerivedDecimal {
                    mantissa: b(1),
                    scale: 0,
                }),
                ..DerivedNewTransfer::default()
            };
            let wire = WireNewTransfer::decode(bad.encode_to_vec().as_slice()).expect("decodes");
            assert!(matches!(
                NewTransfer::try_from(&wire),
                Err(FrameError::InvalidField {
                    what: "transfer.debit_account",
                    ..
                })
            ));
            let bad = DerivedBalances {
                credits_posted: Bytes::from(vec![1u8; len]),
                ..DerivedBalances::default()
            };
            let wire = WireBalances::decode(bad.encode_to_vec().as_slice()).expect("decodes");
            assert!(matches!(
                Balances::try_from(&wire),
                Err(FrameError::InvalidField {
                    what: "credits_posted",
                    ..
                })
            ));
            let bad = DerivedDecimal {
                mantissa: Bytes::from(vec![1u8; len]),
                scale: 0,
            };
            let wire = WireDecimal::decode(bad.encode_to_vec().as_slice()).expect("decodes");
            assert!(matches!(
                Decimal::try_from(&wire),
                Err(FrameError::InvalidField {
                    what: "decimal mantissa",
                    ..
                })
            ));
        }
        // A later valid occurrence replaces a malformed one, as with the derive.
        let mut bytes = DerivedBalances {
            debits_pending: Bytes::from(vec![1u8; 3]),
            ..DerivedBalances::default()
        }
        .encode_to_vec();
        bytes.extend(
            DerivedBalances {
                debits_pending: b(9),
                ..DerivedBalances::default()
            }
            .encode_to_vec(),
        );
        let wire = WireBalances::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(Balances::try_from(&wire).expect("valid").debits_pending, 9);
        // A truncated field is a decode error.
        let mut truncated = DerivedBalances {
            debits_posted: b(u128::MAX),
            ..DerivedBalances::default()
        }
        .encode_to_vec();
        truncated.truncate(10);
        assert!(WireBalances::decode(truncated.as_slice()).is_err());
    }
}
