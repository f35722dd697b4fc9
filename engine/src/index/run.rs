//! Index run files: an immutable, checksummed slice of every account's history on disk.
//!
//! When the in-memory part of the index grows past its bound, or before a checkpoint, it is
//! written out as one run file `run-<first index, 20 digits>-<last index, 20 digits>.tix`
//! holding every posting of the log entries `first..=last`, grouped by account (layout in
//! `docs/format.md`, "Per-account index files"). Runs form a chain: the first starts at log
//! index 1 and each starts right after the one before, so the chain covers `1..=last` of the
//! newest run, and that is how far the index is durable.
//!
//! A file is written under a temporary name, fsynced, renamed, and the directory fsynced, so
//! a crash leaves the whole file or none of it. Opening one trusts nothing: the header
//! checksum, the body checksum (read once, at open), and the directory (ids strictly
//! increasing, every block inside the file) are checked before anything is served; every
//! entry and bucket is validated again as it is decoded, and a bad one is an error with the
//! file and byte offset, never a panic. The file is then read through `memmap2`, so history
//! larger than memory costs page cache, not heap.
//!
//! Runs are merged (see [`crate::index`] for when): the newest few are rewritten as one,
//! streaming from the old maps, and the old files are deleted after the new one is durable.
//! A crash in between leaves the merged run and some of the old ones; at open, the chain
//! takes the longest run at each first index and deletes the ones it covers.

use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::{Bucket, HistoryEntry, IndexError, HOUR_NANOS};
use crate::files::Paced;
use crate::index::{PostingKind, Side};
use crate::le;
use crate::outcome::Balances;
use crate::types::{AccountId, LogIndex, PartitionId, Timestamp, TransferId};

/// The first 8 bytes of every index run file.
pub const RUN_MAGIC: [u8; 8] = *b"TALLYIDX";
/// Format version of index run files.
pub const RUN_VERSION: u16 = 1;
/// Size of the run header in bytes.
pub const RUN_HEADER_SIZE: usize = 64;
/// Size of one history entry in a run file.
pub const ENTRY_SIZE: usize = 128;
/// Size of one hourly bucket in a run file.
pub const BUCKET_SIZE: usize = 112;
/// Size of one directory record in a run file.
pub const DIRECTORY_RECORD_SIZE: usize = 64;
/// Largest run file we agree to open (a bound checked before mapping).
pub const RUN_SIZE_MAX: u64 = 1 << 40;
/// Beyond this many runs, the adjacent pair with the smallest total size is merged whatever
/// the size cap (a backstop: queries visit every run).
pub const RUNS_MAX: usize = 32;

const PREFIX: &str = "run-";
const SUFFIX: &str = ".tix";

const _: () = assert!(DIRECTORY_RECORD_SIZE == 16 + 8 * 4 + 16);

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A run file found in the index directory (not yet opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFile {
    /// The first log index its name claims to cover.
    pub first: LogIndex,
    /// The last log index its name claims to cover.
    pub last: LogIndex,
    /// Its path.
    pub path: PathBuf,
}

/// Lists the run files in `dir` by first index, and for equal first indexes the longest first
/// (a merged run before the runs it replaced). A missing directory has none.
pub fn list(dir: &Path) -> Result<Vec<RunFile>, IndexError> {
    let mut files: Vec<RunFile> = crate::files::named(dir, PREFIX, SUFFIX)
        .map_err(io_error(dir))?
        .into_iter()
        .filter_map(|(middle, path)| {
            let (first, last) = crate::files::number_pair(&middle)?;
            Some(RunFile {
                first: LogIndex(first),
                last: LogIndex(last),
                path,
            })
        })
        .collect();
    files.sort_by_key(|f| (f.first, std::cmp::Reverse(f.last)));
    Ok(files)
}

/// The file name of the run covering `first..=last`.
pub fn file_name(first: LogIndex, last: LogIndex) -> String {
    format!("{PREFIX}{:020}-{:020}{SUFFIX}", first.0, last.0)
}

/// One account's block in a run: where its entries and buckets are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) entries_offset: u64,
    pub(crate) entry_count: u64,
    pub(crate) buckets_offset: u64,
    pub(crate) bucket_count: u64,
}

/// An open, verified run file.
pub struct Run {
    path: PathBuf,
    map: Mmap,
    first: LogIndex,
    last: LogIndex,
    directory_offset: usize,
    account_count: usize,
}

impl Run {
    /// Opens and fully verifies a run file of `partition`.
    pub fn open(file: &RunFile, partition: PartitionId) -> Result<Run, IndexError> {
        Run::open_checked(file, partition, true)
    }

    /// Opens a run file; `verify_body` says whether to read the whole body to check its
    /// checksum (skipped only for a file this process has just written and fsynced, whose
    /// checksum it computed from the bytes it wrote; the header and directory are always
    /// checked).
    pub(crate) fn open_checked(
        file: &RunFile,
        partition: PartitionId,
        verify_body: bool,
    ) -> Result<Run, IndexError> {
        let path = &file.path;
        let handle = File::open(path).map_err(io_error(path))?;
        let size = handle.metadata().map_err(io_error(path))?.len();
        let corrupt = |offset: u64, reason: String| IndexError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        if size > RUN_SIZE_MAX {
            return Err(corrupt(0, format!("{size} bytes exceeds {RUN_SIZE_MAX}")));
        }
        if size < RUN_HEADER_SIZE as u64 {
            return Err(corrupt(
                0,
                format!("{size} bytes is shorter than the header"),
            ));
        }
        // SAFETY: the file is ours and never written after its rename into place; the map is
        // read-only. A concurrent truncation by another process would be outside our model
        // (two processes must never open the same directory).
        let map = unsafe { Mmap::map(&handle) }.map_err(io_error(path))?;
        let bytes: &[u8] = &map;
        let header = &bytes[..RUN_HEADER_SIZE];
        if header[0..8] != RUN_MAGIC {
            return Err(corrupt(0, "bad magic".into()));
        }
        let stored_crc = le::u32(&header[60..64]);
        if crc32fast::hash(&header[..60]) != stored_crc {
            return Err(corrupt(0, "header checksum mismatch".into()));
        }
        let version = le::u16(&header[8..10]);
        if version != RUN_VERSION {
            return Err(corrupt(8, format!("unknown version {version}")));
        }
        if le::u16(&header[10..12]) != 0 {
            return Err(corrupt(10, "reserved field is not zero".into()));
        }
        let owner = le::u32(&header[12..16]);
        if owner != partition.0 {
            return Err(corrupt(
                12,
                format!("belongs to partition {owner}, not {partition}"),
            ));
        }
        let first = LogIndex(le::u64(&header[16..24]));
        let last = LogIndex(le::u64(&header[24..32]));
        if first != file.first || last != file.last || first.0 == 0 || last < first {
            return Err(corrupt(
                16,
                format!(
                    "covers {first}..={last} but is named {}..={}",
                    file.first, file.last
                ),
            ));
        }
        let directory_offset = le::u64(&header[32..40]);
        let account_count = le::u64(&header[40..48]);
        let body_crc = le::u32(&header[48..52]);
        if header[52..60].iter().any(|&b| b != 0) {
            return Err(corrupt(52, "reserved bytes are not zero".into()));
        }
        let directory_size = account_count
            .checked_mul(DIRECTORY_RECORD_SIZE as u64)
            .ok_or_else(|| corrupt(40, "account count overflows".into()))?;
        if directory_offset < RUN_HEADER_SIZE as u64
            || directory_offset.checked_add(directory_size) != Some(size)
        {
            return Err(corrupt(
                32,
                format!(
                    "directory at {directory_offset} of {account_count} accounts does not end \
                     the {size}-byte file"
                ),
            ));
        }
        if verify_body && crc32fast::hash(&bytes[RUN_HEADER_SIZE..]) != body_crc {
            return Err(corrupt(
                RUN_HEADER_SIZE as u64,
                "body checksum mismatch".into(),
            ));
        }
        let run = Run {
            path: path.clone(),
            map,
            first,
            last,
            directory_offset: directory_offset as usize,
            account_count: account_count as usize,
        };
        // Check the directory once, so that lookups can trust its shape.
        let mut previous: Option<AccountId> = None;
        let mut block_end = RUN_HEADER_SIZE as u64;
        for i in 0..run.account_count {
            let (account, block) = run.directory_record(i);
            let at = (run.directory_offset + i * DIRECTORY_RECORD_SIZE) as u64;
            if previous.is_some_and(|p| p >= account) || account.0 == 0 {
                return Err(corrupt(at, format!("account {account} out of order")));
            }
            previous = Some(account);
            let entries_end = block
                .entry_count
                .checked_mul(ENTRY_SIZE as u64)
                .and_then(|n| n.checked_add(block.entries_offset));
            let buckets_end = block
                .bucket_count
                .checked_mul(BUCKET_SIZE as u64)
                .and_then(|n| n.checked_add(block.buckets_offset));
            if block.entries_offset != block_end
                || entries_end != Some(block.buckets_offset)
                || buckets_end.is_none_or(|end| end > directory_offset)
                || block.entry_count == 0
                || block.bucket_count == 0
            {
                return Err(corrupt(
                    at,
                    format!("account {account} has a bad block {block:?}"),
                ));
            }
            block_end = buckets_end.unwrap_or(directory_offset);
        }
        if block_end != directory_offset {
            return Err(corrupt(
                block_end,
                "bytes between the blocks and the directory".into(),
            ));
        }
        Ok(run)
    }

    /// The first log index covered.
    pub fn first(&self) -> LogIndex {
        self.first
    }

    /// The last log index covered.
    pub fn last(&self) -> LogIndex {
        self.last
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    /// How many accounts have entries in this run.
    pub fn account_count(&self) -> usize {
        self.account_count
    }

    fn directory_record(&self, i: usize) -> (AccountId, Block) {
        assert!(
            i < self.account_count,
            "directory record {i} of {}",
            self.account_count
        );
        let at = self.directory_offset + i * DIRECTORY_RECORD_SIZE;
        let r = &self.map[at..at + DIRECTORY_RECORD_SIZE];
        (
            AccountId(le::u128(&r[0..16])),
            Block {
                entries_offset: le::u64(&r[16..24]),
                entry_count: le::u64(&r[24..32]),
                buckets_offset: le::u64(&r[32..40]),
                bucket_count: le::u64(&r[40..48]),
            },
        )
    }

    /// The account's block, by binary search of the directory.
    pub(crate) fn block(&self, account: AccountId) -> Option<Block> {
        let count = self.account_count as u64;
        let i = crate::search::partition_point_infallible(count, |i| {
            self.directory_record(i as usize).0 < account
        });
        let (id, block) = (i < count).then(|| self.directory_record(i as usize))?;
        (id == account).then_some(block)
    }

    /// Every account with its block, in id order.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = (AccountId, Block)> + '_ {
        (0..self.account_count).map(|i| self.directory_record(i))
    }

    /// Entry `i` of a block.
    pub(crate) fn entry(&self, block: &Block, i: u64) -> Result<HistoryEntry, IndexError> {
        assert!(i < block.entry_count, "entry {i} of {}", block.entry_count);
        let at = (block.entries_offset + i * ENTRY_SIZE as u64) as usize;
        decode_entry(&self.map[at..at + ENTRY_SIZE]).map_err(|reason| IndexError::Corrupt {
            path: self.path.clone(),
            offset: at as u64,
            reason,
        })
    }

    /// The timestamp of entry `i` of a block, without decoding the rest.
    pub(crate) fn entry_timestamp(&self, block: &Block, i: u64) -> Timestamp {
        assert!(i < block.entry_count, "entry {i} of {}", block.entry_count);
        let at = (block.entries_offset + i * ENTRY_SIZE as u64) as usize;
        Timestamp(le::u64(&self.map[at..at + 8]))
    }

    /// Bucket `i` of a block.
    pub(crate) fn bucket(&self, block: &Block, i: u64) -> Result<Bucket, IndexError> {
        assert!(
            i < block.bucket_count,
            "bucket {i} of {}",
            block.bucket_count
        );
        let at = (block.buckets_offset + i * BUCKET_SIZE as u64) as usize;
        decode_bucket(&self.map[at..at + BUCKET_SIZE]).map_err(|reason| IndexError::Corrupt {
            path: self.path.clone(),
            offset: at as u64,
            reason,
        })
    }

    /// The raw bytes of a block's entries (for merging).
    fn entry_bytes(&self, block: &Block) -> &[u8] {
        let start = block.entries_offset as usize;
        &self.map[start..start + block.entry_count as usize * ENTRY_SIZE]
    }
}

/// Writes a run file streaming from `accounts` (in strictly increasing id order, each with
/// at least one entry and one bucket) and returns its path once it is durable.
pub(crate) fn write<'a, I>(
    dir: &Path,
    partition: PartitionId,
    first: LogIndex,
    last: LogIndex,
    accounts: I,
) -> Result<PathBuf, IndexError>
where
    I: Iterator<Item = (AccountId, AccountSource<'a>)>,
{
    assert!(first.0 >= 1 && last >= first, "run {first}..={last}");
    let path = dir.join(file_name(first, last));
    let temporary = dir.join(format!("{}.tmp", file_name(first, last)));
    let file = File::create(&temporary).map_err(io_error(&temporary))?;
    let mut out = CrcWriter {
        inner: BufWriter::with_capacity(1 << 20, Paced::new(file)),
        hasher: crc32fast::Hasher::new(),
        offset: RUN_HEADER_SIZE as u64,
    };
    let wrap = io_error(&temporary);
    let result = (|| -> io::Result<(u64, u64, u32, File)> {
        out.inner.write_all(&[0u8; RUN_HEADER_SIZE])?;
        let mut directory: Vec<u8> = Vec::new();
        let mut previous: Option<AccountId> = None;
        let mut account_count = 0u64;
        for (account, source) in accounts {
            assert!(
                previous.is_none_or(|p| p < account),
                "accounts out of order"
            );
            previous = Some(account);
            let entries_offset = out.offset;
            let mut entry_count = 0u64;
            let mut buckets: Vec<Bucket> = Vec::new();
            source.write_entries(&mut out, &mut entry_count, &mut buckets)?;
            let buckets_offset = out.offset;
            let mut record = [0u8; BUCKET_SIZE];
            for bucket in &buckets {
                encode_bucket(bucket, &mut record);
                out.write_all(&record)?;
            }
            assert!(
                entry_count > 0 && !buckets.is_empty(),
                "empty account {account}"
            );
            directory.extend_from_slice(&account.0.to_le_bytes());
            directory.extend_from_slice(&entries_offset.to_le_bytes());
            directory.extend_from_slice(&entry_count.to_le_bytes());
            directory.extend_from_slice(&buckets_offset.to_le_bytes());
            directory.extend_from_slice(&(buckets.len() as u64).to_le_bytes());
            directory.extend_from_slice(&[0u8; 16]);
            account_count += 1;
        }
        let directory_offset = out.offset;
        out.write_all(&directory)?;
        let crc = out.hasher.clone().finalize();
        let file = out
            .inner
            .into_inner()
            .map_err(|e| e.into_error())?
            .into_file();
        Ok((directory_offset, account_count, crc, file))
    })();
    let (directory_offset, account_count, crc, mut file) = result.map_err(wrap)?;
    let mut header = Vec::with_capacity(RUN_HEADER_SIZE);
    header.extend_from_slice(&RUN_MAGIC);
    header.extend_from_slice(&RUN_VERSION.to_le_bytes());
    header.extend_from_slice(&0u16.to_le_bytes());
    header.extend_from_slice(&partition.0.to_le_bytes());
    header.extend_from_slice(&first.0.to_le_bytes());
    header.extend_from_slice(&last.0.to_le_bytes());
    header.extend_from_slice(&directory_offset.to_le_bytes());
    header.extend_from_slice(&account_count.to_le_bytes());
    header.extend_from_slice(&crc.to_le_bytes());
    header.extend_from_slice(&[0u8; 8]);
    let header_crc = crc32fast::hash(&header);
    header.extend_from_slice(&header_crc.to_le_bytes());
    assert_eq!(header.len(), RUN_HEADER_SIZE);
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&header))
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temporary))?;
    drop(file);
    fs::rename(&temporary, &path).map_err(io_error(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(path)
}

/// Where a run writer takes one account's history from.
pub(crate) enum AccountSource<'a> {
    /// The in-memory part: all in-memory entries and this account's positions among them.
    Memory(&'a [HistoryEntry], &'a [u32]),
    /// Blocks of older runs, oldest first (a merge).
    Runs(Vec<(&'a Run, Block)>),
}

impl AccountSource<'_> {
    fn write_entries(
        &self,
        out: &mut CrcWriter,
        entry_count: &mut u64,
        buckets: &mut Vec<Bucket>,
    ) -> io::Result<()> {
        match self {
            AccountSource::Memory(entries, positions) => {
                let mut record = [0u8; ENTRY_SIZE];
                for &position in *positions {
                    let entry = &entries[position as usize];
                    encode_entry(entry, &mut record);
                    out.write_all(&record)?;
                    let (incoming, outgoing) = super::flow_of(entry.kind, entry.side, entry.amount);
                    super::push_bucket(
                        buckets,
                        Bucket {
                            hour: entry.timestamp.0 / HOUR_NANOS,
                            incoming,
                            outgoing,
                            closing: entry.balances,
                        },
                    );
                }
                *entry_count += positions.len() as u64;
            }
            AccountSource::Runs(blocks) => {
                for (run, block) in blocks {
                    out.write_all(run.entry_bytes(block))?;
                    *entry_count += block.entry_count;
                    for i in 0..block.bucket_count {
                        let bucket = run.bucket(block, i).map_err(io::Error::other)?;
                        super::push_bucket(buckets, bucket);
                    }
                }
            }
        }
        Ok(())
    }
}

struct CrcWriter {
    inner: BufWriter<Paced>,
    hasher: crc32fast::Hasher,
    offset: u64,
}

impl CrcWriter {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.offset += bytes.len() as u64;
        self.inner.write_all(bytes)
    }
}

/// Encodes one history entry into its 128 bytes.
pub fn encode_entry(e: &HistoryEntry, out: &mut [u8; ENTRY_SIZE]) {
    out[0..8].copy_from_slice(&e.timestamp.0.to_le_bytes());
    out[8..16].copy_from_slice(&e.log_index.0.to_le_bytes());
    out[16..32].copy_from_slice(&e.transfer.0.to_le_bytes());
    out[32..48].copy_from_slice(&e.amount.to_le_bytes());
    put_balances(&mut out[48..112], &e.balances);
    out[112] = e.kind as u8;
    out[113] = e.side as u8;
    out[114..128].fill(0);
}

/// Decodes one history entry, checking its tags and reserved bytes.
pub fn decode_entry(bytes: &[u8]) -> Result<HistoryEntry, String> {
    if bytes.len() != ENTRY_SIZE {
        return Err(format!("entry of {} bytes", bytes.len()));
    }
    let kind =
        PostingKind::from_code(bytes[112]).ok_or_else(|| format!("bad kind {}", bytes[112]))?;
    let side = Side::from_code(bytes[113]).ok_or_else(|| format!("bad side {}", bytes[113]))?;
    if bytes[114..128].iter().any(|&b| b != 0) {
        return Err("reserved bytes are not zero".into());
    }
    Ok(HistoryEntry {
        timestamp: Timestamp(le::u64(&bytes[0..8])),
        log_index: LogIndex(le::u64(&bytes[8..16])),
        transfer: TransferId(le::u128(&bytes[16..32])),
        amount: le::u128(&bytes[32..48]),
        balances: get_balances(&bytes[48..112]),
        kind,
        side,
    })
}

/// Encodes one hourly bucket into its 112 bytes.
pub fn encode_bucket(b: &Bucket, out: &mut [u8; BUCKET_SIZE]) {
    out[0..8].copy_from_slice(&b.hour.to_le_bytes());
    out[8..24].copy_from_slice(&b.incoming.to_le_bytes());
    out[24..40].copy_from_slice(&b.outgoing.to_le_bytes());
    put_balances(&mut out[40..104], &b.closing);
    out[104..112].fill(0);
}

/// Decodes one hourly bucket, checking its reserved bytes.
pub fn decode_bucket(bytes: &[u8]) -> Result<Bucket, String> {
    if bytes.len() != BUCKET_SIZE {
        return Err(format!("bucket of {} bytes", bytes.len()));
    }
    if bytes[104..112].iter().any(|&b| b != 0) {
        return Err("reserved bytes are not zero".into());
    }
    Ok(Bucket {
        hour: le::u64(&bytes[0..8]),
        incoming: le::u128(&bytes[8..24]),
        outgoing: le::u128(&bytes[24..40]),
        closing: get_balances(&bytes[40..104]),
    })
}

fn put_balances(out: &mut [u8], b: &Balances) {
    out[0..16].copy_from_slice(&b.debits_pending.to_le_bytes());
    out[16..32].copy_from_slice(&b.debits_posted.to_le_bytes());
    out[32..48].copy_from_slice(&b.credits_pending.to_le_bytes());
    out[48..64].copy_from_slice(&b.credits_posted.to_le_bytes());
}

fn get_balances(bytes: &[u8]) -> Balances {
    Balances {
        debits_pending: le::u128(&bytes[0..16]),
        debits_posted: le::u128(&bytes[16..32]),
        credits_pending: le::u128(&bytes[32..48]),
        credits_posted: le::u128(&bytes[48..64]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Index, Posting};

    /// A small run file's bytes: three accounts, entries over a few hours.
    fn sample_run(dir: &Path) -> RunFile {
        let (mut index, _) =
            Index::open(dir, PartitionId(4), LogIndex(100), 1 << 10).expect("open");
        let mut postings = Vec::new();
        for i in 0..20u64 {
            postings.push(Posting {
                account: AccountId(1 + u128::from(i % 3)),
                timestamp: Timestamp(i * HOUR_NANOS / 3),
                log_index: LogIndex(1 + i / 4),
                transfer: TransferId(u128::from(i) + 1),
                kind: PostingKind::from_code((i % 6) as u8).expect("kind"),
                side: if i % 2 == 0 {
                    Side::Debit
                } else {
                    Side::Credit
                },
                amount: u128::from(i),
                balances: Balances {
                    debits_pending: 1,
                    debits_posted: u128::from(i),
                    credits_pending: 3,
                    credits_posted: u128::from(i) * 2,
                },
            });
        }
        index.ingest(&postings, LogIndex(5));
        index.flush().expect("flush");
        let files = list(dir).expect("list");
        assert_eq!(files.len(), 1);
        files[0].clone()
    }

    #[test]
    fn every_single_byte_corruption_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = sample_run(dir.path());
        Run::open(&file, PartitionId(4)).expect("the intact file opens");
        let bytes = fs::read(&file.path).expect("read");
        for offset in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x40;
            fs::write(&file.path, &damaged).expect("write");
            match Run::open(&file, PartitionId(4)) {
                Err(IndexError::Corrupt { .. }) => {}
                other => panic!("flip at byte {offset}: {:?}", other.map(|r| r.size())),
            }
        }
        for len in 0..bytes.len() {
            fs::write(&file.path, &bytes[..len]).expect("write");
            assert!(
                Run::open(&file, PartitionId(4)).is_err(),
                "prefix of {len} bytes opened"
            );
        }
        fs::write(&file.path, &bytes).expect("write");
        assert!(Run::open(&file, PartitionId(5)).is_err(), "wrong partition");
    }

    #[test]
    fn forged_files_never_panic() {
        // Headers whose checksum is right but whose fields lie: the directory checks and
        // the block bounds must reject them without panicking or mapping past the end.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = sample_run(dir.path());
        let bytes = fs::read(&file.path).expect("read");
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut forged = bytes.clone();
            let offset = (state % forged.len() as u64) as usize;
            forged[offset] = (state >> 32) as u8;
            // Recompute both checksums so that only the structural checks can object.
            let body_crc = crc32fast::hash(&forged[RUN_HEADER_SIZE..]);
            forged[48..52].copy_from_slice(&body_crc.to_le_bytes());
            let header_crc = crc32fast::hash(&forged[..60]);
            forged[60..64].copy_from_slice(&header_crc.to_le_bytes());
            fs::write(&file.path, &forged).expect("write");
            if let Ok(run) = Run::open(&file, PartitionId(4)) {
                // Whatever opened must answer without panicking.
                for (_, block) in run.blocks() {
                    for i in 0..block.entry_count {
                        let _ = run.entry(&block, i);
                    }
                    for i in 0..block.bucket_count {
                        let _ = run.bucket(&block, i);
                    }
                }
            }
        }
    }

    #[test]
    fn entries_and_buckets_round_trip() {
        let entry = HistoryEntry {
            timestamp: Timestamp(7),
            log_index: LogIndex(8),
            transfer: TransferId(u128::MAX),
            kind: PostingKind::Expired,
            side: Side::Credit,
            amount: u128::MAX - 1,
            balances: Balances {
                debits_pending: 1,
                debits_posted: 2,
                credits_pending: 3,
                credits_posted: u128::MAX,
            },
        };
        let mut bytes = [0u8; ENTRY_SIZE];
        encode_entry(&entry, &mut bytes);
        assert_eq!(decode_entry(&bytes), Ok(entry));
        bytes[112] = 6;
        assert!(decode_entry(&bytes).is_err());
        let bucket = Bucket {
            hour: 5,
            incoming: 6,
            outgoing: u128::MAX,
            closing: entry.balances,
        };
        let mut bytes = [0u8; BUCKET_SIZE];
        encode_bucket(&bucket, &mut bytes);
        assert_eq!(decode_bucket(&bytes), Ok(bucket));
        bytes[111] = 1;
        assert!(decode_bucket(&bytes).is_err());
    }
}
