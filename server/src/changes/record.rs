//! What an applied entry decided, as the `WireChange`s a stream sends.
//!
//! Which events count (a stream carries decisions, not answers): a ledger or account event
//! whose result is not `Exists` (a retry of a creation changes nothing); a transfer event
//! decided by this entry, that is whose outcome carries the timestamp this entry gave it
//! (a retry answered from the record carries the original's, and is left out); and each
//! hold the entry expired, before its first event. Claims of ids for other partitions are
//! bookkeeping, left out. Positions number these changes from 0 within the entry.

use prost::encoding::{self, WireType};
use tally_client::wire::codes::{ChangeKind, TransferKind as WireKind};
use tally_client::wire::messages::{
    WireBalances, WireChange, WireNewAccount, WireNewLedger, WireNewTransfer,
};
use tally_engine::command::{Command, EntryPayload, NewTransfer, TransferFlags};
use tally_engine::index::{Posting, PostingKind};
use tally_engine::outcome::{AccountResult, LedgerResult, Outcome, TransferResult};
use tally_engine::partition::{Partition, TransferRecord};
use tally_engine::types::{LogIndex, Timestamp};

use crate::convert;

/// What a partition was before an entry was applied to it.
#[derive(Clone, Copy, Debug)]
pub struct Before {
    /// Its clock.
    pub clock: Timestamp,
    /// Its record slots ([`Partition::record_slots`]).
    pub record_slots: u64,
}

impl Before {
    /// What `state` is now, before the next entry.
    pub fn of(state: &Partition) -> Before {
        Before {
            clock: state.last_timestamp(),
            record_slots: state.record_slots(),
        }
    }
}

/// Appends to `out` the changes of entry `index`, just applied to `state` (which was
/// `before` before it) with `outcome`; `expired` are the entry's expiry postings. Returns
/// the timestamps of the first and last change, or `None` if there was none.
#[allow(clippy::too_many_arguments)]
pub fn encode_entry(
    partition: u32,
    index: LogIndex,
    payload: &EntryPayload,
    outcome: &Outcome,
    before: Before,
    expired: &[Posting],
    state: &Partition,
    out: &mut Vec<u8>,
) -> Option<(u64, u64)> {
    let clock_before = before.clock;
    let now = payload.timestamp.0.max(clock_before.0 + 1);
    let mut changes = Changes {
        partition,
        index: index.0,
        event: 0,
        first: None,
        last: 0,
        out,
        scratch: Vec::with_capacity(512),
    };
    for pair in expired.chunks_exact(2) {
        let (debit, credit) = (&pair[0], &pair[1]);
        debug_assert_eq!(debit.kind, PostingKind::Expired);
        let hold = state.decided_transfer(debit.transfer);
        let ledger = hold.map_or(0, |h| h.ledger.0);
        changes.push_transfer(
            debit.timestamp.0,
            TransferFields {
                kind: ChangeKind::HoldExpired.code(),
                result: TransferResult::Ok.code(),
                asked: None,
                transfer_kind: WireKind::Expired.code(),
                amount: debit.amount,
                scale: scale(state, ledger),
                ledger_id: ledger,
                debit_account: debit.account.0,
                credit_account: credit.account.0,
                balances: Some((debit.balances, credit.balances)),
                transfer_id: debit.transfer.0,
                code: hold.map_or(0, |h| u32::from(h.details.code)),
            },
        );
    }
    match (&payload.command, outcome) {
        (Command::CreateLedgers(events), Outcome::Ledgers(results)) => {
            for (i, (event, result)) in events.iter().zip(results).enumerate() {
                if *result == LedgerResult::Exists {
                    continue;
                }
                let ledger = convert::ledger_out(event);
                changes.push(
                    now + i as u64,
                    WireChange {
                        kind: ChangeKind::Ledger.code(),
                        result: result.code(),
                        ledger: Some(WireNewLedger::from(&ledger)),
                        ..WireChange::default()
                    },
                );
            }
        }
        (Command::CreateAccounts(events), Outcome::Accounts(results)) => {
            for (i, (event, result)) in events.iter().zip(results).enumerate() {
                if *result == AccountResult::Exists {
                    continue;
                }
                let account = convert::new_account_out(event);
                changes.push(
                    now + i as u64,
                    WireChange {
                        kind: ChangeKind::Account.code(),
                        result: result.code(),
                        account: Some(WireNewAccount::from(&account)),
                        ..WireChange::default()
                    },
                );
            }
        }
        (Command::CreateTransfers(events), Outcome::Transfers(outcomes)) => {
            // The entry's records, in decision order: read in passing rather than looked up
            // (a lookup per transfer is a cache miss in a map of millions).
            let mut recorded = state.records_from(before.record_slots).peekable();
            for (i, (event, outcome)) in events.iter().zip(outcomes).enumerate() {
                let timestamp = now + i as u64;
                if outcome.timestamp.0 != timestamp {
                    continue;
                }
                let record = match recorded.peek() {
                    Some(r) if r.id == event.id && r.outcome.timestamp.0 == timestamp => {
                        recorded.next().copied()
                    }
                    // Not recorded (a refusal before the id is looked at), or spilled.
                    _ => state
                        .decided_transfer(event.id)
                        .filter(|r| r.outcome.timestamp.0 == timestamp),
                };
                let change = transfer_change(event, outcome.result, record, state);
                changes.push_transfer(timestamp, change);
            }
        }
        _ => {}
    }
    changes.first.map(|first| (first, changes.last))
}

/// The change of a transfer event this entry decided.
fn transfer_change(
    event: &NewTransfer,
    result: TransferResult,
    record: Option<TransferRecord>,
    state: &Partition,
) -> TransferFields {
    let mut change = TransferFields {
        kind: ChangeKind::Transfer.code(),
        result: result.code(),
        asked: Some(WireNewTransfer::from(&convert::new_transfer_out(event))),
        transfer_kind: asked_kind(event.flags, event.refund_of.0 != 0).code(),
        amount: 0,
        scale: 0,
        ledger_id: event.ledger.0,
        debit_account: event.debit_account.0,
        credit_account: event.credit_account.0,
        balances: None,
        transfer_id: event.id.0,
        code: u32::from(event.code),
    };
    if let Some(r) = record {
        change.transfer_kind = r.kind as u32;
        change.ledger_id = r.ledger.0;
        change.debit_account = r.debit_account.0;
        change.credit_account = r.credit_account.0;
        if result == TransferResult::Ok {
            change.amount = r.amount;
            change.balances = Some((r.outcome.debit_balances, r.outcome.credit_balances));
        }
    }
    change.scale = scale(state, change.ledger_id);
    change
}

/// What a transfer asked to do, by its flags.
fn asked_kind(flags: TransferFlags, refund: bool) -> WireKind {
    if flags.has(TransferFlags::POST_PENDING) {
        WireKind::Post
    } else if flags.has(TransferFlags::VOID_PENDING) {
        WireKind::Void
    } else if flags.has(TransferFlags::PENDING) {
        WireKind::Pending
    } else if refund {
        WireKind::Refund
    } else {
        WireKind::Plain
    }
}

fn scale(state: &Partition, ledger: u32) -> u32 {
    state
        .ledger(tally_engine::types::LedgerId(ledger))
        .map_or(0, |l| u32::from(l.scale))
}

fn wire_balances(b: &tally_engine::outcome::Balances) -> WireBalances {
    WireBalances::from(&convert::balances(b))
}

/// A transfer's (or an expiry's) `WireChange`, held as integers: [`Changes::push_transfer`]
/// writes the bytes prost's derive would, without a heap buffer per 128-bit field (a
/// change per transfer is on the apply path).
struct TransferFields {
    kind: u32,
    result: u32,
    asked: Option<WireNewTransfer>,
    transfer_kind: u32,
    amount: u128,
    scale: u32,
    ledger_id: u32,
    debit_account: u128,
    credit_account: u128,
    /// Both accounts' balances after, for a success.
    balances: Option<(
        tally_engine::outcome::Balances,
        tally_engine::outcome::Balances,
    )>,
    transfer_id: u128,
    code: u32,
}

fn put_varint(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encoding::encode_key(tag, WireType::Varint, buf);
        encoding::encode_varint(value, buf);
    }
}

fn put_u128(tag: u32, value: u128, buf: &mut Vec<u8>) {
    if value != 0 {
        encoding::encode_key(tag, WireType::LengthDelimited, buf);
        buf.push(16);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// The changes of one entry being encoded.
struct Changes<'a> {
    partition: u32,
    index: u64,
    event: u32,
    first: Option<u64>,
    last: u64,
    out: &'a mut Vec<u8>,
    /// One change's bytes, before its length is known.
    scratch: Vec<u8>,
}

impl Changes<'_> {
    fn stamp(&mut self, timestamp: u64) -> u32 {
        self.first.get_or_insert(timestamp);
        self.last = timestamp;
        self.event += 1;
        self.event - 1
    }

    /// Appends a ledger's or an account's change (rare: built as a message).
    fn push(&mut self, timestamp: u64, mut change: WireChange) {
        change.partition = self.partition;
        change.index = self.index;
        change.event = self.stamp(timestamp);
        change.timestamp = timestamp;
        encoding::message::encode(1, &change, self.out);
    }

    /// Appends a transfer's change: the fields in tag order, as the derive writes them.
    fn push_transfer(&mut self, timestamp: u64, t: TransferFields) {
        let event = self.stamp(timestamp);
        let b = &mut self.scratch;
        b.clear();
        put_varint(1, u64::from(self.partition), b);
        put_varint(2, self.index, b);
        put_varint(3, u64::from(event), b);
        put_varint(4, timestamp, b);
        put_varint(5, u64::from(t.kind), b);
        put_varint(6, u64::from(t.result), b);
        if let Some(asked) = &t.asked {
            encoding::message::encode(9, asked, b);
        }
        put_varint(10, u64::from(t.transfer_kind), b);
        put_u128(11, t.amount, b);
        put_varint(12, u64::from(t.scale), b);
        put_varint(13, u64::from(t.ledger_id), b);
        put_u128(14, t.debit_account, b);
        put_u128(15, t.credit_account, b);
        if let Some((debit, credit)) = &t.balances {
            encoding::message::encode(16, &wire_balances(debit), b);
            encoding::message::encode(17, &wire_balances(credit), b);
        }
        put_u128(18, t.transfer_id, b);
        put_varint(19, u64::from(t.code), b);
        encoding::encode_key(1, WireType::LengthDelimited, self.out);
        encoding::encode_varint(b.len() as u64, self.out);
        self.out.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use rust_decimal::Decimal;
    use tally_client::wire::changes::{Change, ChangeBody};
    use tally_client::wire::messages::SubscribeResponse;
    use tally_engine::command::{AccountFlags, NewAccount, NewLedger};
    use tally_engine::types::{AccountId, LedgerId, TransferId};

    /// A partition that applies entries one second apart and keeps each one's changes.
    struct Applier {
        partition: Partition,
        index: u64,
    }

    impl Applier {
        fn new() -> Applier {
            let mut partition = Partition::new();
            partition.set_postings_enabled(true);
            Applier {
                partition,
                index: 0,
            }
        }

        fn apply(&mut self, command: Command) -> Vec<Change> {
            self.index += 1;
            let payload = EntryPayload {
                timestamp: Timestamp(self.index * 1_000_000_000),
                command,
            };
            let clock = Before::of(&self.partition);
            let before = self.partition.postings().len();
            let outcome = self.partition.apply(LogIndex(self.index), &payload);
            let postings = &self.partition.postings()[before..];
            let expired = postings
                .iter()
                .take_while(|p| p.kind == PostingKind::Expired)
                .count();
            let mut body = Vec::new();
            let stamps = encode_entry(
                3,
                LogIndex(self.index),
                &payload,
                &outcome,
                clock,
                &postings[..expired],
                &self.partition,
                &mut body,
            );
            let frame = SubscribeResponse::decode(body.as_slice()).unwrap();
            // Written by hand, the bytes are what the derive writes.
            assert_eq!(
                frame.encode_to_vec(),
                body,
                "encoded as prost's derive does"
            );
            let changes = frame.to_frame().unwrap().changes;
            assert_eq!(stamps.is_some(), !changes.is_empty());
            if let Some((first, last)) = stamps {
                assert_eq!(first, changes[0].timestamp.0);
                assert_eq!(last, changes.last().unwrap().timestamp.0);
            }
            for (n, change) in changes.iter().enumerate() {
                assert_eq!(change.position.partition.0, 3);
                assert_eq!(change.position.index, self.index);
                assert_eq!(change.position.event, n as u32);
            }
            changes
        }
    }

    fn transfer(id: u128, from: u128, to: u128, amount: i64) -> NewTransfer {
        NewTransfer::plain(
            TransferId(id),
            AccountId(from),
            AccountId(to),
            Decimal::new(amount, 2),
            LedgerId(1),
        )
    }

    fn transfer_body(change: &Change) -> &tally_client::wire::changes::TransferChange {
        match &change.body {
            ChangeBody::Transfer(t) => t,
            other => panic!("not a transfer: {other:?}"),
        }
    }

    #[test]
    fn an_entry_yields_its_decisions_with_balances_and_no_retries() {
        use tally_client::wire::codes::{TransferKind as K, TransferResult as R};
        let mut a = Applier::new();
        let ledgers = a.apply(Command::CreateLedgers(vec![NewLedger {
            id: LedgerId(1),
            scale: 2,
            code: 9,
        }]));
        assert!(matches!(
            &ledgers[..],
            [Change {
                body: ChangeBody::Ledger { .. },
                ..
            }]
        ));
        let account = |id| NewAccount {
            id: AccountId(id),
            ledger: LedgerId(1),
            code: 7,
            flags: AccountFlags(0),
            limit: None,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
        };
        let accounts = a.apply(Command::CreateAccounts(vec![account(1), account(2)]));
        assert_eq!(accounts.len(), 2);
        // A retry of a creation is no change.
        assert!(a
            .apply(Command::CreateAccounts(vec![account(1)]))
            .is_empty());

        let mut hold = transfer(11, 1, 2, 500);
        hold.flags = TransferFlags(TransferFlags::PENDING);
        hold.timeout_s = 1;
        let changes = a.apply(Command::CreateTransfers(vec![
            transfer(10, 1, 2, 250),
            transfer(10, 1, 2, 250),
            transfer(12, 1, 99, 1),
            hold,
        ]));
        // The retry inside the batch is left out; the refusal is kept.
        assert_eq!(changes.len(), 3);
        let plain = transfer_body(&changes[0]);
        assert_eq!(
            (plain.result, plain.kind, plain.amount, plain.scale),
            (R::Ok, K::Plain, 250, 2)
        );
        assert_eq!(plain.debit_balances.debits_posted, 250);
        assert_eq!(plain.credit_balances.credits_posted, 250);
        let refused = transfer_body(&changes[1]);
        assert_eq!(
            (refused.result, refused.amount),
            (R::CreditAccountNotFound, 0)
        );
        let held = transfer_body(&changes[2]);
        assert_eq!(
            (held.kind, held.debit_balances.debits_pending),
            (K::Pending, 500)
        );

        // A retry of the whole batch in a later entry: nothing.
        assert!(a
            .apply(Command::CreateTransfers(vec![transfer(10, 1, 2, 250)]))
            .is_empty());

        // Two seconds later the hold expires before the entry's first event.
        a.index += 1;
        let changes = a.apply(Command::CreateTransfers(vec![transfer(13, 2, 1, 100)]));
        assert_eq!(changes.len(), 2);
        let expired = transfer_body(&changes[0]);
        assert_eq!(
            (
                expired.id,
                expired.kind,
                expired.amount,
                expired.asked.is_none()
            ),
            (tally_client::TransferId(11), K::Expired, 500, true)
        );
        assert_eq!(expired.debit_balances.debits_pending, 0);
        assert_eq!((expired.debit_account.0, expired.credit_account.0), (1, 2));
        assert_eq!(transfer_body(&changes[1]).id, tally_client::TransferId(13));
        // A hold posted in its own entry, and a refund: resolved from their originals.
        let mut hold = transfer(20, 1, 2, 300);
        hold.flags = TransferFlags(TransferFlags::PENDING);
        let mut post = transfer(21, 0, 0, 100);
        post.ledger = LedgerId(0);
        post.flags = TransferFlags(TransferFlags::POST_PENDING);
        post.pending_id = TransferId(20);
        let mut refund = transfer(22, 0, 0, 50);
        refund.ledger = LedgerId(0);
        refund.refund_of = TransferId(10);
        let changes = a.apply(Command::CreateTransfers(vec![hold, post, refund]));
        let kinds: Vec<_> = changes
            .iter()
            .map(|c| {
                let t = transfer_body(c);
                (
                    t.kind,
                    t.amount,
                    t.debit_account.0,
                    t.credit_account.0,
                    t.ledger.0,
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (K::Pending, 300, 1, 2, 1),
                (K::Post, 100, 1, 2, 1),
                (K::Refund, 50, 2, 1, 1)
            ]
        );
        assert_eq!(transfer_body(&changes[1]).debit_balances.debits_pending, 0);
        // Claims are bookkeeping.
        assert!(a
            .apply(Command::ClaimTransfers(vec![transfer(14, 5, 6, 1)]))
            .is_empty());
    }
}
