//! Runs: Run in a session streams to everyone, outlives its starter, resumes
//! for late joiners, and is saved.
//!
//! The room actor forwards type-100 commands (already checked for the
//! viewer role) to the [`RunManager`], which applies the fair-use rules and
//! starts a task per run (`task.rs`). Rules, all configurable:
//! - one active (queued or running) run per session: a second `run.start`
//!   is refused with `run_active` (we chose refusing over queueing: a queued
//!   second run would execute code nobody is looking at any more);
//! - one active run per person and [`RunConfig::per_minute`] starts per
//!   minute, else `rate_limited` with `retry_after`;
//! - at most `concurrency` runs execute at once; the rest wait in a FIFO
//!   queue of at most `max_queue`, else `server_busy`.
//!
//! A guest's run executes and streams but is not stored.

mod active;
pub mod routes;
mod task;

pub use active::{ActiveRun, RunFrame};

use crate::hub::{Hub, Who};
use ensemble_core::ids::{RunId, SessionId};
use ensemble_core::model::{Run, RunStatus};
use ensemble_core::room::ConnId;
use ensemble_core::store::Store;
use ensemble_core::time::now_ms;
use ensemble_protocol::run::{ClientMsg, ServerMsg};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Semaphore};

/// Fair-use rules and limits of runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Runs executing at once.
    pub concurrency: usize,
    /// Runs waiting at most.
    pub max_queue: usize,
    /// Starts per person per minute.
    pub per_minute: u32,
    /// Largest `run.stdin` message, in bytes.
    pub max_stdin_message: usize,
    /// Sandbox limits of each run.
    pub limits: ensemble_sandbox::Limits,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_queue: 100,
            per_minute: 30,
            max_stdin_message: 64 * 1024,
            limits: ensemble_sandbox::Limits::default(),
        }
    }
}

/// A command from a connection, as the room actor forwards it.
pub struct RunCmd {
    /// The session.
    pub session: SessionId,
    /// The sending connection.
    pub conn: ConnId,
    /// Who sent it.
    pub who: Who,
    /// The command.
    pub msg: ClientMsg,
    /// For `run.start`: the document's text at that moment.
    pub code: Option<String>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Arc<ActiveRun>>,
    per_owner: HashMap<String, usize>,
}

struct Inner {
    store: Arc<dyn Store>,
    hub: Hub,
    sandbox: ensemble_sandbox::Sandbox,
    config: RunConfig,
    node: String,
    slots: Arc<Semaphore>,
    /// Queue and per-person counts; a std `Mutex`, held only for quick
    /// bookkeeping, never across an `.await`.
    queue: Mutex<Queue>,
    rate: DefaultKeyedRateLimiter<String>,
}

/// Starts, feeds, cancels and tracks runs. Cheap to clone.
#[derive(Clone)]
pub struct RunManager {
    inner: Arc<Inner>,
}

fn err(code: &str, message: impl Into<String>) -> ServerMsg {
    ServerMsg::error(code, message)
}

impl RunManager {
    /// A manager; call [`RunManager::serve`] to take commands from rooms.
    pub fn new(
        store: Arc<dyn Store>,
        hub: Hub,
        sandbox: ensemble_sandbox::Sandbox,
        config: RunConfig,
        node: String,
    ) -> Self {
        let per_minute = NonZeroU32::new(config.per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            inner: Arc::new(Inner {
                store,
                hub,
                sandbox,
                slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
                config,
                node,
                queue: Mutex::new(Queue::default()),
                rate: RateLimiter::keyed(Quota::per_minute(per_minute)),
            }),
        }
    }

    /// Marks this node's runs that were active when it last stopped as
    /// interrupted; returns how many.
    pub async fn recover(&self) -> u64 {
        match self
            .inner
            .store
            .interrupt_unfinished_runs(&self.inner.node, now_ms())
            .await
        {
            Ok(n) => {
                if n > 0 {
                    tracing::warn!(runs = n, "marked runs interrupted by the last stop");
                }
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not mark interrupted runs yet");
                0
            }
        }
    }

    /// Takes commands from rooms until the hub's channel closes.
    pub async fn serve(self, mut rx: mpsc::Receiver<RunCmd>) {
        while let Some(cmd) = rx.recv().await {
            let me = self.clone();
            tokio::spawn(async move { me.handle(cmd).await });
        }
    }

    async fn handle(&self, cmd: RunCmd) {
        let RunCmd {
            session,
            conn,
            who,
            msg,
            code,
        } = cmd;
        let reply = match msg {
            ClientMsg::Start => self
                .start(&session, &who, code.unwrap_or_default())
                .await
                .err(),
            ClientMsg::Cancel => self.cancel(&session, &who).err(),
            ClientMsg::Stdin { data } => self.stdin(&session, data).await.err(),
            ClientMsg::Resume { run_id, after_seq } => {
                match self
                    .inner
                    .hub
                    .active_run(&session)
                    .filter(|r| r.id.as_str() == run_id)
                {
                    Some(run) => {
                        let (frames, _) = run.replay(after_seq);
                        self.inner
                            .hub
                            .to_conn(&session, conn, run.id.clone(), frames);
                        None
                    }
                    None => Some(err(
                        "run_not_active",
                        "that run is not active; its record is at GET /api/runs/{id}",
                    )),
                }
            }
        };
        if let Some(e) = reply {
            let frame = RunFrame {
                seq: None,
                json: Arc::from(e.to_json()),
            };
            self.inner.hub.to_conn_plain(&session, conn, frame);
        }
    }

    async fn start(&self, session: &SessionId, who: &Who, code: String) -> Result<(), ServerMsg> {
        let inner = &self.inner;
        if !inner.sandbox.report().usable {
            return Err(err(
                "sandbox_unavailable",
                "runs are disabled on this server: the sandbox is not usable",
            ));
        }
        if let Err(n) = inner.rate.check_key(&who.quota_key) {
            let secs = n
                .wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
                .as_secs()
                .max(1);
            return Err(ServerMsg::Error {
                code: "rate_limited".into(),
                message: format!(
                    "at most {} runs per minute; try again in {secs} s",
                    inner.config.per_minute
                ),
                retry_after: Some(secs),
            });
        }
        let run = {
            let mut q = inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            if inner.hub.active_run(session).is_some_and(|r| !r.ended()) {
                return Err(err(
                    "run_active",
                    "a run is already in progress in this session; cancel it or wait for it",
                ));
            }
            if q.per_owner.get(&who.quota_key).copied().unwrap_or(0) >= 1 {
                return Err(err(
                    "rate_limited",
                    "you already have a run in progress; one at a time",
                ));
            }
            if q.waiting.len() >= inner.config.max_queue {
                return Err(err(
                    "server_busy",
                    "server busy: too many runs are waiting; try again shortly",
                ));
            }
            let run = ActiveRun::new(
                RunId::generate(),
                session.clone(),
                who.name.clone(),
                who.quota_key.clone(),
                who.user.is_some(),
            );
            *q.per_owner.entry(who.quota_key.clone()).or_default() += 1;
            q.waiting.push_back(run.clone());
            inner.hub.set_active_run(session, run.clone());
            run
        };
        if let Some(author) = &who.user {
            let record = Run {
                id: run.id.clone(),
                session_id: session.clone(),
                author: author.clone(),
                author_name: who.name.clone(),
                code: code.clone(),
                status: RunStatus::Queued,
                exit_code: None,
                reason: None,
                node: inner.node.clone(),
                created_at: now_ms(),
                started_at: None,
                finished_at: None,
                duration_ms: None,
                output: vec![],
                truncated: false,
            };
            if let Err(e) = inner.store.create_run(&record).await {
                tracing::warn!(error = %e, "could not record a run");
                self.release(&run);
                inner.hub.clear_active_run(session, &run.id);
                return Err(err(
                    "store_unavailable",
                    "the run could not be recorded; try again shortly",
                ));
            }
        }
        self.announce_positions();
        tokio::spawn(task::execute(self.clone(), run, code));
        Ok(())
    }

    fn cancel(&self, session: &SessionId, who: &Who) -> Result<(), ServerMsg> {
        if self.inner.hub.cancel_run(session, &who.name) {
            Ok(())
        } else {
            Err(err("no_run", "there is no run to cancel"))
        }
    }

    async fn stdin(&self, session: &SessionId, data: String) -> Result<(), ServerMsg> {
        if data.len() > self.inner.config.max_stdin_message {
            return Err(err(
                "too_large",
                format!(
                    "input is limited to {} KiB per message",
                    self.inner.config.max_stdin_message / 1024
                ),
            ));
        }
        let run = self.inner.hub.active_run(session).filter(|r| !r.ended());
        let run = run.ok_or_else(|| err("no_run", "there is no run to send input to"))?;
        let control = run.stdin.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let control = control.ok_or_else(|| err("not_started", "the run has not started yet"))?;
        control
            .write_stdin(data.clone().into_bytes())
            .await
            .map_err(|_| err("stdin_closed", "the program no longer reads input"))?;
        let frame = run.record(ServerMsg::Output {
            run_id: run.id.to_string(),
            seq: 0,
            stream: "stdin".into(),
            data,
        });
        self.inner.hub.run_event(session, run.id.clone(), frame);
        Ok(())
    }

    /// Runs executing now and runs waiting for a slot, for `/metrics`.
    pub fn load(&self) -> (usize, usize) {
        let running = self
            .inner
            .config
            .concurrency
            .max(1)
            .saturating_sub(self.inner.slots.available_permits());
        let queued = self.inner.queue.lock().map_or(0, |q| q.waiting.len());
        (running, queued)
    }

    /// Tells every waiting run its place.
    fn announce_positions(&self) {
        let waiting: Vec<Arc<ActiveRun>> = {
            let q = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.waiting.iter().cloned().collect()
        };
        for (i, run) in waiting.iter().enumerate() {
            let frame = run.record(ServerMsg::Queued {
                run_id: run.id.to_string(),
                position: i as u64 + 1,
            });
            self.inner
                .hub
                .run_event(&run.session, run.id.clone(), frame);
        }
    }

    /// Takes a run out of the queue (it started or was cancelled).
    fn dequeue(&self, run: &ActiveRun) {
        let mut q = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.waiting.retain(|r| r.id != run.id);
    }

    /// Frees the run's per-person slot.
    fn release(&self, run: &ActiveRun) {
        let mut q = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.waiting.retain(|r| r.id != run.id);
        if let Some(n) = q.per_owner.get_mut(&run.owner_key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                q.per_owner.remove(&run.owner_key);
            }
        }
    }
}
