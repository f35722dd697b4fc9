//! Helpers for the engine's directories of numbered files (checkpoints, index runs, transfer
//! runs): each names its files `<prefix><number or range><suffix>` and lists them the same
//! way. Names that are not UTF-8 or do not match are ignored, as are leftovers such as
//! `*.tmp`; a missing directory has no files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
