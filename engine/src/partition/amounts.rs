//! Amounts: decimals to minor units and back, and the checks every transfer kind shares.

use super::*;

pub(super) fn check_sign(amount: Decimal) -> Result<(), TransferResult> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(TransferResult::AmountMustNotBeNegative);
    }
    Ok(())
}

/// For posts, voids and refunds: account and ledger fields are optional, but if given they
/// must match the original.
pub(super) fn check_same_fields(
    e: &NewTransfer,
    debit: AccountId,
    credit: AccountId,
    ledger: LedgerId,
) -> Result<(), TransferResult> {
    if e.debit_account.0 != 0 && e.debit_account != debit {
        return Err(TransferResult::DifferentDebitAccount);
    }
    if e.credit_account.0 != 0 && e.credit_account != credit {
        return Err(TransferResult::DifferentCreditAccount);
    }
    if e.ledger.0 != 0 && e.ledger != ledger {
        return Err(TransferResult::DifferentLedger);
    }
    Ok(())
}

/// Why a decimal could not become minor units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountError {
    /// More decimals than the scale allows.
    TooManyDecimals,
    /// Does not fit in `u128` minor units.
    Overflow,
}

/// Converts a non-negative decimal to minor units of a ledger with `scale` decimals.
pub fn to_minor(value: Decimal, scale: u8) -> Result<u128, AmountError> {
    let value = value.normalize();
    let value_scale = value.scale();
    if value_scale > u32::from(scale) {
        return Err(AmountError::TooManyDecimals);
    }
    let mantissa = value.mantissa().unsigned_abs();
    let factor = 10u128
        .checked_pow(u32::from(scale) - value_scale)
        .ok_or(AmountError::Overflow)?;
    mantissa.checked_mul(factor).ok_or(AmountError::Overflow)
}

/// Converts minor units back to a decimal, if it fits in `Decimal`'s 96-bit mantissa.
pub fn from_minor(minor: u128, scale: u8) -> Option<Decimal> {
    let mantissa = i128::try_from(minor).ok()?;
    Decimal::try_from_i128_with_scale(mantissa, u32::from(scale)).ok()
}

pub(super) fn transfer_amount(amount: Decimal, scale: u8) -> Result<u128, TransferResult> {
    to_minor(amount, scale).map_err(|e| match e {
        AmountError::TooManyDecimals => TransferResult::AmountTooManyDecimals,
        AmountError::Overflow => TransferResult::AmountOverflow,
    })
}
