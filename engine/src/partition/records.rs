//! The transfer record slab (chunks shared copy-on-write) and the snapshot a checkpoint
//! is written from.

use super::*;

/// Transfer records in chunks that never move once allocated. Chunks are shared
/// copy-on-write (`Arc`), so a [`Snapshot`] costs a vector of pointers, and a record changed
/// while a snapshot is being written copies only its chunk.
#[derive(Clone, Default)]
pub(super) struct Records {
    pub(super) chunks: Vec<Arc<Vec<TransferRecord>>>,
    pub(super) len: u64,
}

impl Records {
    const CHUNK_LEN: usize = 1 << 15;

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    pub(super) fn push(&mut self, record: TransferRecord) -> u64 {
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

    pub(super) fn pop(&mut self) -> Option<TransferRecord> {
        let chunk = Arc::make_mut(self.chunks.last_mut()?);
        let record = chunk.pop()?;
        if chunk.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        Some(record)
    }

    pub(super) fn get(&self, slot: u64) -> &TransferRecord {
        let chunk = (slot / Self::CHUNK_LEN as u64) as usize;
        &self.chunks[chunk][(slot % Self::CHUNK_LEN as u64) as usize]
    }

    pub(super) fn get_mut(&mut self, slot: u64) -> &mut TransferRecord {
        let chunk = (slot / Self::CHUNK_LEN as u64) as usize;
        &mut Arc::make_mut(&mut self.chunks[chunk])[(slot % Self::CHUNK_LEN as u64) as usize]
    }

    /// The records in slots `first..`.
    pub(super) fn iter_from(&self, first: u64) -> impl Iterator<Item = &TransferRecord> {
        (first..self.len).map(|slot| self.get(slot))
    }

    /// A share of the records in slots below `end` (the chunks holding them): unlike a whole
    /// clone, it does not share the newest chunk, so appends go on without copying it
    /// (unless `end` falls in it).
    pub(super) fn share_below(&self, end: u64) -> Records {
        let chunks = (end.div_ceil(Self::CHUNK_LEN as u64) as usize).min(self.chunks.len());
        Records {
            chunks: self.chunks[..chunks].to_vec(),
            len: end.min(self.len),
        }
    }

    /// Frees every chunk wholly below `slot` (their slots must never be read again).
    pub(super) fn forget_before(&mut self, slot: u64) {
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
    pub(super) applied_index: LogIndex,
    pub(super) last_timestamp: Timestamp,
    pub(super) digest: u128,
    pub(super) ledgers: Vec<Ledger>,
    pub(super) accounts: Vec<Account>,
    pub(super) records: Records,
    /// Slots below this were spilled to transfer runs.
    pub(super) spilled_prefix: u64,
    /// How many spills the transfer runs held (0: every record is in memory).
    pub(super) spills: u64,
    /// How many records the transfer runs held.
    pub(super) spilled_records: u64,
    /// The runs' part of the digest (records as written).
    pub(super) runs_digest: u128,
    /// Refunds of records on disk since they were spilled: id → total refunded, by id.
    pub(super) refund_overlay: Vec<(TransferId, u128)>,
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
