//! Change streams: every committed decision, in commit order per partition, resumable by
//! position (issue 14; `docs/architecture.md`, "Change streams").
//!
//! - `record`: what an applied entry decided, encoded as the wire's `WireChange`s.
//! - `log`: the change log of one replica, written by its worker after applying and read by
//!   streams, so a stream never holds more than one read's worth of changes in memory and a
//!   consumer far behind reads from the disk.
//! - `stream`: one `Subscribe` request served from the change logs of the node's replicas.
//!
//! Every node applies only committed entries, so every node's change log holds only
//! committed changes and any node can serve any stream; positions (partition, log index,
//! event) name the same change on every node.

pub mod log;
pub mod record;
pub mod stream;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// What streams see of one replica's change log: where it is and how far it is written.
#[derive(Debug)]
pub struct ChangeFeed {
    dir: PathBuf,
    /// The last index written (every record up to it can be read).
    end: AtomicU64,
    /// Bytes written since the node started.
    written: AtomicU64,
    /// Notified when any feed sharing it moves (one per node).
    moved: Arc<Notify>,
}

impl ChangeFeed {
    /// The feed of the change log in `dir`, nothing published yet; `moved` is notified
    /// whenever it moves (the node shares one among its partitions, so a stream waits on
    /// one notification for all of them).
    pub fn new(dir: &Path, moved: Arc<Notify>) -> ChangeFeed {
        ChangeFeed {
            dir: dir.to_path_buf(),
            end: AtomicU64::new(0),
            written: AtomicU64::new(0),
            moved,
        }
    }

    /// The change log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last index written (every record up to it can be read).
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// Bytes written since the node started.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// What streams wait on.
    pub fn moved(&self) -> &Arc<Notify> {
        &self.moved
    }

    /// Tells the streams that records up to `end` are written, `bytes` more than before.
    pub fn publish(&self, end: u64, bytes: u64) {
        self.written.fetch_add(bytes, Ordering::Relaxed);
        if self.end.fetch_max(end, Ordering::AcqRel) < end {
            self.moved.notify_waiters();
        }
    }
}
