//! Liveness and readiness.
//!
//! `/healthz` answers 200 while the process runs. `/readyz` reports the
//! store's last health check and answers 503 while it is down; it also
//! reports which sandbox layers are active. A
//! [`HealthMonitor`] task pings the store every [`CHECK_EVERY`], each ping
//! bounded by [`CHECK_TIMEOUT`], so a lost MongoDB shows as down within a few
//! seconds and recovery is noticed without a restart. Handlers only read the
//! last result; they never wait on the store.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use ensemble_core::store::Store;
use ensemble_core::time::now_ms;
use ensemble_protocol::health::{ComponentState, Readiness, StoreHealth};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the store is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long one check may take before the store counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The last check's outcome. A std `RwLock` is right: it is held for a copy,
/// never across an `.await`.
#[derive(Clone)]
pub struct HealthMonitor {
    last: Arc<RwLock<StoreHealth>>,
}

impl HealthMonitor {
    /// A monitor whose store has not been checked yet (reported as down).
    pub fn new(store: &dyn Store) -> Self {
        Self {
            last: Arc::new(RwLock::new(StoreHealth {
                kind: store.kind().as_str().to_owned(),
                state: ComponentState::Down,
                latency_ms: None,
                checked_at_ms: None,
                location: store.location(),
                error: Some("not checked yet".into()),
            })),
        }
    }

    /// The last check's outcome.
    pub fn store_health(&self) -> StoreHealth {
        self.last
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Checks the store once and records the outcome; logs changes of state.
    pub async fn check(&self, store: &dyn Store) {
        let started = Instant::now();
        let result = tokio::time::timeout(CHECK_TIMEOUT, store.ping()).await;
        let latency = started.elapsed().as_secs_f64() * 1000.0;
        let (state, error) = match result {
            Ok(Ok(())) => (ComponentState::Ok, None),
            Ok(Err(e)) => (ComponentState::Down, Some(e.to_string())),
            Err(_) => (
                ComponentState::Down,
                Some(format!("no answer within {CHECK_TIMEOUT:?}")),
            ),
        };
        let mut g = self.last.write().unwrap_or_else(|p| p.into_inner());
        if g.state != state {
            match (&state, &error) {
                (ComponentState::Ok, _) => tracing::info!(store = %g.kind, "store is reachable"),
                (ComponentState::Down, Some(e)) => {
                    tracing::warn!(store = %g.kind, error = %e, "store is down")
                }
                (ComponentState::Down, None) => {}
            }
        }
        g.state = state;
        g.latency_ms = Some((latency * 1000.0).round() / 1000.0);
        g.checked_at_ms = Some(now_ms());
        // Operators see the kind of failure, not driver internals with hosts.
        g.error = error.map(|e| e.chars().take(200).collect());
    }

    /// Checks the store every [`CHECK_EVERY`] until `stop` is cancelled.
    pub async fn run(self, store: Arc<dyn Store>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.check(&*store).await,
            }
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.health.store_health();
    let status = store.state;
    let code = match status {
        ComponentState::Ok => StatusCode::OK,
        ComponentState::Down => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut body = serde_json::to_value(Readiness { status, store }).unwrap_or_default();
    body["node"] = serde_json::Value::String(state.node.clone());
    // Runs need the sandbox, editing does not: an unusable sandbox is
    // reported here (runs are refused with a clear error) without taking the
    // node out of service.
    body["sandbox"] = serde_json::to_value(state.sandbox.report()).unwrap_or_default();
    (code, Json(body))
}

/// `/healthz` and `/readyz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}
