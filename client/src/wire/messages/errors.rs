//! Bodies: the `Error` frame.

use super::*;

/// Body of [`Operation::Error`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ErrorResponse {
    /// The [`ErrorCode`].
    #[prost(uint32, tag = "1")]
    pub code: u32,
    /// A human-readable explanation, for logs only.
    #[prost(string, tag = "2")]
    pub message: String,
    /// For `NotLeader`: the leader's address; empty if unknown.
    #[prost(string, tag = "3")]
    pub leader_hint: String,
    /// For `Overloaded`: milliseconds to wait before retrying; zero if not given.
    #[prost(uint32, tag = "4")]
    pub retry_after_ms: u32,
}

impl Body for ErrorResponse {
    const OPERATION: Operation = Operation::Error;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        check_size(self.message.len(), TEXT_SIZE_MAX, "error.message")?;
        check_size(
            self.leader_hint.len(),
            ADDRESS_SIZE_MAX,
            "error.leader_hint",
        )
    }
}

impl From<&ServerError> for ErrorResponse {
    fn from(e: &ServerError) -> ErrorResponse {
        ErrorResponse {
            code: e.code.code(),
            message: e.message.clone(),
            leader_hint: e.leader_hint.clone().unwrap_or_default(),
            retry_after_ms: e.retry_after_ms.unwrap_or(0),
        }
    }
}

impl ErrorResponse {
    /// The typed error.
    pub fn to_server_error(&self) -> ServerError {
        ServerError {
            code: ErrorCode::from_code(self.code),
            message: self.message.clone(),
            leader_hint: optional_text(&self.leader_hint),
            retry_after_ms: (self.retry_after_ms != 0).then_some(self.retry_after_ms),
        }
    }
}
