//! A cgroup per run: memory (no swap), processes and CPU limits, usage
//! counters, the OOM-kill counter, and killing everything in the run.
//!
//! Both versions are supported. cgroup v2 is used when our own cgroup can
//! hand the `memory` and `pids` controllers to a child (a delegated subtree);
//! otherwise the v1 hierarchies are used controller by controller (these
//! machines are hybrid: v1 memory, pids, cpu, cpuacct and freezer, and a v2
//! mount with no controllers). Without either, runs still work and the
//! report says the layer is absent.
//!
//! The kill is the reason the cgroup exists beyond limits: it reaches every
//! process of the run, including a double-forked daemon, without waiting on
//! any process of the run (v2 `cgroup.kill`; v1 freeze, SIGKILL all, thaw).

mod mountinfo;
mod v1;
mod v2;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Limits, ResourceUse};

/// Run cgroups are named `ensemble-run-<server pid>-<n>`.
pub(crate) const RUN_PREFIX: &str = "ensemble-run-";

/// How often emptiness and freezing are polled while killing.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// How long a kill may take before we give up and report leftovers.
const KILL_PATIENCE: Duration = Duration::from_secs(2);

/// The cgroup support found on this host.
#[derive(Debug, Clone)]
pub(crate) enum CgroupHost {
    /// A delegated v2 subtree.
    V2(v2::Host),
    /// One or more v1 controllers.
    V1(v1::Host),
}

impl CgroupHost {
    /// Looks for usable cgroups, trying v2 first. The error says why none is
    /// usable, in words for the startup report.
    pub(crate) fn detect() -> Result<Self, String> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        let hierarchies = mountinfo::hierarchies(&mountinfo);
        let memberships = mountinfo::memberships(&own);
        let v2_error = match mountinfo::own_v2_dir(&hierarchies, &memberships) {
            Some(dir) => match v2::Host::detect(dir) {
                Ok(host) => return Ok(Self::V2(host)),
                Err(why) => why,
            },
            None => "no cgroup v2 hierarchy".to_owned(),
        };
        match v1::Host::detect(&hierarchies, &memberships) {
            Ok(host) => Ok(Self::V1(host)),
            Err(v1_error) => Err(format!("{v2_error}; {v1_error}")),
        }
    }

    /// Removes empty run cgroups left by an earlier server process that died
    /// before cleaning up (names carry the pid; live processes are skipped).
    pub(crate) fn sweep_stale(&self) {
        let parents: Vec<PathBuf> = match self {
            Self::V2(h) => vec![h.dir().to_path_buf()],
            Self::V1(h) => h.dirs(),
        };
        for parent in parents {
            let Ok(entries) = fs::read_dir(&parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix(RUN_PREFIX))
                    .and_then(|rest| rest.split('-').next())
                    .and_then(|pid| pid.parse::<u32>().ok())
                else {
                    continue;
                };
                if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                    match fs::remove_dir(entry.path()) {
                        Ok(()) => {
                            tracing::info!(dir = %entry.path().display(), "removed a stale run cgroup")
                        }
                        Err(e) => {
                            tracing::warn!(dir = %entry.path().display(), error = %e, "stale run cgroup")
                        }
                    }
                }
            }
        }
    }

    /// For the report: `v1 (memory, pids, cpu, cpuacct, freezer)`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::V2(h) => format!("v2 ({})", h.controllers().join(", ")),
            Self::V1(h) => format!("v1 ({})", h.controllers().join(", ")),
        }
    }

    /// Whether memory is limited (and an OOM kill can be recognised).
    pub(crate) fn limits_memory(&self) -> bool {
        match self {
            Self::V2(h) => h.memory,
            Self::V1(h) => h.memory.is_some(),
        }
    }

    /// Whether the number of processes is limited.
    pub(crate) fn limits_processes(&self) -> bool {
        match self {
            Self::V2(h) => h.pids,
            Self::V1(h) => h.pids.is_some(),
        }
    }

    /// Whether total CPU time can be read (and so limited by polling).
    pub(crate) fn counts_cpu(&self) -> bool {
        match self {
            Self::V2(_) => true,
            Self::V1(h) => h.cpuacct.is_some(),
        }
    }

    /// Creates and configures the cgroup for one run.
    pub(crate) fn create(&self, name: &str, limits: &Limits) -> io::Result<RunCgroup> {
        match self {
            Self::V2(h) => h.create(name, limits).map(RunCgroup::V2),
            Self::V1(h) => h.create(name, limits).map(RunCgroup::V1),
        }
    }
}

/// The cgroup(s) of one run. Removed by [`RunCgroup::remove`].
#[derive(Debug)]
pub(crate) enum RunCgroup {
    /// v2: one directory.
    V2(v2::Run),
    /// v1: one directory per hierarchy.
    V1(v1::Run),
}

impl RunCgroup {
    /// `cgroup.procs` of every directory, opened for writing, for the child
    /// to move itself in before exec.
    pub(crate) fn procs_files(&self) -> io::Result<Vec<File>> {
        let dirs = match self {
            Self::V2(r) => vec![r.dir.clone()],
            Self::V1(r) => r.dirs.clone(),
        };
        dirs.iter()
            .map(|d| OpenOptions::new().write(true).open(d.join("cgroup.procs")))
            .collect()
    }

    /// Kills every process in the run and waits (bounded) until none is left.
    /// Returns whether the cgroup is empty.
    pub(crate) async fn kill_all(&self) -> bool {
        match self {
            Self::V2(r) => r.kill_all().await,
            Self::V1(r) => r.kill_all().await,
        }
    }

    /// Whether the kernel's OOM killer killed something in this run.
    pub(crate) fn oom_killed(&self) -> bool {
        match self {
            Self::V2(r) => r.oom_killed(),
            Self::V1(r) => r.oom_killed(),
        }
    }

    /// CPU time used so far by all the run's processes.
    pub(crate) fn cpu_used(&self) -> Option<Duration> {
        match self {
            Self::V2(r) => r.cpu_used(),
            Self::V1(r) => r.cpu_used(),
        }
    }

    /// Counters for the exit event.
    pub(crate) fn usage(&self) -> ResourceUse {
        match self {
            Self::V2(r) => r.usage(),
            Self::V1(r) => r.usage(),
        }
    }

    /// Kills anything left, then removes the directories. Returns false (and
    /// logs) if something could not be removed.
    pub(crate) async fn remove(&self) -> bool {
        let empty = self.kill_all().await;
        let dirs = match self {
            Self::V2(r) => vec![r.dir.clone()],
            Self::V1(r) => r.dirs.clone(),
        };
        let mut removed = empty;
        for dir in dirs {
            removed &= remove_dir(&dir).await;
        }
        removed
    }
}

/// rmdir with a few retries: the kernel may report EBUSY for a moment after
/// the last process left.
async fn remove_dir(dir: &Path) -> bool {
    let mut last = None;
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    tracing::warn!(dir = %dir.display(), error = ?last, "could not remove a run cgroup");
    false
}

/// Writes a control file (no O_CREAT, no truncation surprises).
pub(crate) fn write(path: impl AsRef<Path>, value: &str) -> io::Result<()> {
    use std::io::Write;
    let path = path.as_ref();
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {value:?} to {}: {e}", path.display()),
        )
    })
}

/// Reads a control file holding one number.
pub(crate) fn read_u64(path: impl AsRef<Path>) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Reads `key value` from a flat-keyed file (`memory.events`, `cpu.stat`,
/// v1 `memory.oom_control`).
pub(crate) fn read_key(path: impl AsRef<Path>, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The processes listed in a cgroup directory.
pub(crate) fn procs(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// SIGKILLs every listed process. The callers either hold the processes
/// frozen (so a listed pid cannot exit and be reused) or accept that tiny
/// race as the documented fallback.
pub(crate) fn kill_listed(dir: &Path) {
    for pid in procs(dir) {
        if let Err(e) = crate::sys::kill(pid, libc::SIGKILL) {
            if e.raw_os_error() != Some(libc::ESRCH) {
                tracing::debug!(pid, error = %e, "kill failed");
            }
        }
    }
}

/// Polls until `dir` lists no process, for at most [`KILL_PATIENCE`].
pub(crate) async fn wait_empty(dir: &Path, mut on_retry: impl FnMut()) -> bool {
    let deadline = tokio::time::Instant::now() + KILL_PATIENCE;
    loop {
        if procs(dir).is_empty() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::error!(dir = %dir.display(), "processes survived the run's kill");
            return false;
        }
        on_retry();
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// A directory for a run under `parent`, created fresh (never reused, so a
/// path a previous run could have touched is never followed).
pub(crate) fn make_dir(parent: &Path, name: &str) -> io::Result<PathBuf> {
    let dir = parent.join(name);
    fs::create_dir(&dir)?;
    Ok(dir)
}
