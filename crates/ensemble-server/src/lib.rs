//! The Ensemble server: configuration, the HTTP and websocket API, and the
//! glue between the store, the rooms and the sandbox.
//!
//! Layout:
//! - [`config`]: every option, from flags or `ENSEMBLE_*` variables.
//! - [`app`]: [`app::Application`] builds the state, binds the socket and
//!   runs until a shutdown signal (`build` / `port` / `run_until_stopped`).
//! - [`state`]: what handlers share.
//! - [`error`]: [`error::ApiError`], the one error type handlers return.
//! - [`extract`]: JSON bodies with our error shape; the client address.
//! - [`auth`]: accounts, bearer tokens, brute-force limits.
//! - [`cors`]: the CORS allow-list.
//! - [`sessions`]: sessions, members, share links and handshake tickets.
//! - [`ws`]: the websocket handshake; [`hub`]: live rooms and connections.
//! - [`runs`]: running a session's code for everyone, history and SSE.
//! - [`health`]: `/healthz`, `/readyz` and the store health monitor.
//! - [`metrics`]: request counts and latencies, served as Prometheus text.
//! - [`routes`]: merges each area's router into one app.
//! - [`telemetry`]: tracing set-up.
//!
//! Tests drive the real server over real sockets: they build a [`config::Config`]
//! directly, bind port 0 and talk HTTP to it.

pub mod app;
pub mod auth;
pub mod config;
pub mod cors;
pub mod error;
pub mod extract;
pub mod health;
pub mod hub;
pub mod metrics;
pub mod routes;
pub mod runs;
pub mod sessions;
pub mod state;
pub mod telemetry;
pub mod ws;
