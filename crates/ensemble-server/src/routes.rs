//! The whole HTTP surface: each area's `router()` merged in one place, with
//! the layers every route shares.

use crate::error::ApiError;
use crate::extract::MAX_BODY;
use crate::state::AppState;
use crate::{auth, cors, health, metrics, runs, sessions, ws};
use axum::extract::DefaultBodyLimit;
use axum::Router;

/// Builds the app. Tests may call this directly with a state of their own.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(sessions::router())
        .merge(runs::routes::router())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(cors::layer(&state.origins));
    Router::new()
        .merge(api)
        .merge(ws::router())
        .merge(health::router())
        .merge(metrics::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}
