//! The client's operating errors.
//!
//! A call either returns its results (which are data: a rejected transfer is an `Ok` vector
//! holding a result code, never an `Err`) or one of these errors. The split that matters to a
//! caller is between errors that say *the operation was not applied* and the one that says
//! *nobody knows*:
//!
//! - [`ClientError::Rejected`], [`ClientError::Invalid`], [`ClientError::Connect`] and
//!   [`ClientError::Closed`] are definite: the cluster did not apply the operation (it refused
//!   it, it never left this process, or no node could be reached to send it to).
//! - [`ClientError::Indeterminate`] means the request was sent at least once and no attempt
//!   got a definite answer before the retries ran out: it may or may not have been applied.
//!   Because every write is idempotent by id, the caller resolves it by sending the same
//!   events with the same ids again later (or by looking them up), never by inventing new ids.
//!
//! Errors are `Clone` because one batch-level failure is reported to every caller whose
//! transfer was coalesced into that batch.

use thiserror::Error;

use crate::wire::ServerError;

/// Why a client call failed. See the module documentation for which variants are definite.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server refused the request with an error that retrying cannot fix (malformed,
    /// unsupported version, cross-partition), or kept answering `overloaded`/`not_leader`
    /// until the retries ran out. The request was not applied.
    #[error("rejected by the server: {} ({})", .0.code.name(), .0.message)]
    Rejected(ServerError),
    /// The request was sent, but after `attempts` attempts no attempt got a definite answer
    /// (timeouts, lost connections, `timeout`/`internal` errors): it may or may not have been
    /// applied. Resend the same events with the same ids to learn the outcome.
    #[error("indeterminate after {attempts} attempts (may or may not have been applied): {last}")]
    Indeterminate {
        /// How many attempts were made.
        attempts: u32,
        /// What went wrong on the last attempt.
        last: String,
    },
    /// No node could be reached, so nothing was sent.
    #[error("could not reach the cluster: {0}")]
    Connect(String),
    /// The caller's input breaks a limit (batch size, memo size, time range, a linked single
    /// transfer). Nothing was sent.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The nodes kept breaking the protocol (a change stream got frames it cannot read, as
    /// from a server newer than this client).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The client's background tasks have stopped (the runtime is shutting down).
    #[error("the client is closed")]
    Closed,
}

impl ClientError {
    /// Whether the operation is known not to have been applied. Only
    /// [`ClientError::Indeterminate`] answers `false`.
    pub fn is_definite(&self) -> bool {
        !matches!(self, ClientError::Indeterminate { .. })
    }
}
