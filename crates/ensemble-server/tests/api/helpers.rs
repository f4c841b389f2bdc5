//! Test harness: start a real server on port 0 with a fresh store, and start
//! MongoDB wire servers (nx-27017) on demand.

use ensemble_server::app::Application;
use ensemble_server::config::Config;
use ensemble_server::state::AppState;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running server.
pub struct TestApp {
    pub addr: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub shutdown: CancellationToken,
    pub handle: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.handle
            .take()
            .expect("running")
            .await
            .expect("server task")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a server with a fresh SQLite store, or on `mongodb_uri` if given.
pub async fn spawn_app_with(mongodb_uri: Option<String>) -> TestApp {
    ensemble_server::telemetry::init_for_tests();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(dir.path().join("data"));
    config.mongodb_uri = mongodb_uri;
    let app = Application::build(config).await.expect("server builds");
    let addr = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        state,
        shutdown,
        handle: Some(handle),
        _dir: dir,
    }
}

/// Starts a server with a fresh SQLite store.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(None).await
}

/// A MongoDB wire server of our own (nx-27017, in memory), killed on drop.
pub struct Nx {
    pub port: u16,
    child: Child,
}

impl Nx {
    fn binary() -> PathBuf {
        std::env::var_os("ENSEMBLE_TEST_NX_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-mongo/bin/nx-27017")
            })
    }

    /// Starts one on a free port and waits until it accepts connections.
    pub fn start() -> Nx {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self::start_on(port)
    }

    /// Starts one on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Nx {
        let bin = Self::binary();
        // Each instance needs its own pid file: nx-27017 refuses to start
        // while the pid file names a live process.
        let tmp = std::env::temp_dir();
        let child = Command::new(&bin)
            .args(["--db", "memory", "-p", &port.to_string()])
            .arg("--pid-file")
            .arg(tmp.join(format!("ensemble-test-nx-{port}.pid")))
            .arg("--log-file")
            .arg(tmp.join(format!("ensemble-test-nx-{port}.log")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (run `make test`, which installs it): {e}",
                    bin.display()
                )
            });
        wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Nx { port, child }
    }

    pub fn uri(&self, db: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server and waits for it to exit.
    pub fn kill(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Nx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until it holds or `limit` passes (then panics).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls an async condition until it holds; returns how long it took.
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
