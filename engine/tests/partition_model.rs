//! Model-based tests of the partition state machine.
//!
//! Random sequences of every operation — ledgers, accounts (linked or not), plain transfers,
//! pending holds with timeouts that expire as time advances, full and partial posts, voids,
//! partial refunds, linked chains, and retries of whole earlier batches with the same ids —
//! run against both the real `Partition` and a small reference model written for clarity
//! rather than speed: it keeps everything in `BTreeMap`s, finds expired holds by scanning all
//! of them, and runs a linked chain on a clone of its whole state, keeping the clone only if
//! every event succeeded. After every step the test compares every result (code, timestamp,
//! balances), every account's balances, and runs `Partition::check_invariants` (debits equal
//! credits per ledger, flags and limits hold, pending balances equal the open holds, refunds
//! within their original, the incremental digest equals a recomputed one).
//!
//! Ids come from small ranges so that collisions, retries and references to existing
//! transfers are frequent. Proptest prints the failing case and its seed; set
//! `PROPTEST_CASES` for a longer run.

#![expect(
    clippy::unwrap_used,
    reason = "the model's own lookups of entries it just checked"
)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use rust_decimal::Decimal;
use tally_engine::checkpoint::{self, RunsConfig};
use tally_engine::command::{
    AccountFlags, Command, EntryPayload, NewAccount, NewLedger, NewTransfer, TransferFlags,
};
use tally_engine::outcome::{
    AccountResult, Balances, LedgerResult, Outcome, TransferOutcome, TransferResult,
};
use tally_engine::partition::Partition;
use tally_engine::transfer_runs::TransferRuns;
use tally_engine::types::{AccountId, LedgerId, LogIndex, PartitionId, Timestamp, TransferId};

// ---------------------------------------------------------------- the reference model

#[derive(Clone, Debug, PartialEq)]
struct MAccount {
    ledger: u32,
    code: u16,
    flags: u16,
    limit: Option<u128>,
    user_data_64: u64,
    balances: Balances,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum MKind {
    Plain,
    Pending,
    Post,
    Void,
    Refund,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum MHold {
    None,
    Pending,
    Posted,
    Voided,
    Expired,
}

#[derive(Clone, Debug)]
struct MTransfer {
    /// The event exactly as sent, amount normalized: what a retry must match.
    sent: NewTransfer,
    outcome: TransferOutcome,
    kind: MKind,
    debit: u128,
    credit: u128,
    ledger: u32,
    amount: u128,
    hold: MHold,
    deadline: Option<u64>,
    refunded: u128,
}

#[derive(Clone, Debug, Default)]
struct Model {
    ledgers: BTreeMap<u32, (u8, u16)>,
    accounts: BTreeMap<u128, MAccount>,
    transfers: BTreeMap<u128, MTransfer>,
    last_timestamp: u64,
}

fn minor(amount: Decimal, scale: u8) -> Result<u128, bool> {
    // Err(true): too many decimals; Err(false): overflow.
    let n = amount.normalize();
    if n.scale() > u32::from(scale) {
        return Err(true);
    }
    let mut value = n.mantissa().unsigned_abs();
    for _ in n.scale()..u32::from(scale) {
        value = value.checked_mul(10).ok_or(false)?;
    }
    Ok(value)
}

fn normalized(t: &NewTransfer) -> NewTransfer {
    let mut t = t.clone();
    t.amount = t.amount.normalize();
    t
}

impl Model {
    fn apply(&mut self, payload: &EntryPayload) -> Outcome {
        let now = payload.timestamp.0.max(self.last_timestamp + 1);
        self.last_timestamp = now - 1;
        // Expire holds, in deadline order then id order.
        let mut due: Vec<(u64, u128)> = self
            .transfers
            .iter()
            .filter(|(_, t)| t.hold == MHold::Pending && t.deadline.is_some_and(|d| d <= now))
            .map(|(id, t)| (t.deadline.unwrap(), *id))
            .collect();
        due.sort();
        for (_, id) in due {
            let t = self.transfers.get_mut(&id).unwrap();
            t.hold = MHold::Expired;
            let (d, c, a) = (t.debit, t.credit, t.amount);
            self.accounts.get_mut(&d).unwrap().balances.debits_pending -= a;
            self.accounts.get_mut(&c).unwrap().balances.credits_pending -= a;
        }
        let outcome = match &payload.command {
            Command::Tick => Outcome::Tick,
            Command::ClaimTransfers(_) => unreachable!("the generator makes no claims"),
            Command::CreateLedgers(ls) => Outcome::Ledgers(
                ls.iter()
                    .map(|l| {
                        self.last_timestamp += 1;
                        self.ledger(l)
                    })
                    .collect(),
            ),
            Command::CreateAccounts(events) => {
                let linked: Vec<bool> = events
                    .iter()
                    .map(|e| e.flags.has(AccountFlags::LINKED))
                    .collect();
                Outcome::Accounts(self.batch(
                    events,
                    &linked,
                    |m, e, _| {
                        let r = m.account(e);
                        (
                            r,
                            matches!(r, AccountResult::Ok | AccountResult::Exists),
                            false,
                        )
                    },
                    |_| AccountResult::LinkedEventFailed,
                    |_| AccountResult::LinkedEventChainOpen,
                    |_, _, _| {},
                ))
            }
            Command::CreateTransfers(events) => {
                let linked: Vec<bool> = events
                    .iter()
                    .map(|e| e.flags.has(TransferFlags::LINKED))
                    .collect();
                Outcome::Transfers(self.batch(
                    events,
                    &linked,
                    |m, e, ts| {
                        let (o, decided) = m.transfer(e, ts);
                        (o, o.result == TransferResult::Ok, decided)
                    },
                    |ts| failed(TransferResult::LinkedEventFailed, ts),
                    |ts| failed(TransferResult::LinkedEventChainOpen, ts),
                    |m, e, o| {
                        m.transfers.insert(
                            e.id.0,
                            MTransfer {
                                sent: normalized(e),
                                outcome: o,
                                kind: MKind::Plain,
                                debit: 0,
                                credit: 0,
                                ledger: 0,
                                amount: 0,
                                hold: MHold::None,
                                deadline: None,
                                refunded: 0,
                            },
                        );
                    },
                ))
            }
        };
        self.last_timestamp = self.last_timestamp.max(now);
        outcome
    }

    /// Runs events; a linked chain runs on a clone that replaces `self` only on success.
    #[allow(clippy::too_many_arguments)]
    fn batch<E, R: Copy>(
        &mut self,
        events: &[E],
        linked: &[bool],
        one: impl Fn(&mut Model, &E, u64) -> (R, bool, bool),
        linked_failed: impl Fn(u64) -> R,
        chain_open: impl Fn(u64) -> R,
        record_failure: impl Fn(&mut Model, &E, R),
    ) -> Vec<R> {
        let mut results = Vec::new();
        let mut i = 0;
        while i < events.len() {
            if !linked[i] {
                self.last_timestamp += 1;
                let (r, ok, decided) = one(self, &events[i], self.last_timestamp);
                if !ok && decided {
                    record_failure(self, &events[i], r);
                }
                results.push(r);
                i += 1;
                continue;
            }
            let mut end = i;
            while end < events.len() - 1 && linked[end] {
                end += 1;
            }
            // events[i..=end] is the chain; it is open if its last event is linked.
            let mut scratch = self.clone();
            let mut chain = Vec::new();
            let mut failure = None;
            for k in i..=end {
                scratch.last_timestamp += 1;
                let ts = scratch.last_timestamp;
                let (r, ok, decided) = if k == end && linked[k] {
                    (chain_open(ts), false, false)
                } else {
                    one(&mut scratch, &events[k], ts)
                };
                chain.push((r, ts));
                if !ok {
                    failure = Some((k, decided));
                    break;
                }
            }
            match failure {
                None => {
                    *self = scratch;
                    results.extend(chain.iter().map(|(r, _)| *r));
                }
                Some((k, decided)) => {
                    self.last_timestamp = scratch.last_timestamp;
                    for (r, ts) in &chain[..chain.len() - 1] {
                        let _ = r;
                        results.push(linked_failed(*ts));
                    }
                    let failed_result = chain[chain.len() - 1].0;
                    results.push(failed_result);
                    if decided {
                        record_failure(self, &events[k], failed_result);
                    }
                    #[expect(clippy::needless_range_loop, reason = "j indexes two slices")]
                    for j in k + 1..=end {
                        self.last_timestamp += 1;
                        results.push(if j == end && linked[j] {
                            chain_open(self.last_timestamp)
                        } else {
                            linked_failed(self.last_timestamp)
                        });
                    }
                }
            }
            i = end + 1;
        }
        results
    }

    fn ledger(&mut self, l: &NewLedger) -> LedgerResult {
        if l.id.0 == 0 {
            return LedgerResult::IdMustNotBeZero;
        }
        if l.scale > 28 {
            return LedgerResult::ScaleTooLarge;
        }
        match self.ledgers.get(&l.id.0) {
            Some(&existing) if existing == (l.scale, l.code) => LedgerResult::Exists,
            Some(_) => LedgerResult::ExistsWithDifferentFields,
            None => {
                self.ledgers.insert(l.id.0, (l.scale, l.code));
                LedgerResult::Ok
            }
        }
    }

    fn account(&mut self, e: &NewAccount) -> AccountResult {
        use AccountResult as R;
        if e.id.0 == 0 {
            return R::IdMustNotBeZero;
        }
        if e.flags.0 & !0b111 != 0 {
            return R::ReservedFlag;
        }
        let df = e.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS);
        let cf = e.flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS);
        if df && cf {
            return R::FlagsAreMutuallyExclusive;
        }
        if let Some(a) = self.accounts.get(&e.id.0) {
            let scale = self.ledgers[&a.ledger].0;
            let limit = e.limit.map(|l| minor(l, scale).ok());
            let same = a.ledger == e.ledger.0
                && a.code == e.code
                && a.flags == e.flags.0
                && limit == a.limit.map(Some)
                && a.user_data_64 == e.user_data_64
                && e.user_data_128 == 0
                && e.user_data_32 == 0;
            return if same {
                R::Exists
            } else {
                R::ExistsWithDifferentFields
            };
        }
        if e.ledger.0 == 0 {
            return R::LedgerMustNotBeZero;
        }
        let Some(&(scale, _)) = self.ledgers.get(&e.ledger.0) else {
            return R::LedgerNotFound;
        };
        let limit = match e.limit {
            None => None,
            Some(l) => {
                if !df && !cf {
                    return R::LimitRequiresBalanceFlag;
                }
                if l < Decimal::ZERO {
                    return R::LimitMustNotBeNegative;
                }
                match minor(l, scale) {
                    Ok(v) => Some(v),
                    Err(true) => return R::LimitTooManyDecimals,
                    Err(false) => return R::LimitOverflow,
                }
            }
        };
        self.accounts.insert(
            e.id.0,
            MAccount {
                ledger: e.ledger.0,
                code: e.code,
                flags: e.flags.0,
                limit,
                user_data_64: e.user_data_64,
                balances: Balances::default(),
            },
        );
        R::Ok
    }

    /// Returns the outcome and whether it was decided (recorded on failure).
    fn transfer(&mut self, e: &NewTransfer, ts: u64) -> (TransferOutcome, bool) {
        use TransferResult as R;
        let f = e.flags;
        let pending = f.has(TransferFlags::PENDING);
        let post = f.has(TransferFlags::POST_PENDING);
        let void = f.has(TransferFlags::VOID_PENDING);
        let refund = e.refund_of.0 != 0;
        let early = if e.id.0 == 0 {
            Some(R::IdMustNotBeZero)
        } else if f.0 & !0b1111 != 0 {
            Some(R::ReservedFlag)
        } else if [pending, post, void, refund].iter().filter(|b| **b).count() > 1 {
            Some(R::FlagsAreMutuallyExclusive)
        } else if !(post || void) && e.pending_id.0 != 0 {
            Some(R::PendingIdMustBeZero)
        } else if (post || void) && e.pending_id.0 == 0 {
            Some(R::PendingIdMustNotBeZero)
        } else if (post || void) && e.pending_id == e.id {
            Some(R::PendingIdMustBeDifferent)
        } else if refund && e.refund_of == e.id {
            Some(R::RefundOfMustBeDifferent)
        } else if !pending && e.timeout_s != 0 {
            Some(R::TimeoutReservedForPendingTransfer)
        } else if let Some(existing) = self.transfers.get(&e.id.0) {
            if existing.sent == normalized(e) {
                return (existing.outcome, false);
            }
            Some(R::ExistsWithDifferentFields)
        } else {
            None
        };
        if let Some(r) = early {
            return (failed(r, ts), false);
        }
        let result = if post || void {
            self.post_or_void(e, ts, post)
        } else if refund {
            self.refund(e, ts)
        } else {
            self.plain(e, ts, pending)
        };
        match result {
            Ok(o) => (o, true),
            Err(r) => (failed(r, ts), true),
        }
    }

    fn plain(
        &mut self,
        e: &NewTransfer,
        ts: u64,
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
        if e.amount < Decimal::ZERO {
            return Err(R::AmountMustNotBeNegative);
        }
        if e.amount.is_zero() {
            return Err(R::AmountMustNotBeZero);
        }
        if e.ledger.0 == 0 {
            return Err(R::LedgerMustNotBeZero);
        }
        let scale = self.ledgers.get(&e.ledger.0).ok_or(R::LedgerNotFound)?.0;
        let amount = amount(e.amount, scale)?;
        let (db, cb) = self.move_money(
            e.debit_account.0,
            e.credit_account.0,
            e.ledger.0,
            amount,
            pending,
        )?;
        let outcome = TransferOutcome {
            result: R::Ok,
            timestamp: Timestamp(ts),
            debit_balances: db,
            credit_balances: cb,
        };
        self.transfers.insert(
            e.id.0,
            MTransfer {
                sent: normalized(e),
                outcome,
                kind: if pending {
                    MKind::Pending
                } else {
                    MKind::Plain
                },
                debit: e.debit_account.0,
                credit: e.credit_account.0,
                ledger: e.ledger.0,
                amount,
                hold: if pending { MHold::Pending } else { MHold::None },
                deadline: (pending && e.timeout_s > 0)
                    .then(|| ts + u64::from(e.timeout_s) * 1_000_000_000),
                refunded: 0,
            },
        );
        Ok(outcome)
    }

    fn move_money(
        &mut self,
        d: u128,
        c: u128,
        ledger: u32,
        amount: u128,
        pending: bool,
    ) -> Result<(Balances, Balances), TransferResult> {
        use TransferResult as R;
        let mut da = self
            .accounts
            .get(&d)
            .ok_or(R::DebitAccountNotFound)?
            .clone();
        let mut ca = self
            .accounts
            .get(&c)
            .ok_or(R::CreditAccountNotFound)?
            .clone();
        if da.ledger != ca.ledger {
            return Err(R::AccountsMustHaveTheSameLedger);
        }
        if da.ledger != ledger {
            return Err(R::LedgerMismatch);
        }
        if pending {
            da.balances.debits_pending = da
                .balances
                .debits_pending
                .checked_add(amount)
                .ok_or(R::BalanceOverflow)?;
            ca.balances.credits_pending = ca
                .balances
                .credits_pending
                .checked_add(amount)
                .ok_or(R::BalanceOverflow)?;
        } else {
            da.balances.debits_posted = da
                .balances
                .debits_posted
                .checked_add(amount)
                .ok_or(R::BalanceOverflow)?;
            ca.balances.credits_posted = ca
                .balances
                .credits_posted
                .checked_add(amount)
                .ok_or(R::BalanceOverflow)?;
        }
        let dt = da
            .balances
            .debits_pending
            .checked_add(da.balances.debits_posted)
            .ok_or(R::BalanceOverflow)?;
        let ct = ca
            .balances
            .credits_pending
            .checked_add(ca.balances.credits_posted)
            .ok_or(R::BalanceOverflow)?;
        if da.flags & AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS != 0
            && dt
                > da.balances
                    .credits_posted
                    .saturating_add(da.limit.unwrap_or(0))
        {
            return Err(R::ExceedsCredits);
        }
        if ca.flags & AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS != 0
            && ct
                > ca.balances
                    .debits_posted
                    .saturating_add(ca.limit.unwrap_or(0))
        {
            return Err(R::ExceedsDebits);
        }
        let out = (da.balances, ca.balances);
        self.accounts.insert(d, da);
        self.accounts.insert(c, ca);
        Ok(out)
    }

    fn same_fields(e: &NewTransfer, d: u128, c: u128, l: u32) -> Result<(), TransferResult> {
        if e.debit_account.0 != 0 && e.debit_account.0 != d {
            return Err(TransferResult::DifferentDebitAccount);
        }
        if e.credit_account.0 != 0 && e.credit_account.0 != c {
            return Err(TransferResult::DifferentCreditAccount);
        }
        if e.ledger.0 != 0 && e.ledger.0 != l {
            return Err(TransferResult::DifferentLedger);
        }
        Ok(())
    }

    fn post_or_void(
        &mut self,
        e: &NewTransfer,
        ts: u64,
        post: bool,
    ) -> Result<TransferOutcome, TransferResult> {
        use TransferResult as R;
        if e.amount < Decimal::ZERO {
            return Err(R::AmountMustNotBeNegative);
        }
        let hold = self
            .transfers
            .get(&e.pending_id.0)
            .ok_or(R::PendingTransferNotFound)?
            .clone();
        if hold.kind != MKind::Pending || hold.outcome.result != R::Ok {
            return Err(R::PendingTransferNotPending);
        }
        Self::same_fields(e, hold.debit, hold.credit, hold.ledger)?;
        let requested = amount(e.amount, self.ledgers[&hold.ledger].0)?;
        match hold.hold {
            MHold::Posted => return Err(R::PendingTransferAlreadyPosted),
            MHold::Voided => return Err(R::PendingTransferAlreadyVoided),
            MHold::Expired => return Err(R::HoldExpired),
            _ => {}
        }
        let moved = if post {
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
        let mut da = self.accounts[&hold.debit].clone();
        let mut ca = self.accounts[&hold.credit].clone();
        da.balances.debits_pending -= hold.amount;
        ca.balances.credits_pending -= hold.amount;
        if post {
            da.balances.debits_posted = da
                .balances
                .debits_posted
                .checked_add(moved)
                .ok_or(R::BalanceOverflow)?;
            ca.balances.credits_posted = ca
                .balances
                .credits_posted
                .checked_add(moved)
                .ok_or(R::BalanceOverflow)?;
        }
        let outcome = TransferOutcome {
            result: R::Ok,
            timestamp: Timestamp(ts),
            debit_balances: da.balances,
            credit_balances: ca.balances,
        };
        self.accounts.insert(hold.debit, da);
        self.accounts.insert(hold.credit, ca);
        self.transfers.get_mut(&e.pending_id.0).unwrap().hold =
            if post { MHold::Posted } else { MHold::Voided };
        self.transfers.insert(
            e.id.0,
            MTransfer {
                sent: normalized(e),
                outcome,
                kind: if post { MKind::Post } else { MKind::Void },
                debit: hold.debit,
                credit: hold.credit,
                ledger: hold.ledger,
                amount: moved,
                hold: MHold::None,
                deadline: None,
                refunded: 0,
            },
        );
        Ok(outcome)
    }

    fn refund(&mut self, e: &NewTransfer, ts: u64) -> Result<TransferOutcome, TransferResult> {
        use TransferResult as R;
        if e.amount < Decimal::ZERO {
            return Err(R::AmountMustNotBeNegative);
        }
        if e.amount.is_zero() {
            return Err(R::AmountMustNotBeZero);
        }
        let original = self
            .transfers
            .get(&e.refund_of.0)
            .ok_or(R::RefundOfNotFound)?
            .clone();
        if !matches!(original.kind, MKind::Plain | MKind::Post) || original.outcome.result != R::Ok
        {
            return Err(R::RefundOfNotRefundable);
        }
        Self::same_fields(e, original.credit, original.debit, original.ledger)?;
        let amount = amount(e.amount, self.ledgers[&original.ledger].0)?;
        if amount > original.amount - original.refunded {
            return Err(R::RefundExceedsRemaining);
        }
        let (db, cb) = self.move_money(
            original.credit,
            original.debit,
            original.ledger,
            amount,
            false,
        )?;
        self.transfers.get_mut(&e.refund_of.0).unwrap().refunded += amount;
        let outcome = TransferOutcome {
            result: R::Ok,
            timestamp: Timestamp(ts),
            debit_balances: db,
            credit_balances: cb,
        };
        self.transfers.insert(
            e.id.0,
            MTransfer {
                sent: normalized(e),
                outcome,
                kind: MKind::Refund,
                debit: original.credit,
                credit: original.debit,
                ledger: original.ledger,
                amount,
                hold: MHold::None,
                deadline: None,
                refunded: 0,
            },
        );
        Ok(outcome)
    }
}

fn amount(a: Decimal, scale: u8) -> Result<u128, TransferResult> {
    minor(a, scale).map_err(|too_many| {
        if too_many {
            TransferResult::AmountTooManyDecimals
        } else {
            TransferResult::AmountOverflow
        }
    })
}

fn failed(result: TransferResult, ts: u64) -> TransferOutcome {
    TransferOutcome {
        result,
        timestamp: Timestamp(ts),
        debit_balances: Balances::default(),
        credit_balances: Balances::default(),
    }
}

// ---------------------------------------------------------------- random operations

/// How a generated transfer picks an id or a reference; resolved against the model's
/// transfers at the moment the step runs, so that posts, voids, refunds and retries mostly
/// name transfers that exist.
#[derive(Clone, Copy, Debug)]
enum Pick {
    /// A new id.
    Fresh,
    /// The n-th most recent recorded transfer (modulo their number).
    Recent(usize),
    /// A fixed small id: zero, or one that may or may not exist.
    Raw(u128),
}

#[derive(Clone, Debug)]
struct TransferSpec {
    id: Pick,
    reference: Pick,
    template: NewTransfer,
}

#[derive(Clone, Debug)]
enum Spec {
    Command(Command),
    Transfers(Vec<TransferSpec>),
    /// Send again the n-th earlier transfer batch (modulo how many there were), unchanged.
    Retry(usize),
}

fn pick_strategy(fresh: u32) -> impl Strategy<Value = Pick> {
    prop_oneof![
        fresh => Just(Pick::Fresh),
        6 => (0usize..6).prop_map(Pick::Recent),
        1 => prop_oneof![Just(0u128), 1u128..5].prop_map(Pick::Raw),
    ]
}

fn amount_strategy() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        12 => (1i64..60).prop_map(Decimal::from),
        2 => (1i64..6000).prop_map(|m| Decimal::new(m, 2)),
        1 => Just(Decimal::ZERO),
        1 => Just(Decimal::new(-5, 0)),
        1 => Just(Decimal::new(1234, 3)),
        1 => Just(Decimal::MAX),
        1 => Just(Decimal::new(500, 2)),
    ]
}

fn account_strategy() -> impl Strategy<Value = NewAccount> {
    (
        0u128..9,
        prop_oneof![4 => 1u32..3, 1 => Just(0u32), 1 => Just(9u32)],
        prop_oneof![
            3 => Just(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
            3 => Just(0),
            1 => Just(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS),
            1 => Just(AccountFlags::LINKED | AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
            1 => Just(AccountFlags::LINKED),
            1 => Just(0b110),
            1 => Just(0b1000),
        ],
        prop_oneof![
            4 => Just(None),
            1 => Just(Some(Decimal::from(20))),
            1 => Just(Some(Decimal::new(15, 1))),
            1 => Just(Some(Decimal::new(-1, 0))),
            1 => Just(Some(Decimal::new(1, 3))),
        ],
        0u64..2,
    )
        .prop_map(|(id, ledger, flags, limit, user_data_64)| NewAccount {
            id: AccountId(id),
            ledger: LedgerId(ledger),
            code: 1,
            flags: AccountFlags(flags),
            limit,
            user_data_128: 0,
            user_data_64,
            user_data_32: 0,
        })
}

fn account_id_strategy() -> impl Strategy<Value = u128> {
    prop_oneof![20 => 1u128..6, 2 => 6u128..9, 1 => Just(0u128)]
}

fn transfer_strategy() -> impl Strategy<Value = TransferSpec> {
    let kind = prop_oneof![
        8 => Just(0u8), // plain
        4 => Just(1),   // pending
        3 => Just(2),   // post
        2 => Just(3),   // void
        3 => Just(4),   // refund
        1 => Just(5),   // nonsense flags
    ];
    (
        kind,
        pick_strategy(30),
        account_id_strategy(),
        account_id_strategy(),
        amount_strategy(),
        prop_oneof![16 => Just(1u32), 2 => Just(2u32), 1 => Just(0u32), 1 => Just(9u32)],
        pick_strategy(1),
        prop_oneof![3 => Just(0u32), 2 => 1u32..4],
        prop::bool::weighted(0.12),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.5),
    )
        .prop_map(
            |(
                kind,
                id,
                debit,
                credit,
                amount,
                ledger,
                reference,
                timeout,
                linked,
                zero_fields,
                zero_amount,
            )| {
                let mut t = NewTransfer::plain(
                    TransferId(0),
                    AccountId(debit),
                    AccountId(credit),
                    amount,
                    LedgerId(ledger),
                );
                let mut flags = if linked { TransferFlags::LINKED } else { 0 };
                match kind {
                    1 => {
                        flags |= TransferFlags::PENDING;
                        t.timeout_s = timeout;
                    }
                    2 | 3 => {
                        flags |= if kind == 2 {
                            TransferFlags::POST_PENDING
                        } else {
                            TransferFlags::VOID_PENDING
                        };
                        if zero_amount {
                            t.amount = Decimal::ZERO;
                        }
                    }
                    5 => {
                        flags |= [TransferFlags::PENDING | TransferFlags::POST_PENDING, 1 << 7]
                            [debit as usize % 2];
                        t.timeout_s = timeout;
                    }
                    _ => t.timeout_s = if debit == 0 { timeout } else { 0 },
                }
                if kind >= 2 && zero_fields {
                    t.debit_account = AccountId(0);
                    t.credit_account = AccountId(0);
                    t.ledger = LedgerId(0);
                }
                t.flags = TransferFlags(flags);
                // Which reference field the pick fills is decided by the kind.
                t.code = u16::from(kind);
                TransferSpec {
                    id,
                    reference,
                    template: t,
                }
            },
        )
}

fn step_strategy() -> impl Strategy<Value = (u64, Spec)> {
    let spec = prop_oneof![
        1 => prop::collection::vec(
            (0u32..4, prop_oneof![3 => 0u8..3, 1 => Just(30u8)]).prop_map(|(id, scale)| NewLedger { id: LedgerId(id), scale, code: 1 }),
            1..3,
        ).prop_map(|l| Spec::Command(Command::CreateLedgers(l))),
        2 => prop::collection::vec(account_strategy(), 1..5).prop_map(|a| Spec::Command(Command::CreateAccounts(a))),
        12 => prop::collection::vec(transfer_strategy(), 1..8).prop_map(Spec::Transfers),
        1 => Just(Spec::Command(Command::Tick)),
        2 => any::<usize>().prop_map(Spec::Retry),
    ];
    // Time advances by up to 3 seconds per entry, sometimes not at all.
    (prop_oneof![3 => 0u64..3_000_000_000, 1 => Just(0u64)], spec)
}

/// Ledger 1 (scale 0) with accounts 1–5, ledger 2 (scale 2) with account 6; even accounts
/// may not overdraw. Accounts 1, 3 and 5 start with credits so that spends can succeed.
fn setup() -> Vec<EntryPayload> {
    let ledgers = Command::CreateLedgers(vec![
        NewLedger {
            id: LedgerId(1),
            scale: 0,
            code: 1,
        },
        NewLedger {
            id: LedgerId(2),
            scale: 2,
            code: 1,
        },
    ]);
    let mut accounts = Vec::new();
    for id in 1..7u128 {
        accounts.push(NewAccount {
            id: AccountId(id),
            ledger: LedgerId(if id == 6 { 2 } else { 1 }),
            code: 1,
            flags: AccountFlags(if id % 2 == 0 {
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
            } else {
                0
            }),
            limit: None,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
        });
    }
    let funding = (2..6u128)
        .step_by(2)
        .map(|id| {
            NewTransfer::plain(
                TransferId(1_000_000 + id),
                AccountId(1),
                AccountId(id),
                Decimal::from(100),
                LedgerId(1),
            )
        })
        .collect();
    vec![
        EntryPayload {
            timestamp: Timestamp(1_000),
            command: ledgers,
        },
        EntryPayload {
            timestamp: Timestamp(2_000),
            command: Command::CreateAccounts(accounts),
        },
        EntryPayload {
            timestamp: Timestamp(3_000),
            command: Command::CreateTransfers(funding),
        },
    ]
}

/// Turns specs into concrete transfers against the model's current transfers.
fn resolve(specs: &[TransferSpec], model: &Model, next_id: &mut u128) -> Vec<NewTransfer> {
    let recent: Vec<u128> = {
        let mut by_time: Vec<(u64, u128)> = model
            .transfers
            .iter()
            .map(|(id, t)| (t.outcome.timestamp.0, *id))
            .collect();
        by_time.sort_unstable_by(|a, b| b.cmp(a));
        by_time.into_iter().map(|(_, id)| id).collect()
    };
    let of_kind = |kinds: &[MKind]| -> Vec<u128> {
        recent
            .iter()
            .copied()
            .filter(|id| {
                let t = &model.transfers[id];
                t.outcome.result == TransferResult::Ok && kinds.contains(&t.kind)
            })
            .collect()
    };
    let holds = of_kind(&[MKind::Pending]);
    let refundable = of_kind(&[MKind::Plain, MKind::Post]);
    let mut fresh_in_batch = Vec::new();
    let mut resolve_pick =
        |pick: Pick, fresh_in_batch: &mut Vec<u128>, preferred: &[u128]| match pick {
            Pick::Fresh => {
                *next_id += 1;
                fresh_in_batch.push(*next_id);
                *next_id
            }
            Pick::Recent(n) if !fresh_in_batch.is_empty() && n % 3 == 2 => {
                // A reference to an earlier event of the same batch (e.g. post a hold made in
                // the same linked chain).
                fresh_in_batch[n % fresh_in_batch.len()]
            }
            Pick::Recent(n) if !preferred.is_empty() && n % 4 != 3 => {
                preferred[n % preferred.len()]
            }
            Pick::Recent(n) if !recent.is_empty() => recent[n % recent.len()],
            Pick::Recent(_) => 0,
            Pick::Raw(id) => id,
        };
    specs
        .iter()
        .map(|spec| {
            let mut t = spec.template.clone();
            let preferred: &[u128] = match t.code {
                2 | 3 => &holds,
                4 => &refundable,
                _ => &[],
            };
            let reference = resolve_pick(spec.reference, &mut fresh_in_batch, preferred);
            t.id = TransferId(resolve_pick(spec.id, &mut fresh_in_batch, &[]));
            match t.code {
                2 | 3 => t.pending_id = TransferId(reference),
                4 => t.refund_of = TransferId(reference),
                _ => {}
            }
            t
        })
        .collect()
}

/// Runs `steps` against the model. With `transfers_memory_max`, the partition keeps only
/// that many transfer records in memory and spills the rest to transfer runs in a temporary
/// directory, and an all-in-memory twin applies the same entries: both must answer the same
/// and have the same digest after every entry.
fn run(steps: Vec<(u64, Spec)>, transfers_memory_max: Option<usize>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut partition = match transfers_memory_max {
        None => Partition::new(),
        Some(max) => Partition::with_transfer_runs(
            TransferRuns::open(dir.path(), PartitionId(0), 0, false).expect("open runs"),
            max,
        ),
    };
    let mut twin = transfers_memory_max.map(|_| Partition::new());
    let mut model = Model::default();
    let mut clock = 10_000u64;
    let mut next_id = 100u128;
    let mut transfer_batches: Vec<Command> = Vec::new();
    let mut index = 0u64;
    let setup_steps = setup().into_iter().map(|p| (0u64, Some(p), None));
    let random_steps = steps
        .into_iter()
        .map(|(delta, spec)| (delta, None, Some(spec)));
    for (delta, fixed, spec) in setup_steps.chain(random_steps) {
        clock += delta;
        let payload = match (fixed, spec) {
            (Some(payload), _) => payload,
            (None, Some(spec)) => {
                let command = match spec {
                    Spec::Command(command) => command,
                    Spec::Transfers(specs) => {
                        Command::CreateTransfers(resolve(&specs, &model, &mut next_id))
                    }
                    Spec::Retry(n) if !transfer_batches.is_empty() => {
                        transfer_batches[n % transfer_batches.len()].clone()
                    }
                    Spec::Retry(_) => Command::Tick,
                };
                if matches!(command, Command::CreateTransfers(_)) {
                    transfer_batches.push(command.clone());
                }
                // Occasionally stamp an entry in the past: the clock must not go backwards.
                let stamp = if delta % 11 == 5 { clock / 2 } else { clock };
                EntryPayload {
                    timestamp: Timestamp(stamp),
                    command,
                }
            }
            (None, None) => unreachable!(),
        };
        index += 1;
        let got = partition.apply(LogIndex(index), &payload);
        let want = model.apply(&payload);
        prop_assert_eq!(&got, &want, "entry {} {:?}", index, payload);
        if let Some(twin) = &mut twin {
            let twin_got = twin.apply(LogIndex(index), &payload);
            prop_assert_eq!(
                &got,
                &twin_got,
                "entry {} differs from the in-memory twin",
                index
            );
            prop_assert_eq!(
                partition.digest(),
                twin.digest(),
                "digest at entry {}",
                index
            );
            prop_assert_eq!(partition.transfer_spill_error(), None);
        }
        if let (Some(max), true) = (transfers_memory_max, index.is_multiple_of(5)) {
            // Checkpoint and restore: the resident records, the runs named by spill count
            // and the refund overlay must give back the same state and digest. (Restoring
            // in the same directory with merged inputs deleted needs the spill being
            // written installed first.)
            partition.finish_spill();
            let path =
                checkpoint::write(&dir.path().join("checkpoints"), PartitionId(0), &partition)
                    .expect("write checkpoint");
            let runs = RunsConfig {
                dir: dir.path(),
                transfers_memory_max: max,
                keep_merged: false,
            };
            let (restored, _) = checkpoint::read_with_runs(&path, PartitionId(0), Some(&runs))
                .map_err(|e| TestCaseError::fail(format!("restore at entry {index}: {e}")))?;
            prop_assert_eq!(
                restored.digest(),
                partition.digest(),
                "restored at {}",
                index
            );
            partition = restored;
        }
        if let Err(violation) = partition.check_invariants() {
            return Err(TestCaseError::fail(format!(
                "after entry {index}: {violation}"
            )));
        }
        prop_assert_eq!(partition.account_count(), model.accounts.len());
        for (id, account) in &model.accounts {
            let real = partition.account(AccountId(*id)).expect("account exists");
            prop_assert_eq!(real.balances, account.balances, "account {}", id);
        }
        for (id, t) in &model.transfers {
            let real = partition
                .transfer(TransferId(*id))
                .expect("transfer recorded");
            prop_assert_eq!(real.outcome, t.outcome);
            prop_assert_eq!(real.refunded, t.refunded);
            prop_assert!(t.refunded <= t.amount);
        }
        prop_assert_eq!(partition.transfer_count(), model.transfers.len());
    }
    if let Some(max) = transfers_memory_max {
        // The bound held, and once there were enough records some were read from disk. A
        // spill is written in the background: up to two batches over the bound while one
        // is in flight.
        partition.finish_spill();
        let batch = (max / 8).clamp(4, 1 << 17);
        let holds = model
            .transfers
            .values()
            .filter(|t| t.hold == MHold::Pending)
            .count();
        prop_assert!(partition.resident_transfer_count() <= max + 2 * batch + holds);
        if model.transfers.len() > max + 2 * batch + holds {
            let runs = partition.transfer_runs().expect("runs");
            prop_assert!(runs.record_count() > 0, "nothing was spilled");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn partition_matches_model(steps in prop::collection::vec(step_strategy(), 1..60)) {
        run(steps, None)?;
    }
}

proptest! {
    // Every lookup past the newest four records (retries, posts and voids of old holds,
    // refunds of old transfers) goes to the transfer runs on disk.
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn spilling_partition_matches_model(steps in prop::collection::vec(step_strategy(), 1..60)) {
        run(steps, Some(4))?;
    }
}

/// Two partitions that apply the same entries have the same digest; a different history
/// gives a different digest.
#[test]
fn digest_is_deterministic() {
    let mut a = Partition::new();
    let mut b = Partition::new();
    for (i, payload) in setup().iter().enumerate() {
        a.apply(LogIndex(i as u64 + 1), payload);
        b.apply(LogIndex(i as u64 + 1), payload);
    }
    assert_eq!(a.digest(), b.digest());
    let transfer = |amount| EntryPayload {
        timestamp: Timestamp(5_000),
        command: Command::CreateTransfers(vec![NewTransfer::plain(
            TransferId(1),
            AccountId(1),
            AccountId(3),
            Decimal::from(amount),
            LedgerId(1),
        )]),
    };
    a.apply(LogIndex(4), &transfer(5));
    b.apply(LogIndex(4), &transfer(6));
    assert_ne!(a.digest(), b.digest());
    assert_eq!(a.digest(), a.recompute_digest());
}

#[test]
#[ignore = "prints the distribution of results the generator reaches; run by hand"]
fn result_histogram() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut histogram: BTreeMap<&'static str, usize> = BTreeMap::new();
    for _ in 0..200 {
        let steps = prop::collection::vec(step_strategy(), 1..60)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut model = Model::default();
        let mut next_id = 100;
        for payload in setup() {
            model.apply(&payload);
        }
        for (delta, spec) in steps {
            if let Spec::Transfers(specs) = spec {
                let command = Command::CreateTransfers(resolve(&specs, &model, &mut next_id));
                let stamp = model.last_timestamp + delta;
                if let Outcome::Transfers(outcomes) = model.apply(&EntryPayload {
                    timestamp: Timestamp(stamp),
                    command,
                }) {
                    for o in outcomes {
                        *histogram.entry(o.result.name()).or_default() += 1;
                    }
                }
            }
        }
    }
    println!("{histogram:#?}");
}
