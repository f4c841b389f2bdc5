//! cgroup v1: one directory per hierarchy (memory, pids, cpu, cpuacct,
//! freezer), each optional.
//!
//! Memory is limited with `memory.limit_in_bytes` and, where swap accounting
//! exists, `memory.memsw.limit_in_bytes` set to the same value (no swap). An
//! OOM kill shows in `memory.oom_control` as `oom_kill N`. v1 has no
//! `cgroup.kill`, so the run is frozen, every process SIGKILLed while it
//! cannot fork or exit, and thawed so the kills land.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::mountinfo::{own_v1_dir, Hierarchy, Membership};
use super::{kill_listed, make_dir, read_key, read_u64, wait_empty, write, POLL_EVERY};
use crate::{Limits, ResourceUse};

/// Our own directory in each usable v1 hierarchy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Host {
    pub memory: Option<PathBuf>,
    pub pids: Option<PathBuf>,
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub freezer: Option<PathBuf>,
}

impl Host {
    /// Finds each controller and checks we may create a child there.
    pub(crate) fn detect(h: &[Hierarchy], m: &[Membership]) -> Result<Self, String> {
        let usable = |controller: &str| {
            let dir = own_v1_dir(h, m, controller)?;
            let probe = dir.join(format!("ensemble-probe-{}", std::process::id()));
            let ok = std::fs::create_dir(&probe).is_ok();
            let _ = std::fs::remove_dir(&probe);
            ok.then_some(dir)
        };
        let host = Self {
            memory: usable("memory"),
            pids: usable("pids"),
            cpu: usable("cpu"),
            cpuacct: usable("cpuacct"),
            freezer: usable("freezer"),
        };
        if host.memory.is_none() && host.pids.is_none() && host.freezer.is_none() {
            return Err("no writable cgroup v1 memory, pids or freezer hierarchy".to_owned());
        }
        Ok(host)
    }

    /// Our own directory in each usable hierarchy (without duplicates).
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for dir in [
            &self.memory,
            &self.pids,
            &self.cpu,
            &self.cpuacct,
            &self.freezer,
        ]
        .into_iter()
        .flatten()
        {
            if !dirs.contains(dir) {
                dirs.push(dir.clone());
            }
        }
        dirs
    }

    /// The usable controllers, for the report.
    pub(crate) fn controllers(&self) -> Vec<&'static str> {
        [
            ("memory", &self.memory),
            ("pids", &self.pids),
            ("cpu", &self.cpu),
            ("cpuacct", &self.cpuacct),
            ("freezer", &self.freezer),
        ]
        .into_iter()
        .filter_map(|(name, dir)| dir.as_ref().map(|_| name))
        .collect()
    }

    /// Creates the run's directories and writes its limits. On error the
    /// directories made so far are removed again.
    pub(crate) fn create(&self, name: &str, limits: &Limits) -> std::io::Result<Run> {
        let mut run = Run::default();
        let result = self.populate(&mut run, name, limits);
        if let Err(e) = result {
            for dir in &run.dirs {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
        Ok(run)
    }

    fn populate(&self, run: &mut Run, name: &str, limits: &Limits) -> std::io::Result<()> {
        // Controllers may share a hierarchy (`cpu,cpuacct`): one dir each.
        let mut make = |parent: &Option<PathBuf>| -> std::io::Result<Option<PathBuf>> {
            let Some(parent) = parent else {
                return Ok(None);
            };
            let dir = parent.join(name);
            if !run.dirs.contains(&dir) {
                make_dir(parent, name)?;
                run.dirs.push(dir.clone());
            }
            Ok(Some(dir))
        };
        run.memory = make(&self.memory)?;
        run.pids = make(&self.pids)?;
        run.cpu = make(&self.cpu)?;
        run.cpuacct = make(&self.cpuacct)?;
        run.freezer = make(&self.freezer)?;

        if let Some(dir) = &run.memory {
            let bytes = limits.memory_bytes.to_string();
            write(dir.join("memory.limit_in_bytes"), &bytes)?;
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write(memsw, &bytes)?;
            }
            // Best effort: a non-root hierarchy may refuse it.
            let _ = write(dir.join("memory.swappiness"), "0");
        }
        if let Some(dir) = &run.pids {
            write(dir.join("pids.max"), &limits.max_processes.to_string())?;
        }
        if let Some(dir) = &run.cpu {
            let period: u64 = 100_000;
            let quota = period * u64::from(limits.cpu_percent) / 100;
            write(dir.join("cpu.cfs_period_us"), &period.to_string())?;
            write(dir.join("cpu.cfs_quota_us"), &quota.max(1000).to_string())?;
        }
        Ok(())
    }
}

/// One run's v1 directories.
#[derive(Debug, Default)]
pub(crate) struct Run {
    /// Every distinct directory, in creation order.
    pub dirs: Vec<PathBuf>,
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    cpu: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
    freezer: Option<PathBuf>,
}

impl Run {
    /// A directory that lists every process of the run.
    fn any_dir(&self) -> Option<&Path> {
        self.dirs.first().map(PathBuf::as_path)
    }

    pub(crate) async fn kill_all(&self) -> bool {
        let Some(dir) = self.any_dir() else {
            return true;
        };
        match &self.freezer {
            Some(freezer) => {
                let round = || {
                    freeze(freezer);
                    kill_listed(freezer);
                    let _ = write(freezer.join("freezer.state"), "THAWED");
                };
                wait_frozen(freezer).await;
                round();
                wait_empty(freezer, round).await
            }
            None => {
                kill_listed(dir);
                wait_empty(dir, || kill_listed(dir)).await
            }
        }
    }

    pub(crate) fn oom_killed(&self) -> bool {
        self.memory
            .as_ref()
            .and_then(|d| read_key(d.join("memory.oom_control"), "oom_kill"))
            .is_some_and(|n| n > 0)
    }

    pub(crate) fn cpu_used(&self) -> Option<Duration> {
        let ns = read_u64(self.cpuacct.as_ref()?.join("cpuacct.usage"))?;
        Some(Duration::from_nanos(ns))
    }

    pub(crate) fn usage(&self) -> ResourceUse {
        let peak_memory = self.memory.as_ref().and_then(|d| {
            read_u64(d.join("memory.memsw.max_usage_in_bytes"))
                .or_else(|| read_u64(d.join("memory.max_usage_in_bytes")))
        });
        ResourceUse {
            cpu_ms: self.cpu_used().map(|d| d.as_millis() as u64),
            peak_memory_bytes: peak_memory,
            peak_processes: self
                .pids
                .as_ref()
                .and_then(|d| read_u64(d.join("pids.peak"))),
        }
    }
}

fn freeze(freezer: &Path) {
    if let Err(e) = write(freezer.join("freezer.state"), "FROZEN") {
        tracing::warn!(error = %e, "could not freeze a run");
    }
}

/// Freezes and waits (briefly) for the state to settle; killing proceeds
/// either way, since SIGKILL works on frozen and running tasks alike.
async fn wait_frozen(freezer: &Path) {
    freeze(freezer);
    for _ in 0..50 {
        let state = std::fs::read_to_string(freezer.join("freezer.state")).unwrap_or_default();
        if state.trim() == "FROZEN" {
            return;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
