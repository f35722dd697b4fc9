//! Helpers for the engine's directories of numbered files (checkpoints, index runs, transfer
//! runs): each names its files `<prefix><number or range><suffix>` and lists them the same
//! way. Names that are not UTF-8 or do not match are ignored, as are leftovers such as
//! `*.tmp`; a missing directory has no files.
//!
//! Those files are written in the background, beside the log, through [`Paced`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How many bytes a [`Paced`] file lets become dirty before it makes them durable.
pub(crate) const PACE_BYTES: u64 = 1 << 20;

/// A file written in the background (a checkpoint, an index run, a transfer run) that
/// makes its data durable every [`PACE_BYTES`], so that little of it is dirty at any time.
/// On ext4 (`data=ordered`) an fsync of the log also writes out the dirty data of other
/// files the same journal commit covers: tens of megabytes written at once by a background
/// thread would stall the log's fsync, and every write waiting on it, by that much I/O.
pub(crate) struct Paced {
    file: File,
    unsynced: u64,
}

impl Paced {
    pub(crate) fn new(file: File) -> Paced {
        Paced { file, unsynced: 0 }
    }

    /// The file (its last bytes may not be durable yet: sync it).
    pub(crate) fn into_file(self) -> File {
        self.file
    }
}

impl Write for Paced {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buf)?;
        self.unsynced += written as u64;
        if self.unsynced >= PACE_BYTES {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The files in `dir` named `<prefix><middle><suffix>`, as `(middle, path)`, unsorted.
pub(crate) fn named(dir: &Path, prefix: &str, suffix: &str) -> io::Result<Vec<(String, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(middle) = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(suffix))
        {
            files.push((middle.to_string(), entry.path()));
        }
    }
    Ok(files)
}

/// Parses `<first>-<last>`, two decimal numbers.
pub(crate) fn number_pair(text: &str) -> Option<(u64, u64)> {
    let (first, last) = text.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_matching_names_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["run-1-2.tix", "run-3-4.tix.tmp", "other.tix", "run-x.tix"] {
            fs::write(dir.path().join(name), b"").expect("write");
        }
        let mut found: Vec<String> = named(dir.path(), "run-", ".tix")
            .expect("list")
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        found.sort();
        assert_eq!(found, vec!["1-2", "x"]);
        assert_eq!(number_pair("1-2"), Some((1, 2)));
        assert_eq!(number_pair("x"), None);
        assert!(named(&dir.path().join("missing"), "a", "b")
            .expect("missing")
            .is_empty());
    }
}
