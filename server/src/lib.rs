//! The Tally server: Raft replication of each partition over the engine's log, the client
//! and peer listeners, and the operator commands (`main.rs`).
//!
//! - [`node`]: one node: its listeners, partition workers, peers and recovery.
//! - [`worker`]: one partition's single-threaded loop around its [`replica`].
//! - [`replica`]: one partition replica: `RawNode` + state machine, the Ready loop;
//!   [`refusal`]: the peer messages it never hands to raft-rs.
//! - [`raft_storage`]: raft-rs `Storage` over the segmented log; hard state on disk.
//! - [`transport`]: peer connections and their frames; [`handshake`]: how peers prove
//!   they belong to the cluster.
//! - [`metrics`]: what a node counts, served for Prometheus with `/healthz` and `/readyz`.
//! - [`clock`], [`links`]: what the peers' pings say of their clocks and of the links.
//! - [`sim`]: a deterministic cluster simulator (one thread, simulated network, disk faults
//!   and time) that checks Raft's and the ledger's invariants after every step.

pub mod changes;
pub mod clock;
pub mod config;
pub mod connection;
pub mod convert;
pub mod handshake;
pub mod identity;
pub mod links;
pub mod metrics;
pub mod node;
pub mod raft_log;
pub mod raft_storage;
pub mod recovery;
pub mod refusal;
pub mod replica;
pub mod routing;
pub mod session;
pub mod sim;
pub mod stages;
pub mod transport;
pub mod worker;
