//! The checks tests and the simulator run: the digest recomputed, every map and balance
//! against the records.

use super::*;

impl Partition {
    /// Recomputes the digest from scratch (O(state), reading every record on disk).
    pub fn recompute_digest(&self) -> u128 {
        let mut digest = self.resident_digest();
        self.for_each_spilled(|record| {
            digest = digest.wrapping_add(hash_transfer(record.id, &record));
        });
        digest
    }

    /// The digest of everything held in memory: ledgers, accounts and resident transfers.
    pub(super) fn resident_digest(&self) -> u128 {
        let mut digest = 0u128;
        for ledger in self.ledgers.values() {
            digest = digest.wrapping_add(hash_ledger(ledger));
        }
        for account in self.accounts.values() {
            digest = digest
                .wrapping_add(hash_account_fields(account))
                .wrapping_add(hash_account_balances(account));
        }
        for (id, record) in self.transfers() {
            digest = digest.wrapping_add(hash_transfer(id, record));
        }
        digest
    }

    /// Calls `f` with every record on disk, refunds since the spill applied (O(history)).
    ///
    /// # Panics
    /// If a run cannot be read (for tests and checks).
    pub(super) fn for_each_spilled(&self, mut f: impl FnMut(TransferRecord)) {
        let Some(runs) = &self.runs else { return };
        for run in runs.runs() {
            for i in 0..run.count() {
                let mut record = match run.record(i) {
                    Ok(record) => record,
                    Err(e) => panic!("transfer run unreadable: {e}"),
                };
                if let Some(&refunded) = self.refunded_overlay.get(&record.id) {
                    record.refunded = refunded;
                }
                f(record);
            }
        }
    }

    /// Checks every invariant of the state (O(state)); for tests and the simulator.
    ///
    /// Per ledger, debits equal credits (posted and pending); no account breaks its balance
    /// flag and limit; pending balances are exactly the sum of the pending holds; refunds never
    /// exceed their original; the expiry queue holds exactly the pending holds with a deadline;
    /// the incremental digest equals a recomputed one.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut totals: BTreeMap<LedgerId, Balances> = BTreeMap::new();
        for account in self.accounts.values() {
            let t = totals.entry(account.ledger).or_default();
            let b = &account.balances;
            t.debits_pending = t.debits_pending.wrapping_add(b.debits_pending);
            t.debits_posted = t.debits_posted.wrapping_add(b.debits_posted);
            t.credits_pending = t.credits_pending.wrapping_add(b.credits_pending);
            t.credits_posted = t.credits_posted.wrapping_add(b.credits_posted);
            let limit = account.limit.unwrap_or(0);
            if account
                .flags
                .has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
                && b.debits_pending + b.debits_posted > b.credits_posted.saturating_add(limit)
            {
                return Err(format!("account {} exceeds its credits: {b:?}", account.id));
            }
            if account
                .flags
                .has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
                && b.credits_pending + b.credits_posted > b.debits_posted.saturating_add(limit)
            {
                return Err(format!("account {} exceeds its debits: {b:?}", account.id));
            }
        }
        for (ledger, t) in &totals {
            if t.debits_posted != t.credits_posted || t.debits_pending != t.credits_pending {
                return Err(format!("ledger {ledger} does not balance: {t:?}"));
            }
        }
        let mut held: FxHashMap<AccountId, (u128, u128)> = FxHashMap::default();
        let mut expiries = BTreeSet::new();
        if self.records.len() - self.spilled_prefix != self.transfers.len() as u64 {
            return Err("transfer map and records differ in size".to_string());
        }
        let mut spilled_problem = None;
        let mut overlaid = 0;
        self.for_each_spilled(|record| {
            if self.refunded_overlay.contains_key(&record.id) {
                overlaid += 1;
            }
            if record.hold == HoldStatus::Pending || record.refunded > record.amount {
                spilled_problem = Some(format!("transfer {} on disk: {record:?}", record.id));
            }
            if self.transfers.contains_key(&record.id) {
                spilled_problem = Some(format!("transfer {} in memory and on disk", record.id));
            }
        });
        if let Some(problem) = spilled_problem {
            return Err(problem);
        }
        if overlaid != self.refunded_overlay.len() {
            return Err("a refund overlay entry has no record on disk".to_string());
        }
        for (slot, record) in self
            .records
            .iter_from(self.spilled_prefix)
            .enumerate()
            .map(|(i, record)| (i as u64 + self.spilled_prefix, record))
        {
            let id = record.id;
            if self.transfers.get(&id) != Some(&slot) {
                return Err(format!("transfer {id} is not mapped to its slot {slot}"));
            }
            if record.refunded > record.amount {
                return Err(format!(
                    "transfer {id} refunded {} of {}",
                    record.refunded, record.amount
                ));
            }
            if record.hold == HoldStatus::Pending {
                held.entry(record.debit_account).or_default().0 += record.amount;
                held.entry(record.credit_account).or_default().1 += record.amount;
                if let Some(deadline) = record.deadline() {
                    expiries.insert((deadline, id));
                }
            }
        }
        for account in self.accounts.values() {
            let (debits, credits) = held.get(&account.id).copied().unwrap_or((0, 0));
            if account.balances.debits_pending != debits
                || account.balances.credits_pending != credits
            {
                return Err(format!(
                    "account {} pending balances {:?} but holds of {debits}/{credits}",
                    account.id, account.balances
                ));
            }
        }
        if expiries != self.expiries {
            return Err("expiry queue does not match the pending holds".to_string());
        }
        let recomputed = self.recompute_digest();
        if recomputed != self.digest {
            return Err(format!(
                "digest {:x} but recomputed {recomputed:x}",
                self.digest
            ));
        }
        Ok(())
    }
}
