//! Ending runs: the [`Killer`] shared by everything that can end a run, the
//! watchdog task (wall clock, CPU time, cancel requests) and the reaper task.
//!
//! The watchdog never waits on anything the program controls. It does not
//! read output, does not wait for bubblewrap's reaper inside the sandbox,
//! and does not send events (a slow consumer cannot delay a kill). A kill is
//! a SIGKILL to bubblewrap — its pid namespace, and so every process of the
//! run, dies with it — plus the cgroup kill, which also reaches anything
//! that might have escaped the namespace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::cgroup::RunCgroup;
use crate::outcome::{Ended, KillCause};

/// How often the cgroup's CPU counter is compared with the CPU limit.
const CPU_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Kills a run and remembers why. Shared by the watchdog, the output pump
/// and every [`RunControl`](crate::RunControl).
///
/// The cause and the pending cancel sit behind std mutexes: they are held
/// for a field update only, never across an `.await`, and must be usable
/// from sync code (`RunControl::cancel`).
#[derive(Debug)]
pub(crate) struct Killer {
    cause: Mutex<Option<KillCause>>,
    cancel_request: Mutex<Option<Option<String>>>,
    cancel: Notify,
    kill_child: Notify,
    cgroup: Option<Arc<RunCgroup>>,
    /// Unsafe mode only: the session/process group of the run.
    group: Option<u32>,
}

impl Killer {
    pub(crate) fn new(cgroup: Option<Arc<RunCgroup>>, group: Option<u32>) -> Self {
        Self {
            cause: Mutex::new(None),
            cancel_request: Mutex::new(None),
            cancel: Notify::new(),
            kill_child: Notify::new(),
            cgroup,
            group,
        }
    }

    /// Why the run was killed, if it was.
    pub(crate) fn cause(&self) -> Option<KillCause> {
        self.cause
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Records `cause` (unless an earlier one exists) and kills everything.
    pub(crate) async fn kill(&self, cause: KillCause) {
        {
            let mut slot = self.cause.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                tracing::info!(?cause, "stopping run");
                *slot = Some(cause);
            }
        }
        self.kill_everything().await;
    }

    /// Kills every process of the run, without recording a cause.
    pub(crate) async fn kill_everything(&self) {
        self.kill_child.notify_one();
        if let Some(group) = self.group {
            let _ = crate::sys::kill_group(group, libc::SIGKILL);
        }
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all().await;
        }
    }

    /// Asks the watchdog to cancel the run (callable from sync code).
    pub(crate) fn request_cancel(&self, by: Option<String>) {
        let mut pending = self
            .cancel_request
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        pending.get_or_insert(by);
        self.cancel.notify_one();
    }

    fn take_cancel_request(&self) -> Option<String> {
        let mut pending = self
            .cancel_request
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        pending.take().flatten()
    }
}

/// Ends the run at the wall-clock deadline, when the CPU limit is used up
/// (if the cgroup counts CPU), or when a cancel is requested; returns when
/// the supervised process has exited.
pub(crate) async fn watchdog(
    killer: Arc<Killer>,
    deadline: Instant,
    cpu_limit: Duration,
    mut exited: watch::Receiver<Option<Ended>>,
) {
    let counts_cpu = killer
        .cgroup
        .as_ref()
        .is_some_and(|c| c.cpu_used().is_some());
    let mut cpu_check = tokio::time::interval(CPU_CHECK_EVERY);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                killer.kill(KillCause::WallTime).await;
                return;
            }
            _ = killer.cancel.notified() => {
                let by = killer.take_cancel_request();
                killer.kill(KillCause::Cancelled { by }).await;
                return;
            }
            _ = cpu_check.tick(), if counts_cpu => {
                let used = killer.cgroup.as_ref().and_then(|c| c.cpu_used());
                if used.is_some_and(|u| u >= cpu_limit) {
                    killer.kill(KillCause::CpuTime).await;
                    return;
                }
            }
            changed = exited.changed() => {
                if changed.is_err() || exited.borrow().is_some() {
                    return;
                }
            }
        }
    }
}

/// Owns the supervised process: waits for it, SIGKILLs it when the killer
/// asks, and publishes how it ended. Holding the `Child` here (and nowhere
/// else) means its pid is never signalled after it was reaped.
pub(crate) async fn reaper(
    mut child: Child,
    killer: Arc<Killer>,
    exited: watch::Sender<Option<Ended>>,
) {
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = killer.kill_child.notified() => {
                if let Err(e) = child.start_kill() {
                    tracing::debug!(error = %e, "kill of the supervised process failed");
                }
            }
        }
    };
    let ended = match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(code), _) => Ended::Code(code),
                (None, Some(signal)) => Ended::Signal(signal),
                (None, None) => Ended::Code(-1),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "waiting for the supervised process failed");
            Ended::Code(-1)
        }
    };
    exited.send_replace(Some(ended));
}
