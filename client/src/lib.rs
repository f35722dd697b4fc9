//! Tally client.
//!
//! [`Client`] is the async (tokio) API over every operation: typed requests and results,
//! `rust_decimal::Decimal` amounts. Give it any node addresses; it finds and follows the
//! leader, reconnects after failures, coalesces concurrent single-transfer calls into batches,
//! and retries after timeouts and disconnects with the same ids, reporting an operation as
//! [`ClientError::Indeterminate`] only when the retries are exhausted. [`ids`] makes ids,
//! including (through [`Client::account_id_beside`]) account ids in the same partition as
//! another account.
//!
//! Layers, bottom up: [`wire`] (versioned, checksummed frames with prost-encoded bodies, and
//! the client's own Rust types for ledgers, accounts, transfers and their result codes);
//! `connection` (one pipelined TCP connection: writer task, reader task, request ids);
//! `router` (which node to talk to: seeds, learned leaders, `not_leader` hints); `client`
//! (validation, the retry loop, the operations); `batcher` (coalescing); `subscription`
//! (change streams, each on a connection of its own). `docs/protocol.md`
//! ("Client behaviour") describes the behaviour a server can rely on.
//!
//! [`Client::subscribe`] streams the changes the cluster commits — ledgers and accounts
//! created, transfers decided with both accounts' balances right after, holds expired — in
//! commit order per partition, from the start, from now, from a time, or right after the
//! [`Position`]s a consumer handled last. The [`Subscription`] is a `futures_core::Stream` of
//! [`Streamed`] items fed by a task with its own connection; it reconnects (to any node: all
//! have the same positions) and resumes after the last position it stood at by itself,
//! dropping what it delivered already, and says [`Streamed::CaughtUp`] when it has read
//! everything committed. It ends, with one error, only on what retrying cannot fix.
//!
//! The crate depends on no other workspace crate (STYLE.md), so the wire format versions
//! apart from the engine's disk format; the server converts between the two.

pub mod ids;
pub mod wire;

mod batcher;
mod client;
mod connection;
mod error;
mod router;
mod subscription;

pub use batcher::SUBMISSION_QUEUE_MAX;
pub use client::{
    BalanceSeries, Client, ClientOptions, ATTEMPTS_MAX, IN_FLIGHT_MAX, RETRY_AFTER_MAX,
    RETRY_BACKOFF_MAX, SEED_ADDRESSES_MAX,
};
pub use connection::{CLIENT_VERSION, OUTGOING_QUEUE_MAX, WRITE_COALESCE_SIZE_MAX};
pub use error::ClientError;
pub use router::{CONNECT_CANDIDATES_MAX, LEARNED_ADDRESSES_MAX};
pub use subscription::{
    Streamed, Subscription, RESUBSCRIBE_BACKOFF_MAX, RESUBSCRIBE_BACKOFF_MIN, STREAM_SILENCE_MAX,
    STREAM_VIOLATIONS_MAX, SUBSCRIPTION_QUEUE_MAX,
};
pub use wire::types::to_decimal;
pub use wire::{
    Account, AccountFlags, AccountId, AccountResult, BalancePoint, Balances, Change, ChangeBody,
    ChangeKind, ClusterInfo, Direction, ErrorCode, Flows, FlowsQuery, HistoryEntry, HistoryPage,
    HistoryQuery, HoldStatus, LedgerId, LedgerResult, NewAccount, NewLedger, NewTransfer,
    NodeAddress, PartitionId, Position, ReplicaStatus, SeriesQuery, ServerError, StageSummary,
    StreamEnd, StreamFilter, StreamFrom, Timestamp, Transfer, TransferChange, TransferFlags,
    TransferId, TransferKind, TransferOutcome, TransferResult,
};
