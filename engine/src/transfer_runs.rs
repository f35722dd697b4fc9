//! Transfer runs: old, immutable transfer records on disk, so that a partition's transfer
//! table can be larger than memory.
//!
//! # Data flow
//! The partition keeps its recent transfer records in memory. When more than its bound are
//! resident, it *spills* the oldest ones that can no longer change (every record except a
//! hold that is still pending) into one run file, sorted by id, and forgets them in memory.
//! Each spill gets the next spill number; a run file `transfers-<first>-<last>.ttr` holds the
//! records of spills `first..=last` (numbers with 20 digits). Runs are merged size-tiered,
//! like the per-account index (`crate::index`): after a spill, the two newest runs are merged
//! while the newer holds at least as many records as the older and the older is below
//! [`MERGE_RECORDS_MAX`], so there are O(log history) small runs plus one per
//! `MERGE_RECORDS_MAX` records.
//!
//! # Lookups
//! A lookup of an id that is not resident first asks [`TransferRuns::may_contain`]: an
//! in-memory set of the 64-bit hashes of every id on disk (8 bytes per id plus the hash
//! table's slack). A new, random id is answered "absent" there with one hash probe and no
//! disk read, however many runs exist; this keeps the idempotency check of fresh ids (the
//! common case) as fast as a hash-map miss. Only a hash that is present (a retry, a post of an
//! old hold, a refund of an old purchase, `lookup_transfers`) goes to the runs: each run's
//! blocked Bloom filter (one 64-byte block per probe, 16 bits per id), then a binary search
//! over its sorted ids and the decode of one variable-length record, all through `memmap2`.
//!
//! # Integrity
//! A file is written under a temporary name, fsynced, renamed and the directory fsynced.
//! Opening one checks the header checksum, the section sizes, and (unless this process has
//! just written it) the body checksum and that ids strictly increase; every record is checked
//! again as it is decoded, and a bad one is an error with the file and offset, never a panic.
//! The header also carries the run's part of the state digest (the wrapping sum of the
//! digest hashes of its records as written), so a partition can account for its records on
//! disk without reading them.
//!
//! # Deliberate omissions
//! A spill and the merges it leads to are written on a background thread (`SpillWriter`,
//! one at a time, working from the runs as they were when it started); the applying thread
//! only installs the result. The id-hash set is rebuilt from the runs' id sections at open,
//! which reads 16 bytes per record on disk.

use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use rustc_hash::FxHashSet;
use thiserror::Error;
use xxhash_rust::xxh3::xxh3_64;

use crate::files::Paced;
use crate::le;
use crate::partition::{HoldStatus, TransferRecord};
use crate::types::{PartitionId, TransferId};

/// The first 8 bytes of every transfer run file.
pub const TRANSFER_RUN_MAGIC: [u8; 8] = *b"TALLYTTR";
/// Format version of transfer run files (2: records carry their details; version 1 files are
/// refused and rebuilt by replay).
pub const TRANSFER_RUN_VERSION: u16 = 2;
/// Size of the header in bytes.
pub const TRANSFER_RUN_HEADER_SIZE: usize = 96;
/// Size of one filter block in bytes (one cache line).
pub const FILTER_BLOCK_SIZE: usize = 64;
/// Filter bits per record.
pub const FILTER_BITS_PER_RECORD: u64 = 16;
/// Bits set per id in its filter block.
pub const FILTER_PROBES: u32 = 7;
/// Largest record body (a failed record is shorter; balances are at most 8 varints of 19,
/// details at most 72 bytes).
pub const RECORD_BODY_SIZE_MAX: usize =
    16 + 2 + 4 + 8 + 19 * 5 + 4 + 4 + 19 * 8 + 1 + 2 + 2 + 19 + 10 + 5 + 1 + 32;
/// Largest run file we agree to open.
pub const TRANSFER_RUN_SIZE_MAX: u64 = 1 << 40;
/// Runs of at least this many records are not merged further (until [`RUNS_MAX`], past
/// which the adjacent pair with the fewest records is merged).
pub const MERGE_RECORDS_MAX: u64 = 1 << 19;
/// Default bound of the transfer records a partition keeps in memory (about 420 MB: 352-byte
/// records plus the id map).
pub const TRANSFERS_MEMORY_MAX_DEFAULT: usize = 1 << 20;
/// Beyond this many runs the two newest are merged whatever their sizes.
pub const RUNS_MAX: usize = 512;

const PREFIX: &str = "transfers-";
const SUFFIX: &str = ".ttr";

/// Why transfer runs could not be written or read.
#[derive(Debug, Error)]
pub enum TransferRunError {
    /// An IO error.
    #[error("transfer run IO error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file is damaged.
    #[error("transfer run {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where in the file.
        offset: u64,
        /// What check failed.
        reason: String,
    },
}

impl TransferRunError {
    /// Whether every replica would fail the same way: never (local disk conditions).
    pub fn is_deterministic(&self) -> bool {
        false
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> TransferRunError + '_ {
    move |source| TransferRunError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The hash of an id used by the id set and the filters.
pub fn id_hash(id: TransferId) -> u64 {
    xxh3_64(&id.0.to_le_bytes())
}

/// A run file found in a directory (not yet opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRunFile {
    /// The first spill its name claims.
    pub first: u64,
    /// The last spill its name claims.
    pub last: u64,
    /// Its path.
    pub path: PathBuf,
}

/// Lists run files by first spill, the longest first for equal firsts.
pub fn list(dir: &Path) -> Result<Vec<TransferRunFile>, TransferRunError> {
    let mut files: Vec<TransferRunFile> = crate::files::named(dir, PREFIX, SUFFIX)
        .map_err(io_error(dir))?
        .into_iter()
        .filter_map(|(middle, path)| {
            let (first, last) = crate::files::number_pair(&middle)?;
            Some(TransferRunFile { first, last, path })
        })
        .collect();
    files.sort_by_key(|f| (f.first, std::cmp::Reverse(f.last)));
    Ok(files)
}

fn file_name(first: u64, last: u64) -> String {
    format!("{PREFIX}{first:020}-{last:020}{SUFFIX}")
}

/// An open, verified transfer run.
pub struct TransferRun {
    path: PathBuf,
    map: Mmap,
    first: u64,
    last: u64,
    count: u64,
    offsets_offset: usize,
    bodies_offset: usize,
    bodies_size: u64,
    filter_offset: usize,
    filter_blocks: u64,
    digest: u128,
}

impl TransferRun {
    /// Opens a run file; `verify_body` reads the whole body to check its checksum and id
    /// order (skipped only for a file this process has just written).
    pub fn open(
        file: &TransferRunFile,
        partition: PartitionId,
        verify_body: bool,
    ) -> Result<TransferRun, TransferRunError> {
        let path = &file.path;
        let corrupt = |offset: u64, reason: String| TransferRunError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        let handle = File::open(path).map_err(io_error(path))?;
        let size = handle.metadata().map_err(io_error(path))?.len();
        if size > TRANSFER_RUN_SIZE_MAX || size < TRANSFER_RUN_HEADER_SIZE as u64 {
            return Err(corrupt(0, format!("{size} bytes is not a plausible size")));
        }
        // SAFETY: the file is ours, never written after its rename into place, and mapped
        // read-only; two processes must never open the same directory.
        let map = unsafe { Mmap::map(&handle) }.map_err(io_error(path))?;
        let h = &map[..TRANSFER_RUN_HEADER_SIZE];
        if h[0..8] != TRANSFER_RUN_MAGIC {
            return Err(corrupt(0, "bad magic".into()));
        }
        if crc32fast::hash(&h[..92]) != le::u32(&h[92..96]) {
            return Err(corrupt(0, "header checksum mismatch".into()));
        }
        let version = le::u16(&h[8..10]);
        if version != TRANSFER_RUN_VERSION {
            return Err(corrupt(8, format!("unknown version {version}")));
        }
        if le::u16(&h[10..12]) != 0 || h[76..92].iter().any(|&b| b != 0) {
            return Err(corrupt(10, "reserved bytes are not zero".into()));
        }
        let owner = le::u32(&h[12..16]);
        if owner != partition.0 {
            return Err(corrupt(12, format!("belongs to partition {owner}")));
        }
        let first = le::u64(&h[16..24]);
        let last = le::u64(&h[24..32]);
        if first != file.first || last != file.last || first == 0 || last < first {
            return Err(corrupt(
                16,
                format!(
                    "covers spills {first}..={last}, named {}..={}",
                    file.first, file.last
                ),
            ));
        }
        let count = le::u64(&h[32..40]);
        let bodies_size = le::u64(&h[40..48]);
        let filter_blocks = le::u64(&h[48..56]);
        let digest = le::u128(&h[56..72]);
        let body_crc = le::u32(&h[72..76]);
        if count == 0 || filter_blocks != filter_blocks_for(count) {
            return Err(corrupt(
                32,
                format!("{count} records, {filter_blocks} blocks"),
            ));
        }
        let expected = count
            .checked_mul(16)
            .and_then(|n| n.checked_add(count.checked_add(1)?.checked_mul(8)?))
            .and_then(|n| n.checked_add(bodies_size))
            .and_then(|n| n.checked_add(filter_blocks.checked_mul(FILTER_BLOCK_SIZE as u64)?))
            .and_then(|n| n.checked_add(TRANSFER_RUN_HEADER_SIZE as u64));
        if expected != Some(size) {
            return Err(corrupt(
                32,
                format!("sections do not add up to {size} bytes"),
            ));
        }
        let offsets_offset = TRANSFER_RUN_HEADER_SIZE + count as usize * 16;
        let bodies_offset = offsets_offset + (count as usize + 1) * 8;
        let filter_offset = bodies_offset + bodies_size as usize;
        let run = TransferRun {
            path: path.clone(),
            map,
            first,
            last,
            count,
            offsets_offset,
            bodies_offset,
            bodies_size,
            filter_offset,
            filter_blocks,
            digest,
        };
        if verify_body {
            if crc32fast::hash(&run.map[TRANSFER_RUN_HEADER_SIZE..]) != body_crc {
                return Err(corrupt(
                    TRANSFER_RUN_HEADER_SIZE as u64,
                    "body checksum mismatch".into(),
                ));
            }
            for i in 1..count {
                if run.id(i - 1) >= run.id(i) {
                    return Err(corrupt(
                        (TRANSFER_RUN_HEADER_SIZE as u64) + i * 16,
                        "ids out of order".into(),
                    ));
                }
            }
            if run.offset(0) != 0 || run.offset(count) != bodies_size {
                return Err(corrupt(run.offsets_offset as u64, "bad offsets".into()));
            }
        }
        Ok(run)
    }

    /// The first spill covered.
    pub fn first(&self) -> u64 {
        self.first
    }
    /// The last spill covered.
    pub fn last(&self) -> u64 {
        self.last
    }
    /// How many records it holds.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Its part of the state digest.
    pub fn digest(&self) -> u128 {
        self.digest
    }
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn id(&self, i: u64) -> TransferId {
        let at = TRANSFER_RUN_HEADER_SIZE + i as usize * 16;
        TransferId(le::u128(&self.map[at..at + 16]))
    }

    fn offset(&self, i: u64) -> u64 {
        let at = self.offsets_offset + i as usize * 8;
        le::u64(&self.map[at..at + 8])
    }

    fn body(&self, i: u64) -> Result<&[u8], TransferRunError> {
        let (start, end) = (self.offset(i), self.offset(i + 1));
        if start > end || end > self.bodies_size || end - start > RECORD_BODY_SIZE_MAX as u64 {
            return Err(TransferRunError::Corrupt {
                path: self.path.clone(),
                offset: (self.offsets_offset + i as usize * 8) as u64,
                reason: format!("record {i} spans {start}..{end}"),
            });
        }
        Ok(&self.map[self.bodies_offset + start as usize..self.bodies_offset + end as usize])
    }

    fn filter_may_contain(&self, hash: u64) -> bool {
        let (block, bits) = filter_position(hash, self.filter_blocks);
        let at = self.filter_offset + block as usize * FILTER_BLOCK_SIZE;
        let words = &self.map[at..at + FILTER_BLOCK_SIZE];
        bits.iter()
            .all(|&bit| words[bit as usize / 8] & (1 << (bit % 8)) != 0)
    }

    /// The record with `id`, if this run holds it.
    pub fn get(
        &self,
        id: TransferId,
        hash: u64,
    ) -> Result<Option<TransferRecord>, TransferRunError> {
        if !self.filter_may_contain(hash) {
            return Ok(None);
        }
        let i = crate::search::partition_point_infallible(self.count, |i| self.id(i) < id);
        if i < self.count && self.id(i) == id {
            return self.record(i).map(Some);
        }
        Ok(None)
    }

    /// Record `i` in id order.
    pub fn record(&self, i: u64) -> Result<TransferRecord, TransferRunError> {
        assert!(i < self.count, "record {i} of {}", self.count);
        let body = self.body(i)?;
        decode_record(self.id(i), body).map_err(|reason| TransferRunError::Corrupt {
            path: self.path.clone(),
            offset: (self.bodies_offset as u64) + self.offset(i),
            reason,
        })
    }
}

fn filter_blocks_for(count: u64) -> u64 {
    (count * FILTER_BITS_PER_RECORD)
        .div_ceil(FILTER_BLOCK_SIZE as u64 * 8)
        .max(1)
}

/// The filter block of a hash and the bits it sets there.
fn filter_position(hash: u64, blocks: u64) -> (u64, [u16; FILTER_PROBES as usize]) {
    let block = ((hash & 0xFFFF_FFFF) * blocks) >> 32;
    let mut bits_source = hash.rotate_left(32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut bits = [0u16; FILTER_PROBES as usize];
    for bit in &mut bits {
        *bit = (bits_source & 511) as u16;
        bits_source >>= 9;
    }
    (block, bits)
}

/// Records to write as a new run: sorted by id, with their encoded bodies.
pub(crate) struct Batch {
    ids: Vec<TransferId>,
    offsets: Vec<u64>,
    bodies: Vec<u8>,
    digest: u128,
}

impl Batch {
    /// Encodes records sorted by id; `digest` is the sum of their digest hashes.
    pub(crate) fn new<'a>(
        records: impl ExactSizeIterator<Item = &'a TransferRecord>,
        digest: u128,
    ) -> Batch {
        let mut batch = Batch {
            ids: Vec::with_capacity(records.len()),
            offsets: Vec::with_capacity(records.len() + 1),
            bodies: Vec::with_capacity(records.len() * 120),
            digest,
        };
        batch.offsets.push(0);
        for record in records {
            assert!(
                batch.ids.last().is_none_or(|&last| last < record.id),
                "batch not sorted by id"
            );
            assert_ne!(record.hold, HoldStatus::Pending, "a pending hold spilled");
            batch.ids.push(record.id);
            encode_record(record, &mut batch.bodies);
            batch.offsets.push(batch.bodies.len() as u64);
        }
        batch
    }
}

/// Where a writer takes record `i` of a source from.
enum Source<'a> {
    Batch(&'a Batch),
    Run(&'a TransferRun),
}

impl Source<'_> {
    fn count(&self) -> u64 {
        match self {
            Source::Batch(b) => b.ids.len() as u64,
            Source::Run(r) => r.count,
        }
    }
    fn id(&self, i: u64) -> TransferId {
        match self {
            Source::Batch(b) => b.ids[i as usize],
            Source::Run(r) => r.id(i),
        }
    }
    fn body(&self, i: u64) -> Result<&[u8], TransferRunError> {
        match self {
            Source::Batch(b) => {
                Ok(&b.bodies[b.offsets[i as usize] as usize..b.offsets[i as usize + 1] as usize])
            }
            Source::Run(r) => r.body(i),
        }
    }
}

/// Writes the merge of `sources` (disjoint ids) as the run of spills `first..=last`.
fn write(
    dir: &Path,
    partition: PartitionId,
    first: u64,
    last: u64,
    sources: &[Source<'_>],
    digest: u128,
) -> Result<TransferRunFile, TransferRunError> {
    // The merged order, as (source, record) pairs.
    let count: u64 = sources.iter().map(Source::count).sum();
    assert!(count > 0, "an empty run");
    let mut order: Vec<(u32, u64)> = Vec::with_capacity(count as usize);
    let mut heads: Vec<u64> = vec![0; sources.len()];
    loop {
        let mut best: Option<(usize, TransferId)> = None;
        for (s, source) in sources.iter().enumerate() {
            if heads[s] < source.count() {
                let id = source.id(heads[s]);
                if best.is_none_or(|(_, b)| id < b) {
                    best = Some((s, id));
                }
            }
        }
        let Some((s, id)) = best else { break };
        if let Some(&(ps, pi)) = order.last() {
            assert!(
                sources[ps as usize].id(pi) < id,
                "transfer {id} in two runs"
            );
        }
        order.push((s as u32, heads[s]));
        heads[s] += 1;
    }
    let path = dir.join(file_name(first, last));
    let temporary = dir.join(format!("{}.tmp", file_name(first, last)));
    let file = File::create(&temporary).map_err(io_error(&temporary))?;
    let mut out = BufWriter::with_capacity(1 << 20, Paced::new(file));
    let mut crc = crc32fast::Hasher::new();
    let mut put = |out: &mut BufWriter<Paced>, bytes: &[u8]| -> io::Result<()> {
        crc.update(bytes);
        out.write_all(bytes)
    };
    let blocks = filter_blocks_for(count);
    let mut filter = vec![0u8; blocks as usize * FILTER_BLOCK_SIZE];
    let mut bodies_size = 0u64;
    let result = (|| -> Result<(), TransferRunError> {
        let w = io_error(&temporary);
        out.write_all(&[0u8; TRANSFER_RUN_HEADER_SIZE]).map_err(w)?;
        for &(s, i) in &order {
            let id = sources[s as usize].id(i);
            let (block, bits) = filter_position(id_hash(id), blocks);
            for bit in bits {
                filter[block as usize * FILTER_BLOCK_SIZE + bit as usize / 8] |= 1 << (bit % 8);
            }
            put(&mut out, &id.0.to_le_bytes()).map_err(io_error(&temporary))?;
        }
        put(&mut out, &0u64.to_le_bytes()).map_err(io_error(&temporary))?;
        for &(s, i) in &order {
            bodies_size += sources[s as usize].body(i)?.len() as u64;
            put(&mut out, &bodies_size.to_le_bytes()).map_err(io_error(&temporary))?;
        }
        for &(s, i) in &order {
            put(&mut out, sources[s as usize].body(i)?).map_err(io_error(&temporary))?;
        }
        put(&mut out, &filter).map_err(io_error(&temporary))?;
        Ok(())
    })();
    result?;
    let mut file = out
        .into_inner()
        .map_err(|e| io_error(&temporary)(e.into_error()))?
        .into_file();
    let mut h = Vec::with_capacity(TRANSFER_RUN_HEADER_SIZE);
    h.extend_from_slice(&TRANSFER_RUN_MAGIC);
    h.extend_from_slice(&TRANSFER_RUN_VERSION.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&partition.0.to_le_bytes());
    h.extend_from_slice(&first.to_le_bytes());
    h.extend_from_slice(&last.to_le_bytes());
    h.extend_from_slice(&count.to_le_bytes());
    h.extend_from_slice(&bodies_size.to_le_bytes());
    h.extend_from_slice(&blocks.to_le_bytes());
    h.extend_from_slice(&digest.to_le_bytes());
    h.extend_from_slice(&crc.finalize().to_le_bytes());
    h.extend_from_slice(&[0u8; 16]);
    let header_crc = crc32fast::hash(&h);
    h.extend_from_slice(&header_crc.to_le_bytes());
    assert_eq!(h.len(), TRANSFER_RUN_HEADER_SIZE);
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&h))
        .and_then(|()| file.sync_all())
        .map_err(io_error(&temporary))?;
    drop(file);
    fs::rename(&temporary, &path).map_err(io_error(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(TransferRunFile { first, last, path })
}

/// Writes one spill's run file and the merges it leads to; may run on another thread (see
/// [`TransferRuns::writer`]). Only one at a time: it works from the runs as they were when
/// it was made, which stay unchanged until its result is installed.
pub(crate) struct SpillWriter {
    dir: PathBuf,
    partition: PartitionId,
    seq: u64,
    runs: Vec<Arc<TransferRun>>,
    merge_records_max: u64,
    runs_max: usize,
}

/// What a [`SpillWriter`] wrote: the new list of runs, the files of earlier runs it
/// replaced by merges, and the error of a merge that failed (its inputs stay in the list).
pub(crate) struct WrittenRuns {
    seq: u64,
    runs: Vec<Arc<TransferRun>>,
    replaced: Vec<PathBuf>,
    merge_error: Option<String>,
}

impl SpillWriter {
    /// Writes `batch` as the run of this spill, durable, then merges runs: size-tiered up to
    /// [`MERGE_RECORDS_MAX`]; past [`RUNS_MAX`] runs, the adjacent pair with the fewest
    /// records (never the newest into an ever larger tail, which would rewrite it at every
    /// spill). Files of runs made and merged away here were never in use and are deleted at
    /// once; earlier runs it replaces are left to [`TransferRuns::install`].
    pub(crate) fn write(&self, batch: &Batch) -> Result<WrittenRuns, TransferRunError> {
        let file = write(
            &self.dir,
            self.partition,
            self.seq,
            self.seq,
            &[Source::Batch(batch)],
            batch.digest,
        )?;
        let mut runs = self.runs.clone();
        runs.push(Arc::new(TransferRun::open(&file, self.partition, false)?));
        let mut replaced = Vec::new();
        let mut merge_error = None;
        loop {
            let n = runs.len();
            let i = match runs.as_slice() {
                [.., older, newer]
                    if newer.count >= older.count && older.count < self.merge_records_max =>
                {
                    n - 2
                }
                _ if n > self.runs_max => (0..n - 1)
                    .min_by_key(|&i| runs[i].count + runs[i + 1].count)
                    .expect("more than RUNS_MAX runs"),
                _ => break,
            };
            let merged = match merge_two(&self.dir, self.partition, &runs[i], &runs[i + 1]) {
                Ok(merged) => merged,
                Err(e) => {
                    merge_error = Some(e.to_string());
                    break;
                }
            };
            for old in runs.splice(i..i + 2, [Arc::new(merged)]) {
                if self.runs.iter().any(|r| Arc::ptr_eq(r, &old)) {
                    replaced.push(old.path.clone());
                } else {
                    // Made in this spill and never in use: no checkpoint can name it.
                    let path = old.path.clone();
                    drop(old);
                    let _ = fs::remove_file(&path);
                }
            }
        }
        Ok(WrittenRuns {
            seq: self.seq,
            runs,
            replaced,
            merge_error,
        })
    }
}

/// Writes the merge of two adjacent runs and opens it.
fn merge_two(
    dir: &Path,
    partition: PartitionId,
    older: &TransferRun,
    newer: &TransferRun,
) -> Result<TransferRun, TransferRunError> {
    let file = write(
        dir,
        partition,
        older.first,
        newer.last,
        &[Source::Run(older), Source::Run(newer)],
        older.digest.wrapping_add(newer.digest),
    )?;
    let merged = TransferRun::open(&file, partition, false)?;
    assert_eq!(merged.count, older.count + newer.count);
    Ok(merged)
}

/// The transfer runs of one partition, plus the set of hashes of every id they hold.
pub struct TransferRuns {
    dir: PathBuf,
    partition: PartitionId,
    runs: Vec<Arc<TransferRun>>,
    ids: FxHashSet<u64>,
    /// The number of the last spill written.
    spills: u64,
    record_count: u64,
    /// Files replaced by a merge but kept until the caller releases them (a checkpoint may
    /// still name the spills they cover), with the spill count at which they were replaced:
    /// a checkpoint naming that many spills or more no longer needs them.
    obsolete: Vec<(u64, PathBuf)>,
    /// Whether merge inputs are kept until [`TransferRuns::release_obsolete`].
    keep_merged: bool,
    /// The last merge error, if a merge failed (its inputs stay in use; retried next spill).
    merge_error: Option<String>,
    /// [`MERGE_RECORDS_MAX`] and [`RUNS_MAX`] (changed by tests only).
    merge_records_max: u64,
    runs_max: usize,
}

impl TransferRuns {
    /// Opens the chain of runs covering spills `1..=spills` exactly (longest run first at
    /// each step, never beyond `spills`) and deletes every other run file: they are merge
    /// inputs no longer needed or spills after `spills`, which the caller recreates by
    /// replay. Returns an error if the chain cannot be built (a missing or damaged file);
    /// the caller then starts over with fewer spills.
    pub fn open(
        dir: &Path,
        partition: PartitionId,
        spills: u64,
        keep_merged: bool,
    ) -> Result<TransferRuns, TransferRunError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let files = list(dir)?;
        let mut runs: Vec<Arc<TransferRun>> = Vec::new();
        let mut next = 1;
        let mut used = Vec::new();
        while next <= spills {
            let file = files
                .iter()
                .find(|f| f.first == next && f.last <= spills)
                .ok_or_else(|| TransferRunError::Corrupt {
                    path: dir.join(file_name(next, spills)),
                    offset: 0,
                    reason: format!("no run starts at spill {next}"),
                })?;
            runs.push(Arc::new(TransferRun::open(file, partition, true)?));
            used.push(file.path.clone());
            next = file.last + 1;
        }
        for file in &files {
            if !used.contains(&file.path) {
                fs::remove_file(&file.path).map_err(io_error(&file.path))?;
            }
        }
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".ttr.tmp") {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(io_error(&path))?;
                }
            }
        }
        let record_count = runs.iter().map(|run| run.count).sum();
        let mut ids = FxHashSet::default();
        ids.reserve(record_count as usize);
        for run in &runs {
            for i in 0..run.count {
                ids.insert(id_hash(run.id(i)));
            }
        }
        Ok(TransferRuns {
            dir: dir.to_path_buf(),
            partition,
            runs,
            ids,
            spills,
            record_count,
            obsolete: Vec::new(),
            keep_merged,
            merge_error: None,
            merge_records_max: MERGE_RECORDS_MAX,
            runs_max: RUNS_MAX,
        })
    }

    /// How many spills the runs cover.
    pub fn spills(&self) -> u64 {
        self.spills
    }
    /// How many records are on disk.
    pub fn record_count(&self) -> u64 {
        self.record_count
    }
    /// How many run files are open.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }
    /// The sum of the runs' digest parts.
    pub fn digest(&self) -> u128 {
        self.runs
            .iter()
            .fold(0u128, |sum, run| sum.wrapping_add(run.digest))
    }
    /// The open runs, oldest first.
    pub fn runs(&self) -> &[Arc<TransferRun>] {
        &self.runs
    }

    /// Whether `id` may be on disk (never wrong when it says no).
    pub fn may_contain(&self, id: TransferId) -> bool {
        !self.ids.is_empty() && self.ids.contains(&id_hash(id))
    }

    /// The record of `id` if it is on disk.
    pub fn get(&self, id: TransferId) -> Result<Option<TransferRecord>, TransferRunError> {
        let hash = id_hash(id);
        if !self.ids.contains(&hash) {
            return Ok(None);
        }
        for run in self.runs.iter().rev() {
            if let Some(record) = run.get(id, hash)? {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// The error of the last failed merge, if any.
    pub fn merge_error(&self) -> Option<&str> {
        self.merge_error.as_deref()
    }

    /// Writes `batch` as the next spill, then merges runs; returns when the new run is
    /// durable (tests; the partition writes on a spill thread). On an error nothing changed.
    #[cfg(test)]
    pub(crate) fn spill(&mut self, batch: &Batch) -> Result<(), TransferRunError> {
        let written = self.writer().write(batch)?;
        self.install(written, &batch.ids);
        Ok(())
    }

    /// What writing the next spill needs, to do it on another thread
    /// ([`SpillWriter::write`]) and [`TransferRuns::install`] the result. One at a time.
    pub(crate) fn writer(&self) -> SpillWriter {
        SpillWriter {
            dir: self.dir.clone(),
            partition: self.partition,
            seq: self.spills + 1,
            runs: self.runs.clone(),
            merge_records_max: self.merge_records_max,
            runs_max: self.runs_max,
        }
    }

    /// Installs what a [`SpillWriter`] wrote, holding `ids`: the new run list, the ids'
    /// hashes, and the replaced runs' files (kept until released with `keep_merged`,
    /// else deleted). A merge that failed there is kept in [`TransferRuns::merge_error`]
    /// (its inputs stay; the next spill tries again).
    pub(crate) fn install(&mut self, written: WrittenRuns, ids: &[TransferId]) {
        assert_eq!(
            written.seq,
            self.spills + 1,
            "spills installed out of order"
        );
        self.spills = written.seq;
        self.runs = written.runs;
        self.record_count += ids.len() as u64;
        debug_assert_eq!(
            self.runs.iter().map(|r| r.count).sum::<u64>(),
            self.record_count
        );
        for &id in ids {
            self.ids.insert(id_hash(id));
        }
        self.merge_error = written.merge_error;
        for path in written.replaced {
            if self.keep_merged {
                self.obsolete.push((self.spills, path));
            } else if let Err(e) = fs::remove_file(&path) {
                // Left over: not in the chain, deleted by the next open.
                self.merge_error = Some(io_error(&path)(e).to_string());
            }
        }
    }

    /// Deletes the files replaced by merges no checkpoint naming `spills` or more spills
    /// needs: call with the smallest spill count among the checkpoints kept, once they are
    /// durable. A file that cannot be deleted stays listed (retried next time).
    pub fn release_obsolete(&mut self, spills: u64) -> Result<(), TransferRunError> {
        let mut result = Ok(());
        self.obsolete.retain(|(replaced_at, path)| {
            if *replaced_at > spills || result.is_err() {
                return true;
            }
            match fs::remove_file(path) {
                Ok(()) => false,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => {
                    result = Err(io_error(path)(e));
                    true
                }
            }
        });
        result
    }
}

/// Encodes a record's body (everything but its id, which the id section holds).
pub fn encode_record(r: &TransferRecord, out: &mut Vec<u8>) {
    crate::checkpoint::encode_transfer_record(r, out);
}

/// Decodes a record's body, checking every tag and that it is consumed exactly. A record on
/// disk is immutable, so a pending hold (which can still change) is never one.
pub fn decode_record(id: TransferId, bytes: &[u8]) -> Result<TransferRecord, String> {
    let record = crate::checkpoint::decode_transfer_record_exact(id, bytes)?;
    if record.hold == HoldStatus::Pending {
        return Err("bad hold status 1 on disk: pending holds stay in memory".into());
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Balances, TransferOutcome, TransferResult};
    use crate::partition::TransferKind;
    use crate::types::{AccountId, LedgerId, Timestamp};

    fn record(id: u128) -> TransferRecord {
        TransferRecord {
            id: TransferId(id),
            fingerprint: id * 7,
            kind: TransferKind::Plain,
            debit_account: AccountId(1),
            credit_account: AccountId(2),
            ledger: LedgerId(1),
            amount: id,
            reference: TransferId(0),
            timeout_s: 0,
            outcome: TransferOutcome {
                result: TransferResult::Ok,
                timestamp: Timestamp(id as u64),
                debit_balances: Balances::default(),
                credit_balances: Balances {
                    credits_posted: id,
                    ..Balances::default()
                },
            },
            hold: HoldStatus::NotAHold,
            refunded: 0,
            // Every other record has details, to cover both encodings.
            details: if id.is_multiple_of(2) {
                crate::partition::TransferDetails {
                    code: 7,
                    flags: crate::command::TransferFlags(0),
                    user_data_128: id << 64,
                    user_data_64: 9,
                    user_data_32: 3,
                    memo: crate::partition::Memo::new(b"order 42").expect("short memo"),
                }
            } else {
                crate::partition::TransferDetails::default()
            },
        }
    }

    fn spill_ids(runs: &mut TransferRuns, ids: &[u128]) {
        let records: Vec<TransferRecord> = ids.iter().map(|&id| record(id)).collect();
        runs.spill(&Batch::new(records.iter(), 5)).expect("spill");
    }

    #[test]
    fn the_backstop_merges_the_smallest_adjacent_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut runs = TransferRuns::open(dir.path(), PartitionId(3), 0, false).expect("open");
        // No size-tiering, at most four runs: every spill past the fourth goes through the
        // backstop.
        runs.merge_records_max = 1;
        runs.runs_max = 4;
        let ids: Vec<u128> = (1..=40).map(|i| i * 1000 + (i % 7)).collect();
        for chunk in ids.chunks(2) {
            spill_ids(&mut runs, chunk);
            assert!(runs.run_count() <= 4, "{} runs", runs.run_count());
        }
        for &id in &ids {
            let record = runs.get(TransferId(id)).expect("read").expect("present");
            assert_eq!(record, self::record(id));
        }
        // The backstop merges the smallest adjacent pair, so the newest run does not absorb
        // every spill (as merging the newest two would make it).
        let newest = runs.runs().last().map_or(0, |r| r.count());
        assert!(
            newest < ids.len() as u64 / 2,
            "the newest run holds {newest}"
        );
        let spills = runs.spills();
        drop(runs);
        let reopened =
            TransferRuns::open(dir.path(), PartitionId(3), spills, false).expect("reopen");
        assert_eq!(reopened.record_count(), ids.len() as u64);
    }

    #[test]
    fn spills_merge_and_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut runs = TransferRuns::open(dir.path(), PartitionId(3), 0, false).expect("open");
        spill_ids(&mut runs, &[10, 30, 50]);
        spill_ids(&mut runs, &[20, 40, 60, 80]);
        spill_ids(&mut runs, &[5]);
        assert_eq!(runs.spills(), 3);
        assert_eq!(runs.record_count(), 8);
        assert_eq!(runs.run_count(), 2, "the first two merged");
        assert_eq!(runs.digest(), 15);
        for id in [5, 10, 20, 30, 40, 50, 60, 80] {
            assert_eq!(runs.get(TransferId(id)).expect("read"), Some(record(id)));
        }
        for id in [1, 15, 70, 1000] {
            assert_eq!(runs.get(TransferId(id)).expect("read"), None);
        }
        // Reopening at the same spill count finds the same chain; at an earlier count, a
        // chain that ends there cannot be built (the merged run passes it).
        drop(runs);
        let runs = TransferRuns::open(dir.path(), PartitionId(3), 3, false).expect("reopen");
        assert_eq!(runs.get(TransferId(60)).expect("read"), Some(record(60)));
        drop(runs);
        assert!(TransferRuns::open(dir.path(), PartitionId(3), 1, false).is_err());
    }

    #[test]
    fn every_single_byte_corruption_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut runs = TransferRuns::open(dir.path(), PartitionId(3), 0, false).expect("open");
        spill_ids(&mut runs, &[10, 30, 50]);
        drop(runs);
        let file = list(dir.path()).expect("list").remove(0);
        let bytes = fs::read(&file.path).expect("read");
        for offset in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x10;
            fs::write(&file.path, &damaged).expect("write");
            assert!(
                TransferRun::open(&file, PartitionId(3), true).is_err(),
                "flip at byte {offset} went unnoticed"
            );
        }
        for len in 0..bytes.len() {
            fs::write(&file.path, &bytes[..len]).expect("write");
            assert!(TransferRun::open(&file, PartitionId(3), true).is_err());
        }
        fs::write(&file.path, &bytes).expect("write");
        assert!(TransferRun::open(&file, PartitionId(4), true).is_err());
        assert!(TransferRun::open(&file, PartitionId(3), true).is_ok());
    }
}
