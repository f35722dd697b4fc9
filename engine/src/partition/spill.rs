//! Transfer records spilled to run files on a background thread, and installed between
//! entries ("Transfers on disk" in the module documentation).

use super::*;

/// A spill of the records in slots below `end` being written on a background thread.
pub(super) struct SpillInFlight {
    pub(super) end: u64,
    pub(super) handle: std::thread::JoinHandle<Result<WrittenSpill, String>>,
}

/// What a spill thread wrote: every record it spilled as (id, slot, refunded total as
/// written), the run with its ids in id order (none if every record in range was a
/// pending hold), and the slots it left (the pending holds).
pub(super) type WrittenSpill = (
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
pub(super) fn write_spill(
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
pub(super) fn spill_batch_len(transfers_memory_max: usize) -> usize {
    (transfers_memory_max / 8).clamp(4, 1 << 14)
}

/// How far over the bound the records in memory may grow while a spill (and the merges it
/// leads to) is written, before applying waits for it: a quarter of the bound, and at least
/// two batches.
pub(super) fn spill_slack(transfers_memory_max: u64) -> u64 {
    (transfers_memory_max / 4).max(2 * spill_batch_len(transfers_memory_max as usize) as u64)
}

impl Partition {
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
    pub(super) fn maybe_spill(&mut self) {
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
}
