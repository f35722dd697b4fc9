//! What one account's history is made of: its blocks in every run, oldest first, then its
//! in-memory part ([`AccountView`]), read as one sequence of entries and of buckets.

use super::*;

pub(super) enum Part<'a> {
    Disk(&'a Run, Block),
    /// All in-memory entries, this account's part, and its balances before that part (an
    /// error if the last disk entry would not decode, reported when a bucket needs it).
    Memory(
        &'a [HistoryEntry],
        &'a MemoryAccount,
        Result<Balances, IndexError>,
    ),
}

impl Part<'_> {
    pub(super) fn entry_count(&self) -> u64 {
        match self {
            Part::Disk(_, block) => block.entry_count,
            Part::Memory(_, account, _) => account.positions.len() as u64,
        }
    }
    pub(super) fn bucket_count(&self) -> u64 {
        match self {
            Part::Disk(_, block) => block.bucket_count,
            Part::Memory(_, account, _) => account.hour_starts.len() as u64,
        }
    }
    pub(super) fn entry(&self, i: u64) -> Result<HistoryEntry, IndexError> {
        match self {
            Part::Disk(run, block) => run.entry(block, i),
            Part::Memory(entries, account, _) => {
                Ok(entries[account.positions[i as usize] as usize])
            }
        }
    }
    pub(super) fn timestamp(&self, i: u64) -> Timestamp {
        match self {
            Part::Disk(run, block) => run.entry_timestamp(block, i),
            Part::Memory(entries, account, _) => {
                entries[account.positions[i as usize] as usize].timestamp
            }
        }
    }
    pub(super) fn bucket(&self, i: u64) -> Result<Bucket, IndexError> {
        match self {
            Part::Disk(run, block) => run.bucket(block, i),
            Part::Memory(entries, account, base) => {
                let i = i as usize;
                let start = account.hour_starts[i] as usize;
                let end = account
                    .hour_starts
                    .get(i + 1)
                    .map_or(account.positions.len(), |&next| next as usize);
                let entry = |k: usize| &entries[account.positions[k] as usize];
                let before = match start {
                    0 => match base {
                        Ok(balances) => *balances,
                        Err(e) => return Err(e.duplicate()),
                    },
                    _ => entry(start - 1).balances,
                };
                let closing = entry(end - 1).balances;
                Ok(Bucket {
                    hour: entry(start).timestamp.0 / HOUR_NANOS,
                    incoming: closing.credits_posted - before.credits_posted,
                    outgoing: closing.debits_posted - before.debits_posted,
                    closing,
                })
            }
        }
    }
}

/// One account's history across runs and memory, addressed by ordinal. Buckets of one hour
/// split across two parts appear as two buckets with the same hour.
pub(super) struct AccountView<'a> {
    pub(super) parts: Vec<Part<'a>>,
}

impl AccountView<'_> {
    pub(super) fn entry_count(&self) -> u64 {
        self.parts.iter().map(Part::entry_count).sum()
    }

    pub(super) fn bucket_count(&self) -> u64 {
        self.parts.iter().map(Part::bucket_count).sum()
    }

    pub(super) fn entry(&self, mut i: u64) -> Result<HistoryEntry, IndexError> {
        for part in &self.parts {
            let count = part.entry_count();
            if i < count {
                return part.entry(i);
            }
            i -= count;
        }
        panic!("entry ordinal past the end of the history");
    }

    pub(super) fn bucket(&self, mut i: u64) -> Result<Bucket, IndexError> {
        for part in &self.parts {
            let count = part.bucket_count();
            if i < count {
                return part.bucket(i);
            }
            i -= count;
        }
        panic!("bucket ordinal past the end of the buckets");
    }

    /// How many entries have `timestamp < time`: a binary search within the one part where
    /// the boundary falls.
    pub(super) fn entries_before(&self, time: Timestamp) -> Result<u64, IndexError> {
        let mut base = 0;
        for part in &self.parts {
            let count = part.entry_count();
            if count > 0 && part.timestamp(count - 1) >= time {
                let point =
                    crate::search::partition_point_infallible(count, |i| part.timestamp(i) < time);
                return Ok(base + point);
            }
            base += count;
        }
        Ok(base)
    }

    /// How many buckets have `hour < hour`.
    pub(super) fn buckets_before_hour(&self, hour: u64) -> Result<u64, IndexError> {
        let mut base = 0;
        for part in &self.parts {
            let count = part.bucket_count();
            if count > 0 && part.bucket(count - 1)?.hour >= hour {
                let point =
                    crate::search::partition_point(count, |i| Ok(part.bucket(i)?.hour < hour))?;
                return Ok(base + point);
            }
            base += count;
        }
        Ok(base)
    }

    /// The balances after the first `count` entries.
    pub(super) fn balances_after(&self, count: u64) -> Result<Balances, IndexError> {
        match count {
            0 => Ok(Balances::default()),
            _ => Ok(self.entry(count - 1)?.balances),
        }
    }

    /// The balances after every entry with `timestamp < time`: from the buckets when `time`
    /// is on an hour boundary, else from the entries.
    pub(super) fn posted_before(&self, time: Timestamp) -> Result<Balances, IndexError> {
        #[expect(
            clippy::manual_is_multiple_of,
            reason = "is_multiple_of needs Rust 1.87; the workspace supports 1.85"
        )]
        let aligned = time.0 % HOUR_NANOS == 0;
        if aligned {
            let count = self.buckets_before_hour(time.0 / HOUR_NANOS)?;
            return match count {
                0 => Ok(Balances::default()),
                _ => Ok(self.bucket(count - 1)?.closing),
            };
        }
        let count = self.entries_before(time)?;
        self.balances_after(count)
    }
}
