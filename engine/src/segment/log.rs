//! [`Log`]: segment files, the in-memory record index, append, group commit, reads,
//! suffix truncation and recovery. See the module essay in `segment/mod.rs`.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

use super::codec::{
    check_record, decode_record, decode_segment_header, decode_slot, encode_record,
    encode_segment_header, encode_slot, newest_slot, DurabilitySlot, Entry, SegmentHeader,
    DURABILITY_SLOT_OFFSETS, ENTRY_PAYLOAD_SIZE_MAX, RECORD_HEADER_SIZE, RECORD_MARKER,
    SEGMENT_HEADER_SIZE, SEGMENT_RECORDS_OFFSET,
};
use super::error::{CorruptReason, IoOp, LogError};
use crate::types::{LogIndex, PartitionId, SegmentId, Term};

/// Default roll-over size of a segment file: 64 MiB.
pub const SEGMENT_SIZE_MAX_DEFAULT: u64 = 64 * 1024 * 1024;

/// Smallest accepted `segment_size_max` (small values are for tests).
pub const SEGMENT_SIZE_MAX_MIN: u64 = 4 * 1024;

/// Largest accepted `segment_size_max`.
pub const SEGMENT_SIZE_MAX_LIMIT: u64 = 1024 * 1024 * 1024;

/// The longest segment file this code can write: a full segment, or a header plus one
/// record of maximal size. Recovery rejects longer files before mapping them.
const SEGMENT_FILE_SIZE_MAX: u64 = SEGMENT_SIZE_MAX_LIMIT
    + SEGMENT_RECORDS_OFFSET as u64
    + RECORD_HEADER_SIZE as u64
    + ENTRY_PAYLOAD_SIZE_MAX as u64;

/// The encoding buffer keeps its capacity between appends up to this size; after a larger
/// batch (say one maximal entry) it is released rather than pinning 64 MiB forever.
const WRITE_BUFFER_RETAINED_SIZE_MAX: usize = 4 * 1024 * 1024;

const SEGMENT_FILE_SUFFIX: &str = ".seg";
const SEGMENT_FILE_DIGITS: usize = 10;

/// Configuration of one partition's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// The partition; written into and checked against every segment header.
    pub partition: PartitionId,
    /// Roll over to a new segment when the next record would make the file larger than
    /// this. Between [`SEGMENT_SIZE_MAX_MIN`] and [`SEGMENT_SIZE_MAX_LIMIT`].
    pub segment_size_max: u64,
}

impl LogConfig {
    /// The default configuration for `partition`.
    pub fn new(partition: PartitionId) -> LogConfig {
        LogConfig {
            partition,
            segment_size_max: SEGMENT_SIZE_MAX_DEFAULT,
        }
    }
}

/// What [`Log::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in the log after recovery.
    pub segments: usize,
    /// Entries in the log after recovery.
    pub entries: u64,
    /// Bytes of torn tail cut from the last segment.
    pub truncated_bytes: u64,
    /// Where the torn tail was cut: the last segment and the new file length.
    pub truncated_at: Option<(SegmentId, u64)>,
    /// A last segment whose header was never completely written, and which was deleted.
    pub removed_segment: Option<SegmentId>,
    /// The durable prefix recorded by the last segment's durability slot: every entry up to
    /// here was present and intact. Only what followed it may have been cut.
    pub durable: LogIndex,
    /// Whether well-formed records followed the cut: records of one unsynced group commit
    /// that reached the disk out of order.
    pub reordered_tail: bool,
    /// Damage that [`Log::open_repairing`] cut away, in the order found (empty after
    /// [`Log::open`], which refuses damage instead).
    pub repairs: Vec<Repair>,
}

/// Damage [`Log::open_repairing`] found and cut: everything from `offset` of `segment` on
/// (or only the durability slots, when the records were intact but too few) is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// The damaged segment.
    pub segment: SegmentId,
    /// Where the damage starts.
    pub offset: u64,
    /// What was wrong.
    pub reason: CorruptReason,
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "segment {} at offset {}: {}",
            self.segment, self.offset, self.reason
        )
    }
}

/// Counters of the IO the log has issued since it was opened; tests use them to check group
/// commit and benches to explain throughput.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// fsync/fdatasync calls on files and the directory.
    pub fsyncs: u64,
    /// Write calls for records.
    pub writes: u64,
    /// Segment files created.
    pub segments_created: u64,
}

/// The file name of a segment: its id zero-padded to ten digits, then `.seg`.
pub fn segment_file_name(segment: SegmentId) -> String {
    format!(
        "{:0width$}{SEGMENT_FILE_SUFFIX}",
        segment.0,
        width = SEGMENT_FILE_DIGITS
    )
}

fn parse_segment_file_name(name: &str) -> Option<SegmentId> {
    let digits = name.strip_suffix(SEGMENT_FILE_SUFFIX)?;
    if digits.len() != SEGMENT_FILE_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().map(SegmentId)
}

fn io_error(op: IoOp, path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(segment: SegmentId, offset: u64, reason: CorruptReason) -> LogError {
    LogError::Corrupt {
        segment,
        offset,
        reason,
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).expect("segment offsets are bounded by SEGMENT_FILE_SIZE_MAX")
}

/// Maps the first `size` bytes of a segment file read-only.
fn map_segment(file: &File, size: u64, path: &Path) -> Result<Mmap, LogError> {
    assert!(
        size >= SEGMENT_HEADER_SIZE as u64,
        "mapping {size} bytes, less than a header"
    );
    assert!(
        size <= SEGMENT_FILE_SIZE_MAX,
        "mapping {size} bytes, more than a segment"
    );
    // SAFETY: the mapping is read-only and covers only bytes that exist. Segment files are
    // append-only and owned by this Log alone; a mapped segment is either sealed (never
    // written, truncated or deleted while mapped: `truncate_suffix` drops the map first) or
    // being scanned by recovery, which drops the map before it truncates a torn tail.
    let map = unsafe { MmapOptions::new().len(to_usize(size)).map(file) };
    map.map_err(io_error(IoOp::Map, path))
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    let handle = File::open(dir).map_err(io_error(IoOp::Open, dir))?;
    handle.sync_all().map_err(io_error(IoOp::Sync, dir))
}

/// Position (relative to `bytes`) of the first record marker at which a record validates.
fn find_valid_record(bytes: &[u8]) -> Option<usize> {
    let marker = RECORD_MARKER.to_le_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let found = bytes[start..]
            .windows(marker.len())
            .position(|w| w == marker)?;
        let at = start + found;
        if check_record(&bytes[at..]).is_ok() {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

/// Writes `slot` into the next slot position of `segment` (alternating, so a torn write
/// leaves the other, older slot intact). Does not fsync, and does not mark the segment
/// dirty: the next sync of new records makes the slot durable too, and until then the older
/// slot's lower bound stands.
fn write_slot(segment: &mut Segment, slot: DurabilitySlot) -> Result<(), LogError> {
    let position = segment.slot_next;
    segment
        .file
        .write_all_at(
            &encode_slot(&slot),
            DURABILITY_SLOT_OFFSETS[position] as u64,
        )
        .map_err(io_error(IoOp::Write, &segment.path))?;
    segment.slot = Some(slot);
    segment.slot_next = 1 - position;
    Ok(())
}

/// Cuts the damage [`Log::open`] reported at `offset` of `segment` (for
/// [`Log::open_repairing`]): every later segment goes; so does the segment itself if its
/// header is bad, else its records from `offset` on. The surviving last segment's slots are
/// rewritten to claim nothing durable (the next open checks its records afresh and records
/// what it keeps).
fn cut_damage(
    dir: &Path,
    segment: SegmentId,
    offset: u64,
    reason: &CorruptReason,
) -> Result<(), LogError> {
    let mut later: Vec<SegmentId> = Vec::new();
    for item in fs::read_dir(dir).map_err(io_error(IoOp::Open, dir))? {
        let item = item.map_err(io_error(IoOp::Open, dir))?;
        if let Some(id) = item.file_name().to_str().and_then(parse_segment_file_name) {
            if id > segment {
                later.push(id);
            }
        }
    }
    later.sort();
    for id in later.iter().rev() {
        let path = dir.join(segment_file_name(*id));
        fs::remove_file(&path).map_err(io_error(IoOp::Remove, &path))?;
    }
    let path = dir.join(segment_file_name(segment));
    let whole_segment = offset < SEGMENT_RECORDS_OFFSET as u64
        && !matches!(
            reason,
            CorruptReason::Slots(_)
                | CorruptReason::SuccessorMissing
                | CorruptReason::DurableMissing { .. }
        );
    if whole_segment {
        fs::remove_file(&path).map_err(io_error(IoOp::Remove, &path))?;
    } else {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(IoOp::Open, &path))?;
        let length = file.metadata().map_err(io_error(IoOp::Open, &path))?.len();
        if offset < length && offset >= SEGMENT_RECORDS_OFFSET as u64 {
            file.set_len(offset)
                .map_err(io_error(IoOp::Truncate, &path))?;
        }
        let mut area = vec![0u8; SEGMENT_RECORDS_OFFSET];
        let read = file.read_at(&mut area, 0).unwrap_or(0);
        let sequence = newest_slot(&area[..read]).map_or(0, |(_, s)| s.sequence);
        for (i, &slot_offset) in DURABILITY_SLOT_OFFSETS.iter().enumerate() {
            let slot = DurabilitySlot {
                sealed: false,
                sequence: sequence + 1 + i as u64,
                durable: LogIndex(0),
                durable_term: Term(0),
            };
            file.write_all_at(&encode_slot(&slot), slot_offset as u64)
                .map_err(io_error(IoOp::Write, &path))?;
        }
        file.sync_data().map_err(io_error(IoOp::Sync, &path))?;
    }
    sync_dir(dir)
}

/// One segment file and the in-memory index of its records.
#[derive(Debug)]
struct Segment {
    id: SegmentId,
    path: PathBuf,
    file: File,
    first_index: LogIndex,
    /// Byte offset of each record; record `i` holds index `first_index + i`.
    offsets: Vec<u64>,
    /// Term of each record, parallel to `offsets`.
    terms: Vec<Term>,
    /// Bytes in use: the end of the last record (the file length, once synced).
    size: u64,
    /// Present exactly when the segment is sealed (not the last one).
    map: Option<Mmap>,
    /// Written since the last fdatasync.
    dirty: bool,
    /// Bytes in use at the last fdatasync: what a crash cannot lose.
    synced_size: u64,
    /// The newest durability slot written (or found), if any.
    slot: Option<DurabilitySlot>,
    /// Which of the two slot positions the next slot write goes to.
    slot_next: usize,
}

impl Segment {
    fn entry_count(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// The last index in this segment, or `first_index - 1` if it is empty.
    fn last_index(&self) -> LogIndex {
        LogIndex(self.first_index.0 + self.entry_count() - 1)
    }

    fn slot(&self, index: LogIndex) -> usize {
        assert!(
            index >= self.first_index,
            "index {index} before segment start {}",
            self.first_index
        );
        assert!(
            index <= self.last_index(),
            "index {index} after segment end {}",
            self.last_index()
        );
        to_usize(index.0 - self.first_index.0)
    }

    /// End offset of the record in `slot`.
    fn record_end(&self, slot: usize) -> u64 {
        self.offsets.get(slot + 1).copied().unwrap_or(self.size)
    }

    /// Reads bytes `[start, end)` of the segment.
    fn read_range(&self, start: u64, end: u64) -> Result<Vec<u8>, LogError> {
        assert!(start <= end, "read range [{start}, {end}) reversed");
        assert!(
            end <= self.size,
            "read range end {end} beyond segment size {}",
            self.size
        );
        match &self.map {
            Some(map) => Ok(map[to_usize(start)..to_usize(end)].to_vec()),
            None => {
                let mut buf = vec![0u8; to_usize(end - start)];
                self.file
                    .read_exact_at(&mut buf, start)
                    .map_err(io_error(IoOp::Read, &self.path))?;
                Ok(buf)
            }
        }
    }
}

/// The segmented, append-only log of one partition. See the module essay.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by id (and therefore by index); the last one is active.
    segments: Vec<Segment>,
    next_segment_id: SegmentId,
    committed: LogIndex,
    synced: LogIndex,
    poisoned: bool,
    /// Encoding buffer reused across appends; bounded by one segment plus one record.
    buffer: Vec<u8>,
    stats: LogStats,
    /// Injected faults and bugs (tests and the simulator only), see [`LogFaults`].
    faults: Option<Arc<LogFaults>>,
}

/// Faults a test or the cluster simulator injects into a log, and bugs it plants in it to
/// prove that the simulator notices them. Each `fail_*` and `crash_*` switch fires once, at
/// the next operation of its kind. Never set outside tests.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct LogFaults {
    /// The next record write fails with EIO (the log is poisoned, as after a real one).
    pub fail_next_write: AtomicBool,
    /// The next fsync fails with EIO, and — as Linux may after a failed fsync — the pages it
    /// was to write are dropped: the file's unsynced bytes read back as zeros.
    pub fail_next_sync: AtomicBool,
    /// The process "crashes" at the next fsync, before it happens: the sync returns an error
    /// and nothing is synced (the caller must stop, as a crashed process would).
    pub crash_before_next_sync: AtomicBool,
    /// Bug: record the durable prefix in the slot *before* the fsync that makes it so.
    pub bug_slot_before_sync: AtomicBool,
    /// Bug: after a failed fsync, carry on as if it had worked (an fsync retried).
    pub bug_retry_failed_sync: AtomicBool,
}

impl LogFaults {
    fn take(switch: &AtomicBool) -> bool {
        switch.swap(false, Ordering::Relaxed)
    }
}

fn injected(op: IoOp, path: &Path, what: &str) -> LogError {
    io_error(op, path)(std::io::Error::other(format!("injected fault: {what}")))
}

impl Log {
    /// Opens the log in `dir` (creating the directory if needed) and recovers it: validates
    /// every header and record, removes a torn segment creation, cuts a torn tail, and
    /// fsyncs what it kept. See the module essay for the exact rules.
    pub fn open(dir: &Path, config: LogConfig) -> Result<(Log, RecoveryReport), LogError> {
        if !(SEGMENT_SIZE_MAX_MIN..=SEGMENT_SIZE_MAX_LIMIT).contains(&config.segment_size_max) {
            return Err(LogError::InvalidConfig {
                segment_size_max: config.segment_size_max,
                min: SEGMENT_SIZE_MAX_MIN,
                max: SEGMENT_SIZE_MAX_LIMIT,
            });
        }
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io_error(IoOp::Create, dir))?;
            // Make the new directory's own entry durable; segment creation only fsyncs `dir`.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let mut ids = Vec::new();
        for item in fs::read_dir(dir).map_err(io_error(IoOp::Open, dir))? {
            let item = item.map_err(io_error(IoOp::Open, dir))?;
            if let Some(id) = item.file_name().to_str().and_then(parse_segment_file_name) {
                ids.push(id);
            }
        }
        ids.sort();

        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments: Vec::new(),
            next_segment_id: SegmentId(0),
            committed: LogIndex(0),
            synced: LogIndex(0),
            poisoned: false,
            buffer: Vec::new(),
            stats: LogStats::default(),
            faults: None,
        };
        let mut report = RecoveryReport::default();
        for (position, &id) in ids.iter().enumerate() {
            let is_last = position + 1 == ids.len();
            log.recover_segment(id, is_last, &mut report)?;
        }
        if let Some(last) = ids.last() {
            log.next_segment_id = SegmentId(last.0.checked_add(1).expect("segment id overflow"));
        }
        log.check_durable_prefix(&mut report)?;
        // The last segment becomes the active one: unmap it (it may have been sealed before a
        // torn creation after it was removed) and make whatever a crashed process left in
        // the page cache durable before synced_index claims it.
        if let Some(active) = log.segments.last_mut() {
            active.map = None;
            active
                .file
                .sync_data()
                .map_err(io_error(IoOp::Sync, &active.path))?;
            log.stats.fsyncs += 1;
        }
        log.synced = log.last_index();
        // Everything kept is durable now: say so in the slot (the next sync makes the slot
        // itself durable; until then the older slot's lower bound stands).
        log.record_durable()?;
        report.segments = log.segments.len();
        report.entries = log.segments.iter().map(Segment::entry_count).sum();
        log.check_invariants();
        Ok((log, report))
    }

    /// Opens the log like [`Log::open`], but cuts damage away instead of refusing it: the
    /// log keeps the intact prefix before the first damage found, and
    /// [`RecoveryReport::repairs`] says what was cut. For a replica whose peers hold the
    /// lost entries again (it must take no part in elections until it has them back);
    /// never for a lone copy of the data, where the cut entries would be gone for good.
    pub fn open_repairing(
        dir: &Path,
        config: LogConfig,
    ) -> Result<(Log, RecoveryReport), LogError> {
        let mut repairs = Vec::new();
        // Each repair removes at least one segment, or the damage it found for good, so a
        // log of n segments needs at most n + 2 of them (a slot, a record, then a clean open).
        let segment_count = fs::read_dir(dir).map_or(0, |items| items.count());
        for _ in 0..segment_count + 4 {
            match Log::open(dir, config) {
                Ok((log, mut report)) => {
                    report.repairs = repairs;
                    return Ok((log, report));
                }
                Err(LogError::Corrupt {
                    segment,
                    offset,
                    reason,
                }) => {
                    cut_damage(dir, segment, offset, &reason)?;
                    repairs.push(Repair {
                        segment,
                        offset,
                        reason,
                    });
                }
                Err(other) => return Err(other),
            }
        }
        let last = repairs.last().map_or(String::new(), |r| r.to_string());
        Err(LogError::Io {
            op: IoOp::Truncate,
            path: dir.to_path_buf(),
            source: std::io::Error::other(format!(
                "damage keeps reappearing after {} repairs (last: {last})",
                repairs.len()
            )),
        })
    }

    /// After every segment was scanned: the log starts at index 1 (nothing is ever
    /// compacted), and it still holds the durable prefix its last segment's slot records —
    /// with the recorded term at its end — and no later segment was lost.
    fn check_durable_prefix(&mut self, report: &mut RecoveryReport) -> Result<(), LogError> {
        let Some(first) = self.segments.first() else {
            return Ok(());
        };
        if first.first_index != LogIndex(1) {
            let reason = CorruptReason::IndexGap {
                expected: LogIndex(1),
                found: first.first_index,
            };
            return Err(corrupt(first.id, 0, reason));
        }
        let last = self.segments.last().expect("a first segment");
        let Some(slot) = last.slot else {
            let error = decode_slot(&[]).expect_err("an empty slot never decodes");
            return Err(corrupt(
                last.id,
                SEGMENT_HEADER_SIZE as u64,
                CorruptReason::Slots(error),
            ));
        };
        report.durable = slot.durable;
        if slot.sealed {
            return Err(corrupt(
                last.id,
                SEGMENT_HEADER_SIZE as u64,
                CorruptReason::SuccessorMissing,
            ));
        }
        let last_index = self.last_index();
        if last_index < slot.durable {
            let reason = CorruptReason::DurableMissing {
                durable: slot.durable,
                last: last_index,
            };
            return Err(corrupt(last.id, last.size, reason));
        }
        if slot.durable.0 > 0 {
            let holder = &self.segments[self.segment_position(slot.durable)];
            let found = holder.terms[holder.slot(slot.durable)];
            if found != slot.durable_term {
                let reason = CorruptReason::DurableTermMismatch {
                    index: slot.durable,
                    expected: slot.durable_term,
                    found,
                };
                let offset = holder.offsets[holder.slot(slot.durable)];
                return Err(corrupt(holder.id, offset, reason));
            }
        }
        Ok(())
    }

    /// Validates one segment file and adds it to `self.segments`, or removes it if it is a
    /// torn creation.
    fn recover_segment(
        &mut self,
        id: SegmentId,
        is_last: bool,
        report: &mut RecoveryReport,
    ) -> Result<(), LogError> {
        let path = self.dir.join(segment_file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(IoOp::Open, &path))?;
        let file_size = file.metadata().map_err(io_error(IoOp::Open, &path))?.len();
        if file_size > SEGMENT_FILE_SIZE_MAX {
            let reason = CorruptReason::FileTooLarge {
                size: file_size,
                max: SEGMENT_FILE_SIZE_MAX,
            };
            return Err(corrupt(id, 0, reason));
        }
        let map = if file_size >= SEGMENT_HEADER_SIZE as u64 {
            Some(map_segment(&file, file_size, &path)?)
        } else {
            None
        };
        let bytes: &[u8] = map.as_deref().unwrap_or(&[]);

        // A segment is created with one write of its header and first slot, an fdatasync and
        // a directory fsync, before any record is written. A last file no longer than that
        // area which does not hold a valid header and slot, or one of zeros only (blocks
        // allocated, never written), never held a record: a torn creation. Remove it. (Had it
        // held records, its predecessor would be sealed, and that is checked afterwards.)
        if is_last {
            let complete = file_size >= SEGMENT_RECORDS_OFFSET as u64
                && decode_segment_header(bytes).is_ok()
                && newest_slot(bytes).is_some();
            let torn = bytes.iter().all(|&b| b == 0)
                || (file_size <= SEGMENT_RECORDS_OFFSET as u64 && !complete);
            if torn {
                drop(map);
                drop(file);
                fs::remove_file(&path).map_err(io_error(IoOp::Remove, &path))?;
                sync_dir(&self.dir)?;
                self.stats.fsyncs += 1;
                report.removed_segment = Some(id);
                return Ok(());
            }
        }
        let header =
            decode_segment_header(bytes).map_err(|e| corrupt(id, 0, CorruptReason::Header(e)))?;
        if header.partition != self.config.partition {
            let reason = CorruptReason::PartitionMismatch {
                expected: self.config.partition,
                found: header.partition,
            };
            return Err(corrupt(id, 0, reason));
        }
        if header.segment != id {
            return Err(corrupt(
                id,
                0,
                CorruptReason::SegmentIdMismatch {
                    found: header.segment,
                },
            ));
        }
        if let Some(previous) = self.segments.last() {
            let expected = previous.last_index().next();
            if header.first_index != expected {
                let reason = CorruptReason::IndexGap {
                    expected,
                    found: header.first_index,
                };
                return Err(corrupt(id, 0, reason));
            }
        }
        let newest = newest_slot(bytes);
        // In the last segment, entries up to the durable prefix must be intact; after it
        // come at most the records of unsynced group commits, which a crash may have torn or
        // written out of order. Every other segment was sealed by an fsync: all intact.
        let durable = match (is_last, newest) {
            (true, Some((_, slot))) => slot.durable,
            (true, None) => {
                let error =
                    decode_slot(&bytes[SEGMENT_HEADER_SIZE..]).expect_err("no slot decodes");
                return Err(corrupt(
                    id,
                    SEGMENT_HEADER_SIZE as u64,
                    CorruptReason::Slots(error),
                ));
            }
            (false, _) => LogIndex(u64::MAX),
        };

        let mut previous_term = self.last_term();
        let mut offsets = Vec::new();
        let mut terms = Vec::new();
        let mut expected = header.first_index;
        let mut offset = SEGMENT_RECORDS_OFFSET;
        let mut torn_at = None;
        while offset < bytes.len() {
            let reason = match check_record(&bytes[offset..]) {
                Err(error) => Some(CorruptReason::Record(error)),
                Ok(meta) if meta.index != expected => Some(CorruptReason::IndexGap {
                    expected,
                    found: meta.index,
                }),
                Ok(meta) if meta.term < previous_term => Some(CorruptReason::TermRegressed {
                    index: meta.index,
                    term: meta.term,
                    previous: previous_term,
                }),
                Ok(meta) => {
                    offsets.push(offset as u64);
                    terms.push(meta.term);
                    previous_term = meta.term;
                    expected = expected.next();
                    offset += meta.record_size();
                    None
                }
            };
            if let Some(reason) = reason {
                if expected <= durable {
                    return Err(corrupt(id, offset as u64, reason));
                }
                // Past the durable prefix: an unsynced tail. Cut it here, whatever follows.
                report.reordered_tail = find_valid_record(&bytes[offset + 1..]).is_some();
                torn_at = Some(offset as u64);
                break;
            }
        }
        assert!(
            offset <= bytes.len(),
            "scan overran segment: {offset} > {}",
            bytes.len()
        );

        let size = offset as u64;
        let map = match torn_at {
            None => map,
            Some(cut) => {
                assert!(is_last, "torn tail in non-last segment {id}");
                assert_eq!(cut, size, "torn tail at {cut}, scan ended at {size}");
                // The map must be gone before the file shrinks under it.
                drop(map);
                file.set_len(cut).map_err(io_error(IoOp::Truncate, &path))?;
                file.sync_data().map_err(io_error(IoOp::Sync, &path))?;
                self.stats.fsyncs += 1;
                report.truncated_bytes = file_size - cut;
                report.truncated_at = Some((id, cut));
                None
            }
        };
        let (slot, slot_next) = match newest {
            Some((position, slot)) => (Some(slot), 1 - position),
            None => (None, 0),
        };
        self.segments.push(Segment {
            id,
            path,
            file,
            first_index: header.first_index,
            offsets,
            terms,
            size,
            map,
            dirty: false,
            synced_size: size,
            slot,
            slot_next,
        });
        Ok(())
    }

    fn check_poisoned(&self) -> Result<(), LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        Ok(())
    }

    /// Marks the log poisoned if `result` is an error (used for writes and fsyncs).
    fn poison_on_error<T>(&mut self, result: Result<T, LogError>) -> Result<T, LogError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Index of the first stored entry; `LogIndex(1)` when the log is empty.
    pub fn first_index(&self) -> LogIndex {
        self.segments.first().map_or(LogIndex(1), |s| s.first_index)
    }

    /// Index of the last stored entry; `first_index() - 1` (so `LogIndex(0)` for a new log)
    /// when the log is empty.
    pub fn last_index(&self) -> LogIndex {
        self.segments
            .last()
            .map_or(LogIndex(0), Segment::last_index)
    }

    /// Term of the last stored entry, or `Term(0)` when the log is empty.
    pub fn last_term(&self) -> Term {
        self.segments
            .iter()
            .rev()
            .find_map(|s| s.terms.last().copied())
            .unwrap_or(Term(0))
    }

    /// The highest index known durable: everything up to it survives a crash.
    pub fn synced_index(&self) -> LogIndex {
        self.synced
    }

    /// The committed index last passed to [`Log::set_committed`].
    pub fn committed_index(&self) -> LogIndex {
        self.committed
    }

    /// IO counters since open.
    pub fn stats(&self) -> LogStats {
        self.stats
    }

    /// Position in `self.segments` of the segment holding `index`, which must be stored.
    fn segment_position(&self, index: LogIndex) -> usize {
        let after = self.segments.partition_point(|s| s.first_index <= index);
        assert!(after > 0, "index {index} precedes the log");
        after - 1
    }

    /// The term of the entry at `index`, or `None` if the log does not hold it.
    pub fn term(&self, index: LogIndex) -> Result<Option<Term>, LogError> {
        self.check_poisoned()?;
        if index < self.first_index() || index > self.last_index() {
            return Ok(None);
        }
        let segment = &self.segments[self.segment_position(index)];
        Ok(Some(segment.terms[segment.slot(index)]))
    }

    /// Appends `entries`, which must continue the log (`last_index() + 1`, `+ 2`, ...) with
    /// non-decreasing terms. The bytes reach the file (one write per touched segment) but
    /// are not durable until [`Log::sync`]. The whole batch is validated before anything is
    /// written, so a rejected batch leaves the log unchanged.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        self.check_poisoned()?;
        let mut expected = self.last_index().next();
        let mut previous_term = self.last_term();
        for entry in entries {
            if entry.index != expected {
                return Err(LogError::NotContiguous {
                    expected,
                    found: entry.index,
                });
            }
            if entry.term < previous_term {
                return Err(LogError::TermRegressed {
                    index: entry.index,
                    term: entry.term,
                    previous: previous_term,
                });
            }
            if entry.payload.len() as u64 > ENTRY_PAYLOAD_SIZE_MAX as u64 {
                return Err(LogError::PayloadTooLarge {
                    index: entry.index,
                    size: entry.payload.len() as u64,
                });
            }
            previous_term = entry.term;
            expected = expected.next();
        }

        let mut position = 0;
        while position < entries.len() {
            let needs_segment = match self.segments.last() {
                None => true,
                Some(active) => {
                    active.entry_count() > 0
                        && active.size + entries[position].record_size()
                            > self.config.segment_size_max
                }
            };
            if needs_segment {
                let result = self.roll_over(entries[position].index);
                self.poison_on_error(result)?;
            }
            let result = self.append_to_active(&entries[position..]);
            position += self.poison_on_error(result)?;
        }

        assert_eq!(
            self.last_index().next(),
            expected,
            "append ended at {}, expected {}",
            self.last_index(),
            expected
        );
        Ok(())
    }

    /// Writes a prefix of `entries` that fits into the active segment (at least one entry)
    /// with a single write, and returns its length.
    fn append_to_active(&mut self, entries: &[Entry]) -> Result<usize, LogError> {
        assert!(!entries.is_empty(), "append_to_active without entries");
        let segment_size_max = self.config.segment_size_max;
        let buffer = &mut self.buffer;
        let active = self
            .segments
            .last_mut()
            .expect("roll_over created an active segment");
        assert!(
            active.map.is_none(),
            "active segment {} is mapped",
            active.id
        );
        buffer.clear();
        let mut offsets = Vec::new();
        let mut size = active.size;
        for entry in entries {
            let has_records = active.entry_count() > 0 || !offsets.is_empty();
            if has_records && size + entry.record_size() > segment_size_max {
                break;
            }
            offsets.push(size);
            encode_record(entry, buffer);
            size += entry.record_size();
        }
        assert_eq!(
            size - active.size,
            buffer.len() as u64,
            "buffer size mismatch"
        );
        if let Some(faults) = &self.faults {
            if LogFaults::take(&faults.fail_next_write) {
                return Err(injected(IoOp::Write, &active.path, "write EIO"));
            }
        }
        let written = active.file.write_all_at(buffer, active.size);
        if buffer.capacity() > WRITE_BUFFER_RETAINED_SIZE_MAX {
            *buffer = Vec::new();
        }
        written.map_err(io_error(IoOp::Write, &active.path))?;
        self.stats.writes += 1;
        active.dirty = true;
        active
            .terms
            .extend(entries[..offsets.len()].iter().map(|e| e.term));
        let count = offsets.len();
        active.offsets.extend(offsets);
        active.size = size;
        Ok(count)
    }

    /// Seals the active segment (fdatasync, then map it) and creates a new one whose first
    /// record will be `first_index`. The sync comes first so that a sealed segment never
    /// has a torn tail, which lets recovery treat any bad record in it as corruption.
    fn roll_over(&mut self, first_index: LogIndex) -> Result<(), LogError> {
        if let Some(active) = self.segments.last_mut() {
            if active.dirty {
                active
                    .file
                    .sync_data()
                    .map_err(io_error(IoOp::Sync, &active.path))?;
                self.stats.fsyncs += 1;
                active.dirty = false;
            }
            self.synced = active.last_index();
        }
        // Everything so far is durable: the new segment's first slot says so.
        let first_slot = DurabilitySlot {
            sealed: false,
            sequence: 1,
            durable: self.last_index(),
            durable_term: self.last_term(),
        };
        let id = self.next_segment_id;
        let path = self.dir.join(segment_file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(IoOp::Create, &path))?;
        let mut area = [0u8; SEGMENT_RECORDS_OFFSET];
        area[..SEGMENT_HEADER_SIZE].copy_from_slice(&encode_segment_header(&SegmentHeader {
            partition: self.config.partition,
            segment: id,
            first_index,
        }));
        area[DURABILITY_SLOT_OFFSETS[0]..][..super::codec::DURABILITY_SLOT_SIZE]
            .copy_from_slice(&encode_slot(&first_slot));
        file.write_all_at(&area, 0)
            .map_err(io_error(IoOp::Write, &path))?;
        file.sync_data().map_err(io_error(IoOp::Sync, &path))?;
        sync_dir(&self.dir)?;
        self.stats.fsyncs += 2;
        self.stats.segments_created += 1;
        self.next_segment_id = SegmentId(id.0.checked_add(1).expect("segment id overflow"));
        // Only now that its successor is durable is the previous segment marked sealed, so a
        // recovered last segment that says "sealed" proves a later one was lost.
        if let Some(previous) = self.segments.last_mut() {
            let slot = DurabilitySlot {
                sealed: true,
                ..first_slot
            };
            write_slot(previous, slot)?;
            previous
                .file
                .sync_data()
                .map_err(io_error(IoOp::Sync, &previous.path))?;
            self.stats.fsyncs += 1;
            previous.map = Some(map_segment(&previous.file, previous.size, &previous.path)?);
        }
        self.segments.push(Segment {
            id,
            path,
            file,
            first_index,
            offsets: Vec::new(),
            terms: Vec::new(),
            size: SEGMENT_RECORDS_OFFSET as u64,
            map: None,
            dirty: false,
            synced_size: SEGMENT_RECORDS_OFFSET as u64,
            slot: Some(first_slot),
            slot_next: 1,
        });
        Ok(())
    }

    /// Group commit: one fdatasync per segment written since the last sync. Afterwards
    /// [`Log::synced_index`] equals [`Log::last_index`], and the active segment's next
    /// durability slot records it (made durable by the next sync, so the slot on disk trails
    /// the durable prefix by at most one group commit).
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.check_poisoned()?;
        if self
            .faults
            .as_ref()
            .is_some_and(|f| f.bug_slot_before_sync.load(Ordering::Relaxed))
        {
            self.synced = self.last_index();
            let result = self.record_durable();
            self.poison_on_error(result)?;
        }
        let result = self.sync_dirty();
        self.poison_on_error(result)?;
        self.synced = self.last_index();
        let result = self.record_durable();
        self.poison_on_error(result)
    }

    /// Writes a slot of the active segment saying everything up to `synced` is durable,
    /// unless its newest slot says so already. Never fsyncs: the slot is written after the
    /// sync that made those entries durable, so it never claims more than the disk holds.
    fn record_durable(&mut self) -> Result<(), LogError> {
        let durable = self.synced;
        let durable_term = if durable.0 == 0 {
            Term(0)
        } else {
            self.term_unchecked(durable)
        };
        let Some(active) = self.segments.last_mut() else {
            return Ok(());
        };
        if active
            .slot
            .is_some_and(|s| s.durable == durable && !s.sealed)
        {
            return Ok(());
        }
        let slot = DurabilitySlot {
            sealed: false,
            sequence: active.slot.map_or(1, |s| s.sequence + 1),
            durable,
            durable_term,
        };
        write_slot(active, slot)
    }

    /// The term of a stored entry (which must exist), without the poison check.
    fn term_unchecked(&self, index: LogIndex) -> Term {
        let segment = &self.segments[self.segment_position(index)];
        segment.terms[segment.slot(index)]
    }

    fn sync_dirty(&mut self) -> Result<(), LogError> {
        for segment in self.segments.iter_mut().filter(|s| s.dirty) {
            if let Some(faults) = &self.faults {
                if LogFaults::take(&faults.crash_before_next_sync) {
                    return Err(injected(IoOp::Sync, &segment.path, "crash before fsync"));
                }
                if LogFaults::take(&faults.fail_next_sync) {
                    // The kernel dropped the pages it could not write.
                    let lost = segment.size.saturating_sub(segment.synced_size);
                    segment
                        .file
                        .write_all_at(&vec![0u8; to_usize(lost)], segment.synced_size)
                        .map_err(io_error(IoOp::Write, &segment.path))?;
                    if !faults.bug_retry_failed_sync.load(Ordering::Relaxed) {
                        return Err(injected(IoOp::Sync, &segment.path, "fsync EIO"));
                    }
                }
            }
            segment
                .file
                .sync_data()
                .map_err(io_error(IoOp::Sync, &segment.path))?;
            self.stats.fsyncs += 1;
            segment.dirty = false;
            segment.synced_size = segment.size;
        }
        Ok(())
    }

    /// Installs injected faults (tests and the simulator only; see [`LogFaults`]).
    #[doc(hidden)]
    pub fn set_faults(&mut self, faults: Arc<LogFaults>) {
        self.faults = Some(faults);
    }

    /// Entries in `[from, to)`, stopping before the entry that would take the payload total
    /// above `max_bytes` — but always returning at least one entry when the range is not
    /// empty (the Raft `max_size` convention). The range must lie within
    /// `[first_index(), last_index() + 1]`.
    pub fn read(
        &self,
        from: LogIndex,
        to: LogIndex,
        max_bytes: u64,
    ) -> Result<Vec<Entry>, LogError> {
        self.check_poisoned()?;
        let first = self.first_index();
        let last = self.last_index();
        if from > to || from < first || to > last.next() {
            return Err(LogError::OutOfRange {
                from,
                to,
                first,
                last,
            });
        }
        let mut entries = Vec::new();
        let mut payload_bytes: u64 = 0;
        let mut index = from;
        let mut full = false;
        while index < to && !full {
            let segment = &self.segments[self.segment_position(index)];
            let slot_first = segment.slot(index);
            let slot_end = if to > segment.last_index() {
                to_usize(segment.entry_count())
            } else {
                segment.slot(to)
            };
            // Choose the run from the in-memory index, then read it with one copy or syscall.
            let mut slot_stop = slot_first;
            while slot_stop < slot_end {
                let record_size = segment.record_end(slot_stop) - segment.offsets[slot_stop];
                let payload_size = record_size - RECORD_HEADER_SIZE as u64;
                let any = !entries.is_empty() || slot_stop > slot_first;
                if any && payload_bytes + payload_size > max_bytes {
                    full = true;
                    break;
                }
                payload_bytes += payload_size;
                slot_stop += 1;
            }
            if slot_stop == slot_first {
                break;
            }
            let start = segment.offsets[slot_first];
            let bytes = segment.read_range(start, segment.record_end(slot_stop - 1))?;
            let mut cursor = 0;
            for slot in slot_first..slot_stop {
                let offset = segment.offsets[slot];
                let record_offset = to_usize(offset - start);
                assert_eq!(
                    cursor, record_offset,
                    "records in segment {} not adjacent",
                    segment.id
                );
                let (entry, consumed) = decode_record(&bytes[cursor..])
                    .map_err(|e| corrupt(segment.id, offset, CorruptReason::Record(e)))?;
                if entry.index != index
                    || entry.term != segment.terms[slot]
                    || consumed as u64 != segment.record_end(slot) - offset
                {
                    return Err(corrupt(
                        segment.id,
                        offset,
                        CorruptReason::IndexMismatch { index },
                    ));
                }
                cursor += consumed;
                entries.push(entry);
                index = index.next();
            }
        }
        assert!(
            entries.len() as u64 <= to.0 - from.0,
            "read returned too many entries"
        );
        Ok(entries)
    }

    /// Records that entries up to `committed` are committed and may never be truncated.
    /// The committed index never decreases and never exceeds the last stored index.
    pub fn set_committed(&mut self, committed: LogIndex) {
        assert!(
            committed >= self.committed,
            "committed index regressed from {} to {committed}",
            self.committed
        );
        assert!(
            committed <= self.last_index(),
            "committed index {committed} beyond last index {}",
            self.last_index()
        );
        self.committed = committed;
    }

    /// Removes every entry at or after `from`, as when a new leader overwrites the
    /// uncommitted tail (Raft thesis §3.5). Errors if that would remove a committed entry.
    /// Durable on return: later segments are deleted and the directory fsynced, then the
    /// segment holding `from` is shortened and fdatasynced. A `from` past the end is a no-op.
    pub fn truncate_suffix(&mut self, from: LogIndex) -> Result<(), LogError> {
        self.check_poisoned()?;
        if from <= self.committed {
            return Err(LogError::TruncateCommitted {
                from,
                committed: self.committed,
            });
        }
        let first = self.first_index();
        let last = self.last_index();
        if from > last {
            return Ok(());
        }
        if from < first {
            return Err(LogError::OutOfRange {
                from,
                to: last.next(),
                first,
                last,
            });
        }
        let result = self.truncate_suffix_unchecked(from);
        self.poison_on_error(result)?;
        assert_eq!(
            self.last_index().next(),
            from,
            "truncate_suffix({from}) left last index {}",
            self.last_index()
        );
        self.check_invariants();
        Ok(())
    }

    fn truncate_suffix_unchecked(&mut self, from: LogIndex) -> Result<(), LogError> {
        // The segment that will end the log: the last one starting before `from` (the first
        // segment is kept, emptied, so the log remembers its first index).
        let keep = self
            .segments
            .iter()
            .rposition(|s| s.first_index < from)
            .unwrap_or(0);
        // First lower the durable prefix in that segment's slot, so that a crash part-way
        // never leaves a slot claiming entries that are gone.
        let durable = LogIndex(self.synced.0.min(from.0 - 1));
        let durable_term = if durable.0 == 0 {
            Term(0)
        } else {
            self.term_unchecked(durable)
        };
        let target = &mut self.segments[keep];
        let slot = DurabilitySlot {
            sealed: false,
            sequence: target.slot.map_or(1, |s| s.sequence + 1),
            durable,
            durable_term,
        };
        write_slot(target, slot)?;
        target
            .file
            .sync_data()
            .map_err(io_error(IoOp::Sync, &target.path))?;
        self.stats.fsyncs += 1;
        // Newest first, so that a crash part-way leaves a contiguous prefix of the log.
        let mut removed = false;
        while self.segments.len() > keep + 1 {
            let segment = self
                .segments
                .pop()
                .expect("loop condition checked a last segment");
            let path = segment.path.clone();
            drop(segment);
            fs::remove_file(&path).map_err(io_error(IoOp::Remove, &path))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
            self.stats.fsyncs += 1;
        }
        let active = self
            .segments
            .last_mut()
            .expect("the first segment is never removed");
        // Unmap before the file can shrink: touching a mapped page past the end is SIGBUS.
        active.map = None;
        if from <= active.last_index() {
            let slot = active.slot(from);
            let cut = active.offsets[slot];
            active
                .file
                .set_len(cut)
                .map_err(io_error(IoOp::Truncate, &active.path))?;
            active.offsets.truncate(slot);
            active.terms.truncate(slot);
            active.size = cut;
            active.synced_size = active.synced_size.min(cut);
            active.dirty = true;
        }
        self.sync_dirty()?;
        self.synced = self.last_index();
        self.record_durable()
    }

    /// Checks the in-memory structure: contiguous segments, increasing offsets, only the last
    /// segment unmapped, synced and committed within the log. O(entries); tests call it after
    /// every step.
    pub fn check_invariants(&self) {
        let mut expected: Option<LogIndex> = None;
        let mut previous_id: Option<SegmentId> = None;
        for (position, segment) in self.segments.iter().enumerate() {
            if let Some(expected) = expected {
                assert_eq!(
                    segment.first_index, expected,
                    "segment {} not contiguous",
                    segment.id
                );
            }
            if let Some(previous_id) = previous_id {
                assert!(
                    segment.id > previous_id,
                    "segment ids {previous_id}, {} not increasing",
                    segment.id
                );
            }
            assert_eq!(
                segment.offsets.len(),
                segment.terms.len(),
                "segment {} index",
                segment.id
            );
            let is_last = position + 1 == self.segments.len();
            assert_eq!(
                segment.map.is_none(),
                is_last,
                "segment {} mapping",
                segment.id
            );
            assert!(
                !segment.dirty || is_last || self.poisoned,
                "sealed segment {} dirty",
                segment.id
            );
            let mut end = SEGMENT_RECORDS_OFFSET as u64;
            for (slot, &offset) in segment.offsets.iter().enumerate() {
                assert_eq!(
                    offset, end,
                    "segment {} record {slot} not adjacent",
                    segment.id
                );
                end = segment.record_end(slot);
                assert!(
                    end >= offset + RECORD_HEADER_SIZE as u64,
                    "segment {} record {slot} shorter than a header",
                    segment.id
                );
            }
            assert_eq!(end, segment.size, "segment {} size", segment.id);
            assert!(
                segment.terms.windows(2).all(|w| w[0] <= w[1]),
                "segment {} terms",
                segment.id
            );
            expected = Some(segment.last_index().next());
            previous_id = Some(segment.id);
        }
        assert!(
            self.synced <= self.last_index(),
            "synced {} > last {}",
            self.synced,
            self.last_index()
        );
        assert!(
            self.committed <= self.last_index(),
            "committed {} > last {}",
            self.committed,
            self.last_index()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::EntryKind;

    fn entries(first: u64, count: u64) -> Vec<Entry> {
        (first..first + count)
            .map(|i| Entry {
                index: LogIndex(i),
                term: Term(1),
                kind: EntryKind::Normal,
                payload: vec![b'p'; 10],
            })
            .collect()
    }

    fn assert_poisoned(log: &mut Log) {
        let last = log.last_index();
        assert!(matches!(
            log.append(&entries(last.0 + 1, 1)),
            Err(LogError::Poisoned)
        ));
        assert!(matches!(log.sync(), Err(LogError::Poisoned)));
        assert!(matches!(log.term(LogIndex(1)), Err(LogError::Poisoned)));
        assert!(matches!(
            log.read(LogIndex(1), LogIndex(2), 0),
            Err(LogError::Poisoned)
        ));
        assert!(matches!(
            log.truncate_suffix(LogIndex(2)),
            Err(LogError::Poisoned)
        ));
        assert!(!LogError::Poisoned.is_deterministic());
    }

    #[test]
    fn failed_sync_poisons_and_is_never_retried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig::new(PartitionId(1));
        let (mut log, _) = Log::open(dir.path(), config).expect("open");
        log.append(&entries(1, 5)).expect("append");
        let faults = Arc::new(LogFaults::default());
        faults.fail_next_sync.store(true, Ordering::Relaxed);
        log.set_faults(faults);
        let fsyncs = log.stats().fsyncs;
        let result = log.sync();
        assert!(
            matches!(result, Err(LogError::Io { op: IoOp::Sync, .. })),
            "{result:?}"
        );
        assert_eq!(
            log.synced_index(),
            LogIndex(0),
            "a failed sync must not advance synced"
        );
        assert_poisoned(&mut log);
        assert_eq!(log.stats().fsyncs, fsyncs, "poisoned log retried fsync");
        drop(log);
        // The pages the failed fsync dropped read back as zeros: reopening cuts them as an
        // unsynced tail and keeps what was durable before (nothing, here).
        let (log, report) = Log::open(dir.path(), config).expect("reopen");
        assert_eq!(report.entries, 0);
        assert!(report.truncated_at.is_some());
        assert_eq!(log.synced_index(), LogIndex(0));
    }

    #[test]
    fn failed_write_poisons_without_claiming_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig::new(PartitionId(1));
        let (mut log, _) = Log::open(dir.path(), config).expect("open");
        log.append(&entries(1, 3)).expect("append");
        let faults = Arc::new(LogFaults::default());
        faults.fail_next_write.store(true, Ordering::Relaxed);
        log.set_faults(faults);
        let result = log.append(&entries(4, 3));
        assert!(
            matches!(
                result,
                Err(LogError::Io {
                    op: IoOp::Write,
                    ..
                })
            ),
            "{result:?}"
        );
        assert_eq!(log.last_index(), LogIndex(3));
        assert_poisoned(&mut log);
        drop(log);
        let (log, report) = Log::open(dir.path(), config).expect("reopen");
        assert_eq!(report.entries, 3);
        log.check_invariants();
    }

    #[test]
    fn invalid_config_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        for segment_size_max in [0, SEGMENT_SIZE_MAX_MIN - 1, SEGMENT_SIZE_MAX_LIMIT + 1] {
            let config = LogConfig {
                partition: PartitionId(1),
                segment_size_max,
            };
            let result = Log::open(dir.path(), config);
            assert!(
                matches!(result, Err(LogError::InvalidConfig { .. })),
                "{segment_size_max}"
            );
        }
    }

    #[test]
    fn segment_file_names() {
        assert_eq!(segment_file_name(SegmentId(42)), "0000000042.seg");
        assert_eq!(
            parse_segment_file_name("0000000042.seg"),
            Some(SegmentId(42))
        );
        assert_eq!(
            parse_segment_file_name("4294967295.seg"),
            Some(SegmentId(u32::MAX))
        );
        for bad in [
            "42.seg",
            "4294967296.seg",
            "000000004x.seg",
            "0000000042.seg.tmp",
            "+000000042.seg",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }
}
