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

/// Which store a test server uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    /// A fresh SQLite directory.
    Sqlite,
    /// A fresh database on the shared test MongoDB (ENSEMBLE_TEST_MONGODB_URI).
    Mongo,
}

/// Runs an `async fn(Backend)` test body once per store: `NAME::sqlite` and
/// `NAME::mongo`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mongo() {
                    super::$name($crate::helpers::Backend::Mongo).await;
                }
            }
        )*
    };
}

/// The shared test MongoDB's URI for a fresh database.
pub fn fresh_mongo_uri() -> String {
    let base = std::env::var("ENSEMBLE_TEST_MONGODB_URI").expect(
        "ENSEMBLE_TEST_MONGODB_URI is not set: run the tests with `make test`, which starts nx-27017",
    );
    let db = format!("api_{}", rand::random::<u64>());
    format!("{}/{db}", base.trim_end_matches('/'))
}

/// A running server.
pub struct TestApp {
    pub addr: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub config: Config,
    pub shutdown: CancellationToken,
    pub handle: Option<JoinHandle<std::io::Result<()>>>,
    _dir: std::sync::Arc<tempfile::TempDir>,
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

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `GET path` as the holder of `token`; the JSON body of a 200.
    pub async fn get_as(&self, token: &str, path: &str) -> serde_json::Value {
        let r = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.expect("JSON")
    }

    /// Creates a session owned by the holder of `token`; the 201's body.
    pub async fn create_session(&self, token: &str, title: &str) -> serde_json::Value {
        let r = self
            .client
            .post(self.url("/api/sessions"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "title": title }))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 201, "create session {title:?}");
        r.json().await.expect("JSON")
    }

    /// Every row of `table` (SQLite) or document of `collection` (MongoDB),
    /// as text, read straight from the database.
    pub async fn raw_rows(&self, table: &str) -> Vec<String> {
        raw_rows(
            self.config.mongodb_uri.as_deref(),
            &self.config.data_dir,
            table,
        )
        .await
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

    /// Stops the server, waits until it has written its last, and starts
    /// it again on the same data.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown.cancel();
        let stopped = self.handle.take().expect("running").await;
        stopped.expect("server task").expect("clean stop");
        respawn(&self, |_| {}).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a server on `backend`, after `tweak` has adjusted its config.
pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = Config::for_tests(dir.path().join("data"));
    if backend == Backend::Mongo {
        config.mongodb_uri = Some(fresh_mongo_uri());
    }
    tweak(&mut config);
    start(config, dir, backend == Backend::Mongo).await
}

/// Starts another server on the same store (and data directory) as `app`.
pub async fn respawn(app: &TestApp, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = app.config.clone();
    tweak(&mut config);
    let mongo = config.mongodb_uri.is_some();
    start(config, app._dir.clone(), mongo).await
}

async fn start(
    config: Config,
    dir: std::sync::Arc<tempfile::TempDir>,
    wait_ready: bool,
) -> TestApp {
    ensemble_server::telemetry::init_for_tests();
    let app = Application::build(config.clone())
        .await
        .expect("server builds");
    let addr = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    if wait_ready {
        // Wait for the first health check so indexes exist before tests write.
        let client = reqwest::Client::new();
        eventually(Duration::from_secs(10), || async {
            client
                .get(format!("{addr}/readyz"))
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        })
        .await;
    }
    TestApp {
        addr,
        client: reqwest::Client::new(),
        state,
        config,
        shutdown,
        handle: Some(handle),
        _dir: dir,
    }
}

/// Starts a server with a fresh SQLite store, or on `mongodb_uri` if given.
pub async fn spawn_app_with(mongodb_uri: Option<String>) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = Config::for_tests(dir.path().join("data"));
    config.mongodb_uri = mongodb_uri;
    start(config, dir, false).await
}

/// Starts a server with a fresh SQLite store.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(None).await
}

/// Registers `name` with a good password and logs in; returns the token.
pub async fn sign_up(app: &TestApp, name: &str) -> String {
    let creds = serde_json::json!({"username": name, "password": PASSWORD});
    let r = app.post_json("/api/auth/register", &creds).await;
    assert_eq!(
        r.status(),
        201,
        "register {name}: {}",
        r.text().await.unwrap_or_default()
    );
    let r = app.post_json("/api/auth/login", &creds).await;
    assert_eq!(r.status(), 200, "login {name}");
    let body: serde_json::Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// The password `sign_up` uses.
pub const PASSWORD: &str = "correct horse battery staple";

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

/// The tables that hold a session's data: a deleted session leaves no row
/// in any of them.
pub const SESSION_TABLES: [&str; 5] =
    ["sessions", "doc_updates", "doc_snapshots", "runs", "leases"];

/// Whether any row of [`SESSION_TABLES`] still mentions `session`.
pub async fn holds_session(
    mongodb_uri: Option<&str>,
    data_dir: &std::path::Path,
    session: &str,
) -> bool {
    for table in SESSION_TABLES {
        let rows = raw_rows(mongodb_uri, data_dir, table).await;
        if rows.iter().any(|r| r.contains(session)) {
            return true;
        }
    }
    false
}

/// Every row of `table` in the SQLite store under `data_dir`, or every
/// document of that collection at `mongodb_uri`, as text, read straight
/// from the database.
pub async fn raw_rows(
    mongodb_uri: Option<&str>,
    data_dir: &std::path::Path,
    table: &str,
) -> Vec<String> {
    match mongodb_uri {
        None => {
            let path = data_dir.join("ensemble.db");
            let conn = rusqlite::Connection::open(path).expect("open sqlite directly");
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table}"))
                .expect("table");
            let n = stmt.column_count();
            stmt.query_map([], |r| {
                let cols: Vec<String> = (0..n)
                    .map(|i| match r.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        rusqlite::types::ValueRef::Blob(b) => {
                            String::from_utf8_lossy(b).into_owned()
                        }
                        other => format!("{other:?}"),
                    })
                    .collect();
                Ok(cols.join(" | "))
            })
            .expect("query")
            .map(Result::unwrap)
            .collect()
        }
        Some(uri) => {
            use futures::TryStreamExt;
            let client = mongodb::Client::with_uri_str(uri)
                .await
                .expect("mongo client");
            let db = client.default_database().expect("db in uri");
            let docs: Vec<bson::Document> = db
                .collection::<bson::Document>(table)
                .find(bson::doc! {})
                .await
                .expect("find")
                .try_collect()
                .await
                .expect("collect");
            docs.iter().map(|d| d.to_string()).collect()
        }
    }
}
