//! Crash and corruption tests for the segmented log (`tally_engine::segment`).
//!
//! Each test builds a real log on disk with a small `segment_size_max` so that it spans
//! several segment files, then damages the files the way a crash or a bad disk would —
//! cutting the unsynced tail of the last file at every byte offset, writing it out of
//! order, flipping bits in records and headers, leaving half-created segment files,
//! shortening or removing what was made durable — and checks that `Log::open` recovers
//! exactly the durable entries plus the intact part of the unsynced tail, or reports
//! `Corrupt` with the exact segment and byte offset; and that `Log::open_repairing` cuts
//! the damage away instead. Record positions are computed independently of the log by walking the
//! files with the public codec. Payloads come from a seeded generator; the seed is printed
//! (captured output is shown on failure) and can be overridden with `SEGMENT_SEED=<n>`.

use std::fs;
use std::path::{Path, PathBuf};

use tally_engine::segment::{
    decode_record, decode_segment_header, newest_slot, segment_file_name, CorruptReason, Entry,
    EntryKind, Log, LogConfig, LogError, RecoveryReport, SEGMENT_HEADER_SIZE,
    SEGMENT_RECORDS_OFFSET,
};
use tally_engine::types::{LogIndex, PartitionId, SegmentId, Term};

const PARTITION: PartitionId = PartitionId(7);
const SEGMENT_SIZE_MAX: u64 = 4096;
const ENTRY_COUNT: u64 = 120;
/// Entries appended after the last sync by [`write_log_unsynced_tail`].
const UNSYNCED: u64 = 4;
const SEED_DEFAULT: u64 = 0x5EED_1234;

fn seed() -> u64 {
    let seed = std::env::var("SEGMENT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED_DEFAULT);
    eprintln!("SEGMENT_SEED={seed}");
    seed
}

/// xorshift64*: small, deterministic, good enough for payload sizes and bytes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn config() -> LogConfig {
    LogConfig {
        partition: PARTITION,
        segment_size_max: SEGMENT_SIZE_MAX,
    }
}

/// Entries `first..first+count` with `term`. Payloads are lowercase letters only, so they
/// can never contain the record marker "TREC" and fake a record during recovery's scan.
fn make_entries(rng: &mut Rng, first: u64, count: u64, term: u64) -> Vec<Entry> {
    (first..first + count)
        .map(|index| {
            let size = 20 + rng.below(100);
            let payload = (0..size).map(|_| b'a' + rng.below(26) as u8).collect();
            let kind = if index % 17 == 0 {
                EntryKind::ConfChange
            } else {
                EntryKind::Normal
            };
            Entry {
                index: LogIndex(index),
                term: Term(term),
                kind,
                payload,
            }
        })
        .collect()
}

fn open(dir: &Path) -> Result<(Log, RecoveryReport), LogError> {
    Log::open(dir, config())
}

fn append_all(log: &mut Log, entries: &[Entry]) {
    for batch in entries.chunks(7) {
        log.append(batch).expect("append");
        log.check_invariants();
    }
}

/// Writes ENTRY_COUNT entries into a fresh log in `dir` and syncs.
fn write_log(dir: &Path, seed: u64) -> Vec<Entry> {
    let mut rng = Rng::new(seed);
    let entries = make_entries(&mut rng, 1, ENTRY_COUNT, 1);
    let (mut log, report) = open(dir).expect("open empty");
    assert_eq!(report, RecoveryReport::default());
    append_all(&mut log, &entries);
    log.sync().expect("sync");
    assert_eq!(log.synced_index(), LogIndex(ENTRY_COUNT));
    entries
}

/// Like [`write_log`], then appends [`UNSYNCED`] more entries without a sync (all into the
/// last segment): a log as a crash before its next group commit would find it, if every
/// write had reached the disk. Returns all entries and the durable prefix the last
/// segment's slot records.
fn write_log_unsynced_tail(dir: &Path, seed: u64) -> (Vec<Entry>, LogIndex) {
    let mut entries = write_log(dir, seed);
    let (mut log, _) = open(dir).expect("reopen");
    let tail = make_entries(&mut Rng::new(seed ^ 0x7A11), ENTRY_COUNT + 1, UNSYNCED, 1);
    let segments = log.stats().segments_created;
    log.append(&tail).expect("append the tail");
    assert_eq!(
        log.stats().segments_created,
        segments,
        "the tail rolled over"
    );
    entries.extend(tail);
    drop(log);
    let last = segment_files(dir).pop().expect("segments");
    let (_, slot) = newest_slot(&fs::read(&last).expect("read")).expect("a slot");
    assert_eq!(
        slot.durable,
        LogIndex(ENTRY_COUNT),
        "the slot covers the synced entries"
    );
    (entries, slot.durable)
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn segment_id(path: &Path) -> SegmentId {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("segment file stem");
    SegmentId(stem.parse().expect("numeric segment file name"))
}

/// `(start, end)` of every record in a segment file, found with the public codec.
fn record_spans(bytes: &[u8]) -> Vec<(u64, u64)> {
    decode_segment_header(bytes).expect("valid header");
    let mut spans = Vec::new();
    let mut offset = SEGMENT_RECORDS_OFFSET;
    while offset < bytes.len() {
        let (_, consumed) = decode_record(&bytes[offset..]).expect("valid record");
        spans.push((offset as u64, (offset + consumed) as u64));
        offset += consumed;
    }
    spans
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for file in segment_files(from) {
        fs::copy(&file, to.join(file.file_name().expect("file name"))).expect("copy");
    }
}

fn read_all(log: &Log) -> Vec<Entry> {
    log.read(log.first_index(), log.last_index().next(), u64::MAX)
        .expect("read all")
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = fs::read(path).expect("read segment");
    bytes[offset as usize] ^= 1 << bit;
    fs::write(path, bytes).expect("write segment");
}

fn expect_corrupt(dir: &Path, segment: SegmentId, offset: u64) -> CorruptReason {
    match open(dir) {
        Err(LogError::Corrupt {
            segment: s,
            offset: o,
            reason,
        }) => {
            assert_eq!(
                (s, o),
                (segment, offset),
                "wrong corruption location ({reason})"
            );
            reason
        }
        Err(other) => panic!("expected Corrupt at {segment}:{offset}, got {other}"),
        Ok((log, report)) => {
            panic!(
                "expected Corrupt at {segment}:{offset}, opened {report:?} last {}",
                log.last_index()
            )
        }
    }
}

/// (a) Cut the last segment at every byte offset of its unsynced tail: recovery keeps
/// exactly the complete records, reports the cut, and appending continues. Cut anywhere in
/// what was made durable, the same file is corrupt.
#[test]
fn torn_tail_at_every_offset() {
    let seed = seed();
    let pristine = tempfile::tempdir().expect("tempdir");
    let (entries, durable) = write_log_unsynced_tail(pristine.path(), seed);
    let files = segment_files(pristine.path());
    assert!(
        files.len() >= 3,
        "expected several segments, got {}",
        files.len()
    );
    let last_path = files.last().expect("segments");
    let last_id = segment_id(last_path);
    let last_bytes = fs::read(last_path).expect("read last segment");
    let spans = record_spans(&last_bytes);
    let total = entries.len() as u64;
    assert!(
        spans.len() as u64 > UNSYNCED + 2,
        "last segment holds only {} records",
        spans.len()
    );
    let first_in_last = total - spans.len() as u64 + 1;
    let durable_end = spans[(durable.0 - first_in_last) as usize].1;
    let mut rng = Rng::new(seed ^ 0xA5A5);

    for cut in durable_end..last_bytes.len() as u64 {
        let work = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), work.path());
        let path = work.path().join(segment_file_name(last_id));
        fs::write(&path, &last_bytes[..cut as usize]).expect("cut segment");

        let complete = spans.iter().filter(|&&(_, end)| end <= cut).count() as u64;
        let kept_end = spans
            .iter()
            .map(|&(_, end)| end)
            .filter(|&end| end <= cut)
            .max()
            .expect("the durable records");
        let expected_last = first_in_last + complete - 1;

        let (mut log, report) = open(work.path()).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        log.check_invariants();
        assert_eq!(log.last_index(), LogIndex(expected_last), "cut {cut}");
        assert_eq!(report.entries, expected_last, "cut {cut}");
        assert_eq!(report.durable, durable, "cut {cut}");
        assert_eq!(report.truncated_bytes, cut - kept_end, "cut {cut}");
        assert!(!report.reordered_tail, "cut {cut}");
        let expected_at = (cut > kept_end).then_some((last_id, kept_end));
        assert_eq!(report.truncated_at, expected_at, "cut {cut}");
        assert_eq!(
            read_all(&log),
            entries[..expected_last as usize],
            "cut {cut}"
        );
        assert_eq!(
            fs::metadata(&path).expect("stat").len(),
            kept_end,
            "cut {cut}: file length"
        );

        let more = make_entries(&mut rng, expected_last + 1, 2, 2);
        log.append(&more).expect("append after recovery");
        log.sync().expect("sync after recovery");
        drop(log);
        let (log, report) = open(work.path()).expect("reopen");
        assert_eq!(
            report.truncated_bytes, 0,
            "cut {cut}: second recovery truncated"
        );
        let mut expected = entries[..expected_last as usize].to_vec();
        expected.extend(more);
        assert_eq!(
            read_all(&log),
            expected,
            "cut {cut}: after append and reopen"
        );
    }

    // Shortened into the durable prefix: inside a record, that record is corrupt; at a
    // record boundary, the log ends before what was made durable.
    let durable_spans = &spans[..=(durable.0 - first_in_last) as usize];
    for &(start, end) in durable_spans.iter().rev().take(4) {
        for cut in [start, start + 1, (start + end) / 2, end - 1] {
            let work = tempfile::tempdir().expect("tempdir");
            copy_dir(pristine.path(), work.path());
            let path = work.path().join(segment_file_name(last_id));
            fs::write(&path, &last_bytes[..cut as usize]).expect("cut segment");
            let reason = expect_corrupt(work.path(), last_id, start);
            if cut == start {
                assert!(
                    matches!(reason, CorruptReason::DurableMissing { durable: d, .. } if d == durable),
                    "cut {cut}: {reason}"
                );
            } else {
                assert!(
                    matches!(reason, CorruptReason::Record(_)),
                    "cut {cut}: {reason}"
                );
            }
        }
    }
}

/// (a) Records of one unsynced group commit that reached the disk out of order: a missing
/// (zeroed) or garbled record with intact ones after it is cut with everything after it.
#[test]
fn reordered_unsynced_tail_is_cut() {
    let seed = seed();
    let pristine = tempfile::tempdir().expect("tempdir");
    let (entries, durable) = write_log_unsynced_tail(pristine.path(), seed);
    let last_path = segment_files(pristine.path()).pop().expect("segments");
    let last_id = segment_id(&last_path);
    let last_bytes = fs::read(&last_path).expect("read");
    let spans = record_spans(&last_bytes);
    let total = entries.len() as u64;
    let first_in_last = total - spans.len() as u64 + 1;
    for missing in durable.0 + 1..total {
        for garble in [0u8, 0x5A] {
            let (start, end) = spans[(missing - first_in_last) as usize];
            let mut image = last_bytes.clone();
            image[start as usize..end as usize].fill(garble);
            let work = tempfile::tempdir().expect("tempdir");
            copy_dir(pristine.path(), work.path());
            fs::write(work.path().join(segment_file_name(last_id)), &image).expect("write");
            let (log, report) =
                open(work.path()).unwrap_or_else(|e| panic!("missing {missing}: {e}"));
            assert_eq!(log.last_index(), LogIndex(missing - 1));
            assert_eq!(report.truncated_at, Some((last_id, start)));
            assert!(
                report.reordered_tail,
                "missing {missing}: later records survived"
            );
            assert_eq!(read_all(&log), entries[..(missing - 1) as usize]);
        }
    }
    // The same damage inside the durable prefix is corruption.
    let (start, end) = spans[(durable.0 - first_in_last) as usize];
    let mut image = last_bytes.clone();
    image[start as usize..end as usize].fill(0);
    let work = tempfile::tempdir().expect("tempdir");
    copy_dir(pristine.path(), work.path());
    fs::write(work.path().join(segment_file_name(last_id)), &image).expect("write");
    expect_corrupt(work.path(), last_id, start);
}

/// (a) What was made durable cannot silently go missing: a removed last segment (its
/// predecessor is sealed), and a last segment emptied down to its header, are corrupt.
#[test]
fn lost_durable_segments_are_corrupt() {
    let seed = seed();
    let pristine = tempfile::tempdir().expect("tempdir");
    write_log(pristine.path(), seed);
    let files = segment_files(pristine.path());
    let last = files.last().expect("segments");
    let previous = &files[files.len() - 2];

    let work = tempfile::tempdir().expect("tempdir");
    copy_dir(pristine.path(), work.path());
    fs::remove_file(work.path().join(last.file_name().expect("name"))).expect("remove");
    let reason = expect_corrupt(
        work.path(),
        segment_id(previous),
        SEGMENT_HEADER_SIZE as u64,
    );
    assert!(
        matches!(reason, CorruptReason::SuccessorMissing),
        "{reason}"
    );

    let work = tempfile::tempdir().expect("tempdir");
    copy_dir(pristine.path(), work.path());
    let path = work.path().join(last.file_name().expect("name"));
    let bytes = fs::read(&path).expect("read");
    fs::write(&path, &bytes[..SEGMENT_RECORDS_OFFSET]).expect("empty the segment");
    let reason = expect_corrupt(work.path(), segment_id(last), SEGMENT_RECORDS_OFFSET as u64);
    assert!(
        matches!(reason, CorruptReason::DurableMissing { .. }),
        "{reason}"
    );

    // Every segment but the first gone: the first is sealed, so that is noticed too.
    let work = tempfile::tempdir().expect("tempdir");
    copy_dir(pristine.path(), work.path());
    for file in &files[1..] {
        fs::remove_file(work.path().join(file.file_name().expect("name"))).expect("remove");
    }
    let reason = expect_corrupt(
        work.path(),
        segment_id(&files[0]),
        SEGMENT_HEADER_SIZE as u64,
    );
    assert!(
        matches!(reason, CorruptReason::SuccessorMissing),
        "{reason}"
    );

    // The first segment gone: the log must start at index 1.
    let work = tempfile::tempdir().expect("tempdir");
    copy_dir(pristine.path(), work.path());
    fs::remove_file(work.path().join(files[0].file_name().expect("name"))).expect("remove");
    let reason = expect_corrupt(work.path(), segment_id(&files[1]), 0);
    assert!(matches!(reason, CorruptReason::IndexGap { .. }), "{reason}");
}

/// `open_repairing` keeps the intact prefix before the first damage, says what it cut, and
/// leaves a log that opens cleanly and takes appends.
#[test]
fn open_repairing_cuts_damage_away() {
    let seed = seed();
    let pristine = tempfile::tempdir().expect("tempdir");
    let entries = write_log(pristine.path(), seed);
    let files = segment_files(pristine.path());
    let victim = &files[1];
    let spans = record_spans(&fs::read(victim).expect("read"));
    let first_in_victim = decode_segment_header(&fs::read(victim).expect("read"))
        .expect("header")
        .first_index;
    let (start, _) = spans[spans.len() / 2];
    let damaged_index = first_in_victim.0 + (spans.len() / 2) as u64;

    // A bit flip in a sealed segment, a missing last segment, a shortened last segment.
    type Damage<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Damage, u64)> = vec![
        (
            "bit flip",
            Box::new(|dir: &Path| {
                flip_bit(&dir.join(victim.file_name().expect("name")), start + 40, 3)
            }),
            damaged_index - 1,
        ),
        (
            "missing last segment",
            Box::new(|dir: &Path| {
                let last = files.last().expect("segments");
                fs::remove_file(dir.join(last.file_name().expect("name"))).expect("remove");
            }),
            decode_segment_header(&fs::read(files.last().expect("segments")).expect("read"))
                .expect("header")
                .first_index
                .0
                - 1,
        ),
        (
            "header of a middle segment",
            Box::new(|dir: &Path| flip_bit(&dir.join(victim.file_name().expect("name")), 3, 1)),
            first_in_victim.0 - 1,
        ),
    ];
    for (name, damage, expected_last) in cases {
        let work = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), work.path());
        damage(work.path());
        assert!(open(work.path()).is_err(), "{name}: plain open refuses");
        let (mut log, report) =
            Log::open_repairing(work.path(), config()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!report.repairs.is_empty(), "{name}: reported");
        assert_eq!(
            log.last_index(),
            LogIndex(expected_last),
            "{name}: {:?}",
            report.repairs
        );
        assert_eq!(read_all(&log), entries[..expected_last as usize], "{name}");
        let more = make_entries(&mut Rng::new(seed), expected_last + 1, 3, 2);
        log.append(&more).expect("append");
        log.sync().expect("sync");
        drop(log);
        let (log, report) = open(work.path()).unwrap_or_else(|e| panic!("{name}: reopen: {e}"));
        assert!(report.repairs.is_empty());
        assert_eq!(log.last_index(), LogIndex(expected_last + 3), "{name}");
    }
}

/// (b) A flipped bit in a record in the middle of a non-last segment is corruption at that
/// record's offset, whatever field it hits.
#[test]
fn bit_flip_in_sealed_segment_is_corrupt() {
    let seed = seed();
    let pristine = tempfile::tempdir().expect("tempdir");
    write_log(pristine.path(), seed);
    let files = segment_files(pristine.path());
    let victim = &files[1];
    let spans = record_spans(&fs::read(victim).expect("read"));
    let (start, end) = spans[spans.len() / 2];
    // marker, length (low and high byte), checksum, kind, index, term, payload, last byte.
    for (field_offset, bit) in [
        (0, 0),
        (4, 1),
        (7, 7),
        (9, 3),
        (12, 0),
        (17, 2),
        (25, 5),
        (40, 6),
    ]
    .into_iter()
    .chain([(end - start - 1, 4)])
    {
        let work = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), work.path());
        let path = work.path().join(victim.file_name().expect("name"));
        flip_bit(&path, start + field_offset, bit);
        let reason = expect_corrupt(work.path(), segment_id(victim), start);
        assert!(
            matches!(reason, CorruptReason::Record(_)),
            "field {field_offset}: {reason}"
        );
    }
    // The last record of a sealed segment is no torn tail either.
    let (start, _) = *spans.last().expect("records");
    let work = tempfile::tempdir().expect("tempdir");
    copy_dir(pristine.path(), work.path());
    flip_bit(
        &work.path().join(victim.file_name().expect("name")),
        start + 33,
        0,
    );
    expect_corrupt(work.path(), segment_id(victim), start);
}

/// (b) In the last segment, a bad record in the durable prefix is corruption, the last one
/// included; a bad record in the unsynced tail is cut with everything after it.
#[test]
fn bit_flip_in_last_segment() {
    let seed = seed();
    let pristine = tempfile::tempdir().expect("tempdir");
    let (entries, durable) = write_log_unsynced_tail(pristine.path(), seed);
    let last = segment_files(pristine.path()).pop().expect("segments");
    let spans = record_spans(&fs::read(&last).expect("read"));
    let first_in_last = entries.len() as u64 - spans.len() as u64 + 1;
    let durable_slot = (durable.0 - first_in_last) as usize;
    assert!(
        durable_slot >= 2,
        "last segment holds too few durable records"
    );
    for victim in [0, durable_slot / 2, durable_slot] {
        let (start, _) = spans[victim];
        for (field_offset, bit) in [(0, 0), (5, 1), (10, 2), (20, 3), (35, 4)] {
            let work = tempfile::tempdir().expect("tempdir");
            copy_dir(pristine.path(), work.path());
            flip_bit(
                &work.path().join(last.file_name().expect("name")),
                start + field_offset,
                bit,
            );
            expect_corrupt(work.path(), segment_id(&last), start);
        }
    }
    for (victim, &(start, _)) in spans.iter().enumerate().skip(durable_slot + 1) {
        let work = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), work.path());
        flip_bit(
            &work.path().join(last.file_name().expect("name")),
            start + 40,
            1,
        );
        let (log, report) = open(work.path()).expect("a torn unsynced record recovers");
        assert_eq!(report.truncated_at, Some((segment_id(&last), start)));
        let kept = first_in_last as usize + victim - 1;
        assert_eq!(read_all(&log), entries[..kept]);
    }
}

/// (c) Damaged segment headers: corruption at offset 0, except a torn creation of the last
/// segment, which is removed. Also a wrong partition and a missing middle segment.
#[test]
fn segment_header_damage() {
    let seed = seed();
    let pristine = tempfile::tempdir().expect("tempdir");
    let entries = write_log(pristine.path(), seed);
    let files = segment_files(pristine.path());
    let last = files.last().expect("segments");

    for victim in [&files[0], &files[1], last] {
        for (offset, bit) in [(0, 0), (8, 0), (12, 1), (16, 2), (20, 3), (28, 4)] {
            let work = tempfile::tempdir().expect("tempdir");
            copy_dir(pristine.path(), work.path());
            flip_bit(
                &work.path().join(victim.file_name().expect("name")),
                offset,
                bit,
            );
            let reason = expect_corrupt(work.path(), segment_id(victim), 0);
            assert!(
                matches!(reason, CorruptReason::Header(_)),
                "{victim:?}@{offset}: {reason}"
            );
        }
    }

    // Torn creation: a next segment with a partial header, or zeros, is removed.
    let next_id = SegmentId(segment_id(last).0 + 1);
    let area_bytes = fs::read(last).expect("read")[..SEGMENT_RECORDS_OFFSET].to_vec();
    let mut torn_images: Vec<Vec<u8>> = (0..SEGMENT_RECORDS_OFFSET)
        .map(|len| area_bytes[..len].to_vec())
        .collect();
    // The header complete, the slot not.
    let mut no_slot = area_bytes.clone();
    no_slot[SEGMENT_HEADER_SIZE..].fill(0);
    torn_images.push(no_slot);
    torn_images.push(vec![0; SEGMENT_RECORDS_OFFSET]);
    torn_images.push(vec![0; SEGMENT_RECORDS_OFFSET + 100]);
    for image in torn_images {
        let work = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), work.path());
        let torn_path = work.path().join(segment_file_name(next_id));
        fs::write(&torn_path, &image).expect("write torn segment");
        let (mut log, report) =
            open(work.path()).unwrap_or_else(|e| panic!("torn image of {}: {e}", image.len()));
        assert_eq!(
            report.removed_segment,
            Some(next_id),
            "image of {} bytes",
            image.len()
        );
        assert!(!torn_path.exists(), "torn segment not removed");
        assert_eq!(read_all(&log), entries);
        let more = make_entries(&mut Rng::new(seed), ENTRY_COUNT + 1, 3, 1);
        log.append(&more).expect("append after removal");
        log.sync().expect("sync");
    }

    // Wrong partition.
    let wrong = Log::open(
        pristine.path(),
        LogConfig {
            partition: PartitionId(8),
            ..config()
        },
    );
    assert!(
        matches!(
            wrong,
            Err(LogError::Corrupt {
                offset: 0,
                reason: CorruptReason::PartitionMismatch { .. },
                ..
            })
        ),
        "{wrong:?}"
    );

    // A missing middle segment is a gap at the start of the one after it.
    let work = tempfile::tempdir().expect("tempdir");
    copy_dir(pristine.path(), work.path());
    fs::remove_file(work.path().join(files[1].file_name().expect("name"))).expect("remove");
    let reason = expect_corrupt(work.path(), segment_id(&files[2]), 0);
    assert!(matches!(reason, CorruptReason::IndexGap { .. }), "{reason}");
}

/// (d) truncate_suffix across segment boundaries, durable across reopen, and refused at or
/// below the committed index.
#[test]
fn truncate_suffix_across_segments() {
    let seed = seed();
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = write_log(dir.path(), seed);
    let files = segment_files(dir.path());
    assert!(
        files.len() >= 3,
        "expected several segments, got {}",
        files.len()
    );
    let segment1_first = decode_segment_header(&fs::read(&files[1]).expect("read"))
        .expect("header")
        .first_index;

    let (mut log, _) = open(dir.path()).expect("open");
    log.set_committed(LogIndex(10));
    for from in [1, 5, 10] {
        let result = log.truncate_suffix(LogIndex(from));
        assert!(
            matches!(
                result,
                Err(LogError::TruncateCommitted {
                    committed: LogIndex(10),
                    ..
                })
            ),
            "truncate_suffix({from}): {result:?}"
        );
        assert!(result.as_ref().is_err_and(LogError::is_deterministic));
    }
    assert_eq!(
        log.last_index(),
        LogIndex(ENTRY_COUNT),
        "refused truncation changed the log"
    );

    // Cut inside segment 1: later segments go, segment 1 is shortened.
    let from = LogIndex(segment1_first.0 + 2);
    log.truncate_suffix(from)
        .expect("truncate inside segment 1");
    log.check_invariants();
    assert_eq!(log.last_index(), LogIndex(from.0 - 1));
    assert_eq!(log.synced_index(), log.last_index());
    assert_eq!(segment_files(dir.path()).len(), 2);
    assert_eq!(log.term(from).expect("term"), None);

    let mut rng = Rng::new(seed ^ 0x77);
    let replacement = make_entries(&mut rng, from.0, 60, 2);
    append_all(&mut log, &replacement);
    log.sync().expect("sync");
    let mut expected = entries[..(from.0 - 1) as usize].to_vec();
    expected.extend(replacement);
    assert_eq!(read_all(&log), expected);
    drop(log);

    let (mut log, report) = open(dir.path()).expect("reopen");
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(read_all(&log), expected);
    assert_eq!(log.term(from).expect("term"), Some(Term(2)));

    // Cut exactly at a segment's first index, leaving the previous segment as the last.
    log.set_committed(LogIndex(10));
    log.truncate_suffix(segment1_first)
        .expect("truncate at segment start");
    assert_eq!(log.last_index(), LogIndex(segment1_first.0 - 1));
    assert_eq!(segment_files(dir.path()).len(), 1);
    drop(log);
    let (mut log, _) = open(dir.path()).expect("reopen");
    assert_eq!(read_all(&log), entries[..(segment1_first.0 - 1) as usize]);
    log.check_invariants();

    // Everything above the commit point; then the log continues at 11.
    log.set_committed(LogIndex(10));
    log.truncate_suffix(LogIndex(11))
        .expect("truncate to committed");
    let more = make_entries(&mut rng, 11, 5, 3);
    log.append(&more).expect("append");
    log.sync().expect("sync");
    drop(log);
    let (log, _) = open(dir.path()).expect("reopen");
    let mut expected = entries[..10].to_vec();
    expected.extend(more);
    assert_eq!(read_all(&log), expected);
}

/// truncate_suffix down to an empty log keeps the first segment and restarts at index 1.
#[test]
fn truncate_suffix_to_empty() {
    let seed = seed();
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), seed);
    let (mut log, _) = open(dir.path()).expect("open");
    log.truncate_suffix(LogIndex(1))
        .expect("truncate everything");
    assert_eq!(
        (log.first_index(), log.last_index()),
        (LogIndex(1), LogIndex(0))
    );
    assert_eq!(segment_files(dir.path()).len(), 1);
    let fresh = make_entries(&mut Rng::new(seed), 1, 3, 5);
    log.append(&fresh).expect("append");
    log.sync().expect("sync");
    drop(log);
    let (log, report) = open(dir.path()).expect("reopen");
    assert_eq!(report.entries, 3);
    assert_eq!(read_all(&log), fresh);
}

/// (e) Group commit: 1000 single-entry appends cost 1000 writes and then one fdatasync.
#[test]
fn group_commit() {
    let seed = seed();
    let dir = tempfile::tempdir().expect("tempdir");
    let big = LogConfig {
        partition: PARTITION,
        segment_size_max: 64 * 1024 * 1024,
    };
    let (mut log, _) = Log::open(dir.path(), big).expect("open");
    let entries = make_entries(&mut Rng::new(seed), 1, 1000, 1);
    for entry in &entries {
        log.append(std::slice::from_ref(entry)).expect("append");
    }
    assert_eq!(log.synced_index(), LogIndex(0));
    let before = log.stats();
    assert_eq!(before.writes, 1000);
    assert_eq!(before.segments_created, 1);
    log.sync().expect("sync");
    assert_eq!(
        log.stats().fsyncs - before.fsyncs,
        1,
        "one sync, one fdatasync"
    );
    assert_eq!(log.synced_index(), LogIndex(1000));
    log.sync().expect("idle sync");
    assert_eq!(
        log.stats().fsyncs - before.fsyncs,
        1,
        "nothing dirty, nothing to sync"
    );
    drop(log);

    let (log, report) = Log::open(dir.path(), big).expect("reopen");
    assert_eq!(report.entries, 1000);
    assert_eq!(report.segments, 1);
    assert_eq!(read_all(&log), entries);
}

/// Reads across sealed (mapped) and active segments, size limits, terms and range errors.
#[test]
fn read_and_term() {
    let seed = seed();
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = write_log(dir.path(), seed);
    let (mut log, _) = open(dir.path()).expect("open");
    for (from, to) in [(1, 121), (1, 2), (30, 90), (100, 121), (120, 121), (50, 50)] {
        let got = log
            .read(LogIndex(from), LogIndex(to), u64::MAX)
            .expect("read");
        assert_eq!(
            got,
            entries[(from - 1) as usize..(to - 1) as usize],
            "[{from}, {to})"
        );
    }
    let got = log.read(LogIndex(5), LogIndex(100), 0).expect("read");
    assert_eq!(got, entries[4..5], "max_bytes 0 still returns one entry");
    let three: u64 = entries[4..7].iter().map(|e| e.payload.len() as u64).sum();
    for (max_bytes, count) in [(three, 3), (three + 1, 3), (three - 1, 2)] {
        let got = log
            .read(LogIndex(5), LogIndex(100), max_bytes)
            .expect("read");
        assert_eq!(got.len(), count, "max_bytes {max_bytes}");
    }
    for e in &entries {
        assert_eq!(log.term(e.index).expect("term"), Some(e.term));
    }
    assert_eq!(log.term(LogIndex(0)).expect("term"), None);
    assert_eq!(log.term(LogIndex(121)).expect("term"), None);
    for (from, to) in [(0, 5), (5, 122), (10, 9)] {
        let result = log.read(LogIndex(from), LogIndex(to), u64::MAX);
        assert!(
            matches!(result, Err(LogError::OutOfRange { .. })),
            "[{from}, {to}): {result:?}"
        );
    }

    // Append errors are deterministic and leave the log unchanged.
    let mut rng = Rng::new(seed);
    let gap = make_entries(&mut rng, 122, 1, 1);
    let result = log.append(&gap);
    assert!(
        matches!(result, Err(LogError::NotContiguous { .. })),
        "{result:?}"
    );
    let old_term = make_entries(&mut rng, 121, 1, 0);
    let result = log.append(&old_term);
    assert!(
        matches!(result, Err(LogError::TermRegressed { .. })),
        "{result:?}"
    );
    assert!(result.is_err_and(|e| e.is_deterministic()));
    assert_eq!(log.last_index(), LogIndex(120));
}

/// A record larger than segment_size_max goes alone into its own segment.
#[test]
fn oversized_record_gets_its_own_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path()).expect("open");
    let mut entries = make_entries(&mut Rng::new(seed()), 1, 3, 1);
    entries[1].payload = vec![b'x'; 3 * SEGMENT_SIZE_MAX as usize];
    log.append(&entries).expect("append");
    log.sync().expect("sync");
    assert_eq!(segment_files(dir.path()).len(), 3);
    drop(log);
    let (log, report) = open(dir.path()).expect("reopen");
    assert_eq!(report.segments, 3);
    assert_eq!(read_all(&log), entries);
}
