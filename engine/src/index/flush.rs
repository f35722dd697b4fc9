//! Flushing the in-memory index: a part frozen and written as a run on a background thread
//! while ingesting goes on (see the parent module, "Data flow").

use std::fs;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::run::{self, AccountSource, Run, RunFile};
use super::{HistoryEntry, Index, IndexError, MemoryAccount, FLUSHES_IN_FLIGHT_MAX};
use crate::types::{AccountId, LogIndex, PartitionId};

/// In-memory entries, in apply order, and each account's positions among them.
#[derive(Default)]
pub(crate) struct Memory {
    pub(super) entries: Vec<HistoryEntry>,
    pub(super) accounts: FxHashMap<AccountId, MemoryAccount>,
}

impl Memory {
    /// This account's part, if it has entries here.
    pub(super) fn account(&self, account: AccountId) -> Option<&MemoryAccount> {
        self.accounts
            .get(&account)
            .filter(|m| !m.positions.is_empty())
    }
}

/// An in-memory part frozen at a flush, and the thread writing it as the run of
/// `first..=last`.
pub(super) struct Flushing {
    pub(super) last: LogIndex,
    pub(super) memory: Arc<Memory>,
    pub(super) handle: std::thread::JoinHandle<Result<Run, IndexError>>,
}

impl Index {
    /// Writes the in-memory part as a run file covering `durable + 1 ..= covered`, makes it
    /// durable, maps it, and empties memory; merges the runs if there are too many. Does
    /// nothing if everything covered is already durable. Waits until it is done (see
    /// [`Index::start_flush`] for a flush that does not).
    pub fn flush(&mut self) -> Result<(), IndexError> {
        self.start_flush()?;
        self.finish_flush(true)
    }

    /// Freezes the in-memory part and writes it as a run file covering
    /// `durable + 1 ..= covered` on a background thread, while ingesting goes on into a new
    /// in-memory part; queries read the frozen part until its run is installed
    /// ([`Index::finish_flush`]), and [`Index::durable`] moves then. With
    /// [`FLUSHES_IN_FLIGHT_MAX`] flushes being written, the oldest is waited for first. Does
    /// nothing if every entry covered is durable or being written.
    pub fn start_flush(&mut self) -> Result<(), IndexError> {
        if self.flushing.len() >= FLUSHES_IN_FLIGHT_MAX {
            self.install_oldest_flush()?;
        }
        let frozen_until = self.flushing.back().map_or(self.durable, |f| f.last);
        if self.covered <= frozen_until {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).map_err(|source| IndexError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let first = frozen_until.next();
        let last = self.covered;
        let next = self.spare.take().unwrap_or_default();
        let memory = Arc::new(std::mem::replace(&mut self.live, next));
        let (dir, partition, frozen) = (self.dir.clone(), self.partition, memory.clone());
        let spawned = crate::background::spawn(format!("index-flush-{partition}"), move || {
            write_memory(&dir, partition, first, last, &frozen)
        });
        match spawned {
            Ok(handle) => self.flushing.push_back(Flushing {
                last,
                memory,
                handle,
            }),
            Err(_) => {
                // No thread to be had: write it here (after those in flight), slower but
                // the same.
                self.finish_flush(true)?;
                let run = write_memory(&self.dir, partition, first, last, &memory)?;
                self.install_flushed(run, last);
            }
        }
        Ok(())
    }

    /// Installs the flushes being written that are done, oldest first (every one, waiting
    /// for them, with `wait`): each run joins the others, [`Index::durable`] reaches its
    /// end, its memory is freed, and runs are merged if there are too many. A flush that
    /// failed is returned as the error (its entries are lost from the index until a restart
    /// rebuilds them by replay, so the caller must treat it as a storage failure).
    pub fn finish_flush(&mut self, wait: bool) -> Result<(), IndexError> {
        while self
            .flushing
            .front()
            .is_some_and(|f| wait || f.handle.is_finished())
        {
            self.install_oldest_flush()?;
        }
        Ok(())
    }

    /// Waits for the oldest flush being written, if any, and installs it.
    fn install_oldest_flush(&mut self) -> Result<(), IndexError> {
        let Some(flushing) = self.flushing.pop_front() else {
            return Ok(());
        };
        let run = match flushing.handle.join() {
            Ok(result) => result?,
            Err(_) => return Err(IndexError::Merge("the flush thread panicked".into())),
        };
        self.install_flushed(run, flushing.last);
        if let Ok(mut memory) = Arc::try_unwrap(flushing.memory) {
            // Keep the vectors of accounts active in that part; forget the others.
            memory.accounts.retain(|_, account| {
                let active = !account.positions.is_empty();
                account.positions.clear();
                account.hour_starts.clear();
                active
            });
            memory.entries.clear();
            self.spare = Some(memory);
        }
        Ok(())
    }

    fn install_flushed(&mut self, run: Run, last: LogIndex) {
        self.runs.push(Arc::new(run));
        self.durable = last;
        self.maintain();
    }
}

/// Writes a frozen in-memory part as the run of `first..=last`, durable, and maps it.
fn write_memory(
    dir: &Path,
    partition: PartitionId,
    first: LogIndex,
    last: LogIndex,
    memory: &Memory,
) -> Result<Run, IndexError> {
    let mut ids: Vec<AccountId> = memory
        .accounts
        .iter()
        .filter(|(_, account)| !account.positions.is_empty())
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    let path = run::write(
        dir,
        partition,
        first,
        last,
        ids.iter().map(|id| {
            (
                *id,
                AccountSource::Memory(&memory.entries, &memory.accounts[id].positions),
            )
        }),
    )?;
    Run::open_checked(&RunFile { first, last, path }, partition, false)
}
