//! Request metrics in Prometheus text format, at `GET /metrics`.
//!
//! A middleware counts every request by method, route template (axum's
//! `MatchedPath`, so `/api/runs/{id}` is one series, and unmatched paths
//! share one) and status, with a latency histogram per method and route.
//! The series set is bounded by the routes we define, so a std `Mutex` over
//! a small map is enough; it is held only to bump numbers.

use crate::hub::Hub;
use crate::runs::RunManager;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ensemble_protocol::health::ComponentState;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Instant;

/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Latency {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Latency>>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let l = m.entry((method.to_owned(), route.to_owned())).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    l.buckets[i] += 1;
                }
            }
            l.sum += secs;
            l.count += 1;
        }
    }

    /// Renders every series in the Prometheus text exposition format.
    pub fn render(&self, store_up: bool, store_latency_ms: Option<f64>) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP ensemble_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE ensemble_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "ensemble_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP ensemble_http_request_duration_seconds HTTP request latency by method and route.\n");
        out.push_str("# TYPE ensemble_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for ((method, route), l) in m.iter() {
                let labels = format!("method=\"{method}\",route=\"{route}\"");
                for (bound, n) in BUCKETS.iter().zip(l.buckets) {
                    let _ = writeln!(out, "ensemble_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
                }
                let _ = writeln!(
                    out,
                    "ensemble_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    l.count
                );
                let _ = writeln!(
                    out,
                    "ensemble_http_request_duration_seconds_sum{{{labels}}} {}",
                    l.sum
                );
                let _ = writeln!(
                    out,
                    "ensemble_http_request_duration_seconds_count{{{labels}}} {}",
                    l.count
                );
            }
        }
        out.push_str("# HELP ensemble_store_up Whether the last store health check succeeded.\n");
        out.push_str("# TYPE ensemble_store_up gauge\n");
        let _ = writeln!(out, "ensemble_store_up {}", u8::from(store_up));
        if let Some(ms) = store_latency_ms {
            out.push_str(
                "# HELP ensemble_store_check_seconds Duration of the last store health check.\n",
            );
            out.push_str("# TYPE ensemble_store_check_seconds gauge\n");
            let _ = writeln!(out, "ensemble_store_check_seconds {}", ms / 1000.0);
        }
        out
    }
}

/// One unlabelled series with its help and type lines.
fn series(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Loaded rooms, connections, runs and lease store calls.
fn render_hub(out: &mut String, hub: &Hub, runs: &RunManager) {
    let gauge = "gauge";
    series(
        out,
        "ensemble_rooms_loaded",
        gauge,
        "Session rooms loaded on this node.",
        hub.loaded_rooms(),
    );
    let c = hub.conn_counters();
    series(
        out,
        "ensemble_ws_connections",
        gauge,
        "Websocket connections joined to a room.",
        c.open.load(Ordering::Relaxed),
    );
    series(
        out,
        "ensemble_ws_dropped_slow_total",
        "counter",
        "Connections dropped because they fell too far behind.",
        c.dropped_slow.load(Ordering::Relaxed),
    );
    let (running, queued) = runs.load();
    series(
        out,
        "ensemble_runs_running",
        gauge,
        "Runs executing in the sandbox.",
        running,
    );
    series(
        out,
        "ensemble_runs_queued",
        gauge,
        "Runs waiting for a free slot.",
        queued,
    );
    out.push_str("# HELP ensemble_lease_calls_total Session lease store calls by kind.\n");
    out.push_str("# TYPE ensemble_lease_calls_total counter\n");
    let l = hub.lease_counters();
    for (call, n) in [
        ("acquire", &l.acquire),
        ("renew", &l.renew),
        ("release", &l.release),
    ] {
        let n = n.load(Ordering::Relaxed);
        let _ = writeln!(out, "ensemble_lease_calls_total{{call=\"{call}\"}} {n}");
    }
    series(
        out,
        "ensemble_sessions_handed_over_total",
        "counter",
        "Sessions handed over to a node that asked for them.",
        l.handed_over.load(Ordering::Relaxed),
    );
}

/// Middleware: times each request and records it.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state.metrics.record(
        &method,
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let h = state.health.store_health();
    let mut body = state
        .metrics
        .render(h.state == ComponentState::Ok, h.latency_ms);
    render_hub(&mut body, &state.hub, &state.runs);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// `GET /metrics`.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("GET", "/healthz", 200, 0.0005);
        m.record("GET", "/healthz", 200, 0.02);
        m.record("GET", "/readyz", 503, 0.001);
        let text = m.render(true, Some(1.5));
        assert!(text.contains(
            "ensemble_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "ensemble_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"503\"} 1"
        ));
        assert!(text.contains("ensemble_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.001\"} 1"));
        assert!(text.contains("ensemble_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.025\"} 2"));
        assert!(text.contains(
            "ensemble_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 2"
        ));
        assert!(text.contains("ensemble_store_up 1"));
    }
}
