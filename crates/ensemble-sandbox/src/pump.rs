//! The output pump: forwards the program's output as it arrives, enforces
//! the output cap, and finally sends the one exit event.
//!
//! One task reads both pipes, so sequence numbers follow the order in which
//! chunks were read. Sending to the caller may wait (a bounded queue), which
//! then slows the program's writes — but never a kill, which the watchdog
//! does on its own. The exit event is sent only after the run's cgroup is
//! empty and removed: when a caller sees it, nothing of the run is running.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::pipe;
use tokio::process::{ChildStderr, ChildStdout};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::cgroup::RunCgroup;
use crate::limits::format_bytes;
use crate::orphan::{self, Pid1};
use crate::outcome::{decide, Ended, Facts, KillCause};
use crate::utf8::Utf8Carry;
use crate::watchdog::Killer;
use crate::{ExitInfo, Limits, OutputChunk, OutputStream, ResourceUse, RunEvent};

/// Read size per pipe; a pipe holds 64 KiB by default.
const READ_CHUNK: usize = 64 * 1024;
/// Most bytes read from the stdin-hint pipe in one run. The stub writes one
/// per read that waits, and each wait needs a line typed, so a program past
/// this writes there itself: the pump closes the pipe rather than spend a
/// server core reading it (the stub ignores the broken pipe; hints stop).
const HINT_BYTES_MAX: usize = 64 * 1024;
/// After the supervised process exits, how long pipes may stay open (only
/// possible without namespaces) before the rest is killed.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// How much of bubblewrap's own error output is kept for the log.
const SETUP_ERROR_LOG: usize = 2048;

/// The pipes the pump reads.
pub(crate) struct PumpIo {
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// Read end of the "Python started" pipe.
    pub marker: OwnedFd,
}

/// Everything else the pump owns.
pub(crate) struct Pump {
    pub events: mpsc::Sender<RunEvent>,
    pub killer: Arc<Killer>,
    pub cgroup: Option<Arc<RunCgroup>>,
    pub exited: watch::Receiver<Option<Ended>>,
    pub limits: Limits,
    pub through_bwrap: bool,
    pub started_at: Instant,
    /// Unsafe mode: the host scratch directory to delete afterwards.
    pub host_scratch: Option<PathBuf>,
    /// Whether an [`RunEvent::InputWanted`] is outstanding (shared with
    /// the run's controls, which clear it when input is written).
    pub input_wanted: Arc<AtomicBool>,
    /// Finds bubblewrap's pid-1 process (see `orphan`).
    pub pid1: Option<tokio::task::JoinHandle<Option<Pid1>>>,
}

/// Per-run output state.
struct Output {
    seq: u64,
    forwarded: u64,
    truncated: bool,
    /// The caller dropped its receiver; output is drained and discarded.
    orphaned: bool,
    carry: [Utf8Carry; 2],
}

impl Pump {
    /// Runs the pump to the end of the run.
    pub(crate) async fn run(mut self, io: PumpIo) {
        let PumpIo {
            stdout,
            mut stderr,
            marker,
        } = io;
        let mut marker = read_marker(marker).await;
        let started = marker.is_some();
        let mut out = Output {
            seq: 0,
            forwarded: 0,
            truncated: false,
            orphaned: false,
            carry: Default::default(),
        };
        if started {
            self.stream(&mut out, stdout, stderr, &mut marker).await;
        } else {
            log_setup_failure(&mut stderr).await;
        }
        let ended = wait_exit(&mut self.exited).await;
        self.finish(started, ended, out).await;
    }

    async fn stream(
        &mut self,
        out: &mut Output,
        stdout: ChildStdout,
        stderr: ChildStderr,
        marker: &mut Option<pipe::Receiver>,
    ) {
        let mut stdout = Some(stdout);
        let mut stderr = Some(stderr);
        let mut out_buf = vec![0u8; READ_CHUNK];
        let mut err_buf = vec![0u8; READ_CHUNK];
        let mut hint_buf = [0u8; 4096];
        let mut hint_bytes = 0;
        let mut exit_seen = self.exited.borrow().is_some();
        let mut drain_until: Option<Instant> = exit_seen.then(|| Instant::now() + DRAIN_GRACE);
        let mut drain_kills = 0;
        while stdout.is_some() || stderr.is_some() {
            let (stream, read) = tokio::select! {
                // Output before hints: a prompt is in its pipe before the
                // hint of the read that follows it is in the hint pipe, so
                // with this order it always reaches watchers first.
                biased;
                _ = self.exited.changed(), if !exit_seen => {
                    exit_seen = true;
                    drain_until = Some(Instant::now() + DRAIN_GRACE);
                    continue;
                }
                _ = sleep_until_opt(drain_until) => {
                    // Something outside a pid namespace still holds the pipes.
                    drain_kills += 1;
                    if drain_kills > 2 {
                        tracing::warn!("output pipes still open after the run; giving up on them");
                        break;
                    }
                    self.killer.kill_everything().await;
                    drain_until = Some(Instant::now() + DRAIN_GRACE);
                    continue;
                }
                // stdout and stderr stay fair to each other.
                read = async {
                    tokio::select! {
                        n = read_some(&mut stdout, &mut out_buf) => (OutputStream::Stdout, n),
                        n = read_some(&mut stderr, &mut err_buf) => (OutputStream::Stderr, n),
                    }
                } => read,
                n = read_hint(marker, &mut hint_buf) => {
                    match n {
                        Ok(n) if n > 0 && hint_bytes < HINT_BYTES_MAX => {
                            hint_bytes += n;
                            self.input_hint(out).await;
                        }
                        _ => *marker = None,
                    }
                    continue;
                }
            };
            let buf = match stream {
                OutputStream::Stdout => &out_buf,
                OutputStream::Stderr => &err_buf,
            };
            match read {
                Ok(0) | Err(_) => {
                    let rest = out.carry[stream as usize].finish();
                    self.emit(out, stream, rest).await;
                    match stream {
                        OutputStream::Stdout => stdout = None,
                        OutputStream::Stderr => stderr = None,
                    }
                }
                Ok(n) => self.accept(out, stream, &buf[..n]).await,
            }
        }
    }

    /// Forwards what fits under the cap; on overflow cuts, says so, and kills.
    async fn accept(&self, out: &mut Output, stream: OutputStream, data: &[u8]) {
        if out.truncated {
            return;
        }
        let room = self.limits.output_bytes.saturating_sub(out.forwarded);
        let take = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        out.forwarded += take as u64;
        let ready = out.carry[stream as usize].push(&data[..take]);
        self.emit(out, stream, ready).await;
        if take < data.len() {
            out.truncated = true;
            for s in [OutputStream::Stdout, OutputStream::Stderr] {
                let rest = out.carry[s as usize].finish();
                self.emit(out, s, rest).await;
            }
            let notice = format!(
                "\n[ensemble: output limit ({}) reached; output cut and the run stopped]\n",
                format_bytes(self.limits.output_bytes)
            );
            self.emit(out, OutputStream::Stderr, notice.into_bytes())
                .await;
            self.killer.kill(KillCause::OutputLimit).await;
        }
    }

    /// The program signalled that it waits for stdin: report it once until
    /// input is written, however many bytes it sent (so a program writing
    /// to the pipe in a loop costs one event per line typed).
    async fn input_hint(&self, out: &mut Output) {
        if out.orphaned || self.input_wanted.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.events.send(RunEvent::InputWanted).await.is_err() {
            out.orphaned = true;
            self.killer.kill(KillCause::Cancelled { by: None }).await;
        }
    }

    async fn emit(&self, out: &mut Output, stream: OutputStream, data: Vec<u8>) {
        if data.is_empty() || out.orphaned {
            return;
        }
        out.seq += 1;
        let chunk = OutputChunk {
            seq: out.seq,
            stream,
            data,
        };
        if self.events.send(RunEvent::Output(chunk)).await.is_err() {
            // Nobody listens any more: stop the run rather than let it go on
            // unobserved until its time limit.
            out.orphaned = true;
            self.killer.kill(KillCause::Cancelled { by: None }).await;
        }
    }

    async fn finish(self, started: bool, ended: Ended, out: Output) {
        let (oom_killed, usage) = match &self.cgroup {
            Some(cgroup) => (cgroup.oom_killed(), cgroup.usage()),
            None => (false, ResourceUse::default()),
        };
        if let Some(cgroup) = &self.cgroup {
            if !cgroup.remove().await {
                tracing::error!("the run's cgroup could not be emptied and removed");
            }
        }
        if let Some(find) = self.pid1 {
            if let Ok(Ok(Some(pid1))) = tokio::time::timeout(Duration::from_secs(1), find).await {
                orphan::reap(pid1).await;
            }
        }
        if let Some(dir) = &self.host_scratch {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove the scratch dir");
            }
        }
        let decision = decide(&Facts {
            cause: self.killer.cause(),
            oom_killed,
            started,
            ended,
            through_bwrap: self.through_bwrap,
            cpu_used: usage.cpu_ms.map(Duration::from_millis),
            limits: &self.limits,
        });
        let info = ExitInfo {
            status: decision.status,
            reason: decision.reason,
            exit_code: decision.exit_code,
            signal: decision.signal,
            duration_ms: self.started_at.elapsed().as_millis() as u64,
            resources: usage,
            output_bytes: out.forwarded,
            truncated: out.truncated,
        };
        tracing::info!(status = info.status.as_str(), reason = %info.reason, duration_ms = info.duration_ms, "run ended");
        let _ = self.events.send(RunEvent::Exited(info)).await;
    }
}

/// bubblewrap (or Python) failed before the user's code ran; its stderr
/// says why, in host terms, so it goes to the log and not to users.
async fn log_setup_failure(stderr: &mut ChildStderr) {
    let mut text = Vec::new();
    let mut limited = stderr.take(SETUP_ERROR_LOG as u64);
    let _ = tokio::time::timeout(Duration::from_secs(1), limited.read_to_end(&mut text)).await;
    tracing::error!(
        stderr = %String::from_utf8_lossy(&text).trim(),
        "the sandbox failed before the program started"
    );
}

/// Reads the "started" byte; EOF without it means Python never started.
/// Returns the pipe, which then carries the stdin hints.
async fn read_marker(fd: OwnedFd) -> Option<pipe::Receiver> {
    let mut marker = pipe::Receiver::from_owned_fd(fd).ok()?;
    let mut byte = [0u8; 1];
    matches!(marker.read(&mut byte).await, Ok(1)).then_some(marker)
}

/// Reads stdin hints; pending forever once the pipe is gone.
async fn read_hint(marker: &mut Option<pipe::Receiver>, buf: &mut [u8]) -> std::io::Result<usize> {
    match marker {
        Some(m) => m.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn wait_exit(exited: &mut watch::Receiver<Option<Ended>>) -> Ended {
    match exited.wait_for(Option::is_some).await {
        Ok(ended) => ended.unwrap_or(Ended::Code(-1)),
        Err(_) => Ended::Code(-1),
    }
}

/// Reads from the stream if it is still open; otherwise never completes.
async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match reader {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}
