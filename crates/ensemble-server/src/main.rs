//! The `ensemble` binary: a thin shim over the library. It parses the
//! command line, sets up logging, and runs the server until SIGTERM or
//! Ctrl-C. Start-up errors print one line and exit with code 2.

use clap::Parser;
use ensemble_server::app::Application;
use ensemble_server::config::{Cli, Command};
use ensemble_server::telemetry;
use std::process::ExitCode;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(cli.config)),
        Command::Run { file } => runtime.block_on(run_file(cli.config, file)),
    }
}

/// `ensemble run FILE.py`.
async fn run_file(config: ensemble_server::config::Config, file: std::path::PathBuf) -> ExitCode {
    let limits = config.sandbox.limits();
    if let Err(e) = limits.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let sandbox = ensemble_sandbox::Sandbox::probe(config.sandbox.sandbox_config()).await;
    let code = ensemble_sandbox::run_file_cli(&sandbox, &file, limits).await;
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

async fn serve(config: ensemble_server::config::Config) -> ExitCode {
    // Signal handlers are registered before anything else, so a SIGTERM that
    // arrives while the server is still starting is not lost.
    let shutdown = CancellationToken::new();
    let signals = match Signals::register() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::from(2);
        }
    };
    tokio::spawn(signals.cancel_on_first(shutdown.clone()));
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match app.run_until_stopped(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM and SIGINT (Ctrl-C), registered up front.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn register() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Cancels `token` when either signal arrives.
    async fn cancel_on_first(mut self, token: CancellationToken) {
        tokio::select! {
            _ = self.int.recv() => tracing::info!("Ctrl-C received; stopping"),
            _ = self.term.recv() => tracing::info!("SIGTERM received; stopping"),
        }
        token.cancel();
    }
}
