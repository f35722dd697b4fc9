//! Creating ledgers and accounts.

use super::*;

impl Partition {
    pub(super) fn create_ledger(&mut self, ledger: &NewLedger) -> LedgerResult {
        if ledger.id.0 == 0 {
            return LedgerResult::IdMustNotBeZero;
        }
        if ledger.scale > LEDGER_SCALE_MAX {
            return LedgerResult::ScaleTooLarge;
        }
        let new = Ledger {
            id: ledger.id,
            scale: ledger.scale,
            code: ledger.code,
        };
        if let Some(existing) = self.ledgers.get(&ledger.id) {
            return if *existing == new {
                LedgerResult::Exists
            } else {
                LedgerResult::ExistsWithDifferentFields
            };
        }
        self.ledgers.insert(new.id, new);
        self.digest = self.digest.wrapping_add(hash_ledger(&new));
        LedgerResult::Ok
    }

    pub(super) fn create_account(
        &mut self,
        e: &NewAccount,
        timestamp: Timestamp,
    ) -> (AccountResult, Decision) {
        use AccountResult as R;
        let result = |r| (r, Decision::Undecided);
        if e.id.0 == 0 {
            return result(R::IdMustNotBeZero);
        }
        if e.flags.0 & !AccountFlags::ALL != 0 {
            return result(R::ReservedFlag);
        }
        let debit_flag = e.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS);
        let credit_flag = e.flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS);
        if debit_flag && credit_flag {
            return result(R::FlagsAreMutuallyExclusive);
        }
        if let Some(existing) = self.accounts.get(&e.id) {
            let scale = self.ledgers.get(&existing.ledger).map_or(0, |l| l.scale);
            let same_limit = match e.limit {
                None => existing.limit.is_none(),
                Some(limit) => {
                    !limit.is_sign_negative()
                        && existing.limit.is_some()
                        && to_minor(limit, scale).ok() == existing.limit
                }
            };
            let same = existing.ledger == e.ledger
                && existing.code == e.code
                && existing.flags == e.flags
                && same_limit
                && existing.user_data_128 == e.user_data_128
                && existing.user_data_64 == e.user_data_64
                && existing.user_data_32 == e.user_data_32;
            return result(if same {
                R::Exists
            } else {
                R::ExistsWithDifferentFields
            });
        }
        if e.ledger.0 == 0 {
            return result(R::LedgerMustNotBeZero);
        }
        let Some(ledger) = self.ledgers.get(&e.ledger) else {
            return result(R::LedgerNotFound);
        };
        let limit = match e.limit {
            None => None,
            Some(limit) => {
                if !(debit_flag || credit_flag) {
                    return result(R::LimitRequiresBalanceFlag);
                }
                if limit.is_sign_negative() && !limit.is_zero() {
                    return result(R::LimitMustNotBeNegative);
                }
                match to_minor(limit, ledger.scale) {
                    Ok(minor) => Some(minor),
                    Err(AmountError::TooManyDecimals) => return result(R::LimitTooManyDecimals),
                    Err(AmountError::Overflow) => return result(R::LimitOverflow),
                }
            }
        };
        self.put_account(Account {
            id: e.id,
            ledger: e.ledger,
            code: e.code,
            flags: e.flags,
            limit,
            user_data_128: e.user_data_128,
            user_data_64: e.user_data_64,
            user_data_32: e.user_data_32,
            timestamp,
            balances: Balances::default(),
        });
        (R::Ok, Decision::Decided)
    }
}
