//! cgroup v2: one directory per run below our own (delegated) cgroup.
//!
//! Needs `memory` and `pids` in our cgroup's `cgroup.subtree_control`. We try
//! to enable them; that fails when our own cgroup holds processes (the "no
//! internal processes" rule) and is not the root, in which case the host
//! must delegate a subtree to the server (systemd `Delegate=yes`, or a
//! container entrypoint that moves itself into a leaf) — the report says so.
//!
//! Limits: `memory.max` with `memory.swap.max = 0`, `memory.oom.group = 1`
//! (an OOM kills the whole run), `pids.max`, `cpu.max`. An OOM kill shows in
//! `memory.events` as `oom_kill N`; the kill is `cgroup.kill` (Linux 5.14),
//! with a freeze-and-kill fallback.
//!
//! Not exercised on the project's machines (their v2 hierarchy has no
//! controllers); the v1 path is the tested one.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::{kill_listed, make_dir, read_key, read_u64, wait_empty, write};
use crate::{Limits, ResourceUse};

/// Our own v2 directory and which controllers it can hand to children.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    dir: PathBuf,
    pub memory: bool,
    pub pids: bool,
    pub cpu: bool,
}

impl Host {
    /// Usable when memory and pids can be delegated to a child of `dir`.
    pub(crate) fn detect(dir: PathBuf) -> Result<Self, String> {
        let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        let has = |c: &str| available.split_whitespace().any(|a| a == c);
        if !(has("memory") && has("pids")) {
            return Err(format!(
                "cgroup v2 at {} offers no memory and pids controllers",
                dir.display()
            ));
        }
        let subtree = dir.join("cgroup.subtree_control");
        let enabled = |c: &str| {
            fs::read_to_string(&subtree)
                .unwrap_or_default()
                .split_whitespace()
                .any(|a| a == c)
        };
        for controller in ["memory", "pids", "cpu"] {
            if has(controller) && !enabled(controller) {
                if let Err(e) = write(&subtree, &format!("+{controller}")) {
                    if controller != "cpu" {
                        return Err(format!(
                            "cannot enable {controller} for child cgroups of {} ({e}); \
                             delegate a cgroup subtree to the server",
                            dir.display()
                        ));
                    }
                }
            }
        }
        let probe = dir.join(format!("ensemble-probe-{}", std::process::id()));
        fs::create_dir(&probe)
            .map_err(|e| format!("cannot create a cgroup under {}: {e}", dir.display()))?;
        let _ = fs::remove_dir(&probe);
        Ok(Self {
            memory: enabled("memory"),
            pids: enabled("pids"),
            cpu: enabled("cpu"),
            dir,
        })
    }

    /// Our own directory, under which runs get theirs.
    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The delegated controllers, for the report.
    pub(crate) fn controllers(&self) -> Vec<&'static str> {
        [
            ("memory", self.memory),
            ("pids", self.pids),
            ("cpu", self.cpu),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect()
    }

    /// Creates the run's directory and writes its limits (removing the
    /// directory again if a limit cannot be written).
    pub(crate) fn create(&self, name: &str, limits: &Limits) -> std::io::Result<Run> {
        let dir = make_dir(&self.dir, name)?;
        let run = Run { dir };
        if let Err(e) = self.configure(&run, limits) {
            let _ = fs::remove_dir(&run.dir);
            return Err(e);
        }
        Ok(run)
    }

    fn configure(&self, run: &Run, limits: &Limits) -> std::io::Result<()> {
        let dir = &run.dir;
        if self.memory {
            write(dir.join("memory.max"), &limits.memory_bytes.to_string())?;
            if dir.join("memory.swap.max").exists() {
                write(dir.join("memory.swap.max"), "0")?;
            }
            let _ = write(dir.join("memory.oom.group"), "1");
        }
        if self.pids {
            write(dir.join("pids.max"), &limits.max_processes.to_string())?;
        }
        if self.cpu {
            let period: u64 = 100_000;
            let quota = (period * u64::from(limits.cpu_percent) / 100).max(1000);
            write(dir.join("cpu.max"), &format!("{quota} {period}"))?;
        }
        Ok(())
    }
}

/// One run's v2 directory.
#[derive(Debug)]
pub(crate) struct Run {
    pub dir: PathBuf,
}

impl Run {
    pub(crate) async fn kill_all(&self) -> bool {
        let dir = &self.dir;
        if write(dir.join("cgroup.kill"), "1").is_ok() {
            return wait_empty(dir, || {
                let _ = write(dir.join("cgroup.kill"), "1");
            })
            .await;
        }
        // Before Linux 5.14: freeze, kill what is listed, thaw, repeat.
        let round = || {
            let _ = write(dir.join("cgroup.freeze"), "1");
            kill_listed(dir);
            let _ = write(dir.join("cgroup.freeze"), "0");
        };
        round();
        wait_empty(dir, round).await
    }

    pub(crate) fn oom_killed(&self) -> bool {
        read_key(self.dir.join("memory.events"), "oom_kill").is_some_and(|n| n > 0)
    }

    pub(crate) fn cpu_used(&self) -> Option<Duration> {
        read_key(self.dir.join("cpu.stat"), "usage_usec").map(Duration::from_micros)
    }

    pub(crate) fn usage(&self) -> ResourceUse {
        ResourceUse {
            cpu_ms: self.cpu_used().map(|d| d.as_millis() as u64),
            peak_memory_bytes: read_u64(self.dir.join("memory.peak")),
            peak_processes: read_u64(self.dir.join("pids.peak")),
        }
    }
}
