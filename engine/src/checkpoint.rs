//! Checkpoints: the state machine's whole state, written with checksums, so that a restart
//! replays only the log after it.
//!
//! A checkpoint file `checkpoint-<applied index, 20 digits>.tck` holds a 64-byte header and a
//! body (layout in `docs/format.md`, "Checkpoints"). It is written to a temporary name,
//! fsynced, renamed into place, and the directory fsynced, so a crash leaves either the whole
//! file or none of it under its final name.
//!
//! Loading trusts nothing: the header checksum, the body length and checksum, every field
//! while decoding (counts are checked against the bytes left before allocating), and finally
//! the state digest recomputed from the decoded state against the digest in the header. A
//! checkpoint that fails any check is reported and skipped in favour of an older one; with
//! none left, the caller replays the whole log. A damaged checkpoint can therefore cost time,
//! never correctness.
//!
//! Deliberate omission: the checkpoint is written synchronously by the applying thread. For
//! states of many millions of transfers this pauses apply for the time of the write; writing
//! from a frozen copy in the background comes with the Raft snapshot work.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::command::{AccountFlags, TransferFlags};
use crate::files::{Paced, PACE_BYTES};
use crate::le;
use crate::outcome::{Balances, TransferOutcome, TransferResult};
use crate::partition::{
    Account, HoldStatus, Ledger, Memo, Partition, PartitionBuilder, Snapshot, TransferDetails,
    TransferKind, TransferRecord,
};
use crate::transfer_runs::{TransferRunError, TransferRuns};
use crate::types::{AccountId, LedgerId, LogIndex, PartitionId, Timestamp, TransferId};

/// The first 8 bytes of every checkpoint.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"TALLYCKP";
/// Format version of checkpoints. Version 3 appends the transfer runs section (spill count,
/// records on disk, their digest part, the refund overlay) and gives each transfer record
/// its details (code, flags, user data, memo); version 2 appended the index's durable mark.
/// Versions 1 and 2 are refused as outdated: they lack the details, which only a replay of
/// the log restores.
pub const CHECKPOINT_VERSION: u16 = 3;
/// Size of the checkpoint header in bytes.
pub const CHECKPOINT_HEADER_SIZE: usize = 64;
/// Largest checkpoint body we agree to read (a bound checked before allocating).
pub const CHECKPOINT_BODY_SIZE_MAX: u64 = 64 << 30;

const SUFFIX: &str = ".tck";
const PREFIX: &str = "checkpoint-";

/// Why a checkpoint could not be written or read.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// An IO error.
    #[error("checkpoint IO error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is damaged or not a checkpoint.
    #[error("checkpoint {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// The checkpoint is intact but the transfer runs it names cannot be opened (a run file
    /// is missing or damaged): a restore falls back to an older checkpoint or a replay,
    /// which writes the runs again.
    #[error("transfer runs of checkpoint {path} cannot be opened: {source}")]
    Runs {
        /// The checkpoint.
        path: PathBuf,
        /// Why.
        source: TransferRunError,
    },
    /// A checkpoint that verifies holds entries beyond the log's end: durable entries were
    /// lost, and starting from an older state would silently drop acknowledged ones.
    #[error("checkpoint at index {checkpoint} is ahead of the log, which ends at {log_last}")]
    AheadOfLog {
        /// The checkpoint's applied index.
        checkpoint: LogIndex,
        /// The log's last index.
        log_last: LogIndex,
    },
}

/// Where a restored partition keeps its transfer runs, and how many transfer records it keeps
/// in memory from then on (see [`Partition::with_transfer_runs`]).
#[derive(Clone, Copy, Debug)]
pub struct RunsConfig<'a> {
    /// The directory of the partition's transfer run files.
    pub dir: &'a Path,
    /// Most records kept in memory before the oldest are spilled; 0 keeps every record in
    /// memory (runs named by the checkpoint are still opened and read).
    pub transfers_memory_max: usize,
    /// Keep files replaced by merges until released (see
    /// [`TransferRuns::release_obsolete`]); stores and replicas do, so that an older
    /// checkpoint can still be restored.
    pub keep_merged: bool,
}

impl RunsConfig<'_> {
    /// The partition's in-memory bound (`usize::MAX` for 0, which never spills).
    fn memory_max(&self) -> usize {
        match self.transfers_memory_max {
            0 => usize::MAX,
            max => max,
        }
    }

    /// A new, empty partition spilling into this directory; deletes any run file there (they
    /// belong to no checkpoint, and replay writes them again).
    fn empty_partition(&self, partition_id: PartitionId) -> Result<Partition, TransferRunError> {
        let runs = TransferRuns::open(self.dir, partition_id, 0, self.keep_merged)?;
        Ok(Partition::with_transfer_runs(runs, self.memory_max()))
    }
}

/// When the next checkpoint is due, and which merged transfer runs the kept checkpoints
/// still need: the bookkeeping a store and a replica share.
#[derive(Clone, Debug)]
pub struct Schedule {
    interval_entries: u64,
    kept: usize,
    entries_since: u64,
    transfers_at_last: usize,
    /// A checkpoint is due at once, whatever the interval (see [`Schedule::new`]).
    urgent: bool,
    /// (applied index, spill count) of each kept checkpoint, oldest first.
    kept_spills: std::collections::VecDeque<(LogIndex, u64)>,
}

impl Schedule {
    /// A schedule of a checkpoint every `interval_entries` entries (see [`is_due`]), `kept`
    /// kept, starting from what [`restore`] found. If it rejected checkpoints, the next one
    /// is due at once, even with automatic checkpoints off: recovering from damage (which
    /// may also have rewritten the transfer runs those checkpoints named) should be paid for
    /// once, not at every start.
    pub fn new(interval_entries: u64, kept: usize, restored: &Restored) -> Schedule {
        let from = restored.checkpoint.map(|_| &restored.partition);
        Schedule {
            interval_entries,
            kept: kept.max(1),
            entries_since: 0,
            urgent: !restored.rejected.is_empty(),
            transfers_at_last: from.map_or(0, Partition::transfer_count),
            kept_spills: from
                .map(|p| {
                    (
                        p.applied_index(),
                        p.transfer_runs().map_or(0, TransferRuns::spills),
                    )
                })
                .into_iter()
                .collect(),
        }
    }

    /// Counts `entries` more applied entries.
    pub fn applied(&mut self, entries: u64) {
        self.entries_since += entries;
    }

    /// Whether a checkpoint of `partition` is due now (see [`is_due`]).
    pub fn is_due(&self, partition: &Partition) -> bool {
        self.urgent
            || is_due(
                self.entries_since,
                self.interval_entries,
                partition.transfer_count(),
                self.transfers_at_last,
                partition.resident_transfer_count(),
            )
    }

    /// A checkpoint of `partition` as it is now is being written: counting starts over (if
    /// it fails, the next one is due after another interval).
    pub fn started(&mut self, partition: &Partition) {
        self.urgent = false;
        self.entries_since = 0;
        self.transfers_at_last = partition.transfer_count();
    }

    /// A checkpoint at `index` naming `spills` spills is durable (one at the same index
    /// replaces it, as its file does); returns the spill count up to which merged transfer
    /// runs may be released ([`Partition::release_obsolete_transfer_runs`]).
    pub fn written(&mut self, index: LogIndex, spills: u64) -> u64 {
        if self
            .kept_spills
            .back()
            .is_some_and(|&(last, _)| last == index)
        {
            self.kept_spills.pop_back();
        }
        self.kept_spills.push_back((index, spills));
        while self.kept_spills.len() > self.kept {
            self.kept_spills.pop_front();
        }
        self.kept_spills
            .iter()
            .map(|&(_, spills)| spills)
            .min()
            .unwrap_or(spills)
    }
}

/// What [`restore`] found.
pub struct Restored {
    /// The partition of the newest usable checkpoint with its transfer runs, or an empty one
    /// spilling into the runs directory (whose files were then deleted: replay rewrites
    /// them).
    pub partition: Partition,
    /// The checkpoint restored, if any.
    pub checkpoint: Option<LogIndex>,
    /// Checkpoints that failed verification or whose runs could not be opened, with why.
    pub rejected: Vec<String>,
    /// Valid checkpoints passed over because the index files do not reach them.
    pub passed_over: Vec<LogIndex>,
}

/// Restores the newest usable checkpoint in `dir`, newest first:
/// - one named beyond the log's last index or the index files' durable mark is not
///   restorable (replay from it would skip entries they lack); it is read without being
///   restored (checksums and layout, no runs opened, nothing deleted). If it verifies and
///   holds an index beyond the log, durable entries were lost: [`CheckpointError::AheadOfLog`].
///   If it verifies otherwise, it is passed over; a damaged one is rejected;
/// - one that restores with its runs ([`read_with_runs`]) and holds the index of its name is
///   used; a damaged one, one whose runs fail, or one holding another index is rejected;
/// - an IO error stops the search.
///
/// With none usable, the partition starts empty.
pub fn restore(
    dir: &Path,
    partition_id: PartitionId,
    log_last: LogIndex,
    index_durable: LogIndex,
    runs: &RunsConfig<'_>,
) -> Result<Restored, CheckpointError> {
    let mut rejected = Vec::new();
    let mut passed_over = Vec::new();
    for file in list(dir)? {
        let misnamed = |held: LogIndex| {
            format!(
                "{}: holds index {held} but is named {}",
                file.path.display(),
                file.applied_index
            )
        };
        if file.applied_index > log_last || file.applied_index > index_durable {
            match read_applied_index(&file.path, partition_id) {
                Ok(held) if held != file.applied_index => rejected.push(misnamed(held)),
                Ok(held) if held > log_last => {
                    return Err(CheckpointError::AheadOfLog {
                        checkpoint: held,
                        log_last,
                    })
                }
                Ok(held) => passed_over.push(held),
                Err(e @ CheckpointError::Corrupt { .. }) => rejected.push(e.to_string()),
                Err(e) => return Err(e),
            }
            continue;
        }
        match read_with_runs(&file.path, partition_id, Some(runs)) {
            Ok((partition, _)) if partition.applied_index() == file.applied_index => {
                return Ok(Restored {
                    partition,
                    checkpoint: Some(file.applied_index),
                    rejected,
                    passed_over,
                });
            }
            Ok((partition, _)) => rejected.push(misnamed(partition.applied_index())),
            Err(e @ (CheckpointError::Corrupt { .. } | CheckpointError::Runs { .. })) => {
                rejected.push(e.to_string())
            }
            Err(e) => return Err(e),
        }
    }
    let partition = runs
        .empty_partition(partition_id)
        .map_err(|source| CheckpointError::Runs {
            path: dir.to_path_buf(),
            source,
        })?;
    Ok(Restored {
        partition,
        checkpoint: None,
        rejected,
        passed_over,
    })
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Transfers applied since the last checkpoint after which a checkpoint is due however few
/// entries carried them (see [`is_due`]).
pub const CHECKPOINT_GROWTH_MIN: usize = 1 << 17;

/// Whether a new checkpoint is due, given the entries applied since the last one, the
/// transfer count now and at the last one, and the records held in memory (`resident`, what
/// a checkpoint writes besides the accounts).
///
/// Never with `interval_entries` 0 (only on request). Otherwise, once the transfers grew by
/// at least an eighth of `resident` since the last checkpoint, and either
/// `interval_entries` entries were applied or the growth reached `resident` (at least
/// [`CHECKPOINT_GROWTH_MIN`]).
///
/// A checkpoint writes the resident state; replay after a crash costs the transfers since the
/// last one. The eighth bounds checkpoint writes to about eight records per new transfer.
/// The growth clause bounds replay when entries are large (batches of thousands of
/// transfers reach few entries): with records spilled to transfer runs, `resident` is bounded
/// by `transfers_memory_max`, so replay is bounded by it too, however long the history; with
/// every record in memory, checkpoints come at each doubling.
pub fn is_due(
    entries_since: u64,
    interval_entries: u64,
    transfers_now: usize,
    transfers_at_last: usize,
    resident: usize,
) -> bool {
    let growth = transfers_now.saturating_sub(transfers_at_last);
    interval_entries > 0
        && growth >= resident / 8
        && (entries_since >= interval_entries || growth >= resident.max(CHECKPOINT_GROWTH_MIN))
}

/// A checkpoint file found in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointFile {
    /// The applied index its name claims.
    pub applied_index: LogIndex,
    /// Its path.
    pub path: PathBuf,
}

/// Lists the checkpoint files in `dir`, newest first. A missing directory has none.
pub fn list(dir: &Path) -> Result<Vec<CheckpointFile>, CheckpointError> {
    let mut files: Vec<CheckpointFile> = crate::files::named(dir, PREFIX, SUFFIX)
        .map_err(io_error(dir))?
        .into_iter()
        .filter_map(|(digits, path)| {
            Some(CheckpointFile {
                applied_index: LogIndex(digits.parse().ok()?),
                path,
            })
        })
        .collect();
    files.sort_by_key(|file| std::cmp::Reverse(file.applied_index));
    Ok(files)
}

/// Deletes every checkpoint named for an applied index beyond `log_last` and returns their
/// paths: for a replica whose log lost entries and will fetch them again from its peers,
/// such checkpoints describe a state its log can no longer reach.
pub fn remove_ahead(dir: &Path, log_last: LogIndex) -> Result<Vec<PathBuf>, CheckpointError> {
    let mut removed = Vec::new();
    for file in list(dir)? {
        if file.applied_index > log_last {
            fs::remove_file(&file.path).map_err(io_error(&file.path))?;
            removed.push(file.path);
        }
    }
    Ok(removed)
}

/// Writes a checkpoint of `partition` into `dir` and returns its path; it records no
/// durable per-account index (see [`write_with_index`]).
pub fn write(
    dir: &Path,
    partition_id: PartitionId,
    partition: &Partition,
) -> Result<PathBuf, CheckpointError> {
    write_with_index(dir, partition_id, partition, LogIndex(0))
}

/// Writes a checkpoint of `partition` into `dir` that also records how far the per-account
/// index files are durable (`index_durable`, see [`crate::index`]), and returns its path.
pub fn write_with_index(
    dir: &Path,
    partition_id: PartitionId,
    partition: &Partition,
    index_durable: LogIndex,
) -> Result<PathBuf, CheckpointError> {
    write_snapshot(dir, partition_id, &partition.snapshot(), index_durable)
}

/// Writes a checkpoint of a [`Snapshot`] (see [`write_with_index`]). The snapshot may be
/// written on another thread while the partition goes on applying.
pub fn write_snapshot(
    dir: &Path,
    partition_id: PartitionId,
    partition: &Snapshot,
    index_durable: LogIndex,
) -> Result<PathBuf, CheckpointError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        if let Some(parent) = dir.parent() {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io_error(parent))?;
        }
    }
    let mut body = encode_body(partition);
    body.extend_from_slice(&index_durable.0.to_le_bytes());
    encode_runs_section(partition, &mut body);
    let header = encode_header(partition_id, partition, &body);
    let index = partition.applied_index();
    let path = dir.join(format!("{PREFIX}{:020}{SUFFIX}", index.0));
    let temporary = dir.join(format!("{PREFIX}{:020}{SUFFIX}.tmp", index.0));
    {
        let file = File::create(&temporary).map_err(io_error(&temporary))?;
        let mut out = Paced::new(file);
        out.write_all(&header).map_err(io_error(&temporary))?;
        // In pieces, so that the pace is kept (one write of it all would be one burst).
        for piece in body.chunks(PACE_BYTES as usize) {
            out.write_all(piece).map_err(io_error(&temporary))?;
        }
        out.into_file().sync_all().map_err(io_error(&temporary))?;
    }
    fs::rename(&temporary, &path).map_err(io_error(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(path)
}

/// Deletes all but the newest `keep` checkpoints (and any leftover temporary files).
pub fn prune(dir: &Path, keep: usize) -> Result<(), CheckpointError> {
    for file in list(dir)?.into_iter().skip(keep) {
        fs::remove_file(&file.path).map_err(io_error(&file.path))?;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Reads and fully verifies a checkpoint, opening the transfer runs it names in
/// `runs.dir` (without `runs`, a checkpoint naming transfer runs is refused as corrupt) (the chain of exactly its spills; run files of later spills or replaced by
/// merges are deleted, since replay writes them again). Also returns the index durable mark.
///
/// A damaged checkpoint is [`CheckpointError::Corrupt`]; an intact one whose runs cannot be
/// opened is [`CheckpointError::Runs`], and nothing was deleted then. Either way the caller
/// tries an older checkpoint.
pub fn read_with_runs(
    path: &Path,
    partition_id: PartitionId,
    runs: Option<&RunsConfig<'_>>,
) -> Result<(Partition, LogIndex), CheckpointError> {
    read_parts(path, partition_id)?.attach(partition_id, runs, path)
}

/// Reads a checkpoint and checks its checksums and layout, without restoring it (its
/// transfer runs are not opened, nothing is deleted), and returns the applied index it holds:
/// enough to tell a checkpoint ahead of a lost log tail from a damaged file.
fn read_applied_index(path: &Path, partition_id: PartitionId) -> Result<LogIndex, CheckpointError> {
    Ok(read_parts(path, partition_id)?.builder.applied_index())
}

/// Reads a checkpoint file and decodes it, except the digest check (see `decode_parts`).
fn read_parts(path: &Path, partition_id: PartitionId) -> Result<Decoded, CheckpointError> {
    let bytes = read_file(path)?;
    decode_parts(&bytes, partition_id).map_err(|reason| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    let size = fs::metadata(path).map_err(io_error(path))?.len();
    if size > CHECKPOINT_HEADER_SIZE as u64 + CHECKPOINT_BODY_SIZE_MAX {
        return Err(CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{size} bytes exceeds the maximum checkpoint size"),
        });
    }
    fs::read(path).map_err(io_error(path))
}

fn encode_header(partition_id: PartitionId, partition: &Snapshot, body: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(CHECKPOINT_HEADER_SIZE);
    h.extend_from_slice(&CHECKPOINT_MAGIC);
    h.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&partition_id.0.to_le_bytes());
    h.extend_from_slice(&partition.applied_index().0.to_le_bytes());
    h.extend_from_slice(&partition.last_timestamp().0.to_le_bytes());
    h.extend_from_slice(&(body.len() as u64).to_le_bytes());
    h.extend_from_slice(&partition.digest().to_le_bytes());
    h.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(h.len(), CHECKPOINT_HEADER_SIZE);
    h
}

fn encode_body(p: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + p.account_count() * 80 + p.transfer_count() * 120);
    let ledgers: Vec<&Ledger> = p.ledgers().collect();
    out.extend_from_slice(&(ledgers.len() as u64).to_le_bytes());
    for ledger in ledgers {
        out.extend_from_slice(&ledger.id.0.to_le_bytes());
        out.push(ledger.scale);
        out.extend_from_slice(&ledger.code.to_le_bytes());
    }
    out.extend_from_slice(&(p.account_count() as u64).to_le_bytes());
    // Sorted, so that replicas with equal state write equal bytes. Here rather than in the
    // snapshot: this runs on the checkpoint's thread, the snapshot on the applying thread.
    let mut accounts: Vec<&Account> = p.accounts().collect();
    accounts.sort_unstable_by_key(|a| a.id);
    for a in accounts {
        out.extend_from_slice(&a.id.0.to_le_bytes());
        out.extend_from_slice(&a.ledger.0.to_le_bytes());
        out.extend_from_slice(&a.code.to_le_bytes());
        out.extend_from_slice(&a.flags.0.to_le_bytes());
        match a.limit {
            None => out.push(0),
            Some(limit) => {
                out.push(1);
                put_varint(&mut out, limit);
            }
        }
        out.extend_from_slice(&a.user_data_128.to_le_bytes());
        out.extend_from_slice(&a.user_data_64.to_le_bytes());
        out.extend_from_slice(&a.user_data_32.to_le_bytes());
        out.extend_from_slice(&a.timestamp.0.to_le_bytes());
        put_balances(&mut out, &a.balances);
    }
    out.extend_from_slice(&(p.transfer_count() as u64).to_le_bytes());
    for (id, r) in p.transfers() {
        out.extend_from_slice(&id.0.to_le_bytes());
        encode_transfer_record(r, &mut out);
    }
    out
}

/// Appends the transfer runs section (version 3): which runs hold the older records and what
/// changed in them since.
fn encode_runs_section(p: &Snapshot, out: &mut Vec<u8>) {
    out.extend_from_slice(&p.spills().to_le_bytes());
    out.extend_from_slice(&p.spilled_records().to_le_bytes());
    out.extend_from_slice(&p.runs_digest().to_le_bytes());
    let overlay = p.refund_overlay();
    out.extend_from_slice(&(overlay.len() as u64).to_le_bytes());
    for &(id, refunded) in overlay {
        out.extend_from_slice(&id.0.to_le_bytes());
        put_varint(out, refunded);
    }
}

/// Appends a transfer record, without its id, in the layout of `docs/format.md`
/// ("Checkpoints", transfer record). Checkpoints and transfer run files share it.
pub(crate) fn encode_transfer_record(r: &TransferRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&r.fingerprint.to_le_bytes());
    out.push(r.kind as u8);
    out.push(r.hold as u8);
    out.extend_from_slice(&r.outcome.result.code().to_le_bytes());
    out.extend_from_slice(&r.outcome.timestamp.0.to_le_bytes());
    put_varint(out, r.debit_account.0);
    put_varint(out, r.credit_account.0);
    out.extend_from_slice(&r.ledger.0.to_le_bytes());
    put_varint(out, r.amount);
    put_varint(out, r.reference.0);
    out.extend_from_slice(&r.timeout_s.to_le_bytes());
    put_varint(out, r.refunded);
    if r.outcome.result == TransferResult::Ok {
        put_balances(out, &r.outcome.debit_balances);
        put_balances(out, &r.outcome.credit_balances);
    }
    let d = &r.details;
    if *d == TransferDetails::default() {
        out.push(0);
    } else {
        out.push(1);
        out.extend_from_slice(&d.code.to_le_bytes());
        out.extend_from_slice(&d.flags.0.to_le_bytes());
        put_varint(out, d.user_data_128);
        put_varint(out, u128::from(d.user_data_64));
        put_varint(out, u128::from(d.user_data_32));
        let memo = d.memo.as_bytes();
        out.push(memo.len() as u8);
        out.extend_from_slice(memo);
    }
}

/// Decodes a transfer record written by [`encode_transfer_record`], checking every tag.
fn decode_transfer_record(r: &mut Reader<'_>, id: TransferId) -> Result<TransferRecord, String> {
    let fingerprint = r.u128()?;
    let kind = match r.u8()? {
        0 => TransferKind::Plain,
        1 => TransferKind::Pending,
        2 => TransferKind::Post,
        3 => TransferKind::Void,
        4 => TransferKind::Refund,
        6 => TransferKind::Claim,
        other => return Err(format!("bad transfer kind {other}")),
    };
    let hold = match r.u8()? {
        0 => HoldStatus::NotAHold,
        1 => HoldStatus::Pending,
        2 => HoldStatus::Posted,
        3 => HoldStatus::Voided,
        4 => HoldStatus::Expired,
        other => return Err(format!("bad hold status {other}")),
    };
    let code = r.u32()?;
    let result =
        TransferResult::from_code(code).ok_or_else(|| format!("bad result code {code}"))?;
    let timestamp = Timestamp(r.u64()?);
    let debit_account = AccountId(r.varint()?);
    let credit_account = AccountId(r.varint()?);
    let ledger = LedgerId(r.u32()?);
    let amount = r.varint()?;
    let reference = TransferId(r.varint()?);
    let timeout_s = r.u32()?;
    let refunded = r.varint()?;
    let (debit_balances, credit_balances) = if result == TransferResult::Ok {
        (r.balances()?, r.balances()?)
    } else {
        (Balances::default(), Balances::default())
    };
    let details = match r.u8()? {
        0 => TransferDetails::default(),
        1 => {
            let code = r.u16()?;
            let flags = TransferFlags(r.u16()?);
            let user_data_128 = r.varint()?;
            let user_data_64 = u64::try_from(r.varint()?)
                .map_err(|_| "user_data_64 overflows 64 bits".to_string())?;
            let user_data_32 = u32::try_from(r.varint()?)
                .map_err(|_| "user_data_32 overflows 32 bits".to_string())?;
            let len = r.u8()? as usize;
            let memo = Memo::new(r.take(len)?)
                .ok_or_else(|| format!("memo of {len} bytes exceeds the maximum"))?;
            let details = TransferDetails {
                code,
                flags,
                user_data_128,
                user_data_64,
                user_data_32,
                memo,
            };
            if details == TransferDetails::default() {
                return Err("details tag 1 with empty details".into());
            }
            details
        }
        other => return Err(format!("bad details tag {other}")),
    };
    Ok(TransferRecord {
        id,
        fingerprint,
        kind,
        debit_account,
        credit_account,
        ledger,
        amount,
        reference,
        timeout_s,
        outcome: TransferOutcome {
            result,
            timestamp,
            debit_balances,
            credit_balances,
        },
        hold,
        refunded,
        details,
    })
}

/// Decodes one transfer record that must fill `bytes` exactly (a transfer run's record).
pub(crate) fn decode_transfer_record_exact(
    id: TransferId,
    bytes: &[u8],
) -> Result<TransferRecord, String> {
    let mut r = Reader::new(bytes);
    let record = decode_transfer_record(&mut r, id)?;
    if r.pos != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - r.pos));
    }
    Ok(record)
}

fn put_varint(out: &mut Vec<u8>, mut value: u128) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_balances(out: &mut Vec<u8>, b: &Balances) {
    put_varint(out, b.debits_pending);
    put_varint(out, b.debits_posted);
    put_varint(out, b.credits_pending);
    put_varint(out, b.credits_posted);
}

/// Decodes and verifies a whole checkpoint image of a partition without transfer runs; the
/// error says which check failed.
pub fn decode(bytes: &[u8], partition_id: PartitionId) -> Result<Partition, String> {
    decode_parts(bytes, partition_id)?
        .attach(partition_id, None, Path::new("<memory>"))
        .map(|(partition, _)| partition)
        .map_err(|e| e.to_string())
}

/// A decoded, checksum-verified checkpoint whose transfer runs are not attached yet.
struct Decoded {
    builder: PartitionBuilder,
    digest: u128,
    index_durable: LogIndex,
    spills: u64,
    spilled_records: u64,
    runs_digest: u128,
    refund_overlay: Vec<(TransferId, u128)>,
}

impl Decoded {
    /// Attaches the runs (if the checkpoint names any, or a directory is given) and checks
    /// the digest of the whole state against the header's.
    fn attach(
        self,
        partition_id: PartitionId,
        runs: Option<&RunsConfig<'_>>,
        path: &Path,
    ) -> Result<(Partition, LogIndex), CheckpointError> {
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let partition = match runs {
            None if self.spills > 0 => {
                return Err(corrupt(format!(
                    "names {} spills of transfer runs but no runs directory was given",
                    self.spills
                )))
            }
            None => self.builder.finish(),
            Some(config) => {
                let opened =
                    TransferRuns::open(config.dir, partition_id, self.spills, config.keep_merged)
                        .map_err(|source| CheckpointError::Runs {
                        path: path.to_path_buf(),
                        source,
                    })?;
                if opened.record_count() != self.spilled_records
                    || opened.digest() != self.runs_digest
                {
                    return Err(CheckpointError::Runs {
                        path: path.to_path_buf(),
                        source: TransferRunError::Corrupt {
                            path: config.dir.to_path_buf(),
                            offset: 0,
                            reason: format!(
                                "runs of {} spills hold {} records (digest {:x}), the \
                                 checkpoint expects {} (digest {:x})",
                                self.spills,
                                opened.record_count(),
                                opened.digest(),
                                self.spilled_records,
                                self.runs_digest
                            ),
                        },
                    });
                }
                self.builder
                    .finish_with_runs(opened, config.memory_max(), self.refund_overlay)
                    .map_err(corrupt)?
            }
        };
        if partition.digest() != self.digest {
            return Err(corrupt(format!(
                "state digest {:x} does not match the header's {:x}",
                partition.digest(),
                self.digest
            )));
        }
        Ok((partition, self.index_durable))
    }
}

/// Decodes and checks a checkpoint image, except the digest (which needs the runs).
fn decode_parts(bytes: &[u8], partition_id: PartitionId) -> Result<Decoded, String> {
    let header = bytes
        .get(..CHECKPOINT_HEADER_SIZE)
        .ok_or_else(|| format!("{} bytes is shorter than the header", bytes.len()))?;
    let mut h = Reader::new(header);
    if h.take(8)? != CHECKPOINT_MAGIC {
        return Err("bad magic".into());
    }
    let stored_crc = u32::from_le_bytes(le::array(&header[60..64]));
    if crc32fast::hash(&header[..60]) != stored_crc {
        return Err("header checksum mismatch".into());
    }
    let version = h.u16()?;
    if version == 1 || version == 2 {
        return Err(format!(
            "version {version} predates transfer details; the log is replayed instead"
        ));
    }
    if version != CHECKPOINT_VERSION {
        return Err(format!("unknown version {version}"));
    }
    let reserved = h.u16()?;
    if reserved != 0 {
        return Err(format!("reserved field is {reserved}, not 0"));
    }
    let partition = h.u32()?;
    if partition != partition_id.0 {
        return Err(format!(
            "belongs to partition {partition}, not {partition_id}"
        ));
    }
    let applied_index = LogIndex(h.u64()?);
    let last_timestamp = Timestamp(h.u64()?);
    let body_len = h.u64()?;
    let digest = h.u128()?;
    let body_crc = h.u32()?;
    if body_len > CHECKPOINT_BODY_SIZE_MAX
        || body_len != (bytes.len() - CHECKPOINT_HEADER_SIZE) as u64
    {
        return Err(format!(
            "body length {body_len} but {} bytes follow the header",
            bytes.len() - CHECKPOINT_HEADER_SIZE
        ));
    }
    let body = &bytes[CHECKPOINT_HEADER_SIZE..];
    if crc32fast::hash(body) != body_crc {
        return Err("body checksum mismatch".into());
    }
    let mut r = Reader::new(body);
    let ledger_count = r.count(7)?;
    let mut ledgers = Vec::with_capacity(ledger_count);
    for _ in 0..ledger_count {
        ledgers.push(Ledger {
            id: LedgerId(r.u32()?),
            scale: r.u8()?,
            code: r.u16()?,
        });
    }
    let account_count = r.count(60)?;
    let mut accounts = Vec::with_capacity(account_count);
    for _ in 0..account_count {
        let id = AccountId(r.u128()?);
        let ledger = LedgerId(r.u32()?);
        let code = r.u16()?;
        let flags = AccountFlags(r.u16()?);
        let limit = match r.u8()? {
            0 => None,
            1 => Some(r.varint()?),
            other => return Err(format!("bad limit tag {other}")),
        };
        accounts.push(Account {
            id,
            ledger,
            code,
            flags,
            limit,
            user_data_128: r.u128()?,
            user_data_64: r.u64()?,
            user_data_32: r.u32()?,
            timestamp: Timestamp(r.u64()?),
            balances: r.balances()?,
        });
    }
    let transfer_count = r.count(50)?;
    let mut builder = Partition::builder(
        applied_index,
        last_timestamp,
        ledgers,
        accounts,
        transfer_count,
    )?;
    for _ in 0..transfer_count {
        let id = TransferId(r.u128()?);
        let record = decode_transfer_record(&mut r, id)?;
        builder.push_transfer(id, record)?;
    }
    let index_durable = LogIndex(r.u64()?);
    if index_durable > applied_index {
        return Err(format!(
            "index durable to {index_durable}, beyond the applied index {applied_index}"
        ));
    }
    let spills = r.u64()?;
    let spilled_records = r.u64()?;
    let runs_digest = r.u128()?;
    if (spills == 0) != (spilled_records == 0) || (spills == 0 && runs_digest != 0) {
        return Err(format!(
            "{spills} spills but {spilled_records} records on disk (digest {runs_digest:x})"
        ));
    }
    let overlay_count = r.count(17)?;
    let mut refund_overlay = Vec::with_capacity(overlay_count);
    for _ in 0..overlay_count {
        let id = TransferId(r.u128()?);
        let refunded = r.varint()?;
        if refund_overlay.last().is_some_and(|&(last, _)| last >= id) {
            return Err(format!("refund overlay not sorted at transfer {id}"));
        }
        refund_overlay.push((id, refunded));
    }
    if spills == 0 && !refund_overlay.is_empty() {
        return Err("a refund overlay without transfer runs".into());
    }
    if r.pos != body.len() {
        return Err(format!("{} trailing bytes", body.len() - r.pos));
    }
    Ok(Decoded {
        builder,
        digest,
        index_durable,
        spills,
        spilled_records,
        runs_digest,
        refund_overlay,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(len).ok_or("length overflow")?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(le::array(self.take(2)?)))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(le::array(self.take(4)?)))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(le::array(self.take(8)?)))
    }
    fn u128(&mut self) -> Result<u128, String> {
        Ok(u128::from_le_bytes(le::array(self.take(16)?)))
    }
    fn varint(&mut self) -> Result<u128, String> {
        let mut value = 0u128;
        for shift in (0..128).step_by(7) {
            let byte = self.u8()?;
            let bits = u128::from(byte & 0x7f);
            if shift == 126 && bits > 0b11 {
                return Err(format!("varint overflows 128 bits at byte {}", self.pos));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 19 bytes at byte {}", self.pos))
    }
    fn balances(&mut self) -> Result<Balances, String> {
        Ok(Balances {
            debits_pending: self.varint()?,
            debits_posted: self.varint()?,
            credits_pending: self.varint()?,
            credits_posted: self.varint()?,
        })
    }
    /// A count of items at least `item_size_min` bytes each, bounded by the bytes left.
    fn count(&mut self, item_size_min: usize) -> Result<usize, String> {
        let count = self.u64()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if count.saturating_mul(item_size_min as u64) > left {
            return Err(format!("count {count} exceeds the {left} bytes left"));
        }
        Ok(count as usize)
    }
}
