//! The whole HTTP surface: each area's `router()` merged in one place, with
//! the layers every route shares.

use crate::error::ApiError;
use crate::state::AppState;
use crate::{health, metrics};
use axum::Router;

/// Builds the app. Tests may call this directly with a state of their own.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}
