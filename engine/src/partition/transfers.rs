//! Transfers: the decision ladder of `create_transfer`, plain transfers and holds, posts
//! and voids, refunds, and holds expiring.

use super::*;

impl Partition {
    pub(super) fn fingerprint(&mut self, e: &NewTransfer) -> u128 {
        // The fingerprint covers the fields as sent, with the amount normalized so that
        // `1.50` and `1.5` are the same request.
        self.scratch.clear();
        let normalized = e.amount.normalize();
        if normalized.scale() == e.amount.scale() {
            encode_transfer(e, &mut self.scratch);
        } else {
            let event = NewTransfer {
                amount: normalized,
                ..e.clone()
            };
            encode_transfer(&event, &mut self.scratch);
        }
        xxh3_128(&self.scratch)
    }

    /// Records a refusal with what the event asked: its kind (by its flags), accounts,
    /// ledger, timeout and hold or original as sent, and its amount in the ledger's minor
    /// units when the ledger exists and the amount fits it (else 0: not representable).
    pub(super) fn record_failed_transfer(&mut self, e: &NewTransfer, outcome: TransferOutcome) {
        assert_ne!(outcome.result, TransferResult::Ok);
        let fingerprint = self.fingerprint(e);
        let flags = e.flags.0;
        let (kind, reference) = if flags & TransferFlags::POST_PENDING != 0 {
            (TransferKind::Post, e.pending_id)
        } else if flags & TransferFlags::VOID_PENDING != 0 {
            (TransferKind::Void, e.pending_id)
        } else if flags & TransferFlags::PENDING != 0 {
            (TransferKind::Pending, TransferId(0))
        } else if e.refund_of.0 != 0 {
            (TransferKind::Refund, e.refund_of)
        } else {
            (TransferKind::Plain, TransferId(0))
        };
        let amount = match self.ledgers.get(&e.ledger) {
            Some(ledger) if !e.amount.is_sign_negative() => {
                to_minor(e.amount, ledger.scale).unwrap_or(0)
            }
            _ => 0,
        };
        self.insert_transfer(
            e.id,
            TransferRecord {
                id: TransferId(0), // set by insert_transfer or put_transfer
                fingerprint,
                kind,
                debit_account: e.debit_account,
                credit_account: e.credit_account,
                ledger: e.ledger,
                amount,
                reference,
                timeout_s: e.timeout_s,
                outcome,
                hold: HoldStatus::NotAHold,
                refunded: 0,
                details: TransferDetails::of(e),
            },
        );
    }

    pub(super) fn create_transfer(
        &mut self,
        e: &NewTransfer,
        timestamp: Timestamp,
    ) -> (TransferOutcome, Decision) {
        use TransferResult as R;
        let undecided = |r| (TransferOutcome::failed(r, timestamp), Decision::Undecided);
        if e.id.0 == 0 {
            return undecided(R::IdMustNotBeZero);
        }
        if e.flags.0 & !TransferFlags::ALL != 0 {
            return undecided(R::ReservedFlag);
        }
        let pending = e.flags.has(TransferFlags::PENDING);
        let post = e.flags.has(TransferFlags::POST_PENDING);
        let void = e.flags.has(TransferFlags::VOID_PENDING);
        let refund = e.refund_of.0 != 0;
        if u8::from(pending) + u8::from(post) + u8::from(void) + u8::from(refund) > 1 {
            return undecided(R::FlagsAreMutuallyExclusive);
        }
        if !(post || void) && e.pending_id.0 != 0 {
            return undecided(R::PendingIdMustBeZero);
        }
        if (post || void) && e.pending_id.0 == 0 {
            return undecided(R::PendingIdMustNotBeZero);
        }
        if (post || void) && e.pending_id == e.id {
            return undecided(R::PendingIdMustBeDifferent);
        }
        if refund && e.refund_of == e.id {
            return undecided(R::RefundOfMustBeDifferent);
        }
        if !pending && e.timeout_s != 0 {
            return undecided(R::TimeoutReservedForPendingTransfer);
        }
        let fingerprint = self.fingerprint(e);
        if let Some(existing) = self.transfer(e.id) {
            if existing.kind == TransferKind::Claim {
                // Claimed here, the id's home, for a transfer applied on another partition:
                // never applied here too, whatever its fields (the same event is always
                // routed to the partition it was claimed for).
                return undecided(R::ExistsWithDifferentFields);
            }
            return if existing.fingerprint == fingerprint {
                (existing.outcome, Decision::Replayed)
            } else {
                undecided(R::ExistsWithDifferentFields)
            };
        }
        let applied = if post || void {
            self.post_or_void(e, fingerprint, timestamp, post)
        } else if refund {
            self.refund(e, fingerprint, timestamp)
        } else {
            self.plain_or_pending(e, fingerprint, timestamp, pending)
        };
        match applied {
            Ok(outcome) => (outcome, Decision::Decided),
            Err(result) => (
                TransferOutcome::failed(result, timestamp),
                Decision::Decided,
            ),
        }
    }

    /// Claims `e`'s id on this partition, its home, for a transfer applied on another
    /// partition (`Command::ClaimTransfers`): `Ok` if the id is new here (a claim record is
    /// kept) or recorded here with the same fingerprint, `ExistsWithDifferentFields` if with
    /// another. Every other check is the applying partition's; a zero id is refused,
    /// unrecorded.
    pub(super) fn claim_transfer(
        &mut self,
        e: &NewTransfer,
        timestamp: Timestamp,
    ) -> TransferOutcome {
        use TransferResult as R;
        if e.id.0 == 0 {
            return TransferOutcome::failed(R::IdMustNotBeZero, timestamp);
        }
        let fingerprint = self.fingerprint(e);
        let claimed = TransferOutcome {
            result: R::Ok,
            timestamp,
            debit_balances: Balances::default(),
            credit_balances: Balances::default(),
        };
        if let Some(existing) = self.transfer(e.id) {
            return if existing.fingerprint == fingerprint {
                TransferOutcome {
                    timestamp: existing.outcome.timestamp,
                    ..claimed
                }
            } else {
                TransferOutcome::failed(R::ExistsWithDifferentFields, timestamp)
            };
        }
        self.insert_transfer(
            e.id,
            TransferRecord {
                id: TransferId(0), // set by insert_transfer
                fingerprint,
                kind: TransferKind::Claim,
                debit_account: e.debit_account,
                credit_account: e.credit_account,
                ledger: e.ledger,
                amount: 0,
                reference: TransferId(0),
                timeout_s: e.timeout_s,
                outcome: claimed,
                hold: HoldStatus::NotAHold,
                refunded: 0,
                details: TransferDetails::of(e),
            },
        );
        claimed
    }

    pub(super) fn plain_or_pending(
        &mut self,
        e: &NewTransfer,
        fingerprint: u128,
        timestamp: Timestamp,
        pending: bool,
    ) -> Result<TransferOutcome, TransferResult> {
        use TransferResult as R;
        if e.debit_account.0 == 0 {
            return Err(R::DebitAccountIdMustNotBeZero);
        }
        if e.credit_account.0 == 0 {
            return Err(R::CreditAccountIdMustNotBeZero);
        }
        if e.debit_account == e.credit_account {
            return Err(R::AccountsMustBeDifferent);
        }
        check_sign(e.amount)?;
        if e.amount.is_zero() {
            return Err(R::AmountMustNotBeZero);
        }
        if e.ledger.0 == 0 {
            return Err(R::LedgerMustNotBeZero);
        }
        let scale = self.ledgers.get(&e.ledger).ok_or(R::LedgerNotFound)?.scale;
        let amount = transfer_amount(e.amount, scale)?;
        let kind = if pending {
            TransferKind::Pending
        } else {
            TransferKind::Plain
        };
        let (debit_balances, credit_balances) =
            self.move_money(e.debit_account, e.credit_account, e.ledger, amount, pending)?;
        let outcome = TransferOutcome {
            result: R::Ok,
            timestamp,
            debit_balances,
            credit_balances,
        };
        let record = TransferRecord {
            id: TransferId(0), // set by insert_transfer or put_transfer
            fingerprint,
            kind,
            debit_account: e.debit_account,
            credit_account: e.credit_account,
            ledger: e.ledger,
            amount,
            reference: TransferId(0),
            timeout_s: e.timeout_s,
            outcome,
            hold: if pending {
                HoldStatus::Pending
            } else {
                HoldStatus::NotAHold
            },
            refunded: 0,
            details: TransferDetails::of(e),
        };
        if let Some(deadline) = record.deadline() {
            self.insert_expiry(deadline, e.id);
        }
        self.insert_transfer(e.id, record);
        self.record_postings(
            e.id,
            if pending {
                PostingKind::Pending
            } else {
                PostingKind::Plain
            },
            timestamp,
            amount,
            (e.debit_account, debit_balances),
            (e.credit_account, credit_balances),
        );
        Ok(outcome)
    }

    /// Checks and applies a movement of `amount` from `debit_id` to `credit_id`, into the
    /// pending or the posted balances. Changes nothing on failure.
    pub(super) fn move_money(
        &mut self,
        debit_id: AccountId,
        credit_id: AccountId,
        ledger: LedgerId,
        amount: u128,
        pending: bool,
    ) -> Result<(Balances, Balances), TransferResult> {
        use TransferResult as R;
        let mut debit = *self
            .accounts
            .get(&debit_id)
            .ok_or(R::DebitAccountNotFound)?;
        let mut credit = *self
            .accounts
            .get(&credit_id)
            .ok_or(R::CreditAccountNotFound)?;
        if debit.ledger != credit.ledger {
            return Err(R::AccountsMustHaveTheSameLedger);
        }
        if debit.ledger != ledger {
            return Err(R::LedgerMismatch);
        }
        let (debit_field, credit_field) = if pending {
            (
                &mut debit.balances.debits_pending,
                &mut credit.balances.credits_pending,
            )
        } else {
            (
                &mut debit.balances.debits_posted,
                &mut credit.balances.credits_posted,
            )
        };
        *debit_field = debit_field.checked_add(amount).ok_or(R::BalanceOverflow)?;
        *credit_field = credit_field.checked_add(amount).ok_or(R::BalanceOverflow)?;
        let debit_total = debit
            .balances
            .debits_pending
            .checked_add(debit.balances.debits_posted)
            .ok_or(R::BalanceOverflow)?;
        let credit_total = credit
            .balances
            .credits_pending
            .checked_add(credit.balances.credits_posted)
            .ok_or(R::BalanceOverflow)?;
        if debit
            .flags
            .has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
        {
            let allowed = debit
                .balances
                .credits_posted
                .saturating_add(debit.limit.unwrap_or(0));
            if debit_total > allowed {
                return Err(R::ExceedsCredits);
            }
        }
        if credit
            .flags
            .has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        {
            let allowed = credit
                .balances
                .debits_posted
                .saturating_add(credit.limit.unwrap_or(0));
            if credit_total > allowed {
                return Err(R::ExceedsDebits);
            }
        }
        self.put_account(debit);
        self.put_account(credit);
        Ok((debit.balances, credit.balances))
    }

    pub(super) fn post_or_void(
        &mut self,
        e: &NewTransfer,
        fingerprint: u128,
        timestamp: Timestamp,
        post: bool,
    ) -> Result<TransferOutcome, TransferResult> {
        use TransferResult as R;
        check_sign(e.amount)?;
        // A claim of the hold's id (it lives on another partition) is not a hold here.
        let hold = self
            .decided_transfer(e.pending_id)
            .ok_or(R::PendingTransferNotFound)?;
        if hold.kind != TransferKind::Pending || hold.outcome.result != R::Ok {
            return Err(R::PendingTransferNotPending);
        }
        check_same_fields(e, hold.debit_account, hold.credit_account, hold.ledger)?;
        let scale = self
            .ledgers
            .get(&hold.ledger)
            .expect("hold's ledger exists")
            .scale;
        let requested = transfer_amount(e.amount, scale)?;
        match hold.hold {
            HoldStatus::Pending => {}
            HoldStatus::Posted => return Err(R::PendingTransferAlreadyPosted),
            HoldStatus::Voided => return Err(R::PendingTransferAlreadyVoided),
            HoldStatus::Expired => return Err(R::HoldExpired),
            HoldStatus::NotAHold => unreachable!("a successful pending transfer is a hold"),
        }
        let amount = if post {
            if requested > hold.amount {
                return Err(R::ExceedsPendingTransferAmount);
            }
            if requested == 0 {
                hold.amount
            } else {
                requested
            }
        } else {
            if requested != 0 && requested != hold.amount {
                return Err(R::PendingTransferHasDifferentAmount);
            }
            hold.amount
        };
        let mut debit = *self
            .accounts
            .get(&hold.debit_account)
            .expect("hold's debit account");
        let mut credit = *self
            .accounts
            .get(&hold.credit_account)
            .expect("hold's credit account");
        assert!(debit.balances.debits_pending >= hold.amount);
        assert!(credit.balances.credits_pending >= hold.amount);
        debit.balances.debits_pending -= hold.amount;
        credit.balances.credits_pending -= hold.amount;
        if post {
            debit.balances.debits_posted = debit
                .balances
                .debits_posted
                .checked_add(amount)
                .ok_or(R::BalanceOverflow)?;
            credit.balances.credits_posted = credit
                .balances
                .credits_posted
                .checked_add(amount)
                .ok_or(R::BalanceOverflow)?;
        }
        // Posting moves at most the held amount from pending to posted, so neither account's
        // debit or credit total grows: the balance flags cannot be newly broken.
        self.put_account(debit);
        self.put_account(credit);
        if let Some(deadline) = hold.deadline() {
            self.remove_expiry(deadline, e.pending_id);
        }
        let mut closed = hold;
        closed.hold = if post {
            HoldStatus::Posted
        } else {
            HoldStatus::Voided
        };
        self.put_transfer(e.pending_id, closed);
        let outcome = TransferOutcome {
            result: R::Ok,
            timestamp,
            debit_balances: debit.balances,
            credit_balances: credit.balances,
        };
        self.insert_transfer(
            e.id,
            TransferRecord {
                id: TransferId(0), // set by insert_transfer or put_transfer
                fingerprint,
                kind: if post {
                    TransferKind::Post
                } else {
                    TransferKind::Void
                },
                debit_account: hold.debit_account,
                credit_account: hold.credit_account,
                ledger: hold.ledger,
                amount,
                reference: e.pending_id,
                timeout_s: 0,
                outcome,
                hold: HoldStatus::NotAHold,
                refunded: 0,
                details: TransferDetails::of(e),
            },
        );
        self.record_postings(
            e.id,
            if post {
                PostingKind::Post
            } else {
                PostingKind::Void
            },
            timestamp,
            amount,
            (hold.debit_account, debit.balances),
            (hold.credit_account, credit.balances),
        );
        Ok(outcome)
    }

    pub(super) fn refund(
        &mut self,
        e: &NewTransfer,
        fingerprint: u128,
        timestamp: Timestamp,
    ) -> Result<TransferOutcome, TransferResult> {
        use TransferResult as R;
        check_sign(e.amount)?;
        if e.amount.is_zero() {
            return Err(R::AmountMustNotBeZero);
        }
        let original = self
            .decided_transfer(e.refund_of)
            .ok_or(R::RefundOfNotFound)?;
        let refundable = matches!(original.kind, TransferKind::Plain | TransferKind::Post);
        if !refundable || original.outcome.result != R::Ok {
            return Err(R::RefundOfNotRefundable);
        }
        // A refund moves money back: it debits the original's credit account.
        check_same_fields(
            e,
            original.credit_account,
            original.debit_account,
            original.ledger,
        )?;
        let scale = self
            .ledgers
            .get(&original.ledger)
            .expect("original's ledger exists")
            .scale;
        let amount = transfer_amount(e.amount, scale)?;
        assert!(original.refunded <= original.amount);
        if amount > original.amount - original.refunded {
            return Err(R::RefundExceedsRemaining);
        }
        let (debit_balances, credit_balances) = self.move_money(
            original.credit_account,
            original.debit_account,
            original.ledger,
            amount,
            false,
        )?;
        let mut updated = original;
        updated.refunded += amount;
        self.put_transfer(e.refund_of, updated);
        let outcome = TransferOutcome {
            result: R::Ok,
            timestamp,
            debit_balances,
            credit_balances,
        };
        self.insert_transfer(
            e.id,
            TransferRecord {
                id: TransferId(0), // set by insert_transfer or put_transfer
                fingerprint,
                kind: TransferKind::Refund,
                debit_account: original.credit_account,
                credit_account: original.debit_account,
                ledger: original.ledger,
                amount,
                reference: e.refund_of,
                timeout_s: 0,
                outcome,
                hold: HoldStatus::NotAHold,
                refunded: 0,
                details: TransferDetails::of(e),
            },
        );
        self.record_postings(
            e.id,
            PostingKind::Refund,
            timestamp,
            amount,
            (original.credit_account, debit_balances),
            (original.debit_account, credit_balances),
        );
        Ok(outcome)
    }

    pub(super) fn expire_holds(&mut self, now: Timestamp) {
        while let Some(&(deadline, id)) = self.expiries.first() {
            if deadline > now {
                break;
            }
            self.remove_expiry(deadline, id);
            let mut hold = self.transfer(id).expect("expiring hold is recorded");
            assert_eq!(hold.hold, HoldStatus::Pending, "expiring hold {id}");
            let (debit, credit) = self.release_hold(&hold);
            hold.hold = HoldStatus::Expired;
            self.put_transfer(id, hold);
            self.record_postings(
                id,
                PostingKind::Expired,
                now,
                hold.amount,
                (hold.debit_account, debit),
                (hold.credit_account, credit),
            );
        }
    }

    /// Takes a hold's amount out of both accounts' pending balances.
    pub(super) fn release_hold(&mut self, hold: &TransferRecord) -> (Balances, Balances) {
        let mut debit = *self
            .accounts
            .get(&hold.debit_account)
            .expect("hold's debit account");
        let mut credit = *self
            .accounts
            .get(&hold.credit_account)
            .expect("hold's credit account");
        assert!(debit.balances.debits_pending >= hold.amount);
        assert!(credit.balances.credits_pending >= hold.amount);
        debit.balances.debits_pending -= hold.amount;
        credit.balances.credits_pending -= hold.amount;
        self.put_account(debit);
        self.put_account(credit);
        (debit.balances, credit.balances)
    }
}
