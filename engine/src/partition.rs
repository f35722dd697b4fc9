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

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// A ledger: one asset or currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ledger {
    /// The ledger's id.
    pub id: LedgerId,
    /// Digits after the decimal point of its amounts.
    pub scale: u8,
    /// Application-defined classification.
    pub code: u16,
}

/// An account and its balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    /// The account's id.
    pub id: AccountId,
    /// Its ledger.
    pub ledger: LedgerId,
    /// Its kind, for the application.
    pub code: u16,
    /// See [`AccountFlags`].
    pub flags: AccountFlags,
    /// How far the balance flag may be exceeded, in minor units.
    pub limit: Option<u128>,
    /// External reference.
    pub user_data_128: u128,
    /// External reference.
    pub user_data_64: u64,
    /// External reference.
    pub user_data_32: u32,
    /// When it was created.
    pub timestamp: Timestamp,
    /// Its balances.
    pub balances: Balances,
}

/// What a recorded transfer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TransferKind {
    /// Moved money between posted balances.
    Plain = 0,
    /// Held money in pending balances.
    Pending = 1,
    /// Posted a hold.
    Post = 2,
    /// Voided a hold.
    Void = 3,
    /// Refunded (part of) a posted transfer.
    Refund = 4,
}

/// The state of a pending hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HoldStatus {
    /// Not a hold (or a hold that failed).
    NotAHold = 0,
    /// Holding its amount.
    Pending = 1,
    /// Posted (fully or partially; any remainder was released).
    Posted = 2,
    /// Voided.
    Voided = 3,
    /// Expired: its deadline passed before a post or void.
    Expired = 4,
}

/// A decided transfer, kept for idempotent retries, posts, voids and refunds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    /// The transfer's id.
    pub id: TransferId,
    /// Hash of the event's fields as sent, to tell a retry from a conflicting reuse of the id.
    pub fingerprint: u128,
    /// What it did; for a refusal, what it asked (by its flags).
    pub kind: TransferKind,
    /// The account debited (resolved from the original for posts, voids and refunds).
    pub debit_account: AccountId,
    /// The account credited.
    pub credit_account: AccountId,
    /// The ledger.
    pub ledger: LedgerId,
    /// The amount moved, in minor units (for a void: the amount released). For a refusal:
    /// the amount asked, in its ledger's minor units, or 0 if it has none (no such ledger,
    /// a negative amount, too many decimals).
    pub amount: u128,
    /// The hold posted or voided, or the transfer refunded (for a refusal: as asked).
    pub reference: TransferId,
    /// Seconds until a hold expires (zero: never).
    pub timeout_s: u32,
    /// The outcome returned to the client, and again to every retry.
    pub outcome: TransferOutcome,
    /// For holds: where the hold stands.
    pub hold: HoldStatus,
    /// For refundable transfers: the total refunded so far.
    pub refunded: u128,
    /// What the client sent for its own use (code, flags, user data, memo), returned by
    /// lookups as sent.
    pub details: TransferDetails,
}

/// The fields of a transfer the ledger keeps for the client without interpreting them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferDetails {
    /// The event's code.
    pub code: u16,
    /// The event's flags as sent.
    pub flags: TransferFlags,
    /// External reference.
    pub user_data_128: u128,
    /// External reference.
    pub user_data_64: u64,
    /// External reference.
    pub user_data_32: u32,
    /// The memo.
    pub memo: Memo,
}

impl TransferDetails {
    /// The details of an event as sent (its memo is at most [`MEMO_SIZE_MAX`] bytes:
    /// validated before apply).
    pub fn of(e: &NewTransfer) -> TransferDetails {
        TransferDetails {
            code: e.code,
            flags: e.flags,
            user_data_128: e.user_data_128,
            user_data_64: e.user_data_64,
            user_data_32: e.user_data_32,
            memo: Memo::new(&e.memo).expect("memo length validated before apply"),
        }
    }
}

/// A memo of at most [`MEMO_SIZE_MAX`] bytes, stored inline.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Memo {
    len: u8,
    bytes: [u8; MEMO_SIZE_MAX],
}

impl Memo {
    /// The memo holding `bytes`, if they fit.
    pub fn new(bytes: &[u8]) -> Option<Memo> {
        if bytes.len() > MEMO_SIZE_MAX {
            return None;
        }
        let mut memo = Memo {
            len: bytes.len() as u8,
            bytes: [0; MEMO_SIZE_MAX],
        };
        memo.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(memo)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memo({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl TransferRecord {
    /// When a pending hold expires, if it does.
    pub fn deadline(&self) -> Option<Timestamp> {
        (self.timeout_s > 0).then(|| {
            Timestamp(
                self.outcome
                    .timestamp
                    .0
                    .saturating_add(u64::from(self.timeout_s) * NANOS_PER_SECOND),
            )
        })
    }
}

/// Transfer records in chunks that never move once allocated. Chunks are shared
/// copy-on-write (`Arc`), so a [`Snapshot`] costs a vector of pointers, and a record changed
/// while a snapshot is being written copies only its chunk.
#[derive(Clone, Default)]
struct Records {
    chunks: Vec<Arc<Vec<TransferRecord>>>,
    len: u64,
}

impl Records {
    const CHUNK_LEN: usize = 1 << 15;

    fn len(&self) -> u64 {
        self.len
    }

    fn push(&mut self, record: TransferRecord) -> u64 {
        if self
            .chunks
            .last()
            .is_none_or(|chunk| chunk.len() == Self::CHUNK_LEN)
        {
            self.chunks
                .push(Arc::new(Vec::with_capacity(Self::CHUNK_LEN)));
        }
        let chunk = self.chunks.last_mut().expect("a chunk with room");
        Arc::make_mut(chunk).push(record);
        self.len += 1;
        self.len - 1
    }

    fn pop(&mut self) -> Option<TransferRecord> {
        let chunk = Arc::make_mut(self.chunks.last_mut()?);
        let record = chunk.pop()?;
        if chunk.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        Some(record)
    }

    fn get(&self, slot: u64) -> &TransferRecord {
        let chunk = (slot / Self::CHUNK_LEN as u64) as usize;
        &self.chunks[chunk][(slot % Self::CHUNK_LEN as u64) as usize]
    }

    fn get_mut(&mut self, slot: u64) -> &mut TransferRecord {
        let chunk = (slot / Self::CHUNK_LEN as u64) as usize;
        &mut Arc::make_mut(&mut self.chunks[chunk])[(slot % Self::CHUNK_LEN as u64) as usize]
    }

    /// The records in slots `first..`.
    fn iter_from(&self, first: u64) -> impl Iterator<Item = &TransferRecord> {
        (first..self.len).map(|slot| self.get(slot))
    }

    /// A share of the records in slots below `end` (the chunks holding them): unlike a whole
    /// clone, it does not share the newest chunk, so appends go on without copying it
    /// (unless `end` falls in it).
    fn share_below(&self, end: u64) -> Records {
        let chunks = (end.div_ceil(Self::CHUNK_LEN as u64) as usize).min(self.chunks.len());
        Records {
            chunks: self.chunks[..chunks].to_vec(),
            len: end.min(self.len),
        }
    }

    /// Frees every chunk wholly below `slot` (their slots must never be read again).
    fn forget_before(&mut self, slot: u64) {
        let whole = ((slot / Self::CHUNK_LEN as u64) as usize).min(self.chunks.len());
        for chunk in &mut self.chunks[..whole] {
            if chunk.capacity() > 0 {
                *chunk = Arc::new(Vec::new());
            }
        }
    }
}

/// A frozen copy of a partition's state, for writing a checkpoint while apply goes on.
/// Taking one copies the ledgers and accounts and shares the transfer records
/// (copy-on-write); the id map is not needed (a checkpoint rebuilds it when loaded).
pub struct Snapshot {
    applied_index: LogIndex,
    last_timestamp: Timestamp,
    digest: u128,
    ledgers: Vec<Ledger>,
    accounts: Vec<Account>,
    records: Records,
    /// Slots below this were spilled to transfer runs.
    spilled_prefix: u64,
    /// How many spills the transfer runs held (0: every record is in memory).
    spills: u64,
    /// How many records the transfer runs held.
    spilled_records: u64,
    /// The runs' part of the digest (records as written).
    runs_digest: u128,
    /// Refunds of records on disk since they were spilled: id → total refunded, by id.
    refund_overlay: Vec<(TransferId, u128)>,
}

impl Snapshot {
    /// The index of the last entry the snapshot includes.
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }
    /// The partition's clock at the snapshot.
    pub fn last_timestamp(&self) -> Timestamp {
        self.last_timestamp
    }
    /// The state digest at the snapshot.
    pub fn digest(&self) -> u128 {
        self.digest
    }
    /// Every ledger, by id.
    pub fn ledgers(&self) -> impl Iterator<Item = &Ledger> {
        self.ledgers.iter()
    }
    /// Every account, in no particular order (a checkpoint sorts them).
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.iter()
    }
    /// How many accounts.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }
    /// Every transfer record held in memory, in the order they were decided (for a
    /// partition without transfer runs: every record).
    pub fn transfers(&self) -> impl Iterator<Item = (TransferId, &TransferRecord)> {
        self.records
            .iter_from(self.spilled_prefix)
            .map(|record| (record.id, record))
    }
    /// How many transfer records are held in memory.
    pub fn transfer_count(&self) -> usize {
        (self.records.len() - self.spilled_prefix) as usize
    }
    /// How many spills the transfer runs held (0: every record is in memory). A checkpoint
    /// names this count; restoring it opens the runs of exactly these spills.
    pub fn spills(&self) -> u64 {
        self.spills
    }
    /// How many records the transfer runs held.
    pub fn spilled_records(&self) -> u64 {
        self.spilled_records
    }
    /// The transfer runs' part of the state digest.
    pub fn runs_digest(&self) -> u128 {
        self.runs_digest
    }
    /// Totals refunded from records on disk since they were spilled, sorted by id.
    pub fn refund_overlay(&self) -> &[(TransferId, u128)] {
        &self.refund_overlay
    }
}

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

/// A spill of the records in slots below `end` being written on a background thread.
struct SpillInFlight {
    end: u64,
    handle: std::thread::JoinHandle<Result<WrittenSpill, String>>,
}

/// What a spill thread wrote: every record it spilled as (id, slot, refunded total as
/// written), the run with its ids in id order (none if every record in range was a
/// pending hold), and the slots it left (the pending holds).
type WrittenSpill = (
    Vec<(TransferId, u64, u128)>,
    Option<(WrittenRuns, Vec<TransferId>)>,
    Vec<u64>,
);

impl Drop for Partition {
    /// Waits for a spill being written, so that no thread writes into the runs directory
    /// after the partition is gone (a partition reopened on it would race it).
    fn drop(&mut self) {
        if let Some(flight) = self.spill_in_flight.take() {
            let _ = flight.handle.join();
        }
    }
}

/// Chooses the records of slots `start..end` that can be spilled (all but pending holds),
/// sorts them by id, and writes them as the next run (on a spill thread).
fn write_spill(
    writer: &SpillWriter,
    records: &Records,
    start: u64,
    end: u64,
) -> Result<WrittenSpill, String> {
    // Sort (id, slot) pairs rather than the records themselves.
    let mut spilled: Vec<(TransferId, u64, u128)> = Vec::new();
    let mut kept = Vec::new();
    for slot in start..end {
        let record = records.get(slot);
        if record.hold == HoldStatus::Pending {
            kept.push(slot);
        } else {
            spilled.push((record.id, slot, record.refunded));
        }
    }
    if spilled.is_empty() {
        return Ok((spilled, None, kept));
    }
    spilled.sort_unstable_by_key(|&(id, _, _)| id);
    let digest = spilled.iter().fold(0u128, |sum, &(id, slot, _)| {
        sum.wrapping_add(hash_transfer(id, records.get(slot)))
    });
    let batch = Batch::new(
        spilled.iter().map(|&(_, slot, _)| records.get(slot)),
        digest,
    );
    let run = writer.write(&batch).map_err(|e| e.to_string())?;
    let ids = spilled.iter().map(|&(id, _, _)| id).collect();
    Ok((spilled, Some((run, ids)), kept))
}

/// The most ids a spilling partition's map is sized for up front (see
/// `Partition::reserve_transfers`): 4M, about 100 MB of address space, most of it untouched
/// until used.
pub const TRANSFERS_RESERVED_MAX: usize = 1 << 22;

/// How many records one spill writes: an eighth of the records kept in memory, 4 to 16k.
/// Installing a spill takes each of its ids out of the id map, on the applying thread, at
/// about 100 ns each (cache misses in a large map): a spill is kept small enough that this
/// is never a stall (16k ids: 1–3 ms; 128k ids took 11–25 ms, plus 3–27 ms adding them to
/// the runs' id set and 3–4 ms freeing their chunks).
fn spill_batch_len(transfers_memory_max: usize) -> usize {
    (transfers_memory_max / 8).clamp(4, 1 << 14)
}

/// How far over the bound the records in memory may grow while a spill (and the merges it
/// leads to) is written, before applying waits for it: a quarter of the bound, and at least
/// two batches.
fn spill_slack(transfers_memory_max: u64) -> u64 {
    (transfers_memory_max / 4).max(2 * spill_batch_len(transfers_memory_max as usize) as u64)
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
        };
        if self.last_timestamp < now {
            self.last_timestamp = now;
        }
        self.maybe_spill();
        outcome
    }

    /// Spills the oldest records that can no longer change once more than
    /// `transfers_memory_max` plus one batch (an eighth of the bound, 4 to 2^14) are in
    /// memory, down to the bound. Pending holds stay in memory: they move to the newest
    /// slots.
    ///
    /// The batch is chosen, sorted, encoded and written (with its fsync) on a background
    /// thread from a copy-on-write share of the records; the records stay in memory and
    /// answer lookups until the run is durable and installed here, between entries, by a
    /// later call. A record refunded meanwhile carries its new refunded total into the
    /// refund overlay at install. One spill at a time; if the records in memory reach the
    /// bound and its slack (a quarter of it) while one is written, this waits for it.
    fn maybe_spill(&mut self) {
        if self.runs.is_none() {
            return;
        }
        let max = self.transfers_memory_max as u64;
        let batch_len = spill_batch_len(self.transfers_memory_max) as u64;
        if let Some(flight) = &self.spill_in_flight {
            let resident = self.records.len() - self.spilled_prefix;
            if !flight.handle.is_finished() && resident < max.saturating_add(spill_slack(max)) {
                return;
            }
            self.finish_spill();
        }
        let resident = self.records.len() - self.spilled_prefix;
        if resident < max.saturating_add(batch_len) {
            return;
        }
        let Some(runs) = &self.runs else { return };
        let writer = runs.writer();
        let (start, end) = (self.spilled_prefix, self.records.len() - max);
        let records = self.records.share_below(end);
        let spawned = crate::background::spawn("transfer-spill".into(), move || {
            write_spill(&writer, &records, start, end)
        });
        match spawned {
            Ok(handle) => self.spill_in_flight = Some(SpillInFlight { end, handle }),
            Err(e) => self.spill_error = Some(format!("cannot start a spill thread: {e}")),
        }
    }

    /// Waits for the spill being written, if any, and installs it (tests, and before the
    /// partition is checkpointed and restored in one process).
    pub fn finish_spill(&mut self) {
        let Some(flight) = self.spill_in_flight.take() else {
            return;
        };
        assert!(self.undo.is_none(), "spill installed inside a linked chain");
        let written = match flight.handle.join() {
            Ok(result) => result,
            Err(_) => Err("the spill thread panicked".to_string()),
        };
        let (spilled, run, kept) = match written {
            Ok(written) => written,
            Err(e) => {
                // Nothing changed: the records stay in memory and the spill is retried
                // after the next entry. Memory grows, answers do not change.
                self.spill_error = Some(e);
                return;
            }
        };
        self.spill_error = None;
        let end = flight.end;
        let runs = self.runs.as_mut().expect("a spill without runs");
        if let Some((run, ids)) = run {
            runs.install(run, &ids);
        }
        for &(id, slot, refunded) in &spilled {
            assert_eq!(
                self.transfers.remove(&id),
                Some(slot),
                "spilled transfer {id} moved from its slot"
            );
            let now = self.records.get(slot);
            assert_ne!(
                now.hold,
                HoldStatus::Pending,
                "a spilled record became pending"
            );
            if now.refunded != refunded {
                // Refunded while its run was written: the run has the old total.
                self.refunded_overlay.insert(id, now.refunded);
            }
        }
        // What stays: pending holds (at the scan), moved to the newest slots.
        for slot in kept {
            let record = *self.records.get(slot);
            if self.transfers.get(&record.id) == Some(&slot) {
                let new_slot = self.records.push(record);
                self.transfers.insert(record.id, new_slot);
            }
        }
        self.spilled_prefix = end;
        self.records.forget_before(end);
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

    // ---- state changes: every one goes through these, for the digest and the undo log ----

    fn put_account(&mut self, account: Account) {
        let old = self.accounts.insert(account.id, account);
        match &old {
            Some(old) => {
                // Only balances change after creation; the fields fixed at creation keep
                // their part of the digest.
                debug_assert_eq!(hash_account_fields(old), hash_account_fields(&account));
                self.digest = self.digest.wrapping_sub(hash_account_balances(old));
            }
            None => self.digest = self.digest.wrapping_add(hash_account_fields(&account)),
        }
        self.digest = self.digest.wrapping_add(hash_account_balances(&account));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Account(account.id, old));
        }
    }

    /// Records a transfer whose id is known to be new (the caller looked it up), without
    /// looking it up again.
    fn insert_transfer(&mut self, id: TransferId, mut record: TransferRecord) {
        record.id = id;
        debug_assert!(self.transfer(id).is_none(), "transfer {id} inserted twice");
        let slot = self.records.push(record);
        assert!(
            self.transfers.insert(id, slot).is_none(),
            "transfer {id} twice"
        );
        self.digest = self.digest.wrapping_add(hash_transfer(id, &record));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Transfer(id, None));
        }
    }

    /// Records a new transfer, or changes a recorded one. A record on disk can only change
    /// its refunded total, which goes to the overlay.
    fn put_transfer(&mut self, id: TransferId, mut record: TransferRecord) {
        record.id = id;
        let old = match self.transfers.get(&id) {
            Some(&slot) => Some(std::mem::replace(self.records.get_mut(slot), record)),
            None => match self.spilled_transfer(id) {
                Some(old) => {
                    assert_eq!(
                        TransferRecord {
                            refunded: old.refunded,
                            ..record
                        },
                        old,
                        "a record on disk changed beyond its refunded total"
                    );
                    let previous = self.refunded_overlay.insert(id, record.refunded);
                    self.digest = self
                        .digest
                        .wrapping_sub(hash_transfer(id, &old))
                        .wrapping_add(hash_transfer(id, &record));
                    if let Some(undo) = &mut self.undo {
                        undo.push(Undo::Refunded(id, previous));
                    }
                    return;
                }
                None => {
                    let slot = self.records.push(record);
                    self.transfers.insert(id, slot);
                    None
                }
            },
        };
        if let Some(old) = &old {
            self.digest = self.digest.wrapping_sub(hash_transfer(id, old));
        }
        self.digest = self.digest.wrapping_add(hash_transfer(id, &record));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Transfer(id, old));
        }
    }

    fn insert_expiry(&mut self, deadline: Timestamp, id: TransferId) {
        assert!(self.expiries.insert((deadline, id)));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::ExpiryInserted(deadline, id));
        }
    }

    fn remove_expiry(&mut self, deadline: Timestamp, id: TransferId) {
        assert!(self.expiries.remove(&(deadline, id)));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::ExpiryRemoved(deadline, id));
        }
    }

    // ---- holds ----

    fn expire_holds(&mut self, now: Timestamp) {
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
    fn release_hold(&mut self, hold: &TransferRecord) -> (Balances, Balances) {
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

    // ---- ledgers and accounts ----

    fn create_ledger(&mut self, ledger: &NewLedger) -> LedgerResult {
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

    fn create_account(
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

    // ---- transfers ----

    fn fingerprint(&mut self, e: &NewTransfer) -> u128 {
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
    fn record_failed_transfer(&mut self, e: &NewTransfer, outcome: TransferOutcome) {
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

    fn create_transfer(
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

    fn plain_or_pending(
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
    fn move_money(
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

    fn post_or_void(
        &mut self,
        e: &NewTransfer,
        fingerprint: u128,
        timestamp: Timestamp,
        post: bool,
    ) -> Result<TransferOutcome, TransferResult> {
        use TransferResult as R;
        check_sign(e.amount)?;
        let hold = self
            .transfer(e.pending_id)
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

    fn refund(
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
        let original = self.transfer(e.refund_of).ok_or(R::RefundOfNotFound)?;
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

    // ---- checks ----

    /// Recomputes the digest from scratch (O(state), reading every record on disk).
    pub fn recompute_digest(&self) -> u128 {
        let mut digest = self.resident_digest();
        self.for_each_spilled(|record| {
            digest = digest.wrapping_add(hash_transfer(record.id, &record));
        });
        digest
    }

    /// The digest of everything held in memory: ledgers, accounts and resident transfers.
    fn resident_digest(&self) -> u128 {
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
    fn for_each_spilled(&self, mut f: impl FnMut(TransferRecord)) {
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

    /// Starts rebuilding a partition from a checkpoint's parts: ledgers and accounts now,
    /// transfers one by one with [`PartitionBuilder::push_transfer`] (so a checkpoint of
    /// millions of transfers is decoded straight into place, never into a second copy).
    /// Duplicate ids are an error, not a panic: the parts come from a file.
    pub(crate) fn builder(
        applied_index: LogIndex,
        last_timestamp: Timestamp,
        ledgers: Vec<Ledger>,
        accounts: Vec<Account>,
        transfer_count: usize,
    ) -> Result<PartitionBuilder, String> {
        let mut partition = Partition::new();
        partition.applied_index = applied_index;
        partition.last_timestamp = last_timestamp;
        for ledger in ledgers {
            if partition.ledgers.insert(ledger.id, ledger).is_some() {
                return Err(format!("ledger {} twice", ledger.id));
            }
        }
        partition.accounts.reserve(accounts.len());
        for account in accounts {
            if partition.accounts.insert(account.id, account).is_some() {
                return Err(format!("account {} twice", account.id));
            }
        }
        partition.transfers.reserve(transfer_count);
        Ok(PartitionBuilder { partition })
    }
}

/// A partition being rebuilt from a checkpoint (see [`Partition::builder`]).
pub(crate) struct PartitionBuilder {
    partition: Partition,
}

impl PartitionBuilder {
    /// The applied index of the partition being rebuilt.
    pub(crate) fn applied_index(&self) -> LogIndex {
        self.partition.applied_index
    }

    /// Adds the next transfer record, in the order they were decided.
    pub(crate) fn push_transfer(
        &mut self,
        id: TransferId,
        mut record: TransferRecord,
    ) -> Result<(), String> {
        let partition = &mut self.partition;
        record.id = id;
        if record.hold == HoldStatus::Pending {
            if let Some(deadline) = record.deadline() {
                partition.expiries.insert((deadline, id));
            }
        }
        let slot = partition.records.push(record);
        if partition.transfers.insert(id, slot).is_some() {
            return Err(format!("transfer {id} twice"));
        }
        Ok(())
    }

    /// The rebuilt partition, with its digest recomputed from the parts (the caller compares
    /// it with the checkpoint's).
    pub(crate) fn finish(mut self) -> Partition {
        self.partition.digest = self.partition.recompute_digest();
        self.partition
    }

    /// The rebuilt partition with its older records in `runs` (opened for exactly the
    /// checkpoint's spills) and the refunds of them since they were spilled, keeping at most
    /// about `transfers_memory_max` records in memory from now on.
    ///
    /// The digest is the resident part recomputed, plus the runs' stored parts, plus, for
    /// each overlay entry, the change from the record on disk to the refunded one: reading
    /// the runs' records again is not needed (their checksums were verified when opened).
    /// Checks that no resident id is also on disk and that every overlay entry refunds a
    /// record on disk within its amount; a failed check is an error, not a panic.
    pub(crate) fn finish_with_runs(
        self,
        runs: TransferRuns,
        transfers_memory_max: usize,
        refund_overlay: Vec<(TransferId, u128)>,
    ) -> Result<Partition, String> {
        if transfers_memory_max == 0 {
            return Err("transfers_memory_max is zero".into());
        }
        let mut partition = self.partition;
        let mut digest = partition.resident_digest().wrapping_add(runs.digest());
        for &id in partition.transfers.keys() {
            if runs.may_contain(id) && runs.get(id).map_err(|e| e.to_string())?.is_some() {
                return Err(format!("transfer {id} is both in memory and on disk"));
            }
        }
        let mut overlay = FxHashMap::default();
        overlay.reserve(refund_overlay.len());
        for (id, refunded) in refund_overlay {
            let Some(on_disk) = runs.get(id).map_err(|e| e.to_string())? else {
                return Err(format!("refund overlay names transfer {id}, not on disk"));
            };
            if refunded > on_disk.amount || refunded < on_disk.refunded {
                return Err(format!(
                    "refund overlay gives transfer {id} {refunded} refunded of {}, {} on disk",
                    on_disk.amount, on_disk.refunded
                ));
            }
            let refunded_record = TransferRecord {
                refunded,
                ..on_disk
            };
            digest = digest
                .wrapping_sub(hash_transfer(id, &on_disk))
                .wrapping_add(hash_transfer(id, &refunded_record));
            if overlay.insert(id, refunded).is_some() {
                return Err(format!("refund overlay names transfer {id} twice"));
            }
        }
        partition.runs = Some(runs);
        partition.refunded_overlay = overlay;
        partition.transfers_memory_max = transfers_memory_max;
        partition.digest = digest;
        partition.reserve_transfers();
        Ok(partition)
    }
}

fn check_sign(amount: Decimal) -> Result<(), TransferResult> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(TransferResult::AmountMustNotBeNegative);
    }
    Ok(())
}

/// For posts, voids and refunds: account and ledger fields are optional, but if given they
/// must match the original.
fn check_same_fields(
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

fn transfer_amount(amount: Decimal, scale: u8) -> Result<u128, TransferResult> {
    to_minor(amount, scale).map_err(|e| match e {
        AmountError::TooManyDecimals => TransferResult::AmountTooManyDecimals,
        AmountError::Overflow => TransferResult::AmountOverflow,
    })
}

fn hash_ledger(ledger: &Ledger) -> u128 {
    let mut bytes = [0u8; 8];
    bytes[0..4].copy_from_slice(&ledger.id.0.to_le_bytes());
    bytes[4] = ledger.scale;
    bytes[5..7].copy_from_slice(&ledger.code.to_le_bytes());
    bytes[7] = b'L';
    xxh3_128(&bytes)
}

/// The digest part of an account's fields fixed at creation.
fn hash_account_fields(a: &Account) -> u128 {
    let mut bytes = [0u8; 96];
    let mut w = Writer::new(&mut bytes);
    w.u8(b'A');
    w.u128(a.id.0);
    w.u32(a.ledger.0);
    w.u16(a.code);
    w.u16(a.flags.0);
    w.u8(u8::from(a.limit.is_some()));
    w.u128(a.limit.unwrap_or(0));
    w.u128(a.user_data_128);
    w.u64(a.user_data_64);
    w.u32(a.user_data_32);
    w.u64(a.timestamp.0);
    let len = w.pos;
    xxh3_128(&bytes[..len])
}

/// The digest part of an account's balances (the only fields that change).
fn hash_account_balances(a: &Account) -> u128 {
    let mut bytes = [0u8; 81];
    let mut w = Writer::new(&mut bytes);
    w.u8(b'B');
    w.u128(a.id.0);
    w.balances(&a.balances);
    assert_eq!(w.pos, bytes.len());
    xxh3_128(&bytes)
}

fn hash_transfer(id: TransferId, r: &TransferRecord) -> u128 {
    let mut bytes = [0u8; 352];
    let mut w = Writer::new(&mut bytes);
    w.u8(b'T');
    w.u128(id.0);
    w.u128(r.fingerprint);
    w.u8(r.kind as u8);
    w.u128(r.debit_account.0);
    w.u128(r.credit_account.0);
    w.u32(r.ledger.0);
    w.u128(r.amount);
    w.u128(r.reference.0);
    w.u32(r.timeout_s);
    w.u32(r.outcome.result.code());
    w.u64(r.outcome.timestamp.0);
    w.balances(&r.outcome.debit_balances);
    w.balances(&r.outcome.credit_balances);
    w.u8(r.hold as u8);
    w.u128(r.refunded);
    let d = &r.details;
    w.u16(d.code);
    w.u16(d.flags.0);
    w.u128(d.user_data_128);
    w.u64(d.user_data_64);
    w.u32(d.user_data_32);
    w.u8(d.memo.len);
    w.put(d.memo.as_bytes());
    let len = w.pos;
    xxh3_128(&bytes[..len])
}

struct Writer<'a> {
    bytes: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    fn new(bytes: &'a mut [u8]) -> Self {
        Writer { bytes, pos: 0 }
    }
    fn put(&mut self, value: &[u8]) {
        self.bytes[self.pos..self.pos + value.len()].copy_from_slice(value);
        self.pos += value.len();
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.put(&v.to_le_bytes());
    }
    fn balances(&mut self, b: &Balances) {
        self.u128(b.debits_pending);
        self.u128(b.debits_posted);
        self.u128(b.credits_pending);
        self.u128(b.credits_posted);
    }
}
