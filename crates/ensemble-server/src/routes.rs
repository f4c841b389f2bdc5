//! The whole HTTP surface: each area's `router()` merged in one place, with
//! the layers every route shares.

use crate::error::ApiError;
use crate::extract::MAX_BODY;
use crate::state::AppState;
use crate::{auth, cors, health, metrics, runs, sessions, ws};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::Router;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// The web app: files from the static directory, `index.html` for any
/// other path outside `/api` (client-side routes), and JSON 404s under
/// `/api`. Without a built app, `/` explains how to build it.
fn web_app(state: &AppState) -> axum::routing::MethodRouter {
    let dir = state.static_dir.clone();
    let index = dir.join("index.html");
    let files = ServeDir::new(&dir).fallback(ServeFile::new(&index));
    axum::routing::get(move |req: Request| {
        let files = files.clone();
        let built = index.is_file();
        async move {
            let path = req.uri().path();
            if path.starts_with("/api/") || path == "/api" || path.starts_with("/ws/") {
                return ApiError::NotFound("route").into_response();
            }
            if !built {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Html("<!doctype html><title>Ensemble</title><p>The web app is not built. Run <code>make run</code>, which builds it into <code>frontend/dist</code>.</p>"),
                )
                    .into_response();
            }
            match files.oneshot(req).await {
                Ok(resp) => resp.into_response(),
                Err(never) => match never {},
            }
        }
    })
    .fallback(|| async { ApiError::NotFound("route") })
}

/// Says which node answered, in `X-Ensemble-Node` (useful behind a proxy).
async fn node_header(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut resp = next.run(req).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&state.node) {
        resp.headers_mut().insert("x-ensemble-node", v);
    }
    resp
}

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
        .fallback_service(web_app(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            node_header,
        ))
        .with_state(state)
}
