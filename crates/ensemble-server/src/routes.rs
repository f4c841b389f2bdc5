//! The whole HTTP surface: each area's `router()` merged in one place, with
//! the layers every route shares.

use crate::error::ApiError;
use crate::extract::MAX_BODY;
use crate::state::AppState;
use crate::{auth, cors, health, metrics, runs, sessions, ws};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::Router;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// The web app: files from the static directory, `index.html` for any
/// other path outside `/api` (client-side routes), and JSON 404s under
/// `/api`. Without a built app, `/` explains how to build it.
///
/// The build writes `.br` and `.gz` beside each asset; a browser that
/// accepts them gets those bytes as they are. Files under `/assets/` have a
/// content hash in their names, so they are cached for a year; everything
/// else (`index.html`, which names the current assets) is revalidated on
/// every load, so a new version shows on the next reload.
fn web_app(state: &AppState) -> axum::routing::MethodRouter {
    let dir = state.static_dir.clone();
    let index = dir.join("index.html");
    // A missing asset is a 404, never `index.html` cached for a year.
    let assets = ServeDir::new(&dir).precompressed_br().precompressed_gzip();
    let files = assets.clone().fallback(
        ServeFile::new(&index)
            .precompressed_br()
            .precompressed_gzip(),
    );
    axum::routing::get(move |req: Request| {
        let (assets, files) = (assets.clone(), files.clone());
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
            let hashed = path.starts_with("/assets/");
            let served = if hashed {
                assets.oneshot(req).await.map(IntoResponse::into_response)
            } else {
                files.oneshot(req).await.map(IntoResponse::into_response)
            };
            let mut resp = match served {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            let cache = if hashed && resp.status() == StatusCode::OK {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let headers = resp.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            resp
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
