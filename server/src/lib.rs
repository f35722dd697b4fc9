//! The Tally server: Raft replication of each partition over the engine's log, and (next)
//! the network server and operator commands.
//!
//! - [`raft_storage`]: raft-rs `Storage` over the segmented log; hard state on disk.
//! - [`replica`]: one partition replica: `RawNode` + state machine, the Ready loop.
//! - [`sim`]: a deterministic cluster simulator (one thread, simulated network, disk faults
//!   and time) that checks Raft's and the ledger's invariants after every step.

pub mod clock;
pub mod config;
pub mod connection;
pub mod convert;
pub mod identity;
pub mod node;
pub mod raft_log;
pub mod raft_storage;
pub mod recovery;
pub mod replica;
pub mod routing;
pub mod session;
pub mod sim;
pub mod transport;
pub mod worker;
