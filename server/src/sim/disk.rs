//! What a crash does to a log on disk, as the simulator models it.
//!
//! Everything a replica made durable with an fsync survives. What it wrote after its last
//! fsync (the records of a group commit the crash interrupted) is what page writeback happened
//! to carry to the disk, in no particular order: each such record survives whole, is lost
//! (zeros), torn (a prefix of it), or garbled, independently of its neighbours — a torn *and
//! reordered* tail — and the file may end anywhere after the durable records. The newest
//! durability slot, itself written after the last fsync, may be lost too (the older one then
//! stands). Only the last segment can hold unsynced records: creating a segment first syncs
//! the one before.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tally_engine::segment::{
    check_record, newest_slot, DURABILITY_SLOT_OFFSETS, DURABILITY_SLOT_SIZE, RECORD_HEADER_SIZE,
    SEGMENT_RECORDS_OFFSET,
};

fn segments(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut segments: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    Ok(segments)
}

/// Applies a crash to the log in `dir` whose replica had made entries up to `durable`
/// durable (see the module documentation).
pub(super) fn lose_unsynced(dir: &Path, durable: u64, rng: &mut ChaCha8Rng) -> Result<(), String> {
    let Some(last) = segments(dir)?.pop() else {
        return Ok(());
    };
    let mut bytes = fs::read(&last).map_err(|e| format!("read {}: {e}", last.display()))?;
    let mut offset = SEGMENT_RECORDS_OFFSET;
    let mut unsynced_start = None;
    while offset < bytes.len() {
        let Ok(meta) = check_record(&bytes[offset..]) else {
            break;
        };
        let size = RECORD_HEADER_SIZE + meta.payload_size as usize;
        if meta.index.0 > durable {
            unsynced_start.get_or_insert(offset);
            let record = &mut bytes[offset..offset + size];
            match rng.gen_range(0..10) {
                0..=3 => {}
                4..=6 => record.fill(0),
                7..=8 => {
                    let keep = rng.gen_range(0..size);
                    record[keep..].fill(0);
                }
                _ => rng.fill(record),
            }
        }
        offset += size;
    }
    let Some(start) = unsynced_start else {
        return Ok(());
    };
    let end = if rng.gen_bool(0.5) {
        rng.gen_range(start..=bytes.len())
    } else {
        bytes.len()
    };
    bytes.truncate(end);
    // The newest slot may have been written after the last fsync: then it may not have
    // reached the disk. Not when the older slot claims more than the replica made durable:
    // only a truncation lowers the durable prefix, and it fsyncs the lowered slot before it
    // cuts anything (dropping that slot would resurrect a claim the log durably withdrew).
    if rng.gen_bool(0.5) {
        if let Some((position, _)) = newest_slot(&bytes) {
            let other = DURABILITY_SLOT_OFFSETS[1 - position];
            if let Ok(older) = tally_engine::segment::decode_slot(&bytes[other..]) {
                if older.durable.0 <= durable {
                    let at = DURABILITY_SLOT_OFFSETS[position];
                    bytes[at..at + DURABILITY_SLOT_SIZE].fill(0);
                }
            }
        }
    }
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .map_err(|e| format!("open {}: {e}", last.display()))?;
    file.set_len(bytes.len() as u64)
        .and_then(|_| file.write_all_at(&bytes, 0))
        .map_err(|e| format!("write {}: {e}", last.display()))
}

/// Damages what was durable in the log in `dir` (of a stopped node): a flipped byte in a
/// record, the log cut short, or its last segment removed. Only what the log recorded as
/// durable (everything but its last segment, and its last segment up to the durability
/// slot's index) is touched: damage in the group commit after it looks like a torn write
/// (`docs/format.md`), which is cut without notice. Returns whether it damaged anything.
pub(super) fn damage_durable(dir: &Path, rng: &mut ChaCha8Rng) -> Result<bool, String> {
    let segments = segments(dir)?;
    let Some(last) = segments.last() else {
        return Ok(false);
    };
    let io = |path: &Path, e: std::io::Error| format!("damage {}: {e}", path.display());
    let last_bytes = fs::read(last).map_err(|e| io(last, e))?;
    let durable = newest_slot(&last_bytes).map_or(0, |(_, slot)| slot.durable.0);
    // Record spans of the last segment up to the durable index.
    let mut spans = Vec::new();
    let mut offset = SEGMENT_RECORDS_OFFSET;
    while offset < last_bytes.len() {
        let Ok(meta) = check_record(&last_bytes[offset..]) else {
            break;
        };
        let size = RECORD_HEADER_SIZE + meta.payload_size as usize;
        if meta.index.0 > durable {
            break;
        }
        spans.push((offset, offset + size));
        offset += size;
    }
    match rng.gen_range(0..3) {
        0 => {
            let sealed: Vec<&PathBuf> = segments[..segments.len() - 1]
                .iter()
                .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() > SEGMENT_RECORDS_OFFSET as u64))
                .collect();
            let (path, range) = if !sealed.is_empty() && (spans.is_empty() || rng.gen_bool(0.5)) {
                let path = sealed[rng.gen_range(0..sealed.len())];
                let length = fs::metadata(path).map_err(|e| io(path, e))?.len() as usize;
                (path.clone(), SEGMENT_RECORDS_OFFSET..length)
            } else if let (Some(first), Some(end)) = (spans.first(), spans.last()) {
                (last.clone(), first.0..end.1)
            } else {
                return Ok(false);
            };
            let mut bytes = fs::read(&path).map_err(|e| io(&path, e))?;
            let at = rng.gen_range(range);
            bytes[at] ^= 1 << rng.gen_range(0..8);
            fs::write(&path, &bytes).map_err(|e| io(&path, e))?;
        }
        1 => {
            let Some(&(start, end)) = spans.get(rng.gen_range(0..spans.len().max(1))) else {
                return Ok(false);
            };
            let cut = rng.gen_range(start..end);
            let file = fs::OpenOptions::new()
                .write(true)
                .open(last)
                .map_err(|e| io(last, e))?;
            file.set_len(cut as u64).map_err(|e| io(last, e))?;
        }
        _ if segments.len() > 1 => fs::remove_file(last).map_err(|e| io(last, e))?,
        _ => return Ok(false),
    }
    Ok(true)
}
