//! raft-rs logs through slog; this drain hands its records to `tracing`, so elections, leader
//! changes and their terms appear in the node's log beside everything else (raft-rs logs
//! those at info; its chatter per message at debug and below).
//!
//! Each record becomes one event with target `raft`, its message, and its key-value pairs
//! (the replica's own, such as `raft_id`, and the logger's, such as the partition) appended
//! as `key=value` text.

use std::fmt::{self, Write as _};

use slog::{Drain, Key, Level, OwnedKVList, Record, Serializer, KV};

/// A slog drain that forwards to `tracing` (see the module documentation).
pub struct TracingDrain;

struct Pairs(String);

impl Serializer for Pairs {
    fn emit_arguments(&mut self, key: Key, value: &fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut pairs = Pairs(String::new());
        let _ = record.kv().serialize(record, &mut pairs);
        let _ = values.serialize(record, &mut pairs);
        let message = record.msg();
        let pairs = pairs.0;
        match record.level() {
            Level::Critical | Level::Error => {
                tracing::error!(target: "raft", "{message}{pairs}")
            }
            Level::Warning => tracing::warn!(target: "raft", "{message}{pairs}"),
            Level::Info => tracing::info!(target: "raft", "{message}{pairs}"),
            Level::Debug => tracing::debug!(target: "raft", "{message}{pairs}"),
            Level::Trace => tracing::trace!(target: "raft", "{message}{pairs}"),
        }
        Ok(())
    }
}

/// A raft-rs logger for one partition's replica on this node.
pub fn logger(partition: u32) -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!("partition" => partition))
}
