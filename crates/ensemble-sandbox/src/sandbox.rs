//! [`Sandbox`]: the probed host set-up, and starting runs on it.
//!
//! Starting a run creates its cgroup, launches the supervised process and
//! spawns four tasks that share one [`Killer`]: the reaper (owns the
//! process), the watchdog (time, CPU, cancel), the stdin feeder and the
//! output pump (which sends the exit event last). `start` must be called
//! from within a tokio runtime; call it from an async task rather than a
//! `spawn_blocking` thread, because bubblewrap's parent-death signal is tied
//! to the *thread* that spawned it, and blocking-pool threads exit when idle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::cgroup::{CgroupHost, RunCgroup};
use crate::command::{self, RootEntry};
use crate::launch::{launch, HostPlan};
use crate::orphan;
use crate::pump::{Pump, PumpIo};
use crate::watchdog::{reaper, watchdog, Killer};
use crate::{
    RunHandle, RunRequest, SandboxConfig, SandboxError, SandboxMode, SandboxReport, Stdin,
};

/// Output chunks queued for a caller that is slower than the program.
const EVENT_QUEUE: usize = 256;
/// Writes queued for a program that does not read its stdin.
const STDIN_QUEUE: usize = 64;

/// Run names are unique within the process (and carry its pid).
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);

/// The sandbox of this host, as probed at start-up. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

/// What the probe decided.
#[derive(Debug)]
pub(crate) struct Inner {
    pub config: SandboxConfig,
    /// Why runs are refused, if they are.
    pub refusal: Option<String>,
    pub cgroups: Option<CgroupHost>,
    pub seccomp: Vec<Vec<u8>>,
    pub root_entries: Vec<RootEntry>,
    /// Start bubblewrap under this (uid, gid) (when we are root).
    pub drop_to: Option<(u32, u32)>,
    pub report: SandboxReport,
}

impl Sandbox {
    /// What the probe found, for the start-up log and `/readyz`.
    pub fn report(&self) -> &SandboxReport {
        &self.inner.report
    }

    /// The configuration it was probed with.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Starts a run. Fails only if the run cannot start at all (sandbox
    /// unavailable, bad limits, cgroup or process creation failing); every
    /// other ending is reported by the run's exit event.
    pub async fn start(&self, request: RunRequest) -> Result<RunHandle, SandboxError> {
        let inner = &self.inner;
        request.limits.validate()?;
        if let Some(why) = &inner.refusal {
            return Err(SandboxError::Unavailable(why.clone()));
        }
        let unsafe_mode = inner.config.mode == SandboxMode::NoneUnsafe;
        let name = format!(
            "{}{}-{}",
            crate::cgroup::RUN_PREFIX,
            std::process::id(),
            NEXT_RUN.fetch_add(1, Ordering::Relaxed)
        );
        let span = tracing::info_span!("run", id = %name);
        if unsafe_mode {
            tracing::warn!(parent: &span, "UNSAFE: running untrusted code WITHOUT namespaces or seccomp (--sandbox=none-unsafe)");
        }
        let limits = request.limits.clone();
        let cgroup = match &inner.cgroups {
            Some(host) => Some(Arc::new(
                host.create(&name, &limits).map_err(SandboxError::Cgroup)?,
            )),
            None => None,
        };
        let host_scratch = if unsafe_mode {
            match make_private_dir(command::unsafe_scratch(&name)) {
                Ok(dir) => Some(dir),
                Err(e) => {
                    cleanup(cgroup.as_deref(), None).await;
                    return Err(SandboxError::Spawn(e));
                }
            }
        } else {
            None
        };
        let plan = HostPlan {
            bwrap: (!unsafe_mode).then_some(inner.config.bwrap.as_path()),
            python: &inner.config.python,
            run_as: inner.config.run_as,
            drop_to: inner.drop_to,
            root_entries: &inner.root_entries,
            seccomp: &inner.seccomp,
            cgroup: cgroup.as_deref(),
            limits_memory: inner
                .cgroups
                .as_ref()
                .is_some_and(CgroupHost::limits_memory),
            limits_processes: inner
                .cgroups
                .as_ref()
                .is_some_and(CgroupHost::limits_processes),
            host_scratch: host_scratch.as_deref(),
        };
        let launched = match launch(&plan, &limits, &request.code) {
            Ok(launched) => launched,
            Err(e) => {
                cleanup(cgroup.as_deref(), host_scratch.as_deref()).await;
                return Err(SandboxError::Spawn(e));
            }
        };
        let started_at = Instant::now();
        let group = if unsafe_mode {
            launched.child.id()
        } else {
            None
        };
        let killer = Arc::new(Killer::new(cgroup.clone(), group));
        let (exited_tx, exited_rx) = watch::channel(None);
        tokio::spawn(reaper(launched.child, killer.clone(), exited_tx).instrument(span.clone()));
        tokio::spawn(
            watchdog(
                killer.clone(),
                started_at + limits.wall_time,
                limits.cpu_time,
                exited_rx.clone(),
            )
            .instrument(span.clone()),
        );
        let stdin_sender = feed_stdin(launched.stdin, request.stdin, &span);
        let pid1 = launched
            .info
            .map(|fd| tokio::spawn(orphan::read_info(fd).instrument(span.clone())));
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let input_wanted = Arc::new(AtomicBool::new(false));
        let pump = Pump {
            events: events_tx,
            killer: killer.clone(),
            cgroup,
            exited: exited_rx,
            limits,
            through_bwrap: !unsafe_mode,
            started_at,
            host_scratch,
            pid1,
            input_wanted: input_wanted.clone(),
        };
        let io = PumpIo {
            stdout: launched.stdout,
            stderr: launched.stderr,
            marker: launched.marker,
        };
        tokio::spawn(pump.run(io).instrument(span));
        Ok(RunHandle::new(
            name,
            events_rx,
            killer,
            stdin_sender,
            input_wanted,
        ))
    }
}

/// Sets up the program's stdin; returns the sender for interactive input.
fn feed_stdin(
    stdin: ChildStdin,
    mode: Stdin,
    span: &tracing::Span,
) -> Option<mpsc::Sender<Vec<u8>>> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(STDIN_QUEUE);
    let keep = match mode {
        Stdin::Empty => return None, // dropping `stdin` closes it: EOF
        Stdin::Bytes(bytes) => {
            let _ = tx.try_send(bytes); // a fresh queue always has room
            None
        }
        Stdin::Interactive => Some(tx),
    };
    let feeder = async move {
        let mut stdin = stdin;
        while let Some(data) = rx.recv().await {
            if stdin.write_all(&data).await.is_err() {
                return; // the program is gone or closed its stdin
            }
        }
    };
    tokio::spawn(feeder.instrument(span.clone()));
    keep
}

/// A fresh directory only we can enter (unsafe mode's scratch).
fn make_private_dir(dir: PathBuf) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Undoes what `start` made before failing.
async fn cleanup(cgroup: Option<&RunCgroup>, scratch: Option<&std::path::Path>) {
    if let Some(cgroup) = cgroup {
        cgroup.remove().await;
    }
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
}
