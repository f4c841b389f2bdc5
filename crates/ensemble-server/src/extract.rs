//! Request extractors with our error shape.
//!
//! - [`ApiJson`]: like axum's `Json`, but malformed JSON is 400, a missing or
//!   wrong-typed field is 422 naming the field, and a body over the limit is
//!   413, all as `{"error": {...}}`.
//! - [`ClientIp`]: the caller's address, for rate limits: the socket peer,
//!   or the last `X-Forwarded-For` hop when configured to trust a proxy.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// Largest JSON body the API accepts.
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body, parsed into `T`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(json_error(&r)),
        }
    }
}

fn json_error(r: &JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => {
            // axum reports "<prefix>: <path>: <serde message>"; the path is
            // "." for a missing field, whose name is in the message.
            let text = e.body_text();
            let detail = text
                .split_once("target type: ")
                .map_or(text.as_str(), |(_, d)| d);
            let (path, msg) = detail.split_once(": ").unwrap_or((".", detail));
            let msg = msg.split(" at line ").next().unwrap_or(msg);
            let field = match msg.split('`').nth(1) {
                Some(name) if msg.starts_with("missing field") => name.to_owned(),
                _ => path.to_owned(),
            };
            ApiError::field(field, msg.to_owned())
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::BadRequest("malformed_json", "the body is not valid JSON".into())
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
            "content_type",
            "send the body as JSON with Content-Type: application/json".into(),
        ),
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(MAX_BODY)
        }
        _ => ApiError::BadRequest("bad_body", "the body could not be read".into()),
    }
}

/// The client's address.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.auth.trust_forwarded_for() {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(ip) = forwarded {
                return Ok(ClientIp(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(peer))
    }
}
