//! What a caller holds while a run goes on: its events, and controls to
//! cancel it and to write to its stdin.
//!
//! [`RunHandle`] can be split into the event receiver and a cloneable
//! [`RunControl`], so a server can move the receiver into a task that fans
//! events out while websocket handlers keep controls to cancel or type.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::watchdog::Killer;
use crate::{ExitInfo, Limits, OutputStream, RunEvent, SandboxError};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The Python source; it runs as `main.py` in the scratch directory.
    pub code: String,
    /// The limits of this run.
    pub limits: Limits,
    /// What the program reads on stdin.
    pub stdin: Stdin,
}

/// The program's stdin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Stdin {
    /// Closed at once: reading gives end of file.
    #[default]
    Empty,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// Open until [`RunControl::close_stdin`]; fed by [`RunControl::write_stdin`].
    Interactive,
}

/// A started run.
///
/// Dropping the event receiver (this handle, or the receiver from
/// [`RunHandle::into_parts`]) cancels the run at its next output: output
/// nobody reads is not worth running for. A silent run still ends at its
/// limits.
#[derive(Debug)]
pub struct RunHandle {
    id: String,
    events: mpsc::Receiver<RunEvent>,
    control: RunControl,
}

/// Cancel and stdin controls of a run; cheap to clone.
#[derive(Debug, Clone)]
pub struct RunControl {
    killer: Arc<Killer>,
    /// The stdin queue's sender; taking it out (close) ends the program's
    /// stdin once queued bytes are written. A std mutex: it is held only to
    /// clone or take the sender, never across an `.await`.
    stdin: Arc<Mutex<Option<mpsc::Sender<Vec<u8>>>>>,
    /// Set by the pump when it reports [`RunEvent::InputWanted`]; cleared
    /// by input, so the hint is sent once per wait however often the
    /// program signals.
    pub(crate) input_wanted: Arc<AtomicBool>,
}

impl RunHandle {
    pub(crate) fn new(
        id: String,
        events: mpsc::Receiver<RunEvent>,
        killer: Arc<Killer>,
        stdin: Option<mpsc::Sender<Vec<u8>>>,
        input_wanted: Arc<AtomicBool>,
    ) -> Self {
        Self {
            id,
            events,
            control: RunControl {
                killer,
                stdin: Arc::new(Mutex::new(stdin)),
                input_wanted,
            },
        }
    }

    /// A name for logs (`ensemble-run-<pid>-<n>`; also the cgroup's name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next event; `None` after the exit event.
    pub async fn next_event(&mut self) -> Option<RunEvent> {
        self.events.recv().await
    }

    /// The controls, to keep while the events are consumed elsewhere.
    pub fn control(&self) -> RunControl {
        self.control.clone()
    }

    /// Splits into the event receiver and the controls.
    pub fn into_parts(self) -> (mpsc::Receiver<RunEvent>, RunControl) {
        (self.events, self.control)
    }

    /// Waits for the end of the run, collecting everything (for tests,
    /// tools and the CLI's non-streaming uses).
    pub async fn collect(mut self) -> Transcript {
        let mut transcript = Transcript::default();
        while let Some(event) = self.next_event().await {
            match event {
                RunEvent::Output(chunk) => {
                    match chunk.stream {
                        OutputStream::Stdout => transcript.stdout.extend_from_slice(&chunk.data),
                        OutputStream::Stderr => transcript.stderr.extend_from_slice(&chunk.data),
                    }
                    transcript.seqs.push(chunk.seq);
                }
                RunEvent::InputWanted => transcript.input_wanted += 1,
                RunEvent::Exited(info) => transcript.exit = Some(info),
            }
        }
        transcript
    }

    /// See [`RunControl::cancel`].
    pub fn cancel(&self) {
        self.control.cancel();
    }

    /// See [`RunControl::write_stdin`].
    pub async fn write_stdin(&self, data: impl Into<Vec<u8>>) -> Result<(), SandboxError> {
        self.control.write_stdin(data).await
    }

    /// See [`RunControl::close_stdin`].
    pub fn close_stdin(&self) {
        self.control.close_stdin();
    }
}

impl RunControl {
    /// Stops the run; its exit event says "cancelled". Does nothing once the
    /// run has ended.
    pub fn cancel(&self) {
        self.killer.request_cancel(None);
    }

    /// Stops the run; its exit event says "cancelled by {who}".
    pub fn cancel_by(&self, who: &str) {
        self.killer.request_cancel(Some(who.to_owned()));
    }

    /// Queues bytes for the program's stdin. Waits only if many writes are
    /// already queued and the program is not reading.
    pub async fn write_stdin(&self, data: impl Into<Vec<u8>>) -> Result<(), SandboxError> {
        let sender = {
            let guard = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
            guard.clone().ok_or(SandboxError::StdinClosed)?
        };
        self.input_wanted.store(false, Ordering::Release);
        sender
            .send(data.into())
            .await
            .map_err(|_| SandboxError::StdinClosed)
    }

    /// Closes the program's stdin after what is queued: it then reads EOF.
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// A whole run, collected by [`RunHandle::collect`].
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr, with the sandbox's notices.
    pub stderr: Vec<u8>,
    /// The sequence numbers of the output chunks, in the order received.
    pub seqs: Vec<u64>,
    /// The exit event (always present when the run was started).
    pub exit: Option<ExitInfo>,
    /// How many "waiting for input" hints came.
    pub input_wanted: u32,
}

impl Transcript {
    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}
