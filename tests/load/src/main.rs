//! `ensemble-load`: drives a running Ensemble server over real sockets and
//! prints Markdown tables of what it measured (issue 4, "Measure").
//!
//! It registers a throwaway account, creates a session per scenario, and
//! opens websocket connections with one fresh ticket each:
//! - `fanout`: one writer at a fixed rate, N readers; delivery latency and
//!   the server's CPU per delivered update (`fanout.rs`);
//! - `idle`: server memory per idle synced connection (`idle.rs`);
//! - `late-join`: time for a new client to sync a long-edited document
//!   (`late_join.rs`);
//! - `stall`: server memory pinned by one client that stops reading while
//!   asking for the document again and again (`stall.rs`).
//!
//! Server CPU and memory come from `/proc/<--server-pid>`; without a pid
//! those columns read "n/a". Everything is bounded: every wait has a
//! timeout, and a watchdog ends the process after `--max-secs`.
//! `scripts/load.sh` builds, starts a server, runs all three and stops it.
//!
//! Layout: `api` (REST), `client` (websocket and y-sync framing),
//! `measure` (/proc, clock, percentiles), one module per scenario.

mod api;
mod client;
mod doc;
mod fanout;
mod idle;
mod late_join;
mod measure;
mod neighbour;
mod runs;
mod stall;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;

/// Errors are reported once, at the top, as text.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Load tool for a running Ensemble server.
#[derive(Parser)]
#[command(name = "ensemble-load")]
struct Cli {
    /// The server's base address, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "ENSEMBLE_LOAD_URL")]
    url: String,

    /// The server's process id, for CPU and memory figures from /proc.
    #[arg(long)]
    server_pid: Option<u32>,

    /// Connections opened at once while ramping up.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,

    /// The whole run is aborted after this many seconds.
    #[arg(long, default_value_t = 900)]
    max_secs: u64,

    /// Diagnostic: client sockets acknowledge received data at once
    /// (TCP_QUICKACK after every read) instead of delaying ACKs, which
    /// hides the cost of a server that does not set TCP_NODELAY.
    #[arg(long)]
    quickack: bool,

    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// One writer, N readers in one session: latency and CPU per delivery.
    Fanout {
        /// Reader counts, one table row each.
        #[arg(long, value_delimiter = ',', default_value = "10,100,1000,5000")]
        readers: Vec<usize>,
        /// The writer's updates per second.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Seconds the writer writes, per row.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds to wait for the last deliveries.
        #[arg(long, default_value_t = 15)]
        drain: u64,
    },
    /// Server memory per idle synced connection.
    Idle {
        /// Connection totals to measure at, ascending.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        levels: Vec<usize>,
        /// Seconds to hold the last level (the server's idle timeout is 45 s).
        #[arg(long, default_value_t = 50)]
        hold: u64,
        /// Fill the session's document to this many KiB first (0: empty).
        #[arg(long, default_value_t = 0)]
        doc_kib: usize,
    },
    /// Time for a new client to sync a document built from many edits.
    LateJoin {
        /// Edits in the document's history, each its own update.
        #[arg(long, default_value_t = 20_000)]
        edits: usize,
        /// Updates sent before waiting for the server to catch up.
        #[arg(long, default_value_t = 200)]
        batch: usize,
        /// Timed joins while the room is loaded.
        #[arg(long, default_value_t = 5)]
        joins: usize,
        /// Seconds to wait, after everyone left, before one more timed join
        /// (the room unloads 30 s after its last client); 0 skips it.
        #[arg(long, default_value_t = 40)]
        cold_wait: u64,
        /// Chance in percent that an edit moves the cursor somewhere random.
        #[arg(long, default_value_t = 10)]
        jump_percent: u64,
    },
    /// Runs watched by many: first output at each watcher, 1 MiB of output.
    Runs {
        /// Watchers per run.
        #[arg(long, default_value_t = 100)]
        watchers: usize,
    },
    /// One session floods a large document; another measures its latency.
    Neighbour {
        /// Size of the flooded document, in KiB.
        #[arg(long, default_value_t = 2048)]
        doc_kib: usize,
        /// Edits in the flood.
        #[arg(long, default_value_t = 1000)]
        flood: usize,
        /// The quiet session's updates per second.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Seconds each phase measures.
        #[arg(long, default_value_t = 10)]
        phase: u64,
    },
    /// Server memory pinned by a client that requests but never reads.
    Stall {
        /// Size of the document, in KiB.
        #[arg(long, default_value_t = 1024)]
        doc_kib: usize,
        /// Sync step 1 requests sent without reading.
        #[arg(long, default_value_t = 1100)]
        requests: usize,
    },
}

/// Connections a scenario may hold at once, to check the open-files limit.
fn connections_needed(s: &Scenario) -> usize {
    match s {
        Scenario::Fanout { readers, .. } => readers.iter().max().copied().unwrap_or(0) + 1,
        Scenario::Idle { levels, .. } => levels.iter().max().copied().unwrap_or(0),
        Scenario::LateJoin { .. } | Scenario::Stall { .. } => 2,
        Scenario::Neighbour { .. } => 6,
        Scenario::Runs { watchers } => watchers + 2,
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    client::use_quickack(cli.quickack);
    let server = measure::Server::new(cli.server_pid);
    let api = api::Api::sign_up(&cli.url).await?;
    match cli.scenario {
        Scenario::Fanout {
            readers,
            rate,
            duration,
            drain,
        } => {
            let opts = fanout::Options {
                readers,
                rate,
                duration: Duration::from_secs(duration),
                drain: Duration::from_secs(drain),
                concurrency: cli.concurrency,
            };
            fanout::run(&api, server, &opts).await
        }
        Scenario::Idle {
            levels,
            hold,
            doc_kib,
        } => {
            let opts = idle::Options {
                levels,
                hold: Duration::from_secs(hold),
                concurrency: cli.concurrency,
                doc_kib,
            };
            idle::run(&api, server, &opts).await
        }
        Scenario::LateJoin {
            edits,
            batch,
            joins,
            cold_wait,
            jump_percent,
        } => {
            let opts = late_join::Options {
                edits,
                batch,
                joins,
                cold_wait: Duration::from_secs(cold_wait),
                jump_percent,
            };
            late_join::run(&api, server, &opts).await
        }
        Scenario::Runs { watchers } => runs::run(&api, server, &runs::Options { watchers }).await,
        Scenario::Neighbour {
            doc_kib,
            flood,
            rate,
            phase,
        } => {
            let opts = neighbour::Options {
                doc_kib,
                flood,
                rate,
                phase: Duration::from_secs(phase),
            };
            neighbour::run(&api, server, &opts).await
        }
        Scenario::Stall { doc_kib, requests } => {
            stall::run(&api, server, &stall::Options { doc_kib, requests }).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let max = Duration::from_secs(cli.max_secs);
    std::thread::spawn(move || {
        std::thread::sleep(max);
        eprintln!("ensemble-load: still running after {max:?}; giving up");
        std::process::exit(3);
    });
    let needed = connections_needed(&cli.scenario) as u64 + 64;
    if let Some(limit) = measure::open_files_limit().filter(|&l| l < needed) {
        eprintln!(
            "warning: the open-files limit is {limit}, this run needs about {needed} (ulimit -n)"
        );
    }
    measure::now_ns();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
