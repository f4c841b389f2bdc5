//! Tracing set-up: human-readable lines on stderr, filtered by `--log` (or
//! `RUST_LOG` when set). Tests stay quiet unless `TEST_LOG` is set.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing (tests call it
/// for every server they start).
pub fn init(filter: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// For tests: logs only when `TEST_LOG` is set.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init("debug");
    }
}
