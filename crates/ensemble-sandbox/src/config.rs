//! How the sandbox is set up on this host: which tools, which uid, which
//! layers.
//!
//! Built by the server from its own `Config` (flags and `ENSEMBLE_*`
//! variables); tests build it directly. The per-layer switches exist to
//! measure what each layer costs (docs/BENCHMARKS.md) and to debug a host;
//! production leaves them all on.

use std::path::PathBuf;

/// Whether programs run inside bubblewrap at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxMode {
    /// Every layer (bubblewrap, seccomp, cgroups, rlimits, watchdog). Runs are
    /// refused when bubblewrap is missing or does not work.
    #[default]
    Bubblewrap,
    /// **Developer use only**: no namespaces and no seccomp — the program sees
    /// the host's files and network. cgroups, rlimits, the watchdog and the
    /// output cap still apply. Logged as a loud warning at start-up and on
    /// every run (`--sandbox=none-unsafe`).
    NoneUnsafe,
}

/// Host-level sandbox settings; limits are per run ([`crate::Limits`]).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Bubblewrap or the developer-only unsafe mode.
    pub mode: SandboxMode,
    /// The bubblewrap binary. Default `/usr/bin/bwrap`.
    pub bwrap: PathBuf,
    /// The interpreter, by absolute path: the `python3` on `PATH` may be a
    /// shell shim (pyenv) that costs ~130 ms per start. Default `/usr/bin/python3`.
    pub python: PathBuf,
    /// The uid and gid programs run as, inside the sandbox and — when the
    /// server runs as root — outside it too (bubblewrap itself is started
    /// under it). Default 65534 (`nobody`).
    pub run_as: (u32, u32),
    /// Install the seccomp filters. Default on.
    pub seccomp: bool,
    /// Use a cgroup per run where the host allows it. Default on.
    pub cgroups: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            mode: SandboxMode::Bubblewrap,
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            python: PathBuf::from("/usr/bin/python3"),
            run_as: (65534, 65534),
            seccomp: true,
            cgroups: true,
        }
    }
}
