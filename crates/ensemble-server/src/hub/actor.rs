//! One session's room actor: it owns the [`Room`] and the send queues of its
//! connections, and handles their frames one at a time.
//!
//! Durability by group commit: the actor handles one command, then every
//! command already waiting (up to [`MAX_BATCH`] document updates or
//! [`BATCH_TIME`] of work), then writes the batch's updates to the store in
//! one call, and only then delivers what the batch produced. The commit window is therefore the
//! time of one store write, and nothing reaches a client (a relayed update,
//! a sync reply that contains it) before it is durable. If the write fails
//! the room closes every connection and unloads; clients keep their edits
//! and send them again when they re-sync with a freshly loaded room.
//!
//! A connection whose queue is full is too slow: it is dropped from the room
//! (its presence removed for the others) and its socket closed, so it never
//! holds up the rest.
//!
//! Leases: a room serves only while it holds its session's lease. A room
//! refused because another node holds it asks for the session in the same
//! store step (the proxy sends this session's clients here, so this is the
//! right node). The holder learns it at its next renewal and hands the
//! session over — closes its sockets with 1013 and releases the lease — once
//! it has held it for two TTLs and no run is queued or running. A request
//! counts for one TTL, so a lone stray join never moves a session that just
//! moved: only a node that keeps getting its clients does. That damps
//! ping-pong between two nodes that both get joins (a proxy changing its
//! mind); the run rule never interrupts a run for it.
//!
//! A renewal that finds the lease row gone (`renewed: false`) means the
//! session was deleted through another node (the purge took the lease) or
//! the lease was taken and released meanwhile; the room looks the session
//! up and ends as deleted (4404, run cancelled, its late rows purged) or as
//! lost (1013).
//!
//! On one node, a new room of a session starts only after the previous room
//! of that session has finished (compacted and released its lease), so a
//! release never drops a lease the new room already counts on.

use super::{close, CloseReason, Cmd, Hub, Kill, LeaseCounters, OutTx, Who};
use crate::runs::RunCmd;
use axum::body::Bytes;
use ensemble_core::ids::{RunId, SessionId, UserId};
use ensemble_core::model::DocUpdate;
use ensemble_core::role::Role;
use ensemble_core::room::{encode_custom, ConnId, Room};
use ensemble_core::store::Lease;
use ensemble_core::time::now_ms;
use ensemble_protocol::run::{ClientMsg, ServerMsg};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Most document updates in one group commit.
const MAX_BATCH: usize = 256;

/// Most time one batch spends handling commands before it is committed.
/// Applying an update is cheap, but one near the document cap, or a join
/// that needs the full encoding of a large document, can take milliseconds
/// (tens at the 4 MiB cap): a flooded room commits and yields to the
/// runtime at least this often, so it never holds a worker thread, and the
/// other sessions on it, for long.
const BATCH_TIME: Duration = Duration::from_millis(10);

struct Conn {
    who: Who,
    out: OutTx,
    kill: Kill,
    /// The run whose output this connection has, and its last seq.
    run_seen: Option<(RunId, u64)>,
}

/// Where a frame goes once the batch is durable.
enum Delivery {
    To(ConnId, Bytes),
    AllBut(ConnId, Bytes),
}

#[derive(Default)]
struct Batch {
    updates: Vec<DocUpdate>,
    deliveries: Vec<Delivery>,
}

struct Actor {
    hub: Hub,
    session: SessionId,
    generation: u64,
    room: Room,
    conns: HashMap<ConnId, Conn>,
    last_seq: u64,
    compacted_seq: u64,
    /// When this room took the lease.
    since: Instant,
    /// Set when the session was deleted: who deleted it, and whom to tell
    /// once the room has stopped.
    ending: Option<(String, oneshot::Sender<()>)>,
}

/// What a lease renewal decided.
enum Renewal {
    Keep,
    /// Another node asked for the session and this room may let it go.
    HandOver(String),
    /// Lost, or the store cannot say: stop serving at once.
    Lost,
    /// The session was deleted through another node (its lease was purged
    /// with it): end it here as if deleted here.
    Deleted,
}

/// Runs the room of `session` until it unloads or the hub shuts down.
/// `previous` is cancelled once this session's previous room on this node
/// has finished; `done` is cancelled when this one has.
pub(super) async fn run(
    hub: Hub,
    session: SessionId,
    generation: u64,
    rx: mpsc::Receiver<Cmd>,
    previous: Option<CancellationToken>,
    done: CancellationToken,
) {
    let _done = done.drop_guard();
    let span = tracing::info_span!("room", session = %session);
    async move {
        if let Some(previous) = previous {
            previous.cancelled().await;
        }
        let store = hub.inner.store.clone();
        let node = hub.limits().node.clone();
        let ttl = lease_ms(&hub);
        // One node serves a session at a time: take the lease first (and
        // ask for it if another node has it).
        LeaseCounters::bump(&hub.inner.leases.acquire);
        match store.acquire_lease(&session, &node, now_ms(), ttl, true).await {
            Ok(Lease::Acquired { previous, .. }) => {
                if let Some(dead) = previous {
                    tracing::info!(previous = %dead, "took the session over from a node whose lease expired");
                    if let Err(e) = store.interrupt_session_runs(&session, &dead, now_ms()).await {
                        tracing::warn!(error = %e, "could not mark the previous node's runs interrupted");
                    }
                }
            }
            Ok(Lease::HeldBy(holder)) => {
                tracing::debug!(%holder, "another node serves this session; asked for it, refusing its connections with 1013");
                let reason = CloseReason::new(close::TRY_AGAIN, format!("this session is served by node {holder}; reconnect"));
                refuse_all(&hub, &session, generation, rx, Some(reason));
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not take the session lease");
                let reason = CloseReason::new(close::SERVER_ERROR, "storage is unavailable; reconnecting");
                refuse_all(&hub, &session, generation, rx, Some(reason));
                return;
            }
        }
        let loaded = match store.load_doc(&session).await {
            Ok(doc) => {
                let room = Room::load(
                    doc.snapshot.as_deref(),
                    doc.updates.iter().map(|u| u.data.as_slice()),
                    hub.limits().room.clone(),
                );
                room.map(|room| (room, doc.last_seq(), doc.snapshot_seq))
                    .map_err(|e| format!("stored document is unreadable: {e}"))
            }
            Err(e) => Err(format!("loading failed: {e}")),
        };
        match loaded {
            Ok((room, last_seq, snapshot_seq)) => {
                tracing::debug!(last_seq, "room loaded");
                let actor = Actor {
                    hub,
                    session,
                    generation,
                    room,
                    conns: HashMap::new(),
                    last_seq,
                    compacted_seq: snapshot_seq,
                    since: Instant::now(),
                    ending: None,
                };
                actor.serve(rx).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "room could not load");
                let reason = CloseReason::new(
                    close::SERVER_ERROR,
                    "the session could not be loaded; try again",
                );
                refuse_all(&hub, &session, generation, rx, Some(reason));
            }
        }
    }
    .instrument(span)
    .await;
}

/// Unregisters the room and answers every queued join: with `reason`, or,
/// without one, by dropping the reply so the joiner retries on a new room.
fn refuse_all(
    hub: &Hub,
    session: &SessionId,
    generation: u64,
    mut rx: mpsc::Receiver<Cmd>,
    reason: Option<CloseReason>,
) {
    rx.close();
    // Once closed, nothing new arrives: forget succeeds after the drain.
    while let Ok(cmd) = rx.try_recv() {
        if let (Cmd::Join { reply, .. }, Some(reason)) = (cmd, &reason) {
            let _ = reply.send(Err(reason.clone()));
        }
    }
    hub.forget(session, generation, &rx);
}

impl Actor {
    async fn serve(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let shutdown = self.hub.shutdown_token().clone();
        let idle = self.hub.limits().idle_unload;
        let mut renew = tokio::time::interval(self.hub.limits().lease_ttl / 3);
        renew.tick().await;
        let mut lease_lost = false;
        let mut handed_to = None;
        let mut deleted_elsewhere = false;
        loop {
            let run_active = self
                .hub
                .active_run(&self.session)
                .is_some_and(|r| !r.ended());
            let next = tokio::select! {
                _ = shutdown.cancelled() => None,
                cmd = rx.recv() => cmd,
                _ = renew.tick() => {
                    match self.renew_lease(run_active).await {
                        Renewal::Keep => continue,
                        Renewal::HandOver(to) => handed_to = Some(to),
                        Renewal::Lost => lease_lost = true,
                        Renewal::Deleted => deleted_elsewhere = true,
                    }
                    None
                }
                () = tokio::time::sleep(idle), if self.conns.is_empty() && !run_active => {
                    if self.hub.forget(&self.session, self.generation, &rx) {
                        tracing::debug!("room idle; unloading");
                        None
                    } else {
                        continue;
                    }
                }
            };
            let Some(cmd) = next else { break };
            let mut batch = Batch::default();
            let started = Instant::now();
            self.handle(cmd, &mut batch);
            while self.ending.is_none()
                && batch.updates.len() < MAX_BATCH
                && started.elapsed() < BATCH_TIME
            {
                match rx.try_recv() {
                    Ok(cmd) => self.handle(cmd, &mut batch),
                    Err(_) => break,
                }
            }
            if self.ending.is_some() {
                // Deleted: the batch's updates belong to nothing now.
                break;
            }
            if !self.flush(batch).await {
                break;
            }
            if self.last_seq - self.compacted_seq >= self.hub.limits().compact_every {
                self.compact().await;
            }
        }
        let ending = self.ending.take();
        let deleted_by = match &ending {
            Some((by, _)) => Some(by.clone()),
            None if deleted_elsewhere => {
                // Only the owner deletes: named if they are in the room.
                let owner = self.conns.values().find(|c| c.who.role == Role::Owner);
                let by = owner.map_or_else(|| "the owner".to_owned(), |c| c.who.name.clone());
                self.hub.cancel_run(&self.session, &by);
                Some(by)
            }
            None => None,
        };
        let reason = if let Some(by) = &deleted_by {
            // The close itself is the news: pages show its reason and do
            // not reconnect.
            CloseReason::new(close::DELETED, format!("{by} deleted this session"))
        } else if shutdown.is_cancelled() {
            CloseReason::new(close::GOING_AWAY, "the server is restarting; reconnect")
        } else if let Some(to) = &handed_to {
            CloseReason::new(
                close::TRY_AGAIN,
                format!("the session moved to node {to}; reconnect"),
            )
        } else if lease_lost {
            CloseReason::new(
                close::TRY_AGAIN,
                "the session moved to another node; reconnect",
            )
        } else {
            CloseReason::new(close::SERVER_ERROR, "the session was closed; reconnect")
        };
        for (_, c) in self.conns.drain() {
            c.kill.kill(reason.clone());
        }
        let deleted = deleted_by.is_some();
        let tell = (shutdown.is_cancelled() || lease_lost || handed_to.is_some() || deleted)
            .then_some(reason);
        refuse_all(&self.hub, &self.session, self.generation, rx, tell);
        if lease_lost {
            return;
        }
        if !deleted {
            self.compact().await;
        }
        let node = self.hub.limits().node.clone();
        LeaseCounters::bump(&self.hub.inner.leases.release);
        if handed_to.is_some() {
            LeaseCounters::bump(&self.hub.inner.leases.handed_over);
        }
        if let Err(e) = self
            .hub
            .inner
            .store
            .release_lease(&self.session, &node)
            .await
        {
            tracing::debug!(error = %e, "releasing the lease failed; it will expire");
        }
        if let Some((by, reply)) = ending {
            tracing::info!(%by, "session deleted; room stopped");
            let _ = reply.send(());
        } else if deleted_elsewhere {
            // The deleting node purged before this room stopped writing:
            // remove what it wrote since (its updates, the lease it took).
            tracing::info!("session deleted through another node; room stopped");
            if let Err(e) = self.hub.inner.store.purge_session(&self.session).await {
                tracing::warn!(error = %e, "could not purge the deleted session's rows");
            }
        }
    }

    /// Renews the session lease. Lost if another node has it or the store
    /// cannot say (then this room must stop serving, to never have two).
    async fn renew_lease(&self, run_active: bool) -> Renewal {
        let node = &self.hub.limits().node;
        LeaseCounters::bump(&self.hub.inner.leases.renew);
        match self
            .hub
            .inner
            .store
            .acquire_lease(&self.session, node, now_ms(), lease_ms(&self.hub), false)
            .await
        {
            Ok(Lease::Acquired {
                wanted_by: Some(to),
                ..
            }) => {
                if run_active || self.since.elapsed() < self.hub.limits().lease_ttl * 2 {
                    tracing::debug!(%to, run_active, "another node asks for the session; not yet");
                    return Renewal::Keep;
                }
                tracing::info!(%to, "another node asks for the session; handing it over");
                Renewal::HandOver(to)
            }
            Ok(Lease::Acquired { renewed: true, .. }) => Renewal::Keep,
            // The lease was gone: purged with a session deleted through
            // another node, or taken over and given up meanwhile. Either
            // way this room cannot go on; which one decides what to say.
            Ok(Lease::Acquired { renewed: false, .. }) => {
                match self.hub.inner.store.session(&self.session).await {
                    Ok(None) => Renewal::Deleted,
                    Ok(Some(_)) => {
                        tracing::warn!(
                            "the session lease was taken and given up meanwhile; closing the room"
                        );
                        Renewal::Lost
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not tell whether the session still exists; closing the room");
                        Renewal::Lost
                    }
                }
            }
            Ok(Lease::HeldBy(holder)) => {
                tracing::warn!(%holder, "lost the session lease; closing the room");
                Renewal::Lost
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the session lease; closing the room");
                Renewal::Lost
            }
        }
    }

    fn handle(&mut self, cmd: Cmd, batch: &mut Batch) {
        match cmd {
            Cmd::Join {
                conn,
                who,
                out,
                kill,
                reply,
            } => {
                if self.conns.len() >= self.hub.limits().max_connections_per_session {
                    let _ = reply.send(Err(CloseReason::new(
                        close::TRY_AGAIN,
                        "this session is full",
                    )));
                    return;
                }
                for frame in self.room.connect(conn, who.role.can_edit()) {
                    batch
                        .deliveries
                        .push(Delivery::To(conn, Bytes::from(frame)));
                }
                tracing::debug!(%conn, name = %who.name, role = who.role.as_str(), "joined");
                // A late joiner first gets the active run so far.
                let mut run_seen = None;
                if let Some(run) = self.hub.active_run(&self.session) {
                    let (frames, last) = run.replay(0);
                    for f in frames {
                        batch
                            .deliveries
                            .push(Delivery::To(conn, Bytes::from(encode_custom(&f.json))));
                    }
                    run_seen = Some((run.id.clone(), last));
                }
                self.conns.insert(
                    conn,
                    Conn {
                        who,
                        out,
                        kill,
                        run_seen,
                    },
                );
                let _ = reply.send(Ok(()));
            }
            Cmd::Frame { conn, data } => self.frame(conn, &data, batch),
            Cmd::RunEvent { run, frame } => {
                let bytes = Bytes::from(encode_custom(&frame.json));
                for (id, c) in self.conns.iter_mut() {
                    if fresh(&mut c.run_seen, &run, frame.seq) {
                        batch.deliveries.push(Delivery::To(*id, bytes.clone()));
                    }
                }
            }
            Cmd::ToConn { conn, run, frames } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    for f in frames {
                        if let (Some(run), Some(seq)) = (&run, f.seq) {
                            c.run_seen = Some((
                                run.clone(),
                                seq.max(
                                    c.run_seen
                                        .as_ref()
                                        .filter(|(r, _)| r == run)
                                        .map_or(0, |(_, s)| *s),
                                ),
                            ));
                        }
                        batch
                            .deliveries
                            .push(Delivery::To(conn, Bytes::from(encode_custom(&f.json))));
                    }
                }
            }
            Cmd::Leave { conn } => self.leave(conn, batch, None),
            Cmd::SetRole { user, role } => {
                let told = ServerMsg::Role {
                    role: role.as_str().to_owned(),
                };
                let frame = Bytes::from(encode_custom(&told.to_json()));
                for (id, c) in self
                    .conns
                    .iter_mut()
                    .filter(|(_, c)| c.who.user.as_ref() == Some(&user))
                {
                    c.who.role = role;
                    self.room.set_role(*id, role.can_edit());
                    batch.deliveries.push(Delivery::To(*id, frame.clone()));
                }
            }
            Cmd::Notify { json } => {
                let frame = Bytes::from(encode_custom(&json));
                for id in self.conns.keys() {
                    batch.deliveries.push(Delivery::To(*id, frame.clone()));
                }
            }
            Cmd::End { by, reply } => self.ending = Some((by, reply)),
            Cmd::RemoveUser { user } => {
                let gone: Vec<ConnId> = self.conns_of(&user);
                for conn in gone {
                    let reason =
                        CloseReason::new(close::POLICY, "you were removed from this session");
                    self.leave(conn, batch, Some(reason));
                }
            }
        }
    }

    fn conns_of(&self, user: &UserId) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.who.user.as_ref() == Some(user))
            .map(|(id, _)| *id)
            .collect()
    }

    fn frame(&mut self, conn: ConnId, data: &[u8], batch: &mut Batch) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        match self.room.receive(conn, data) {
            Ok(outcome) => {
                if let Some(update) = outcome.persist {
                    self.last_seq += 1;
                    batch.updates.push(DocUpdate {
                        seq: self.last_seq,
                        data: update,
                    });
                }
                for f in outcome.reply {
                    batch.deliveries.push(Delivery::To(conn, Bytes::from(f)));
                }
                for f in outcome.broadcast {
                    batch
                        .deliveries
                        .push(Delivery::AllBut(conn, Bytes::from(f)));
                }
                if let Some(json) = outcome.custom {
                    self.custom(conn, &json, batch);
                }
            }
            Err(e) => {
                tracing::debug!(%conn, error = %e, "protocol error; closing");
                let code = if e.code() == "message_too_large" {
                    close::TOO_BIG
                } else {
                    close::PROTOCOL_ERROR
                };
                self.leave(conn, batch, Some(CloseReason::new(code, e.to_string())));
            }
        }
    }

    /// Type-100 messages: run commands go to the run manager (viewers are
    /// refused here); anything else gets an error event. The connection
    /// stays up either way.
    fn custom(&mut self, conn: ConnId, json: &str, batch: &mut Batch) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let refusal = match serde_json::from_str::<ClientMsg>(json) {
            Err(_) => Some(match serde_json::from_str::<serde_json::Value>(json) {
                Ok(v) => match v.get("type").and_then(|t| t.as_str()) {
                    Some(t) => ServerMsg::error(
                        "unknown_type",
                        format!("unknown message type {t:?} (or bad fields)"),
                    ),
                    None => {
                        ServerMsg::error("bad_message", "expected a JSON object with a \"type\"")
                    }
                },
                Err(_) => ServerMsg::error("bad_message", "the message is not valid JSON"),
            }),
            Ok(msg) => {
                let needs_editor = !matches!(msg, ClientMsg::Resume { .. });
                if needs_editor && !c.who.role.can_run() {
                    Some(ServerMsg::error(
                        "viewer",
                        "viewers cannot run code: ask the owner for editor access",
                    ))
                } else {
                    let code = matches!(msg, ClientMsg::Start).then(|| self.room.text());
                    let cmd = RunCmd {
                        session: self.session.clone(),
                        conn,
                        who: c.who.clone(),
                        msg,
                        code,
                    };
                    (!self.hub.forward_run(cmd))
                        .then(|| ServerMsg::error("server_busy", "server busy; try again shortly"))
                }
            }
        };
        if let Some(e) = refusal {
            batch
                .deliveries
                .push(Delivery::To(conn, Bytes::from(encode_custom(&e.to_json()))));
        }
    }

    /// Removes a connection; with a reason, its socket is closed with it.
    fn leave(&mut self, conn: ConnId, batch: &mut Batch, reason: Option<CloseReason>) {
        if let Some(gone) = self.room.disconnect(conn) {
            batch
                .deliveries
                .push(Delivery::AllBut(conn, Bytes::from(gone)));
        }
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(reason) = reason {
                c.kill.kill(reason);
            }
        }
    }

    /// Persists the batch's updates, then delivers its frames. Returns false
    /// if the room must stop (the store failed).
    async fn flush(&mut self, batch: Batch) -> bool {
        if !batch.updates.is_empty() {
            let store = self.hub.inner.store.clone();
            if let Err(e) = store
                .append_doc_updates(&self.session, &batch.updates)
                .await
            {
                tracing::warn!(error = %e, updates = batch.updates.len(), "persisting updates failed; closing the room");
                let reason =
                    CloseReason::new(close::SERVER_ERROR, "storage is unavailable; reconnecting");
                for (_, c) in self.conns.drain() {
                    c.kill.kill(reason.clone());
                }
                return false;
            }
        }
        let mut stalled = Vec::new();
        let max_bytes = self.hub.limits().send_queue_bytes;
        for d in batch.deliveries {
            match d {
                Delivery::To(conn, frame) => {
                    if let Some(c) = self.conns.get(&conn) {
                        if !offer(c, frame, max_bytes) {
                            stalled.push(conn);
                        }
                    }
                }
                Delivery::AllBut(from, frame) => {
                    for (id, c) in &self.conns {
                        if *id != from && !offer(c, frame.clone(), max_bytes) {
                            stalled.push(*id);
                        }
                    }
                }
            }
        }
        stalled.sort_unstable();
        stalled.dedup();
        if !stalled.is_empty() {
            // Their departure is itself news for the others; deliver it in a
            // follow-up batch (no updates, so no store write).
            let mut follow = Batch::default();
            for conn in stalled {
                tracing::info!(%conn, "connection too slow; disconnecting");
                self.hub
                    .conn_counters()
                    .dropped_slow
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let reason =
                    CloseReason::new(close::POLICY, "too far behind; reconnect to catch up");
                self.leave(conn, &mut follow, Some(reason));
            }
            return Box::pin(self.flush(follow)).await;
        }
        true
    }

    async fn compact(&mut self) {
        if self.last_seq == self.compacted_seq {
            return;
        }
        let snapshot = self.room.snapshot();
        match self
            .hub
            .inner
            .store
            .compact_doc(&self.session, &snapshot, self.last_seq)
            .await
        {
            Ok(()) => {
                tracing::debug!(seq = self.last_seq, bytes = snapshot.len(), "compacted");
                self.compacted_seq = self.last_seq;
            }
            Err(e) => {
                tracing::warn!(error = %e, "compaction failed; the update log stays as it is")
            }
        }
    }
}

/// Whether a run frame is new to a connection (and notes it as seen).
fn fresh(seen: &mut Option<(RunId, u64)>, run: &RunId, seq: Option<u64>) -> bool {
    match (seen.as_mut(), seq) {
        (Some((r, last)), Some(seq)) if r == run => {
            if seq <= *last {
                return false;
            }
            *last = seq;
            true
        }
        (_, Some(seq)) => {
            *seen = Some((run.clone(), seq));
            true
        }
        (_, None) => true,
    }
}

fn lease_ms(hub: &Hub) -> i64 {
    i64::try_from(hub.limits().lease_ttl.as_millis()).unwrap_or(i64::MAX)
}

/// Queues a frame without waiting; false if the connection's queue is full
/// (in frames or bytes). A closed queue counts as delivered (it is leaving).
fn offer(c: &Conn, frame: Bytes, max_bytes: usize) -> bool {
    use std::sync::atomic::Ordering;
    let len = frame.len();
    if c.kill
        .queued_bytes
        .load(Ordering::Acquire)
        .saturating_add(len)
        > max_bytes
    {
        return false;
    }
    c.kill.queued_bytes.fetch_add(len, Ordering::AcqRel);
    match c.out.try_send(frame) {
        Ok(()) => true,
        Err(e) => {
            c.kill.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            matches!(e, TrySendError::Closed(_))
        }
    }
}
