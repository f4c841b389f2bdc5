//! [`ApiError`]: the one error type handlers return. Each variant becomes a
//! status and the JSON body `{"error": {"code", "message"}}` of DESIGN.md.
//! Internal causes (database errors, IO) are logged here with context and
//! never shown to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ensemble_core::store::StoreError;
use ensemble_protocol::api::ErrorBody;

/// Everything a handler can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read (e.g. malformed JSON).
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// 401: no valid credentials.
    #[error("{1}")]
    Unauthorized(&'static str, String),
    /// 403: valid credentials, but not allowed.
    #[error("{1}")]
    Forbidden(&'static str, String),
    /// 404: no such thing (or not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: it clashes with what exists (duplicate key).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// 413: the body is larger than allowed.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 422: a field is missing, has the wrong type, or breaks a rule.
    #[error("{field}: {message}")]
    Unprocessable {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// 429: slow down; `Retry-After` says for how long (seconds).
    #[error("{message}")]
    TooManyRequests {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
        /// What was limited.
        message: String,
    },
    /// 503: the store cannot be reached; the cause is logged.
    #[error("store unavailable")]
    StoreUnavailable,
    /// 500: a bug or an unexpected failure; the cause is logged.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The HTTP status and the stable code of this error.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(c, _) => (StatusCode::BAD_REQUEST, c),
            ApiError::Unauthorized(c, _) => (StatusCode::UNAUTHORIZED, c),
            ApiError::Forbidden(c, _) => (StatusCode::FORBIDDEN, c),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(c, _) => (StatusCode::CONFLICT, c),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unprocessable { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// A 422 for one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(what) => {
                tracing::debug!(%what, "store conflict");
                ApiError::Conflict("conflict", "it already exists".into())
            }
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                ApiError::StoreUnavailable
            }
            StoreError::Corrupt(cause) => {
                tracing::error!(%cause, "corrupt record in store");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::StoreUnavailable => {
                "the database is unavailable; try again shortly".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = (status, Json(ErrorBody::new(code, message))).into_response();
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body(e: ApiError) -> (StatusCode, serde_json::Value, Option<String>) {
        let r = e.into_response();
        let status = r.status();
        let retry = r
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let b = to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&b).unwrap(), retry)
    }

    #[tokio::test]
    async fn store_errors_never_leak_their_cause() {
        let (s, b, _) =
            body(StoreError::Unavailable("connection refused at 10.0.0.5:27017".into()).into())
                .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b["error"]["code"], "store_unavailable");
        assert!(!b.to_string().contains("10.0.0.5"));
        let (s, b, _) = body(StoreError::Corrupt("bad role \"x\"".into()).into()).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!b.to_string().contains("bad role"));
    }

    #[tokio::test]
    async fn rate_limits_carry_retry_after() {
        let e = ApiError::TooManyRequests {
            retry_after_secs: 30,
            message: "too many attempts".into(),
        };
        let (s, b, retry) = body(e).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(b["error"]["code"], "rate_limited");
        assert_eq!(retry.as_deref(), Some("30"));
    }

    #[tokio::test]
    async fn field_errors_name_the_field() {
        let (s, b, _) = body(ApiError::field("username", "is reserved")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(b["error"]["message"], "username: is reserved");
    }
}
