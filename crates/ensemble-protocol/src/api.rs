//! REST bodies of `/api`, and the one error envelope every failing call returns.

use serde::{Deserialize, Serialize};

/// The body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// A machine-readable code and a human-readable message. The message never
/// carries internal error text (database errors, paths, backtraces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, snake_case code such as `store_unavailable` or `username_taken`.
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body from a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}
