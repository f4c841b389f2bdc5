//! [`AppState`]: what every handler shares. Cloning is cheap (all `Arc`s).

use crate::auth::AuthService;
use crate::health::HealthMonitor;
use crate::hub::Hub;
use crate::metrics::Metrics;
use ensemble_core::store::Store;
use std::sync::Arc;

/// Shared handles for handlers.
#[derive(Clone)]
pub struct AppState {
    /// The store, behind the contract so tests and deployments choose it.
    pub store: Arc<dyn Store>,
    /// The last store health check.
    pub health: HealthMonitor,
    /// Request counters and latency histograms.
    pub metrics: Arc<Metrics>,
    /// This node's name.
    pub node: String,
    /// Password hashing and brute-force limits.
    pub auth: Arc<AuthService>,
    /// Origins allowed by CORS and the websocket Origin check.
    pub origins: Arc<Vec<String>>,
    /// Live session rooms.
    pub hub: Hub,
    /// Where runs execute (its report says which isolation layers work).
    pub sandbox: ensemble_sandbox::Sandbox,
    /// The built web app's directory.
    pub static_dir: std::path::PathBuf,
    /// Starts and tracks runs.
    pub runs: crate::runs::RunManager,
}
