//! The body of `GET /readyz`.

use serde::{Deserialize, Serialize};

/// What `/readyz` answers: 200 when every component is usable, 503 otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// `"ok"` when the process can serve requests, `"down"` otherwise.
    pub status: ComponentState,
    /// The store the server uses.
    pub store: StoreHealth,
}

/// The store's health as last checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreHealth {
    /// `"sqlite"` or `"mongodb"`.
    pub kind: String,
    /// Whether the last check succeeded.
    pub state: ComponentState,
    /// How long the last check took, in milliseconds (fractional).
    pub latency_ms: Option<f64>,
    /// Milliseconds since the Unix epoch when the last check finished.
    pub checked_at_ms: Option<i64>,
    /// Where the data lives: a directory for SQLite, host list for MongoDB
    /// (never credentials).
    pub location: String,
    /// Why the store is down, in words fit for an operator (no secrets).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentState {
    /// Usable.
    Ok,
    /// Not usable right now.
    Down,
}
