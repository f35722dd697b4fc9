//! Rebuilding a partition from a checkpoint's parts.

use super::*;

impl Partition {
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
    pub(super) partition: Partition,
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
