//! The hub: one task per live session room, and the registry that finds or
//! starts it.
//!
//! Each room is an actor (`actor.rs`) that owns the session's
//! [`ensemble_core::room::Room`] and its connections' send queues, so every
//! change to a document is serialized without locks. Websocket connections
//! (`conn.rs`) talk to their room through its command channel. A room loads
//! from the store on first use, compacts its update log now and then and
//! when it unloads, and unloads [`HubLimits::idle_unload`] after its last
//! connection leaves.
//!
//! The registry map is behind a std `Mutex`: it is held only to look up,
//! insert or remove one entry, never across an `.await`.

mod actor;
pub mod conn;

use crate::runs::{ActiveRun, RunCmd, RunFrame};
use axum::body::Bytes;
use ensemble_core::ids::{RunId, SessionId, UserId};
use ensemble_core::role::Role;
use ensemble_core::room::{ConnId, RoomLimits};
use ensemble_core::store::Store;
use ensemble_protocol::run::ServerMsg;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Bounds and timings of live rooms.
#[derive(Debug, Clone)]
pub struct HubLimits {
    /// Message and document size limits.
    pub room: RoomLimits,
    /// Most connections one session may have at once.
    pub max_connections_per_session: usize,
    /// Frames queued for one connection before it counts as stalled and is
    /// disconnected.
    pub send_queue: usize,
    /// Bytes queued for one connection before it counts as stalled (a
    /// frame count alone would let a few huge frames pile up).
    pub send_queue_bytes: usize,
    /// How long a room stays loaded after its last connection leaves.
    pub idle_unload: Duration,
    /// Compact the update log after this many new updates.
    pub compact_every: u64,
    /// How long a session lease lasts; it is renewed every third of that.
    pub lease_ttl: Duration,
    /// This node's name, the lease holder's identity.
    pub node: String,
}

impl Default for HubLimits {
    fn default() -> Self {
        Self {
            room: RoomLimits::default(),
            max_connections_per_session: 1000,
            send_queue: 1024,
            send_queue_bytes: 16 << 20,
            idle_unload: Duration::from_secs(30),
            compact_every: 1000,
            lease_ttl: Duration::from_secs(15),
            node: "local".into(),
        }
    }
}

/// Who a connection is.
#[derive(Debug, Clone)]
pub struct Who {
    /// The account, or `None` for a guest.
    pub user: Option<UserId>,
    /// A name to show.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Whose run quota this connection uses: the user id, or the client
    /// address for guests.
    pub quota_key: String,
}

/// A websocket close code and reason.
#[derive(Debug, Clone, PartialEq)]
pub struct CloseReason {
    /// The close code (RFC 6455 or 4000-4999).
    pub code: u16,
    /// Why, in words (at most 123 bytes on the wire).
    pub reason: String,
}

impl CloseReason {
    /// A close reason.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// Close codes Ensemble uses.
pub mod close {
    /// The server is stopping; reconnect later.
    pub const GOING_AWAY: u16 = 1001;
    /// Malformed protocol data.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A policy was broken (removed from the session, too slow).
    pub const POLICY: u16 = 1008;
    /// A message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed (store unavailable); reconnect.
    pub const SERVER_ERROR: u16 = 1011;
    /// Try again later (session full).
    pub const TRY_AGAIN: u16 = 1013;
    /// The session was deleted; do not reconnect.
    pub const DELETED: u16 = 4404;
}

/// Lease store calls made by this node's rooms, for `/metrics` (what a
/// lease costs is a figure we publish).
#[derive(Debug, Default)]
pub struct LeaseCounters {
    /// First takes, when a room loads (a refusal included).
    pub acquire: AtomicU64,
    /// Renewals by a room that holds its lease.
    pub renew: AtomicU64,
    /// Releases, when a room unloads or hands its session over.
    pub release: AtomicU64,
    /// Sessions this node handed over to a node that asked for them.
    pub handed_over: AtomicU64,
}

impl LeaseCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Websocket connection figures for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Sockets joined to a room right now.
    pub open: AtomicU64,
    /// Connections dropped because they fell too far behind.
    pub dropped_slow: AtomicU64,
}

/// Counts one joined socket in [`ConnCounters::open`] while it lives.
pub(crate) struct OpenConn(Hub);

impl OpenConn {
    pub(crate) fn new(hub: &Hub) -> Self {
        hub.inner.conns.open.fetch_add(1, Ordering::Relaxed);
        Self(hub.clone())
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.inner.conns.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the room actor sends to a connection's writer.
pub type OutTx = mpsc::Sender<Bytes>;

/// What a connection shares with its room: how the room tells it to go
/// away, and how many bytes wait in its send queue.
#[derive(Clone, Default)]
pub struct Kill {
    /// Cancelled when the room drops the connection.
    pub token: CancellationToken,
    /// Why, set before the token is cancelled.
    pub reason: Arc<OnceLock<CloseReason>>,
    /// Bytes queued for the socket and not yet taken by its writer.
    pub queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Kill {
    /// Records the reason (first one wins) and cancels.
    pub fn kill(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }
}

/// Commands to a room actor.
pub(crate) enum Cmd {
    Join {
        conn: ConnId,
        who: Who,
        out: OutTx,
        kill: Kill,
        reply: oneshot::Sender<Result<(), CloseReason>>,
    },
    Frame {
        conn: ConnId,
        data: Bytes,
    },
    Leave {
        conn: ConnId,
    },
    SetRole {
        user: UserId,
        role: Role,
    },
    RemoveUser {
        user: UserId,
    },
    /// The session was deleted: close every connection (4404, saying who),
    /// drop unsaved updates, release the lease and stop; answer when done.
    End {
        by: String,
        reply: oneshot::Sender<()>,
    },
    /// Tell every connection (a type-100 JSON event, e.g. a new title).
    Notify {
        json: String,
    },
    RunEvent {
        run: RunId,
        frame: RunFrame,
    },
    ToConn {
        conn: ConnId,
        run: Option<RunId>,
        frames: Vec<RunFrame>,
    },
}

/// Capacity of a room's command channel. A full channel slows the
/// connections that send to it (each reader awaits), nobody else.
const ROOM_INBOX: usize = 4096;

struct Inner {
    /// Live rooms by session, each with a generation number so an unloading
    /// room removes only its own entry.
    rooms: Mutex<HashMap<SessionId, (u64, mpsc::Sender<Cmd>)>>,
    /// The latest room started for each session, and a token cancelled
    /// when it has finished: the next room of that session waits for it.
    finished: Mutex<HashMap<SessionId, (u64, CancellationToken)>>,
    next_gen: AtomicU64,
    store: Arc<dyn Store>,
    limits: HubLimits,
    next_conn: AtomicU64,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// The active (or last) run of each session with one.
    runs: Mutex<HashMap<SessionId, Arc<ActiveRun>>>,
    /// Where rooms send run commands.
    run_commands: OnceLock<mpsc::Sender<RunCmd>>,
    leases: LeaseCounters,
    conns: ConnCounters,
}

/// The registry of live rooms. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// A hub over `store`; rooms stop when `shutdown` is cancelled.
    pub fn new(store: Arc<dyn Store>, limits: HubLimits, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                rooms: Mutex::new(HashMap::new()),
                finished: Mutex::new(HashMap::new()),
                store,
                limits,
                next_conn: AtomicU64::new(1),
                next_gen: AtomicU64::new(1),
                tasks: TaskTracker::new(),
                shutdown,
                runs: Mutex::new(HashMap::new()),
                run_commands: OnceLock::new(),
                leases: LeaseCounters::default(),
                conns: ConnCounters::default(),
            }),
        }
    }

    /// The limits rooms enforce.
    pub fn limits(&self) -> &HubLimits {
        &self.inner.limits
    }

    /// Tasks to wait for at shutdown (rooms and connections).
    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// The token that stops every room and connection.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Lease store calls so far.
    pub fn lease_counters(&self) -> &LeaseCounters {
        &self.inner.leases
    }

    /// Open connections and slow-client drops so far.
    pub fn conn_counters(&self) -> &ConnCounters {
        &self.inner.conns
    }

    /// How many rooms are loaded.
    pub fn loaded_rooms(&self) -> usize {
        self.inner.rooms.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn room(&self, session: &SessionId) -> mpsc::Sender<Cmd> {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, tx)) = rooms.get(session).filter(|(_, tx)| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(ROOM_INBOX);
        let generation = self.inner.next_gen.fetch_add(1, Ordering::Relaxed);
        rooms.insert(session.clone(), (generation, tx.clone()));
        let done = CancellationToken::new();
        let previous = self
            .inner
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.clone(), (generation, done.clone()))
            .map(|(_, t)| t);
        let hub = self.clone();
        let session = session.clone();
        self.inner.tasks.spawn(async move {
            actor::run(hub.clone(), session.clone(), generation, rx, previous, done).await;
            let mut finished = hub.inner.finished.lock().unwrap_or_else(|p| p.into_inner());
            if finished
                .get(&session)
                .is_some_and(|(g, _)| *g == generation)
            {
                finished.remove(&session);
            }
        });
        tx
    }

    /// Removes the room `generation` of `session` from the registry, unless
    /// commands are waiting in its inbox (then it must serve them first and
    /// `false` is returned). Holding the registry lock while checking means
    /// no new sender can be handed out in between.
    fn forget(&self, session: &SessionId, generation: u64, rx: &mpsc::Receiver<Cmd>) -> bool {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if !rx.is_empty() {
            return false;
        }
        if rooms.get(session).is_some_and(|(g, _)| *g == generation) {
            rooms.remove(session);
        }
        true
    }

    /// Joins a connection to its session's room, loading the room if needed.
    pub(crate) async fn join(
        &self,
        session: &SessionId,
        who: Who,
        out: OutTx,
        kill: Kill,
    ) -> Result<RoomLink, CloseReason> {
        let conn = ConnId(self.inner.next_conn.fetch_add(1, Ordering::Relaxed));
        // A room that is unloading refuses joins; the second try starts a
        // fresh one.
        for _ in 0..3 {
            let tx = self.room(session);
            let (reply, answer) = oneshot::channel();
            let cmd = Cmd::Join {
                conn,
                who: who.clone(),
                out: out.clone(),
                kill: kill.clone(),
                reply,
            };
            if tx.send(cmd).await.is_err() {
                continue;
            }
            match answer.await {
                Ok(Ok(())) => return Ok(RoomLink { conn, tx }),
                Ok(Err(reason)) => return Err(reason),
                Err(_) => continue,
            }
        }
        Err(CloseReason::new(
            close::TRY_AGAIN,
            "the session is restarting; reconnect",
        ))
    }

    /// Queues `cmd` for the room if it is loaded. Awaited before the HTTP
    /// answer, so anything the client sends after the answer is handled
    /// after the change.
    async fn send_if_loaded(&self, session: &SessionId, cmd: Cmd) {
        if let Some(tx) = self.loaded(session) {
            let _ = tx.send(cmd).await;
        }
    }

    /// Applies a member's new role to their live connections at once.
    pub async fn set_role(&self, session: &SessionId, user: &UserId, role: Role) {
        self.send_if_loaded(
            session,
            Cmd::SetRole {
                user: user.clone(),
                role,
            },
        )
        .await;
    }

    /// Tells everyone in a loaded session the new title.
    pub async fn set_title(&self, session: &SessionId, title: &str) {
        let json = ServerMsg::Title {
            title: title.to_owned(),
        }
        .to_json();
        self.send_if_loaded(session, Cmd::Notify { json }).await;
    }

    /// Ends a deleted session here: cancels its run, then stops its room
    /// (everyone is told and disconnected with [`close::DELETED`]) and
    /// returns once the room will write nothing more. The session must
    /// already be gone from the store, so nobody can join it again.
    pub async fn end_session(&self, session: &SessionId, by: &str) {
        self.cancel_run(session, by);
        let (reply, done) = oneshot::channel();
        let cmd = Cmd::End {
            by: by.to_owned(),
            reply,
        };
        if let Some(tx) = self.loaded(session) {
            if tx.send(cmd).await.is_ok() {
                // A room that stops without serving it drops the reply.
                let _ = done.await;
            }
        }
    }

    /// Cancels the session's queued or running run in the name of `by`
    /// (the first to cancel is the one named); false if there is none.
    pub(crate) fn cancel_run(&self, session: &SessionId, by: &str) -> bool {
        let Some(run) = self.active_run(session).filter(|r| !r.ended()) else {
            return false;
        };
        run.cancelled_by
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| by.to_owned());
        run.cancel.cancel();
        true
    }

    /// Disconnects a removed member's live connections.
    pub async fn remove_user(&self, session: &SessionId, user: &UserId) {
        self.send_if_loaded(session, Cmd::RemoveUser { user: user.clone() })
            .await;
    }
}

impl Hub {
    /// Connects rooms to the run manager (once, at start-up).
    pub fn set_run_commands(&self, tx: mpsc::Sender<RunCmd>) {
        let _ = self.inner.run_commands.set(tx);
    }

    /// Hands a run command to the run manager; false if it is busy.
    pub(crate) fn forward_run(&self, cmd: RunCmd) -> bool {
        self.inner
            .run_commands
            .get()
            .is_some_and(|tx| tx.try_send(cmd).is_ok())
    }

    /// The session's active (or most recent) run, if this node has it.
    pub fn active_run(&self, session: &SessionId) -> Option<Arc<ActiveRun>> {
        self.inner.runs.lock().ok()?.get(session).cloned()
    }

    /// Makes `run` the session's active run.
    pub fn set_active_run(&self, session: &SessionId, run: Arc<ActiveRun>) {
        if let Ok(mut m) = self.inner.runs.lock() {
            m.insert(session.clone(), run);
        }
    }

    /// Forgets the session's active run if it is `id`.
    pub fn clear_active_run(&self, session: &SessionId, id: &RunId) {
        if let Ok(mut m) = self.inner.runs.lock() {
            if m.get(session).is_some_and(|r| &r.id == id) {
                m.remove(session);
            }
        }
    }

    /// The inbox of the session's room, if it is loaded.
    fn loaded(&self, session: &SessionId) -> Option<mpsc::Sender<Cmd>> {
        let rooms = self.inner.rooms.lock().ok()?;
        rooms.get(session).map(|(_, tx)| tx.clone())
    }

    fn try_room(&self, session: &SessionId, cmd: Cmd) {
        if let Some(tx) = self.loaded(session) {
            if tx.try_send(cmd).is_err() {
                tracing::warn!(%session, "room inbox full; a run event was not delivered (clients can resume)");
            }
        }
    }

    /// Delivers a run event to everyone in the session's room.
    pub fn run_event(&self, session: &SessionId, run: RunId, frame: RunFrame) {
        self.try_room(session, Cmd::RunEvent { run, frame });
    }

    /// Delivers run frames to one connection (a resume).
    pub fn to_conn(&self, session: &SessionId, conn: ConnId, run: RunId, frames: Vec<RunFrame>) {
        self.try_room(
            session,
            Cmd::ToConn {
                conn,
                run: Some(run),
                frames,
            },
        );
    }

    /// Delivers one event (an error) to one connection.
    pub fn to_conn_plain(&self, session: &SessionId, conn: ConnId, frame: RunFrame) {
        self.try_room(
            session,
            Cmd::ToConn {
                conn,
                run: None,
                frames: vec![frame],
            },
        );
    }
}

/// A joined connection's handle on its room.
pub(crate) struct RoomLink {
    pub conn: ConnId,
    pub tx: mpsc::Sender<Cmd>,
}
