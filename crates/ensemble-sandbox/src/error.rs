//! The crate's one error type.
//!
//! Only failures that stop a run from being *started* are errors. Everything
//! that happens to a run once it is going (a time limit, a memory kill, the
//! sandbox failing to set itself up) is reported in the run's exit event as a
//! [`RunStatus`](crate::RunStatus) instead, so the caller has a single place
//! to look for how a run ended.

use std::io;

/// Why the sandbox could not start a run or accept input.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The host cannot isolate programs (no bubblewrap, or the probe run
    /// failed); runs are refused rather than run unprotected.
    #[error("sandbox unavailable: {0}")]
    Unavailable(String),

    /// The limits asked for make no sense (zero, or too small for Python).
    #[error("invalid limits: {0}")]
    InvalidLimits(String),

    /// The per-run cgroup could not be created or configured although the
    /// probe found cgroups usable.
    #[error("could not set up the run's cgroup: {0}")]
    Cgroup(#[source] io::Error),

    /// The seccomp filter could not be compiled.
    #[error("could not build the seccomp filter: {0}")]
    Seccomp(String),

    /// Starting the supervised process failed (fork, exec, pipes).
    #[error("could not start the sandbox process: {0}")]
    Spawn(#[source] io::Error),

    /// Input was sent after the program's stdin was closed (or the run was
    /// not started with interactive stdin).
    #[error("the program's stdin is closed")]
    StdinClosed,
}
