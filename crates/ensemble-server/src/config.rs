//! Configuration: one [`Config`], filled by clap from flags or `ENSEMBLE_*`
//! environment variables. Each field's doc comment is its `--help` text.
//! Secrets (the MongoDB URI may hold a password) are never printed: their
//! environment values are hidden from `--help`, and logs show only hosts.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Ensemble: a real-time collaborative Python runner.
#[derive(Debug, Parser)]
#[command(name = "ensemble", version)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Server options (also accepted after `serve`).
    #[command(flatten)]
    pub config: Config,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app and API (the default).
    Serve,
    /// Run one Python file in the sandbox with the configured limits,
    /// streaming its output here; exits with the program's exit code
    /// (124 time limit, 137 memory limit, 123 output limit, 125 sandbox
    /// failure, 128+N killed by signal N).
    Run {
        /// The Python file to run.
        file: PathBuf,
    },
}

/// Everything the server can be told.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "ENSEMBLE_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,

    /// Directory of the embedded SQLite store (used unless --mongodb-uri is set).
    #[arg(
        long,
        env = "ENSEMBLE_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Store everything in this MongoDB instead of the embedded store,
    /// e.g. mongodb://user:pass@host:27017/ensemble.
    #[arg(
        long,
        env = "ENSEMBLE_MONGODB_URI",
        hide_env_values = true,
        global = true
    )]
    pub mongodb_uri: Option<String>,

    /// Origins allowed to call the API from a browser and to open websockets
    /// (comma-separated, e.g. https://ensemble.example.com). Default: the
    /// server's own origin, http://<bind>.
    #[arg(
        long,
        env = "ENSEMBLE_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_origins: Vec<String>,

    /// This node's name, stored with the runs it executes so a restart marks
    /// only its own unfinished runs as interrupted. Default: the host name.
    #[arg(long, env = "ENSEMBLE_NODE_ID", global = true)]
    pub node_id: Option<String>,

    /// Log filter, in tracing's EnvFilter syntax (e.g. "info", "ensemble_server=debug").
    #[arg(long, env = "ENSEMBLE_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Most websocket connections one session may have at once.
    #[arg(
        long,
        env = "ENSEMBLE_MAX_CONNECTIONS_PER_SESSION",
        default_value_t = 1000,
        global = true
    )]
    pub max_connections_per_session: usize,

    /// How long this node's claim on a session lasts without renewal, in
    /// seconds. Another node can take a session over this long after its
    /// node died.
    #[arg(
        long,
        env = "ENSEMBLE_LEASE_TTL_SECS",
        default_value_t = 15,
        global = true
    )]
    pub lease_ttl_secs: u64,

    /// The built web app (served at `/`, with `index.html` for app paths
    /// such as /s/{id} and /join/{link}).
    #[arg(
        long,
        env = "ENSEMBLE_STATIC_DIR",
        default_value = "frontend/dist",
        global = true
    )]
    pub static_dir: PathBuf,

    /// Frames queued for one websocket before it counts as stalled and is
    /// disconnected (a slow client never slows the others).
    #[arg(
        long,
        env = "ENSEMBLE_SEND_QUEUE_FRAMES",
        default_value_t = 1024,
        global = true
    )]
    pub send_queue_frames: usize,

    /// Account options.
    #[command(flatten)]
    pub auth: AuthConfig,

    /// Sandbox options and run limits.
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// How runs are isolated, and their limits.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Isolation: "bubblewrap" (all layers), or "none-unsafe" (developers
    /// only: runs without namespaces or seccomp, with a loud warning).
    #[arg(long = "sandbox", env = "ENSEMBLE_SANDBOX", default_value = "bubblewrap", value_parser = ["bubblewrap", "none-unsafe"], global = true)]
    pub mode: String,

    /// The Python interpreter, by absolute path.
    #[arg(
        long,
        env = "ENSEMBLE_PYTHON",
        default_value = "/usr/bin/python3",
        global = true
    )]
    pub python: PathBuf,

    /// The bubblewrap binary.
    #[arg(
        long,
        env = "ENSEMBLE_BWRAP",
        default_value = "/usr/bin/bwrap",
        global = true
    )]
    pub bwrap: PathBuf,

    /// Wall-clock limit of a run, in seconds.
    #[arg(
        long,
        env = "ENSEMBLE_RUN_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub run_timeout_secs: u64,

    /// CPU-time limit of a run, in seconds.
    #[arg(
        long,
        env = "ENSEMBLE_RUN_CPU_SECS",
        default_value_t = 10,
        global = true
    )]
    pub run_cpu_secs: u64,

    /// Memory limit of a run, in MiB (no swap).
    #[arg(
        long,
        env = "ENSEMBLE_RUN_MEMORY_MIB",
        default_value_t = 256,
        global = true
    )]
    pub run_memory_mib: u64,

    /// Processes plus threads a run may have at once.
    #[arg(
        long,
        env = "ENSEMBLE_RUN_PROCESSES",
        default_value_t = 64,
        global = true
    )]
    pub run_processes: u32,

    /// Output a run may produce, in KiB; then it is cut with a notice and killed.
    #[arg(
        long,
        env = "ENSEMBLE_RUN_OUTPUT_KIB",
        default_value_t = 1024,
        global = true
    )]
    pub run_output_kib: u64,

    /// Runs executing at once (default: the number of CPUs); more wait in a queue.
    #[arg(long, env = "ENSEMBLE_MAX_CONCURRENT_RUNS", global = true)]
    pub max_concurrent_runs: Option<usize>,

    /// Runs waiting at most; past this, "server busy".
    #[arg(long, env = "ENSEMBLE_RUN_QUEUE", default_value_t = 100, global = true)]
    pub run_queue: usize,

    /// Runs one person may start per minute.
    #[arg(
        long,
        env = "ENSEMBLE_RUNS_PER_MINUTE",
        default_value_t = 30,
        global = true
    )]
    pub runs_per_minute: u32,
}

impl Default for SandboxArgs {
    fn default() -> Self {
        Self {
            mode: "bubblewrap".into(),
            python: PathBuf::from("/usr/bin/python3"),
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            run_timeout_secs: 10,
            run_cpu_secs: 10,
            run_memory_mib: 256,
            run_processes: 64,
            run_output_kib: 1024,
            max_concurrent_runs: None,
            run_queue: 100,
            runs_per_minute: 30,
        }
    }
}

impl SandboxArgs {
    /// The sandbox set-up these options describe.
    pub fn sandbox_config(&self) -> ensemble_sandbox::SandboxConfig {
        ensemble_sandbox::SandboxConfig {
            mode: if self.mode == "none-unsafe" {
                ensemble_sandbox::SandboxMode::NoneUnsafe
            } else {
                ensemble_sandbox::SandboxMode::Bubblewrap
            },
            bwrap: self.bwrap.clone(),
            python: self.python.clone(),
            ..ensemble_sandbox::SandboxConfig::default()
        }
    }

    /// The fair-use rules of runs.
    pub fn run_config(&self) -> crate::runs::RunConfig {
        let defaults = crate::runs::RunConfig::default();
        crate::runs::RunConfig {
            concurrency: self.max_concurrent_runs.unwrap_or(defaults.concurrency),
            max_queue: self.run_queue,
            per_minute: self.runs_per_minute,
            limits: self.limits(),
            ..defaults
        }
    }

    /// The limits of one run.
    pub fn limits(&self) -> ensemble_sandbox::Limits {
        ensemble_sandbox::Limits {
            wall_time: std::time::Duration::from_secs(self.run_timeout_secs),
            cpu_time: std::time::Duration::from_secs(self.run_cpu_secs),
            memory_bytes: self.run_memory_mib.saturating_mul(1 << 20),
            max_processes: self.run_processes,
            output_bytes: self.run_output_kib.saturating_mul(1 << 10),
            ..ensemble_sandbox::Limits::default()
        }
    }
}

/// Accounts: password hashing, tokens and brute-force limits.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// How long a bearer token works after login, in hours.
    #[arg(
        long,
        env = "ENSEMBLE_TOKEN_TTL_HOURS",
        default_value_t = 168,
        global = true
    )]
    pub token_ttl_hours: u64,

    /// argon2id memory cost in KiB (OWASP minimum: 19456). Raising it
    /// re-hashes each password at its next successful login.
    #[arg(
        long,
        env = "ENSEMBLE_ARGON2_MEMORY_KIB",
        default_value_t = 19456,
        global = true
    )]
    pub argon2_memory_kib: u32,

    /// argon2id iterations (OWASP minimum with 19 MiB: 2).
    #[arg(
        long,
        env = "ENSEMBLE_ARGON2_ITERATIONS",
        default_value_t = 2,
        global = true
    )]
    pub argon2_iterations: u32,

    /// argon2id parallelism.
    #[arg(
        long,
        env = "ENSEMBLE_ARGON2_PARALLELISM",
        default_value_t = 1,
        global = true
    )]
    pub argon2_parallelism: u32,

    /// Login attempts allowed per client address per minute (a burst of this
    /// many, refilled evenly). Failures per account are limited separately:
    /// after 5, each further attempt waits exponentially longer. A whole
    /// school can share one address, so this is sized for several classes
    /// signing in at once.
    #[arg(
        long,
        env = "ENSEMBLE_LOGIN_PER_MINUTE",
        default_value_t = 120,
        global = true
    )]
    pub login_per_minute: u32,

    /// Registrations allowed per client address per hour (burst of this
    /// many): two classes behind one school address creating accounts in
    /// their first lesson.
    #[arg(
        long,
        env = "ENSEMBLE_REGISTER_PER_HOUR",
        default_value_t = 60,
        global = true
    )]
    pub register_per_hour: u32,

    /// Session tickets (member or share link) issued per client address per
    /// minute (burst of this many). Each is a store write; a classroom behind
    /// one address reconnecting at once after a failover needs one each.
    #[arg(
        long,
        env = "ENSEMBLE_TICKETS_PER_MINUTE",
        default_value_t = 600,
        global = true
    )]
    pub tickets_per_minute: u32,

    /// Take the client address from the last X-Forwarded-For entry (set this
    /// only behind a proxy that writes that header).
    #[arg(long, env = "ENSEMBLE_TRUST_FORWARDED_FOR", global = true)]
    pub trust_forwarded_for: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_ttl_hours: 168,
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            login_per_minute: 120,
            register_per_hour: 60,
            tickets_per_minute: 600,
            trust_forwarded_for: false,
        }
    }
}

impl Config {
    /// A configuration for tests: port 0 on loopback, the given data directory.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            mongodb_uri: None,
            allowed_origins: Vec::new(),
            node_id: Some("test-node".into()),
            log: "warn".into(),
            max_connections_per_session: 1000,
            send_queue_frames: 1024,
            lease_ttl_secs: 15,
            static_dir: PathBuf::from("frontend/dist"),
            sandbox: SandboxArgs::default(),
            auth: AuthConfig {
                // Tests register many accounts, and join often, from 127.0.0.1.
                register_per_hour: 10_000,
                login_per_minute: 10_000,
                tickets_per_minute: 100_000,
                ..AuthConfig::default()
            },
        }
    }

    /// The origins allowed by CORS and the websocket Origin check:
    /// `--allowed-origins`, else the server's own (and its `localhost`
    /// spelling when bound to loopback).
    pub fn origins(&self, port: u16) -> Vec<String> {
        if !self.allowed_origins.is_empty() {
            return self
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect();
        }
        let ip = self.bind.ip();
        let mut own = vec![format!("http://{}", std::net::SocketAddr::new(ip, port))];
        if ip.is_loopback() {
            own.push(format!("http://localhost:{port}"));
        }
        own
    }

    /// The node name: `--node-id`, else the host name, else `local`.
    pub fn node_name(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "local".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_serve_sqlite_on_loopback_8080() {
        let cli = Cli::try_parse_from(["ensemble"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(cli.config.data_dir, PathBuf::from("./data"));
        assert!(cli.config.mongodb_uri.is_none());
    }

    #[test]
    fn a_bad_bind_address_is_a_usage_error() {
        let err = Cli::try_parse_from(["ensemble", "--bind", "localhost:eighty"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn origins_are_comma_separated() {
        let cli = Cli::try_parse_from([
            "ensemble",
            "serve",
            "--allowed-origins",
            "http://a,https://b",
        ])
        .unwrap();
        assert_eq!(cli.config.allowed_origins, ["http://a", "https://b"]);
    }
}
