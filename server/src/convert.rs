//! Conversions between wire types (`tally_client::wire`) and engine types.
//!
//! The two sets are kept apart on purpose (STYLE.md): the disk format and the wire format
//! version independently, and this file is the only place that knows both. Result codes pass
//! through as numbers; the client's enums mirror the engine's (a client test pins them).

use tally_client::wire::codes as wc;
use tally_client::wire::types as wt;
use tally_engine::command as ec;
use tally_engine::outcome as eo;
use tally_engine::partition as ep;
use tally_engine::types as et;

/// Server-produced transfer and account result: the event's accounts (or its linked chain)
/// span partitions, which the server does not support yet. Nothing of it was applied.
pub const RESULT_CROSS_PARTITION: u32 = 1000;

/// Server-produced transfer and account result: the event's partition did not answer (it
/// timed out, lost its leader or was overloaded) while other partitions of the request did.
/// It may or may not have been applied: retry it with the same id to learn its outcome.
pub const RESULT_TIMED_OUT: u32 = 1001;

/// A new ledger from the wire.
pub fn ledger(l: &wt::NewLedger) -> ec::NewLedger {
    ec::NewLedger {
        id: et::LedgerId(l.id.0),
        scale: l.scale,
        code: l.code,
    }
}

/// A new account from the wire.
pub fn account(a: &wt::NewAccount) -> ec::NewAccount {
    ec::NewAccount {
        id: et::AccountId(a.id.0),
        ledger: et::LedgerId(a.ledger.0),
        code: a.code,
        flags: ec::AccountFlags(a.flags.0),
        limit: a.limit,
        user_data_128: a.user_data_128,
        user_data_64: a.user_data_64,
        user_data_32: a.user_data_32,
    }
}

/// A new transfer from the wire.
pub fn transfer(t: &wt::NewTransfer) -> ec::NewTransfer {
    ec::NewTransfer {
        id: et::TransferId(t.id.0),
        debit_account: et::AccountId(t.debit_account.0),
        credit_account: et::AccountId(t.credit_account.0),
        amount: t.amount,
        ledger: et::LedgerId(t.ledger.0),
        code: t.code,
        flags: ec::TransferFlags(t.flags.0),
        pending_id: et::TransferId(t.pending_id.0),
        refund_of: et::TransferId(t.refund_of.0),
        timeout_s: t.timeout_s,
        user_data_128: t.user_data_128,
        user_data_64: t.user_data_64,
        user_data_32: t.user_data_32,
        memo: t.memo.clone(),
    }
}

/// A ledger as asked, back to the wire (for change streams).
pub fn ledger_out(l: &ec::NewLedger) -> wt::NewLedger {
    wt::NewLedger {
        id: wt::LedgerId(l.id.0),
        scale: l.scale,
        code: l.code,
    }
}

/// An account as asked, back to the wire (for change streams).
pub fn new_account_out(a: &ec::NewAccount) -> wt::NewAccount {
    wt::NewAccount {
        id: wt::AccountId(a.id.0),
        ledger: wt::LedgerId(a.ledger.0),
        code: a.code,
        flags: wt::AccountFlags(a.flags.0),
        limit: a.limit,
        user_data_128: a.user_data_128,
        user_data_64: a.user_data_64,
        user_data_32: a.user_data_32,
    }
}

/// A transfer as asked, back to the wire (for change streams).
pub fn new_transfer_out(t: &ec::NewTransfer) -> wt::NewTransfer {
    wt::NewTransfer {
        id: wt::TransferId(t.id.0),
        debit_account: wt::AccountId(t.debit_account.0),
        credit_account: wt::AccountId(t.credit_account.0),
        amount: t.amount,
        ledger: wt::LedgerId(t.ledger.0),
        code: t.code,
        flags: wt::TransferFlags(t.flags.0),
        pending_id: wt::TransferId(t.pending_id.0),
        refund_of: wt::TransferId(t.refund_of.0),
        timeout_s: t.timeout_s,
        user_data_128: t.user_data_128,
        user_data_64: t.user_data_64,
        user_data_32: t.user_data_32,
        memo: t.memo.clone(),
    }
}

/// Balances to the wire.
pub fn balances(b: &eo::Balances) -> wt::Balances {
    wt::Balances {
        debits_pending: b.debits_pending,
        debits_posted: b.debits_posted,
        credits_pending: b.credits_pending,
        credits_posted: b.credits_posted,
    }
}

/// A transfer outcome to the wire.
pub fn outcome(o: &eo::TransferOutcome) -> wt::TransferOutcome {
    wt::TransferOutcome {
        result: wc::TransferResult::from_code(o.result.code()),
        timestamp: wt::Timestamp(o.timestamp.0),
        debit_balances: balances(&o.debit_balances),
        credit_balances: balances(&o.credit_balances),
    }
}

/// A server-produced failed outcome (e.g. [`RESULT_CROSS_PARTITION`]).
pub fn failed_outcome(code: u32) -> wt::TransferOutcome {
    wt::TransferOutcome {
        result: wc::TransferResult::from_code(code),
        timestamp: wt::Timestamp(0),
        debit_balances: wt::Balances::default(),
        credit_balances: wt::Balances::default(),
    }
}

/// An account to the wire.
pub fn account_out(a: &ep::Account, scale: u8) -> wt::Account {
    wt::Account {
        id: wt::AccountId(a.id.0),
        ledger: wt::LedgerId(a.ledger.0),
        scale,
        code: a.code,
        flags: wt::AccountFlags(a.flags.0),
        limit: a.limit,
        user_data_128: a.user_data_128,
        user_data_64: a.user_data_64,
        user_data_32: a.user_data_32,
        timestamp: wt::Timestamp(a.timestamp.0),
        balances: balances(&a.balances),
    }
}

/// A recorded transfer to the wire, with its code, flags, user data and memo as sent.
pub fn transfer_out(r: &ep::TransferRecord, scale: u8) -> wt::Transfer {
    let d = &r.details;
    wt::Transfer {
        id: wt::TransferId(r.id.0),
        kind: wc::TransferKind::from_code(r.kind as u32),
        debit_account: wt::AccountId(r.debit_account.0),
        credit_account: wt::AccountId(r.credit_account.0),
        ledger: wt::LedgerId(r.ledger.0),
        scale,
        amount: r.amount,
        reference: wt::TransferId(r.reference.0),
        timeout_s: r.timeout_s,
        code: d.code,
        flags: wt::TransferFlags(d.flags.0),
        user_data_128: d.user_data_128,
        user_data_64: d.user_data_64,
        user_data_32: d.user_data_32,
        memo: d.memo.as_bytes().to_vec(),
        outcome: outcome(&r.outcome),
        hold: wc::HoldStatus::from_code(r.hold as u32),
        refunded: r.refunded,
    }
}

/// A history entry to the wire.
pub fn history_entry(item: &crate::worker::HistoryItem) -> wt::HistoryEntry {
    let entry = &item.entry;
    wt::HistoryEntry {
        transfer_id: wt::TransferId(entry.transfer.0),
        timestamp: wt::Timestamp(entry.timestamp.0),
        kind: wc::TransferKind::from_code(entry.kind as u32),
        is_debit: entry.side == tally_engine::index::Side::Debit,
        counterparty: wt::AccountId(item.counterparty.0),
        amount: entry.amount,
        balances: balances(&entry.balances),
    }
}
