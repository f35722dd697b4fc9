//! A replica's checkpoints: when one is due its snapshot is taken on the applying thread and
//! an index flush started; once the index files cover it, it is written on a thread of its
//! own, after an fsync of the change log (so the change log covers every checkpoint); a
//! written one releases the transfer run files no kept checkpoint needs. When they are due:
//! the parent module's documentation.

use tally_engine::checkpoint;
use tally_engine::transfer_runs::TransferRuns;
use tally_engine::types::LogIndex;

use super::{Replica, ReplicaError};

impl Replica {
    /// Checkpoints the current state. The index files must cover a checkpoint (or a restart
    /// from it would leave a hole in the index), so the index is flushed first.
    ///
    /// In the background (the server): a snapshot is taken here (accounts copied, transfer
    /// records shared copy-on-write) and the index flush started; once the flush is durable
    /// the snapshot is encoded, written and fsynced on a thread of its own
    /// ([`Replica::poll_background`]). Apply pauses only for the snapshot. One checkpoint at
    /// a time: while one is in progress, a due one is skipped (the next interval retries).
    pub(super) fn start_checkpoint(&mut self) -> Result<(), ReplicaError> {
        let partition = self.config.partition;
        let kept = self.config.checkpoints_kept;
        if !self.config.background_checkpoints {
            self.index.flush()?;
            self.changes.flush(self.partition.applied_index().0)?;
            self.changes.sync_handle()?.sync().map_err(|source| {
                checkpoint::CheckpointError::Io {
                    path: self.checkpoint_dir.clone(),
                    source,
                }
            })?;
            let durable = self.index.durable();
            let dir = &self.checkpoint_dir;
            checkpoint::write_with_index(dir, partition, &self.partition, durable)?;
            checkpoint::prune(dir, kept)?;
            let spills = self
                .partition
                .transfer_runs()
                .map_or(0, TransferRuns::spills);
            self.checkpoint_written(self.partition.applied_index(), spills);
            return Ok(());
        }
        if self.waiting_checkpoint.is_some()
            || self
                .checkpointing
                .as_ref()
                .is_some_and(|t| !t.is_finished())
        {
            return Ok(());
        }
        self.finish_checkpoint()?;
        self.index.start_flush()?;
        self.waiting_checkpoint = Some(self.partition.snapshot());
        self.write_checkpoint_when_covered()
    }

    /// Installs a finished index flush, and starts writing a waiting checkpoint once the
    /// index files cover it. Cheap; the worker calls it every tick, and applying calls it.
    pub fn poll_background(&mut self) -> Result<(), ReplicaError> {
        self.index.finish_flush(false)?;
        self.write_checkpoint_when_covered()
    }

    /// Starts writing the waiting checkpoint on its thread if the index files cover it.
    fn write_checkpoint_when_covered(&mut self) -> Result<(), ReplicaError> {
        let durable = self.index.durable();
        let Some(snapshot) = self
            .waiting_checkpoint
            .take_if(|s| s.applied_index() <= durable)
        else {
            return Ok(());
        };
        let partition = self.config.partition;
        let kept = self.config.checkpoints_kept;
        let dir = self.checkpoint_dir.clone();
        // The change log is written through the snapshot (it is flushed before a checkpoint
        // starts): fsync it before the checkpoint exists, so that it covers every checkpoint.
        let changes = self.changes.sync_handle()?;
        let spawned =
            tally_engine::background::spawn(format!("checkpoint-{partition}"), move || {
                changes
                    .sync()
                    .map_err(|source| checkpoint::CheckpointError::Io {
                        path: dir.clone(),
                        source,
                    })?;
                checkpoint::write_snapshot(&dir, partition, &snapshot, durable)?;
                checkpoint::prune(&dir, kept)?;
                Ok((snapshot.applied_index(), snapshot.spills()))
            });
        match spawned {
            Ok(handle) => self.checkpointing = Some(handle),
            Err(error) => tracing::warn!(%error, "cannot start a checkpoint thread"),
        }
        Ok(())
    }

    /// A checkpoint at `index` naming `spills` spills is durable: release the transfer run
    /// files that no kept checkpoint needs any more. A failure only leaves files behind; it
    /// is logged and retried after the next checkpoint.
    fn checkpoint_written(&mut self, index: LogIndex, spills: u64) {
        let release = self.schedule.written(index, spills);
        if let Err(error) = self.partition.release_obsolete_transfer_runs(release) {
            tracing::warn!(partition = %self.config.partition, %error, "cannot delete merged transfer runs");
        }
    }

    /// Waits for a checkpoint in progress, if any (tests, shutdown, and before the next).
    /// A checkpoint that could not be written is a storage failure like any other.
    pub fn finish_checkpoint(&mut self) -> Result<(), ReplicaError> {
        if self.waiting_checkpoint.is_some() {
            self.index.finish_flush(true)?;
            self.write_checkpoint_when_covered()?;
        }
        if let Some(handle) = self.checkpointing.take() {
            match handle.join() {
                Ok(Ok((index, spills))) => self.checkpoint_written(index, spills),
                Ok(Err(error)) => return Err(error.into()),
                Err(_) => return Err(ReplicaError::CheckpointPanicked),
            }
        }
        Ok(())
    }
}
