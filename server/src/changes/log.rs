//! The change log of one partition replica: files of records, one per applied entry that
//! decided something, in log order; written by the worker, read by any number of streams.
//!
//! A record is a 32-byte header and a body (`docs/format.md`, "Change log"):
//!
//! | offset | width | field |
//! |---:|---:|---|
//! | 0 | 4 | body size |
//! | 4 | 4 | CRC32 of bytes 8..32 and the body |
//! | 8 | 8 | log index |
//! | 16 | 8 | timestamp of the first change |
//! | 24 | 8 | timestamp of the last change |
//!
//! The body is the entry's changes as `Subscribe` sends them: each one a protobuf field 1
//! holding a `WireChange`, so bodies concatenated are a `SubscribeResponse`'s `changes`.
//!
//! Files are `<first index:020>.tcl`, rolled at [`SEGMENT_SIZE_MAX`]. Durability: derived
//! data, like the per-account index. The worker writes (no fsync); a checkpoint fsyncs what was
//! written before it is itself written ([`ChangeLog::sync_handle`]), so every checkpoint is
//! covered, and at most one sealed file is ever unsynced (the next roll syncs it). Opening
//! therefore checks the last two files record by record and cuts the first bad record; the
//! replica then restores a checkpoint at or below the valid end (or replays from the start)
//! and records again what follows, skipping what the log already holds (the records are a
//! pure function of the entries).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ChangeFeed;

/// Bytes of one file past which the next record starts a new one.
pub const SEGMENT_SIZE_MAX: u64 = 64 << 20;
/// Bytes of a record header.
pub const HEADER_SIZE: usize = 32;
/// Largest body a record may have (an entry expiring millions of holds; events alone are at
/// most 8,190 of a few hundred bytes each).
pub const BODY_SIZE_MAX: usize = 1 << 30;

/// A record's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Bytes of body.
    pub size: u32,
    /// The entry.
    pub index: u64,
    /// Timestamp of its first change.
    pub first_timestamp: u64,
    /// Timestamp of its last change.
    pub last_timestamp: u64,
}

impl RecordHeader {
    fn encode(&self, body: &[u8]) -> [u8; HEADER_SIZE] {
        let mut h = [0u8; HEADER_SIZE];
        h[0..4].copy_from_slice(&self.size.to_le_bytes());
        h[8..16].copy_from_slice(&self.index.to_le_bytes());
        h[16..24].copy_from_slice(&self.first_timestamp.to_le_bytes());
        h[24..32].copy_from_slice(&self.last_timestamp.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&h[8..]);
        crc.update(body);
        h[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
        h
    }

    fn decode(h: &[u8; HEADER_SIZE]) -> (RecordHeader, u32) {
        let u64_at = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
        (
            RecordHeader {
                size: u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")),
                index: u64_at(8),
                first_timestamp: u64_at(16),
                last_timestamp: u64_at(24),
            },
            u32::from_le_bytes(h[4..8].try_into().expect("4 bytes")),
        )
    }

    fn checksum(h: &[u8; HEADER_SIZE], body: &[u8]) -> u32 {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&h[8..]);
        crc.update(body);
        crc.finalize()
    }
}

/// One record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its header.
    pub header: RecordHeader,
    /// Its body.
    pub body: Vec<u8>,
}

/// Why the change log could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum ChangeLogError {
    /// An IO error.
    #[error("change log IO error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A record that should be intact is not.
    #[error("change log {path} is damaged at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What check failed.
        reason: &'static str,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ChangeLogError + '_ {
    move |source| ChangeLogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.tcl")
}

/// The files of `dir`, by first index.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, ChangeLogError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_error(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".tcl"))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((first, entry.path()));
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), ChangeLogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Reads the next record at the reader's position. `Ok(None)`: no complete, intact record
/// there (the end, a torn tail, or damage: `Err` only for IO errors and `Some(reason)` says
/// which check failed).
fn read_record(reader: &mut impl Read) -> io::Result<Result<Record, Option<&'static str>>> {
    let mut h = [0u8; HEADER_SIZE];
    match read_full(reader, &mut h)? {
        0 => return Ok(Err(None)),
        n if n < HEADER_SIZE => return Ok(Err(Some("torn header"))),
        _ => {}
    }
    let (header, crc) = RecordHeader::decode(&h);
    if header.size as usize > BODY_SIZE_MAX {
        return Ok(Err(Some("body size out of range")));
    }
    let mut body = vec![0u8; header.size as usize];
    if read_full(reader, &mut body)? < body.len() {
        return Ok(Err(Some("torn body")));
    }
    if RecordHeader::checksum(&h, &body) != crc {
        return Ok(Err(Some("checksum mismatch")));
    }
    Ok(Ok(Record { header, body }))
}

/// Reads until `buf` is full or the end; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut read = 0;
    while read < buf.len() {
        match reader.read(&mut buf[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}

/// What [`ChangeLog::open`] found.
#[derive(Debug, Default)]
pub struct OpenReport {
    /// The last index recorded intact (0: none).
    pub end: u64,
    /// A damaged or torn tail was cut: the file, the offset and why.
    pub cut: Option<(PathBuf, u64, &'static str)>,
}

/// The files a checkpoint must fsync before it is written, taken on the worker.
pub struct SyncHandle {
    files: Vec<(PathBuf, File)>,
}

impl SyncHandle {
    /// Fsyncs every file (on the checkpoint's thread).
    pub fn sync(self) -> io::Result<()> {
        for (_, file) in self.files {
            file.sync_data()?;
        }
        Ok(())
    }
}

struct Current {
    path: PathBuf,
    file: File,
    len: u64,
}

/// The writer of one replica's change log.
pub struct ChangeLog {
    dir: PathBuf,
    feed: Arc<ChangeFeed>,
    segment_size_max: u64,
    current: Option<Current>,
    /// A sealed file not fsynced yet (at most one).
    unsynced: Option<(PathBuf, File)>,
    /// Records built and not yet written.
    buffer: Vec<u8>,
    /// The last index recorded (in `buffer` or in the files).
    end: u64,
}

impl ChangeLog {
    /// Opens (or creates) the change log in `dir`, cutting a torn or damaged tail from the
    /// last two files, and publishes its end on `feed`.
    pub fn open(
        dir: &Path,
        feed: Arc<ChangeFeed>,
        segment_size_max: u64,
    ) -> Result<(ChangeLog, OpenReport), ChangeLogError> {
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let files = segments(dir)?;
        let mut report = OpenReport::default();
        let check_from = files.len().saturating_sub(2);
        // Files before the last two were synced before anything after them was written.
        if check_from > 0 {
            report.end = last_index_of(&files[check_from - 1].1)?;
        }
        let mut cut_at: Option<usize> = None;
        for (n, (_, path)) in files.iter().enumerate().skip(check_from) {
            let file = File::open(path).map_err(io_error(path))?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut offset = 0u64;
            loop {
                match read_record(&mut reader).map_err(io_error(path))? {
                    Ok(record) if record.header.index > report.end => {
                        report.end = record.header.index;
                        offset += (HEADER_SIZE + record.body.len()) as u64;
                    }
                    Ok(_) => {
                        report.cut = Some((path.clone(), offset, "index not increasing"));
                        break;
                    }
                    Err(None) => break,
                    Err(Some(reason)) => {
                        report.cut = Some((path.clone(), offset, reason));
                        break;
                    }
                }
            }
            if report.cut.is_some() {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_error(path))?;
                file.set_len(offset).map_err(io_error(path))?;
                file.sync_all().map_err(io_error(path))?;
                cut_at = Some(n + 1);
                if offset == 0 {
                    cut_at = Some(n);
                }
                break;
            }
        }
        if let Some(from) = cut_at {
            for (_, path) in &files[from..] {
                fs::remove_file(path).map_err(io_error(path))?;
            }
            sync_dir(dir)?;
        }
        let files = segments(dir)?;
        let current = match files.last() {
            Some((_, path)) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(io_error(path))?;
                let len = file.metadata().map_err(io_error(path))?.len();
                Some(Current {
                    path: path.clone(),
                    file,
                    len,
                })
            }
            None => None,
        };
        feed.publish(report.end, 0);
        Ok((
            ChangeLog {
                dir: dir.to_path_buf(),
                feed,
                segment_size_max,
                current,
                unsynced: None,
                buffer: Vec::new(),
                end: report.end,
            },
            report,
        ))
    }

    /// The last index recorded.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The feed streams wait on.
    pub fn feed(&self) -> &Arc<ChangeFeed> {
        &self.feed
    }

    /// Records entry `index`'s changes (`body`, see the module documentation), unless the log
    /// already holds the entry (replayed after a restart). Written by [`ChangeLog::flush`].
    pub fn record(
        &mut self,
        index: u64,
        first_timestamp: u64,
        last_timestamp: u64,
        body: &[u8],
    ) -> Result<(), ChangeLogError> {
        if index <= self.end {
            return Ok(());
        }
        assert!(body.len() <= BODY_SIZE_MAX, "change record too large");
        let pending = self.current.as_ref().map_or(0, |c| c.len) + self.buffer.len() as u64;
        if self.current.is_none()
            || (pending > 0 && pending + body.len() as u64 > self.segment_size_max)
        {
            self.write_buffer()?;
            self.roll(index)?;
        }
        let header = RecordHeader {
            size: body.len() as u32,
            index,
            first_timestamp,
            last_timestamp,
        };
        self.buffer.extend_from_slice(&header.encode(body));
        self.buffer.extend_from_slice(body);
        self.end = index;
        Ok(())
    }

    /// Writes what was recorded and tells the streams; `applied` is the replica's applied
    /// index. If the entries after the last record decided nothing, an empty record at
    /// `applied` says the log covers them (a checkpoint there must not wait for a change).
    pub fn flush(&mut self, applied: u64) -> Result<(), ChangeLogError> {
        if applied > self.end {
            self.record(applied, 0, 0, &[])?;
        }
        let bytes = self.buffer.len() as u64;
        self.write_buffer()?;
        self.feed.publish(self.end, bytes);
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), ChangeLogError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let current = self
            .current
            .as_mut()
            .expect("a file is open once a record is");
        current
            .file
            .write_all(&self.buffer)
            .map_err(io_error(&current.path))?;
        current.len += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Starts a new file whose first record is `index`, sealing the current one.
    fn roll(&mut self, index: u64) -> Result<(), ChangeLogError> {
        if let Some((path, file)) = self.unsynced.take() {
            // Two sealed files unsynced would leave a hole opening does not look for.
            file.sync_data().map_err(io_error(&path))?;
        }
        if let Some(sealed) = self.current.take() {
            if sealed.len == 0 {
                fs::remove_file(&sealed.path).map_err(io_error(&sealed.path))?;
            } else {
                self.unsynced = Some((sealed.path, sealed.file));
            }
        }
        let path = self.dir.join(segment_name(index));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        sync_dir(&self.dir)?;
        self.current = Some(Current { path, file, len: 0 });
        Ok(())
    }

    /// The files a checkpoint of the state as applied now must fsync first: everything
    /// written so far (call after [`ChangeLog::flush`]).
    pub fn sync_handle(&mut self) -> Result<SyncHandle, ChangeLogError> {
        let mut files = Vec::new();
        if let Some(sealed) = self.unsynced.take() {
            files.push(sealed);
        }
        if let Some(current) = &self.current {
            let clone = current.file.try_clone().map_err(io_error(&current.path))?;
            files.push((current.path.clone(), clone));
        }
        Ok(SyncHandle { files })
    }
}

/// The index of the last record of a file that must be intact.
fn last_index_of(path: &Path) -> Result<u64, ChangeLogError> {
    let file = File::open(path).map_err(io_error(path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut last = 0;
    let mut offset = 0u64;
    loop {
        match read_record(&mut reader).map_err(io_error(path))? {
            Ok(record) => {
                last = record.header.index;
                offset += (HEADER_SIZE + record.body.len()) as u64;
            }
            Err(None) => return Ok(last),
            Err(Some(reason)) => {
                return Err(ChangeLogError::Corrupt {
                    path: path.to_path_buf(),
                    offset,
                    reason,
                })
            }
        }
    }
}

/// A reader of one replica's change log, for one stream: forward from a position, never past
/// the end the writer published.
pub struct ChangeReader {
    dir: PathBuf,
    /// The file read, its first index, and the reader positioned at `offset`.
    file: Option<(u64, BufReader<File>, u64)>,
    /// The last index read.
    last: u64,
    /// Records whose last change is stamped before this are skipped.
    time_min: u64,
}

impl ChangeReader {
    /// A reader whose first record is the first with an index above `after`.
    pub fn after(dir: &Path, after: u64) -> Result<ChangeReader, ChangeLogError> {
        let mut reader = ChangeReader {
            dir: dir.to_path_buf(),
            file: None,
            last: after,
            time_min: 0,
        };
        let files = segments(dir)?;
        // The last file whose first index is at or below the first wanted.
        let start = files
            .iter()
            .rposition(|(first, _)| *first <= after.saturating_add(1))
            .unwrap_or(0);
        if let Some((first, path)) = files.get(start) {
            reader.open(*first, path)?;
        }
        Ok(reader)
    }

    /// A reader whose first record is the first whose last change is stamped at or after
    /// `time` (the caller drops that record's earlier changes).
    pub fn from_time(dir: &Path, time: u64) -> Result<ChangeReader, ChangeLogError> {
        let files = segments(dir)?;
        let mut after = 0;
        for (first, path) in &files {
            let file = File::open(path).map_err(io_error(path))?;
            match read_record(&mut BufReader::new(file)).map_err(io_error(path))? {
                Ok(record) if record.header.first_timestamp <= time => {
                    after = first.saturating_sub(1)
                }
                _ => break,
            }
        }
        let mut reader = ChangeReader::after(dir, after)?;
        reader.time_min = time;
        Ok(reader)
    }

    fn open(&mut self, first: u64, path: &Path) -> Result<(), ChangeLogError> {
        let file = File::open(path).map_err(io_error(path))?;
        self.file = Some((first, BufReader::with_capacity(256 << 10, file), 0));
        Ok(())
    }

    /// Moves to the next file if the current one has no more records and a next one exists;
    /// returns whether it moved. Called at the current file's end.
    fn next_file(&mut self) -> Result<bool, ChangeLogError> {
        let current = self.file.as_ref().map(|f| f.0);
        let files = segments(&self.dir)?;
        let next = files
            .iter()
            .find(|(first, _)| current.is_none_or(|c| *first > c));
        match next {
            Some((first, path)) => {
                let (first, path) = (*first, path.clone());
                self.open(first, &path)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The last index read (or the position it started after).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Reads records with indexes up to `end` into `out`, until about `budget` bytes of bodies
    /// were read. Records the reader skipped (already read, or at or below the start) are
    /// left out.
    pub fn read(
        &mut self,
        end: u64,
        budget: usize,
        out: &mut Vec<Record>,
    ) -> Result<(), ChangeLogError> {
        let mut read = 0usize;
        while read < budget && self.last < end {
            if self.file.is_none() && !self.next_file()? {
                return Ok(());
            }
            let dir = self.dir.clone();
            let (first, reader, offset) = self.file.as_mut().expect("opened above");
            let at = *offset;
            match read_record(reader).map_err(io_error(&dir))? {
                Ok(record) if record.header.index > end => {
                    // Written, not yet published: read it again next time.
                    reader.seek(SeekFrom::Start(at)).map_err(io_error(&dir))?;
                    return Ok(());
                }
                Ok(record) => {
                    *offset += (HEADER_SIZE + record.body.len()) as u64;
                    if record.header.index > self.last {
                        self.last = record.header.index;
                        if record.header.last_timestamp >= self.time_min {
                            read += record.body.len();
                            out.push(record);
                        }
                    }
                }
                Err(reason) => {
                    reader.seek(SeekFrom::Start(at)).map_err(io_error(&dir))?;
                    let first = *first;
                    // In the file being written, what does not read yet is being written.
                    if !self.next_file()? {
                        return Ok(());
                    }
                    // A sealed file is whole: a bad record in it is damage.
                    if let Some(reason) = reason {
                        return Err(ChangeLogError::Corrupt {
                            path: dir.join(segment_name(first)),
                            offset: at,
                            reason,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Notify;

    fn feed(dir: &Path) -> Arc<ChangeFeed> {
        Arc::new(ChangeFeed::new(dir, Arc::new(Notify::new())))
    }

    fn body(index: u64) -> Vec<u8> {
        format!("entry {index} ")
            .repeat((index % 7 + 1) as usize)
            .into_bytes()
    }

    /// Writes records for `indexes`, flushing after each, in files of `segment` bytes.
    fn write(dir: &Path, indexes: impl IntoIterator<Item = u64>, segment: u64) -> ChangeLog {
        let (mut log, _) = ChangeLog::open(dir, feed(dir), segment).unwrap();
        for index in indexes {
            log.record(index, index * 10, index * 10 + 5, &body(index))
                .unwrap();
            log.flush(index).unwrap();
        }
        log
    }

    fn read_all(dir: &Path, after: u64, end: u64) -> Vec<u64> {
        let mut reader = ChangeReader::after(dir, after).unwrap();
        let mut out = Vec::new();
        loop {
            let before = out.len();
            reader.read(end, 100, &mut out).unwrap();
            if out.len() == before {
                break;
            }
        }
        for record in &out {
            assert_eq!(record.body, body(record.header.index));
        }
        out.iter().map(|r| r.header.index).collect()
    }

    #[test]
    fn records_read_back_in_order_across_files_from_any_position() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("changes");
        let log = write(&dir, (1..=200).filter(|i| i % 3 != 0), 512);
        assert!(segments(&dir).unwrap().len() > 5, "small files roll over");
        let all: Vec<u64> = (1..=200).filter(|i| i % 3 != 0).collect();
        assert_eq!(read_all(&dir, 0, log.end()), all);
        for after in [1, 2, 3, 50, 99, 150, 199, 200] {
            let expected: Vec<u64> = all.iter().copied().filter(|&i| i > after).collect();
            assert_eq!(read_all(&dir, after, log.end()), expected, "after {after}");
        }
        // Never past the published end.
        assert_eq!(
            read_all(&dir, 0, 50),
            all.iter().copied().filter(|&i| i <= 50).collect::<Vec<_>>()
        );
    }

    #[test]
    fn flush_covers_entries_that_decided_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("changes");
        let (mut log, _) = ChangeLog::open(&dir, feed(&dir), 1 << 20).unwrap();
        log.record(3, 30, 30, b"x").unwrap();
        log.flush(9).unwrap();
        assert_eq!(log.end(), 9);
        assert_eq!(log.feed().end(), 9);
        drop(log);
        let (log, report) = ChangeLog::open(&dir, feed(&dir), 1 << 20).unwrap();
        assert_eq!((log.end(), report.cut.is_none()), (9, true));
    }

    #[test]
    fn a_torn_tail_is_cut_and_written_again() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("changes");
        drop(write(&dir, 1..=40, 400));
        let files = segments(&dir).unwrap();
        let (_, last) = files.last().unwrap();
        let len = fs::metadata(last).unwrap().len();
        // Half of the last record survives the crash.
        let file = OpenOptions::new().write(true).open(last).unwrap();
        file.set_len(len - 7).unwrap();
        drop(file);
        let (log, report) = ChangeLog::open(&dir, feed(&dir), 400).unwrap();
        assert_eq!(log.end(), 39);
        assert_eq!(report.cut.as_ref().map(|c| c.2), Some("torn body"));
        drop(log);
        // The replica records the lost entry again; nothing before it is written twice.
        let log = write(&dir, 1..=45, 400);
        assert_eq!(log.end(), 45);
        assert_eq!(read_all(&dir, 0, 45), (1..=45).collect::<Vec<_>>());
    }

    #[test]
    fn a_flipped_byte_in_the_unsynced_files_cuts_from_there() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("changes");
        drop(write(&dir, 1..=40, 400));
        let files = segments(&dir).unwrap();
        let (first, second_last) = &files[files.len() - 2];
        let mut bytes = fs::read(second_last).unwrap();
        bytes[HEADER_SIZE + 2] ^= 0x40;
        fs::write(second_last, &bytes).unwrap();
        let (log, report) = ChangeLog::open(&dir, feed(&dir), 400).unwrap();
        assert_eq!(report.cut.as_ref().map(|c| c.2), Some("checksum mismatch"));
        assert_eq!(
            log.end(),
            first - 1,
            "everything from the damaged record on is cut"
        );
        assert_eq!(segments(&dir).unwrap().len(), files.len() - 2);
    }

    #[test]
    fn a_reader_reports_damage_in_a_sealed_file() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("changes");
        let log = write(&dir, 1..=40, 400);
        let files = segments(&dir).unwrap();
        let (_, first_file) = &files[0];
        let mut bytes = fs::read(first_file).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 1;
        fs::write(first_file, &bytes).unwrap();
        let mut reader = ChangeReader::after(&dir, 0).unwrap();
        let mut out = Vec::new();
        let mut result = Ok(());
        for _ in 0..10 {
            result = reader.read(log.end(), 1 << 20, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert!(
            matches!(result, Err(ChangeLogError::Corrupt { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn a_reader_from_a_time_starts_at_the_first_record_reaching_it() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("changes");
        let log = write(&dir, 1..=60, 300);
        let mut reader = ChangeReader::from_time(&dir, 333).unwrap();
        let mut out = Vec::new();
        reader.read(log.end(), 1 << 20, &mut out).unwrap();
        // Record 33 spans 330..=335.
        assert_eq!(out.first().map(|r| r.header.index), Some(33));
        let mut reader = ChangeReader::from_time(&dir, 5).unwrap();
        let mut out = Vec::new();
        reader.read(log.end(), 1 << 20, &mut out).unwrap();
        assert_eq!(out.first().map(|r| r.header.index), Some(1));
    }
}
