//! Errors as JSON: `{"error": {"code": "...", "message": "..."}}` with an HTTP status that
//! follows conventions, and `Retry-After` where waiting helps. The code is stable and
//! machine-readable: Tally's result name in snake case (`exceeds_credits`) for a ledger
//! refusal, or the gateway's own (`unauthorized`, `invalid_request`, `rate_limited`, …).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tally_client::{AccountResult, ClientError, ErrorCode, TransferResult};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: Tally's result name in snake case, or the gateway's own.
    pub code: String,
    /// For people.
    pub message: String,
}

/// An error on its way to the caller.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: String,
    /// The sentence.
    pub message: String,
    /// Seconds to wait before retrying, if that helps.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// 400: the request cannot be understood.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503 with `Retry-After`: try again with the same idempotency key.
    pub fn unavailable(code: &str, message: impl Into<String>, retry_after_s: u64) -> ApiError {
        ApiError {
            retry_after_s: Some(retry_after_s.max(1)),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// The refusal of a transfer by the ledger.
    pub fn refused(result: TransferResult) -> ApiError {
        use TransferResult as R;
        let status = match result {
            R::ExceedsCredits
            | R::ExceedsDebits
            | R::RefundExceedsRemaining
            | R::PendingTransferAlreadyPosted
            | R::PendingTransferAlreadyVoided
            | R::HoldExpired
            | R::ExistsWithDifferentFields
            | R::ExceedsPendingTransferAmount => StatusCode::CONFLICT,
            R::PendingTransferNotFound
            | R::RefundOfNotFound
            | R::DebitAccountNotFound
            | R::CreditAccountNotFound => StatusCode::NOT_FOUND,
            R::TimedOut => {
                return ApiError::unavailable(
                    "timed_out",
                    "the ledger did not answer in time; retry with the same Idempotency-Key",
                    1,
                )
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let message = match result {
            R::ExistsWithDifferentFields => {
                "this Idempotency-Key was used before with a different request".to_string()
            }
            R::ExceedsCredits => "not enough balance".to_string(),
            R::RefundExceedsRemaining => "the refund exceeds what is left to refund".to_string(),
            other => format!("the ledger refused it: {}", other.name()),
        };
        ApiError::new(status, &snake_case(result.name()), message)
    }

    /// The refusal of an account creation by the ledger.
    pub fn account_refused(result: AccountResult) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            &snake_case(result.name()),
            format!(
                "the ledger refused an account the gateway needs: {}",
                result.name()
            ),
        )
    }
}

impl From<ClientError> for ApiError {
    fn from(error: ClientError) -> ApiError {
        match &error {
            ClientError::Rejected(e) if e.code == ErrorCode::Overloaded => ApiError::unavailable(
                "overloaded",
                "the ledger is overloaded; retry with the same Idempotency-Key",
                u64::from(e.retry_after_ms.unwrap_or(1000)).div_ceil(1000),
            ),
            ClientError::Invalid(message) => ApiError::invalid(message.clone()),
            ClientError::Indeterminate { .. } => ApiError::unavailable(
                "indeterminate",
                format!("the outcome is unknown ({error}); retry with the same Idempotency-Key"),
                1,
            ),
            _ => ApiError::unavailable(
                "unavailable",
                format!("the ledger cannot be reached: {error}"),
                1,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

/// `ExceedsCredits` as `exceeds_credits`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
