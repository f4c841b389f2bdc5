//! [`Application`]: builds everything from a [`Config`], binds the listener,
//! and serves until told to stop.
//!
//! Shutdown: when the token is cancelled the listener stops accepting,
//! in-flight requests get up to [`SHUTDOWN_GRACE`] to finish, background
//! tasks stop, and the store is flushed and closed. `main` cancels the token
//! on SIGTERM or Ctrl-C; tests cancel it themselves.

use crate::auth::throttle::UNKNOWN_NAME_MEMORY;
use crate::auth::AuthService;
use crate::config::Config;
use crate::health::HealthMonitor;
use crate::hub::{Hub, HubLimits};
use crate::metrics::Metrics;
use crate::routes;
use crate::runs::RunManager;
use crate::state::AppState;
use axum::serve::ListenerExt;
use ensemble_core::store::Store;
use ensemble_store::{MongoStore, SqliteStore};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long in-flight requests may take to finish after a stop signal. The
/// whole stop stays under 10 s.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Why the server could not start. Each is one line for the operator; `main`
/// prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The embedded store's directory cannot be created, opened or written.
    #[error("data directory unusable: {0}")]
    DataDir(String),
    /// The MongoDB URI does not parse.
    #[error("{0}")]
    MongoUri(String),
    /// An option's value is unusable.
    #[error("{0}")]
    Config(String),
    /// The address cannot be bound (in use, or not ours).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    port: u16,
}

impl Application {
    /// Opens the store, binds the listener and prepares the state. A MongoDB
    /// that is unreachable is not an error: the server starts and reports
    /// the store as down until it answers.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let store = open_store(&config).await?;
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.bind,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?;
        let node = config.node_name();
        tracing::info!(
            store = store.kind().as_str(),
            location = %store.location(),
            address = %format!("http://{addr}"),
            node = %node,
            "ensemble listening"
        );
        let health = HealthMonitor::new(&*store);
        let store_for_hub = Arc::clone(&store);
        let auth = AuthService::new(&config.auth).map_err(StartupError::Config)?;
        config
            .sandbox
            .limits()
            .validate()
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let sandbox = ensemble_sandbox::Sandbox::probe(config.sandbox.sandbox_config()).await;
        let hub = Hub::new(
            Arc::clone(&store_for_hub),
            HubLimits {
                max_connections_per_session: config.max_connections_per_session,
                send_queue: config.send_queue_frames.max(1),
                lease_ttl: Duration::from_secs(config.lease_ttl_secs.max(1)),
                node: node.clone(),
                ..HubLimits::default()
            },
            CancellationToken::new(),
        );
        let runs = RunManager::new(
            Arc::clone(&store_for_hub),
            hub.clone(),
            sandbox.clone(),
            config.sandbox.run_config(),
            node.clone(),
        );
        runs.recover().await;
        let state = AppState {
            store,
            health,
            metrics: Arc::new(Metrics::default()),
            node,
            auth: Arc::new(auth),
            origins: Arc::new(config.origins(addr.port())),
            hub,
            sandbox,
            runs,
            static_dir: config.static_dir.clone(),
        };
        Ok(Self {
            listener,
            state,
            port: addr.port(),
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests use it to reach the store).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then stops gracefully.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let Self {
            listener, state, ..
        } = self;
        let tasks = TaskTracker::new();
        let background = shutdown.child_token();
        state.health.check(&*state.store).await;
        tasks.spawn(
            state
                .health
                .clone()
                .run(Arc::clone(&state.store), background.clone()),
        );
        tasks.spawn(sweep(state.clone(), background.clone()));
        let (run_tx, run_rx) = tokio::sync::mpsc::channel(1024);
        state.hub.set_run_commands(run_tx);
        tokio::spawn(state.runs.clone().serve(run_rx));
        // Websockets are not part of axum's graceful shutdown: stop the hub
        // (rooms compact, sockets get a "going away" close) when told to.
        let hub = state.hub.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            stop.cancelled().await;
            hub.shutdown_token().cancel();
        });

        let app = routes::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let serve =
            // Small frames (a sync step after step 1, awareness, run output)
            // must not wait for Nagle's algorithm: 40 ms per join otherwise.
            axum::serve(
                listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                }),
                app,
            )
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = serve => result?,
            () = deadline => tracing::warn!("in-flight requests did not finish in {SHUTDOWN_GRACE:?}; stopping anyway"),
        }

        state.hub.shutdown_token().cancel();
        state.hub.tasks().close();
        if tokio::time::timeout(SHUTDOWN_GRACE, state.hub.tasks().wait())
            .await
            .is_err()
        {
            tracing::warn!("rooms did not close in {SHUTDOWN_GRACE:?}");
        }
        background.cancel();
        tasks.close();
        tasks.wait().await;
        if let Err(e) = state.store.close().await {
            tracing::warn!(error = %e, "closing the store failed");
        }
        tracing::info!("ensemble stopped");
        Ok(())
    }
}

/// How often expired tokens and tickets are deleted and idle limiter
/// entries dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How often (and at start) the rows of sessions deleted by a server that
/// stopped before purging them are looked for; it reads every session id
/// with data, so it runs rarely.
const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// How many such sessions one sweep purges.
const ORPHANS_PER_SWEEP: usize = 100;

async fn sweep(state: AppState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    let mut orphans_due = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if tokio::time::Instant::now() >= orphans_due {
            orphans_due += ORPHAN_SWEEP_EVERY;
            purge_orphans(&state).await;
        }
        let now = ensemble_core::time::now_ms();
        if let Err(e) = state.store.delete_expired_tokens(now).await {
            tracing::debug!(error = %e, "sweeping tokens failed");
        }
        if let Err(e) = state.store.delete_expired_tickets(now).await {
            tracing::debug!(error = %e, "sweeping tickets failed");
        }
        let memory = i64::try_from(UNKNOWN_NAME_MEMORY.as_millis()).unwrap_or(i64::MAX);
        if let Err(e) = state.store.forget_unknown_names(now - memory).await {
            tracing::debug!(error = %e, "forgetting unknown names failed");
        }
        state.auth.throttle.sweep();
    }
}

/// Finishes deletes that a stopped server left half done: the session record
/// went, its document, runs and lease stayed. Nothing can reach them.
async fn purge_orphans(state: &AppState) {
    let ids = match state.store.orphaned_sessions(ORPHANS_PER_SWEEP).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::debug!(error = %e, "looking for deleted sessions' rows failed");
            return;
        }
    };
    for id in ids {
        match state.store.purge_session(&id).await {
            Ok(()) => tracing::info!(session = %id, "purged the rows of a deleted session"),
            Err(e) => tracing::warn!(session = %id, error = %e, "purging a deleted session failed"),
        }
    }
}

async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartupError> {
    match &config.mongodb_uri {
        Some(uri) => {
            let store = MongoStore::connect(uri)
                .await
                .map_err(|e| StartupError::MongoUri(strip_kind(e.to_string())))?;
            Ok(Arc::new(store))
        }
        None => {
            let dir = config.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
                .await
                .map_err(|e| StartupError::DataDir(e.to_string()))?
                .map_err(|e| StartupError::DataDir(strip_kind(e.to_string())))?;
            Ok(Arc::new(store))
        }
    }
}

/// Store errors print as "store unavailable: <cause>"; at start-up only the
/// cause is useful.
fn strip_kind(s: String) -> String {
    s.strip_prefix("store unavailable: ")
        .map(str::to_owned)
        .unwrap_or(s)
}
