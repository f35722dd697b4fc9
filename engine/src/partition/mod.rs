//! The partition state machine: ledgers, accounts, transfers, holds and refunds.
//!
//! One `Partition` is applied by one thread, in log order: `apply(index, payload)` turns a
//! committed entry into an [`Outcome`]. It is deterministic — two replicas that apply the same
//! entries hold the same state, byte for byte, and the same [`Partition::digest`]. Time comes
//! only from the entries' timestamps: the state machine never reads a clock.
//!
//! # Time
//! Each entry carries the leader's timestamp. The partition's clock is
//! `now = max(entry.timestamp, last + 1)`; the entry's events then get the timestamps `now`,
//! `now + 1`, … in order, one each (so every event has a unique, increasing timestamp).
//! Before an entry's events run, every hold whose deadline (`timestamp + timeout`) is at or
//! before `now` expires: its pending amounts are released. All events of one entry see the
//! same `now` for expiry.
//!
//! # Idempotency
//! Every transfer event that gets past the structural checks (id, flags, references) is
//! *decided*: its outcome, success or failure, is recorded under its id together with a
//! fingerprint (a 128-bit hash) of the event's fields. A later event with the same id returns
//! that recorded outcome unchanged if its fingerprint matches, and `ExistsWithDifferentFields`
//! otherwise. Events inside a linked chain that failed because of another event are not
//! decided on their own and are not recorded. Accounts are recorded only when created; a retry
//! answers `Exists`.
//!
//! # Linked chains
//! Consecutive events flagged `LINKED` (ending with the first event without the flag) succeed
//! or fail together. While a chain runs, every change is pushed onto an undo log; if an event
//! fails, the undo log is replayed backwards, the failing event's outcome is recorded (if it
//! was decided), and the rest of the chain answers `LinkedEventFailed`.
//!
//! # Digest
//! The state digest is the wrapping sum of a 128-bit hash of every ledger, account and
//! transfer record. It is updated on every change (subtract the old item's hash, add the new),
//! so comparing two replicas costs nothing, and [`Partition::recompute_digest`] checks it.
//!
//! # Postings
//! When enabled ([`Partition::set_postings_enabled`]), every balance change is also recorded
//! as a [`Posting`] (one per account touched) into a buffer that the per-account index
//! ([`crate::index`]) drains after each entry with [`Partition::drain_postings`]. A failed
//! linked chain truncates the buffer back to where the chain began, so the buffer only ever
//! holds changes that stand. Postings are derived data: the digest does not cover them (nor
//! the index built from them), and a replica with postings disabled reaches the same digest.
//! They are off by default, so a caller that never drains them does not grow a buffer.
//!
//! # Transfers on disk
//! A partition built with [`Partition::with_transfer_runs`] keeps at most about
//! `transfers_memory_max` transfer records in memory, plus every pending hold, and spills
//! older ones to [`crate::transfer_runs`] after an entry is applied (never inside a chain):
//! written on a background thread, installed by a later entry (see `maybe_spill`).
//! A record on disk never changes; a later refund of it goes to an in-memory overlay
//! (id → total refunded) that every read applies. Lookups answer the same from memory or
//! disk, and the digest covers every record wherever it lives: spilling does not change it.
//! A checkpoint of such a partition holds the resident records, the spill count and the
//! overlay; [`crate::checkpoint::read_with_runs`] restores it with its runs.
//!
//! # Layout
//! This file keeps [`Partition`], `apply` and the linked-chain driver. Beside it: `types`
//! (ledgers, accounts, transfer records), `records` (the record slab and [`Snapshot`]),
//! `changes` (every state change, with its digest and undo), `accounts` (ledgers and
//! accounts), `transfers` (the transfer kinds and hold expiry), `spill` (transfer runs),
//! `amounts`, `digest`, `builder` (rebuilding from a checkpoint) and `invariants`.
//!
//! # Deliberate omissions
//! Closing accounts, balancing transfers and cross-partition chains come later. The
//! per-account index lives in [`crate::index`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_128;

use crate::command::{
    encode_transfer, AccountFlags, Command, EntryPayload, NewAccount, NewLedger, NewTransfer,
    TransferFlags, LEDGER_SCALE_MAX, MEMO_SIZE_MAX,
};
use crate::index::{Posting, PostingKind, Side};
use crate::outcome::{
    AccountResult, Balances, LedgerResult, Outcome, TransferOutcome, TransferResult,
};
use crate::transfer_runs::{Batch, SpillWriter, TransferRuns, WrittenRuns};
use crate::types::{AccountId, LedgerId, LogIndex, Timestamp, TransferId};

mod accounts;
mod amounts;
mod builder;
mod changes;
mod digest;
mod invariants;
mod records;
mod spill;
mod transfers;
mod types;

use self::amounts::*;
use self::digest::*;
use self::records::Records;
use self::spill::*;
pub use amounts::{from_minor, to_minor, AmountError};
pub(crate) use builder::PartitionBuilder;
pub use records::Snapshot;
pub use spill::TRANSFERS_RESERVED_MAX;
pub use types::*;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

enum Undo {
    Account(AccountId, Option<Account>),
    Transfer(TransferId, Option<TransferRecord>),
    /// A refund of a record on disk: the overlay's previous value for it.
    Refunded(TransferId, Option<u128>),
    ExpiryInserted(Timestamp, TransferId),
    ExpiryRemoved(Timestamp, TransferId),
}

/// Whether an event's outcome is a decision to record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    /// Rejected before the idempotency check: nothing is recorded.
    Undecided,
    /// Decided now: a failure is recorded by the caller (a success already was).
    Decided,
    /// A retry: the recorded outcome was returned.
    Replayed,
}

/// The results the chain driver needs to build for any kind of event.
trait EventResult: Copy {
    fn is_ok(&self) -> bool;
    fn timestamp(&self) -> Timestamp;
    fn linked_event_failed(timestamp: Timestamp) -> Self;
    fn linked_event_chain_open(timestamp: Timestamp) -> Self;
}

impl EventResult for AccountResult {
    fn is_ok(&self) -> bool {
        matches!(self, AccountResult::Ok | AccountResult::Exists)
    }
    fn timestamp(&self) -> Timestamp {
        Timestamp(0)
    }
    fn linked_event_failed(_: Timestamp) -> Self {
        AccountResult::LinkedEventFailed
    }
    fn linked_event_chain_open(_: Timestamp) -> Self {
        AccountResult::LinkedEventChainOpen
    }
}

impl EventResult for TransferOutcome {
    fn is_ok(&self) -> bool {
        self.result == TransferResult::Ok
    }
    fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
    fn linked_event_failed(timestamp: Timestamp) -> Self {
        TransferOutcome::failed(TransferResult::LinkedEventFailed, timestamp)
    }
    fn linked_event_chain_open(timestamp: Timestamp) -> Self {
        TransferOutcome::failed(TransferResult::LinkedEventChainOpen, timestamp)
    }
}

/// The state machine of one partition. See the module documentation.
pub struct Partition {
    ledgers: BTreeMap<LedgerId, Ledger>,
    accounts: FxHashMap<AccountId, Account>,
    /// Where each decided transfer's record lives in `records`.
    transfers: FxHashMap<TransferId, u64>,
    /// Transfer records in the order they were decided. Kept apart from the map so that the
    /// map's entries stay small: growing the map moves 24-byte entries, never the records.
    records: Records,
    /// Pending holds with a deadline, by deadline then id (a deterministic expiry order).
    expiries: BTreeSet<(Timestamp, TransferId)>,
    applied_index: LogIndex,
    last_timestamp: Timestamp,
    digest: u128,
    /// Changes of the running linked chain, if one runs.
    undo: Option<Vec<Undo>>,
    digest_at_chain_start: u128,
    /// Reused buffer for fingerprints.
    scratch: Vec<u8>,
    /// Whether balance changes are recorded into `postings`.
    postings_enabled: bool,
    /// Balance changes not yet drained by the index, in apply order.
    postings: Vec<Posting>,
    /// `postings.len()` when the running linked chain began.
    postings_at_chain_start: usize,
    /// Old, immutable transfer records on disk, if this partition spills (see
    /// [`Partition::with_transfer_runs`]).
    runs: Option<TransferRuns>,
    /// Most transfer records kept in memory before the oldest are spilled.
    transfers_memory_max: usize,
    /// Slots of `records` below this were spilled (or moved, for a pending hold) and are
    /// never read again.
    spilled_prefix: u64,
    /// For records on disk that were refunded after they were spilled: the total refunded.
    /// Disk records are immutable; this is the only part of them that can still change.
    refunded_overlay: FxHashMap<TransferId, u128>,
    /// The error of the last failed spill, if any (records stay in memory; retried).
    spill_error: Option<String>,
    /// The spill being written on a background thread, if any.
    spill_in_flight: Option<SpillInFlight>,
}

impl Default for Partition {
    fn default() -> Self {
        Partition::new()
    }
}

impl Partition {
    /// An empty partition.
    pub fn new() -> Partition {
        Partition {
            ledgers: BTreeMap::new(),
            accounts: FxHashMap::default(),
            transfers: FxHashMap::default(),
            records: Records::default(),
            expiries: BTreeSet::new(),
            applied_index: LogIndex(0),
            last_timestamp: Timestamp(0),
            digest: 0,
            undo: None,
            digest_at_chain_start: 0,
            scratch: Vec::with_capacity(256),
            postings_enabled: false,
            postings: Vec::new(),
            postings_at_chain_start: 0,
            runs: None,
            transfers_memory_max: usize::MAX,
            spilled_prefix: 0,
            refunded_overlay: FxHashMap::default(),
            spill_error: None,
            spill_in_flight: None,
        }
    }

    /// An empty partition that keeps at most about `transfers_memory_max` transfer records
    /// in memory (plus every pending hold) and spills older ones to `runs`, which must be
    /// empty (a partition with records on disk is restored from its checkpoint, see
    /// [`crate::checkpoint::read_with_runs`]). Lookups answer the same whether a record is
    /// in memory or on disk.
    pub fn with_transfer_runs(runs: TransferRuns, transfers_memory_max: usize) -> Partition {
        assert!(transfers_memory_max > 0, "transfers_memory_max is zero");
        assert_eq!(runs.record_count(), 0, "attaching non-empty transfer runs");
        let mut partition = Partition::new();
        partition.runs = Some(runs);
        partition.transfers_memory_max = transfers_memory_max;
        partition.reserve_transfers();
        partition
    }

    /// Sizes the id map for the most records a spilling partition keeps in memory (up to
    /// [`TRANSFERS_RESERVED_MAX`]), once: growing it on the way would rehash every id
    /// in one apply, a stall of tens of milliseconds at a million records.
    fn reserve_transfers(&mut self) {
        let max = self.transfers_memory_max;
        let most = max
            .saturating_add(spill_slack(max as u64) as usize)
            .saturating_add(spill_batch_len(max))
            .min(TRANSFERS_RESERVED_MAX);
        self.transfers
            .reserve(most.saturating_sub(self.transfers.len()));
    }

    /// The transfer runs, if this partition spills.
    pub fn transfer_runs(&self) -> Option<&TransferRuns> {
        self.runs.as_ref()
    }

    /// The error of the last failed spill or merge of transfer runs, if any.
    pub fn transfer_spill_error(&self) -> Option<&str> {
        self.spill_error
            .as_deref()
            .or_else(|| self.runs.as_ref().and_then(TransferRuns::merge_error))
    }

    /// Deletes run files replaced by merges that no checkpoint naming `spills` or more
    /// spills needs (see [`TransferRuns::release_obsolete`]).
    pub fn release_obsolete_transfer_runs(
        &mut self,
        spills: u64,
    ) -> Result<(), crate::transfer_runs::TransferRunError> {
        match &mut self.runs {
            Some(runs) => runs.release_obsolete(spills),
            None => Ok(()),
        }
    }

    /// How many transfer records are held in memory.
    pub fn resident_transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// Turns the recording of [`Posting`]s on or off. Whoever turns it on must drain them
    /// with [`Partition::drain_postings`] after every apply, or the buffer grows.
    pub fn set_postings_enabled(&mut self, enabled: bool) {
        assert!(
            self.undo.is_none(),
            "postings toggled inside a linked chain"
        );
        self.postings_enabled = enabled;
        if !enabled {
            self.postings.clear();
        }
    }

    /// The postings recorded since the last drain or clear, in apply order (read them, then
    /// [`Partition::clear_postings`]: no copy, unlike [`Partition::drain_postings`]).
    pub fn postings(&self) -> &[Posting] {
        assert!(self.undo.is_none(), "postings read inside a linked chain");
        &self.postings
    }

    /// Forgets the postings recorded so far (keeping the buffer's allocation).
    pub fn clear_postings(&mut self) {
        assert!(
            self.undo.is_none(),
            "postings cleared inside a linked chain"
        );
        self.postings.clear();
    }

    /// Moves the postings recorded since the last drain to the end of `out`, in apply order.
    pub fn drain_postings(&mut self, out: &mut Vec<Posting>) {
        assert!(
            self.undo.is_none(),
            "postings drained inside a linked chain"
        );
        out.append(&mut self.postings);
    }

    /// Records the balance change of both accounts of a transfer (or an expiring hold).
    #[allow(clippy::too_many_arguments)]
    fn record_postings(
        &mut self,
        transfer: TransferId,
        kind: PostingKind,
        timestamp: Timestamp,
        amount: u128,
        debit: (AccountId, Balances),
        credit: (AccountId, Balances),
    ) {
        if !self.postings_enabled {
            return;
        }
        let log_index = self.applied_index;
        for (side, (account, balances)) in [(Side::Debit, debit), (Side::Credit, credit)] {
            self.postings.push(Posting {
                account,
                timestamp,
                log_index,
                transfer,
                kind,
                side,
                amount,
                balances,
            });
        }
    }

    /// The index of the last applied entry.
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// The partition's clock: the timestamp of the last event applied.
    pub fn last_timestamp(&self) -> Timestamp {
        self.last_timestamp
    }

    /// The state digest: equal on two replicas that applied the same entries.
    pub fn digest(&self) -> u128 {
        self.digest
    }

    /// A frozen copy of the state for a checkpoint (see [`Snapshot`]); cheap in the number of
    /// transfers, linear in the number of accounts.
    pub fn snapshot(&self) -> Snapshot {
        assert!(self.undo.is_none(), "snapshot inside a linked chain");
        // Sorted by the checkpoint writer, off the applying thread.
        let accounts: Vec<Account> = self.accounts.values().copied().collect();
        let mut refund_overlay: Vec<(TransferId, u128)> = self
            .refunded_overlay
            .iter()
            .map(|(&id, &refunded)| (id, refunded))
            .collect();
        refund_overlay.sort_unstable();
        let runs = self.runs.as_ref();
        Snapshot {
            applied_index: self.applied_index,
            last_timestamp: self.last_timestamp,
            digest: self.digest,
            ledgers: self.ledgers.values().copied().collect(),
            accounts,
            records: self.records.clone(),
            spilled_prefix: self.spilled_prefix,
            spills: runs.map_or(0, TransferRuns::spills),
            spilled_records: runs.map_or(0, TransferRuns::record_count),
            runs_digest: runs.map_or(0, TransferRuns::digest),
            refund_overlay,
        }
    }

    /// A ledger by id.
    pub fn ledger(&self, id: LedgerId) -> Option<&Ledger> {
        self.ledgers.get(&id)
    }

    /// An account by id.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// A decided transfer by id, from memory or from the transfer runs.
    ///
    /// # Panics
    /// If the record is on disk and cannot be read: the answer would depend on this
    /// replica's disk, so the replica stops rather than answer differently from its peers.
    pub fn transfer(&self, id: TransferId) -> Option<TransferRecord> {
        match self.transfers.get(&id) {
            Some(&slot) => Some(*self.records.get(slot)),
            None => self.spilled_transfer(id),
        }
    }

    /// A decided transfer: [`Partition::transfer`] without claims (an id claimed here for a
    /// transfer applied on another partition is no transfer of this one). What lookups,
    /// holds and refunds see.
    pub fn decided_transfer(&self, id: TransferId) -> Option<TransferRecord> {
        self.transfer(id).filter(|r| r.kind != TransferKind::Claim)
    }

    /// How many transfer records were ever kept (the next record's slot).
    pub fn record_slots(&self) -> u64 {
        self.records.len()
    }

    /// The records in slots `first..` still in memory, in decision order: what the entries
    /// applied since [`Partition::record_slots`] answered `first` recorded (with the
    /// changes made to them since). Records spilled since are left out.
    pub fn records_from(&self, first: u64) -> impl Iterator<Item = &TransferRecord> {
        self.records.iter_from(first.max(self.spilled_prefix))
    }

    /// A record on disk, with its refunds since it was spilled.
    fn spilled_transfer(&self, id: TransferId) -> Option<TransferRecord> {
        let runs = self.runs.as_ref()?;
        if !runs.may_contain(id) {
            return None;
        }
        let mut record = match runs.get(id) {
            Ok(record) => record?,
            Err(e) => panic!("transfer {id} cannot be read from its run: {e}"),
        };
        if let Some(&refunded) = self.refunded_overlay.get(&id) {
            record.refunded = refunded;
        }
        Some(record)
    }

    /// How many accounts exist.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// How many transfers are recorded (successful or failed), in memory and on disk.
    pub fn transfer_count(&self) -> usize {
        self.transfers.len() + self.runs.as_ref().map_or(0, |r| r.record_count() as usize)
    }

    /// Every ledger, by id.
    pub fn ledgers(&self) -> impl Iterator<Item = &Ledger> {
        self.ledgers.values()
    }

    /// Every account, in no particular order.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// Every transfer record held in memory, in the order they were decided (for a
    /// partition without transfer runs: every record).
    pub fn transfers(&self) -> impl Iterator<Item = (TransferId, &TransferRecord)> {
        self.records
            .iter_from(self.spilled_prefix)
            .map(|record| (record.id, record))
    }

    /// Marks an entry that carries no command (a Raft no-op or configuration change) applied.
    pub fn skip(&mut self, index: LogIndex) {
        assert!(
            index > self.applied_index,
            "skip {index} after {}",
            self.applied_index
        );
        self.applied_index = index;
        self.maybe_spill();
    }

    /// Applies one committed entry. `index` must be greater than every index applied before.
    pub fn apply(&mut self, index: LogIndex, payload: &EntryPayload) -> Outcome {
        assert!(
            index > self.applied_index,
            "apply {index} after {}",
            self.applied_index
        );
        assert!(self.undo.is_none(), "a linked chain was left open");
        self.applied_index = index;
        let now = Timestamp(
            payload
                .timestamp
                .0
                .max(self.last_timestamp.0.saturating_add(1)),
        );
        // `next_timestamp` hands out `last + 1`, so the first event gets `now`.
        self.last_timestamp = Timestamp(now.0 - 1);
        self.expire_holds(now);
        let outcome = match &payload.command {
            Command::Tick => {
                self.last_timestamp = now;
                Outcome::Tick
            }
            Command::CreateLedgers(events) => {
                let results = events
                    .iter()
                    .map(|ledger| {
                        self.next_timestamp();
                        self.create_ledger(ledger)
                    })
                    .collect();
                Outcome::Ledgers(results)
            }
            Command::CreateAccounts(events) => Outcome::Accounts(self.run_batch(
                events,
                |e| e.flags.has(AccountFlags::LINKED),
                Partition::create_account,
                |_, _, _| {},
            )),
            Command::CreateTransfers(events) => Outcome::Transfers(self.run_batch(
                events,
                |e| e.flags.has(TransferFlags::LINKED),
                Partition::create_transfer,
                Partition::record_failed_transfer,
            )),
            Command::ClaimTransfers(events) => Outcome::Transfers(
                events
                    .iter()
                    .map(|e| {
                        let timestamp = self.next_timestamp();
                        self.claim_transfer(e, timestamp)
                    })
                    .collect(),
            ),
        };
        if self.last_timestamp < now {
            self.last_timestamp = now;
        }
        self.maybe_spill();
        outcome
    }

    fn next_timestamp(&mut self) -> Timestamp {
        self.last_timestamp = Timestamp(self.last_timestamp.0.saturating_add(1));
        self.last_timestamp
    }

    /// Runs a batch of events, honouring linked chains.
    fn run_batch<E, R: EventResult>(
        &mut self,
        events: &[E],
        is_linked: fn(&E) -> bool,
        apply_one: fn(&mut Partition, &E, Timestamp) -> (R, Decision),
        record_failure: fn(&mut Partition, &E, R),
    ) -> Vec<R> {
        let count = events.len();
        let mut results: Vec<R> = Vec::with_capacity(count);
        let mut i = 0;
        while i < count {
            if !is_linked(&events[i]) {
                let timestamp = self.next_timestamp();
                let (result, decision) = apply_one(self, &events[i], timestamp);
                if !result.is_ok() && decision == Decision::Decided {
                    record_failure(self, &events[i], result);
                }
                results.push(result);
                i += 1;
                continue;
            }
            // A chain: events[i..] up to and including the first one without LINKED.
            let start = i;
            self.begin_chain();
            let mut failure: Option<(usize, Decision)> = None;
            loop {
                let timestamp = self.next_timestamp();
                let linked = is_linked(&events[i]);
                let (result, decision) = if linked && i + 1 == count {
                    (R::linked_event_chain_open(timestamp), Decision::Undecided)
                } else {
                    apply_one(self, &events[i], timestamp)
                };
                results.push(result);
                i += 1;
                if !result.is_ok() {
                    failure = Some((i - 1, decision));
                    break;
                }
                if !linked {
                    break;
                }
            }
            match failure {
                None => self.commit_chain(),
                Some((failed, decision)) => {
                    self.rollback_chain();
                    for result in &mut results[start..failed] {
                        *result = R::linked_event_failed(result.timestamp());
                    }
                    if decision == Decision::Decided {
                        record_failure(self, &events[failed], results[failed]);
                    }
                    // The rest of the chain is not evaluated.
                    let mut linked = is_linked(&events[failed]);
                    while linked && i < count {
                        let timestamp = self.next_timestamp();
                        linked = is_linked(&events[i]);
                        results.push(if linked && i + 1 == count {
                            R::linked_event_chain_open(timestamp)
                        } else {
                            R::linked_event_failed(timestamp)
                        });
                        i += 1;
                    }
                }
            }
        }
        assert_eq!(results.len(), count);
        results
    }

    fn begin_chain(&mut self) {
        assert!(self.undo.is_none());
        self.undo = Some(Vec::new());
        self.digest_at_chain_start = self.digest;
        self.postings_at_chain_start = self.postings.len();
    }

    fn commit_chain(&mut self) {
        assert!(self.undo.take().is_some());
    }

    fn rollback_chain(&mut self) {
        let undo = self.undo.take().expect("rollback outside a chain");
        for change in undo.into_iter().rev() {
            match change {
                Undo::Account(id, Some(old)) => {
                    self.accounts.insert(id, old);
                }
                Undo::Account(id, None) => {
                    self.accounts.remove(&id);
                }
                Undo::Transfer(id, Some(old)) => {
                    let slot = self.transfers[&id];
                    *self.records.get_mut(slot) = old;
                }
                Undo::Refunded(id, Some(refunded)) => {
                    self.refunded_overlay.insert(id, refunded);
                }
                Undo::Refunded(id, None) => {
                    assert!(self.refunded_overlay.remove(&id).is_some());
                }
                Undo::Transfer(id, None) => {
                    // Inserts are undone in reverse order, so this record is the last one.
                    let slot = self.transfers.remove(&id).expect("undone insert is mapped");
                    let record = self.records.pop().expect("undone insert has a record");
                    assert_eq!(record.id, id);
                    assert_eq!(slot, self.records.len());
                }
                Undo::ExpiryInserted(deadline, id) => {
                    assert!(self.expiries.remove(&(deadline, id)));
                }
                Undo::ExpiryRemoved(deadline, id) => {
                    assert!(self.expiries.insert((deadline, id)));
                }
            }
        }
        self.digest = self.digest_at_chain_start;
        assert!(self.postings.len() >= self.postings_at_chain_start);
        self.postings.truncate(self.postings_at_chain_start);
    }
}
