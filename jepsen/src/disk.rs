//! What the storage faults do to a stopped node's files: remove them, fill the disk, flip a
//! byte in a sealed segment, cut or zero a tail, or drop every log write since the last
//! fsync (a power cut).
//!
//! The power cut reads the log's own durability slots (`docs/format.md`, "Durability
//! slots"): a slot is written right after each fsync, so the newest slot in the page cache
//! of a killed node says exactly how far its last fsync reached. Cutting the last segment
//! after that entry leaves what a disk could hold after losing power then — every record a
//! correct node acknowledged, none it had not synced.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub fn remove_contents(dir: &Path) -> Result<(), String> {
    let Ok(items) = fs::read_dir(dir) else {
        return Ok(());
    };
    for item in items.flatten() {
        let path = item.path();
        let result = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        result.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Fills the filesystem `filler` is on until writes fail; returns the bytes written.
pub fn fill(filler: &Path) -> u64 {
    let Ok(mut file) = fs::File::create(filler) else {
        return 0;
    };
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = file.sync_all();
    written
}

fn segments(data: &Path) -> Vec<PathBuf> {
    let mut all: Vec<Vec<PathBuf>> = Vec::new();
    let Ok(partitions) = fs::read_dir(data) else {
        return Vec::new();
    };
    for partition in partitions.flatten() {
        let log = partition.path().join("log");
        let Ok(files) = fs::read_dir(&log) else {
            continue;
        };
        let mut files: Vec<PathBuf> = files
            .flatten()
            .map(|f| f.path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        files.sort();
        if !files.is_empty() {
            all.push(files);
        }
    }
    all.into_iter().flatten().collect()
}

/// Damages node data at rest: a flipped byte in a sealed segment (`corrupt`), or the tail of
/// a partition's last segment cut or a record in it zeroed (`truncate`).
pub fn damage(data: &Path, corrupt: bool, rng: &mut ChaCha8Rng) -> Result<String, String> {
    const RECORDS: u64 = 128; // where records start in a segment (format version 2)
    let mut by_partition: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = Default::default();
    for segment in segments(data) {
        let log = segment.parent().map(Path::to_path_buf).unwrap_or_default();
        by_partition.entry(log).or_default().push(segment);
    }
    let logs: Vec<&Vec<PathBuf>> = by_partition.values().collect();
    let Some(log) = logs.choose(rng) else {
        return Ok("nothing to damage yet".into());
    };
    let io = |e: std::io::Error| e.to_string();
    if corrupt && log.len() > 1 {
        let victim = &log[rng.gen_range(0..log.len() - 1)];
        let mut bytes = fs::read(victim).map_err(io)?;
        if bytes.len() as u64 <= RECORDS {
            return Ok("nothing to damage yet".into());
        }
        let at = rng.gen_range(RECORDS as usize..bytes.len());
        bytes[at] ^= 1 << rng.gen_range(0..8);
        fs::write(victim, &bytes).map_err(io)?;
        return Ok(format!("byte {at} of {} flipped", victim.display()));
    }
    let last = log.last().expect("a segment");
    let length = fs::metadata(last).map_err(io)?.len();
    if length <= RECORDS + 64 {
        return Ok("nothing to damage yet".into());
    }
    let cut = rng.gen_range(1..=(length - RECORDS).min(4096));
    if rng.gen_bool(0.5) {
        let file = fs::OpenOptions::new().write(true).open(last).map_err(io)?;
        file.set_len(length - cut).map_err(io)?;
        Ok(format!("last {cut} bytes of {} cut", last.display()))
    } else {
        // Bytes in the tail zeroed while later ones survive: a tail written out of order.
        let mut bytes = fs::read(last).map_err(io)?;
        let start = (length - cut) as usize;
        let end = (start + 64).min(bytes.len() - 1);
        bytes[start..end].fill(0);
        fs::write(last, &bytes).map_err(io)?;
        Ok(format!("bytes {start}..{end} of {} zeroed", last.display()))
    }
}

/// Where a segment's records start (format version 2).
const RECORDS_OFFSET: usize = 128;
const SLOT_OFFSETS: [usize; 2] = [32, 80];
const SLOT_SIZE: usize = 48;
const RECORD_HEADER: usize = 32;

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The `durable` index of a segment's newest valid slot.
fn durable(bytes: &[u8]) -> Option<u64> {
    SLOT_OFFSETS
        .iter()
        .filter_map(|&at| {
            let slot = bytes.get(at..at + SLOT_SIZE)?;
            let valid = &slot[0..4] == b"TDUR" && u32_at(slot, 44)? == crc32fast::hash(&slot[..44]);
            valid.then(|| Some((u64_at(slot, 8)?, u64_at(slot, 16)?)))?
        })
        .max()
        .map(|(_, durable)| durable)
}

/// Drops every log write since the last fsync from the stopped node at `data` (a power
/// cut), and half of each newest change-log file; returns the bytes lost. Logs it cannot
/// read are left alone.
pub fn cut_unsynced(data: &Path) -> Result<u64, String> {
    let mut lost = 0;
    let mut last_of: std::collections::BTreeMap<PathBuf, PathBuf> = Default::default();
    for segment in segments(data) {
        let log = segment.parent().map(Path::to_path_buf).unwrap_or_default();
        last_of.insert(log, segment);
    }
    for last in last_of.values() {
        let bytes = fs::read(last).map_err(|e| format!("{}: {e}", last.display()))?;
        let Some(durable) = durable(&bytes) else {
            continue;
        };
        let mut at = RECORDS_OFFSET;
        while let (Some(size), Some(index)) = (u32_at(&bytes, at + 4), u64_at(&bytes, at + 16)) {
            let end = at + RECORD_HEADER + size as usize;
            if &bytes[at..at + 4] != b"TREC" || index > durable || end > bytes.len() {
                break;
            }
            at = end;
        }
        if at < bytes.len() {
            let file = fs::OpenOptions::new()
                .write(true)
                .open(last)
                .map_err(|e| format!("{}: {e}", last.display()))?;
            file.set_len(at as u64)
                .map_err(|e| format!("{}: {e}", last.display()))?;
            lost += (bytes.len() - at) as u64;
        }
    }
    lost += cut_change_logs(data)?;
    Ok(lost)
}

/// Cuts each partition's newest change-log file to half its length, mid-record: the change
/// log is fsynced only by checkpoints, so a power cut may take its tail (this takes more
/// than the unsynced part, which the node must survive too: it replays from an older
/// checkpoint). Returns the bytes lost.
fn cut_change_logs(data: &Path) -> Result<u64, String> {
    let mut lost = 0;
    let Ok(partitions) = fs::read_dir(data) else {
        return Ok(0);
    };
    for partition in partitions.flatten() {
        let Ok(files) = fs::read_dir(partition.path().join("changes")) else {
            continue;
        };
        let mut files: Vec<PathBuf> = files
            .flatten()
            .map(|f| f.path())
            .filter(|p| p.extension().is_some_and(|e| e == "tcl"))
            .collect();
        files.sort();
        let Some(last) = files.last() else {
            continue;
        };
        let len = fs::metadata(last)
            .map_err(|e| format!("{}: {e}", last.display()))?
            .len();
        let file = fs::OpenOptions::new()
            .write(true)
            .open(last)
            .map_err(|e| format!("{}: {e}", last.display()))?;
        file.set_len(len / 2)
            .map_err(|e| format!("{}: {e}", last.display()))?;
        lost += len - len / 2;
    }
    Ok(lost)
}
