//! Tally's ledger engine: the segmented log, the partition state machine, and checkpoints.
//!
//! This crate is sans-IO at its core: the state machine ([`partition`]) reads no clock, opens
//! no socket and starts no thread; time arrives inside log entries. The log ([`segment`]) and
//! checkpoints ([`checkpoint`]) do file IO with explicit fsyncs, and [`store`] ties them
//! together into one durable, single-node partition. The per-account index ([`index`]) is
//! derived from the state machine's postings and answers history, point-in-time balance,
//! flow and hourly-series queries from memory and memory-mapped run files.
//!
//! Data flow: a batch of events becomes a [`command::EntryPayload`], is appended to the log
//! and made durable with one fsync for the whole group, then applied by
//! [`partition::Partition::apply`], which returns one result per event
//! ([`outcome::Outcome`]). Every so often the state is checkpointed so that a restart only
//! replays the log after the checkpoint.

pub mod background;
pub mod checkpoint;
pub mod command;
mod files;
pub mod index;
mod le;
pub mod outcome;
pub mod partition;
mod search;
pub mod segment;
pub mod store;
pub mod transfer_runs;
pub mod types;
