//! The collaborative room of one session: a yrs document whose Python source
//! is the `Y.Text` named [`CODE`], the participants' awareness (presence), and
//! the y-sync protocol spoken exactly as the y-websocket server speaks it.
//!
//! A room does no IO. The server feeds it each binary websocket frame with
//! [`Room::receive`] and gets back an [`Outcome`]: frames for the sender,
//! frames for everyone else, the document update to persist first, and the
//! JSON of an Ensemble (type 100) message for the server to act on. Tests
//! drive it with in-memory clients, no sockets (compare y-sweet's core).
//!
//! Every frame is checked completely before anything changes; a bad frame is
//! a [`ProtocolError`] and leaves the room exactly as it was.
//!
//! Layout:
//! - `lib0`: bounds-checked varints, byte arrays and strings;
//! - `message`: the frames (decode, and the `encode_*` helpers);
//! - `update_check`: the structural check of document updates;
//! - `document`: the yrs document, its size limit and rollback;
//! - `presence`: awareness states and which connection owns which;
//! - `error`: [`ProtocolError`] and [`LoadError`].

mod document;
mod error;
mod lib0;
mod message;
mod presence;
mod update_check;

#[cfg(test)]
mod test_client;
#[cfg(test)]
mod tests;

pub use document::CODE;
pub use error::{LoadError, ProtocolError};
pub use message::{encode_custom, encode_permission_denied, MSG_CUSTOM};

use document::{Applied, SharedDoc};
use message::Message;
use presence::Presence;
use std::collections::HashMap;
use std::fmt;

/// The reason sent with "permission denied" when a viewer edits.
pub const READ_ONLY_REASON: &str = "read-only: viewers cannot change this document";

/// Identifies one connection within a room; the server picks the numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Bounds on what clients may send. The defaults are Ensemble's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLimits {
    /// Largest frame accepted, in bytes (default 1 MiB).
    pub max_message_bytes: usize,
    /// Largest encoded document an update may grow it to (default 4 MiB).
    pub max_document_bytes: usize,
    /// Largest awareness state (its JSON text) of one client (default 64 KiB).
    pub max_awareness_state_bytes: usize,
    /// Most awareness client ids one connection may own (default 16; a
    /// browser tab owns one).
    pub max_awareness_clients_per_connection: usize,
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1 << 20,
            max_document_bytes: 4 << 20,
            max_awareness_state_bytes: 64 << 10,
            max_awareness_clients_per_connection: 16,
        }
    }
}

/// What the server must do after [`Room::receive`].
///
/// Order matters for durability: write `persist` to the store, and only once
/// it is durable send `broadcast` (which then relays that update). `reply`
/// and awareness-only broadcasts need no store write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Frames for the sending connection only (sync step 2, an awareness
    /// answer, "permission denied").
    pub reply: Vec<Vec<u8>>,
    /// Frames for every other connection of the room (a document update,
    /// an awareness change).
    pub broadcast: Vec<Vec<u8>>,
    /// The v1 document update that was just applied, as the client sent it
    /// (only when it changed the document), to append to the session's
    /// update log before broadcasting.
    pub persist: Option<Vec<u8>>,
    /// The JSON text of a type-100 message, not interpreted here.
    pub custom: Option<String>,
}

impl Outcome {
    fn persist_and_relay(&mut self, update: Vec<u8>) {
        self.broadcast.push(message::encode_sync_update(&update));
        self.persist = Some(update);
    }
}

/// What the room remembers of a connection.
#[derive(Debug, Clone, Copy)]
struct Conn {
    can_edit: bool,
}

/// One session's live state. Not internally synchronized: the server holds
/// it behind one lock or in one task, and every method is quick and
/// IO-free.
#[derive(Debug)]
pub struct Room {
    doc: SharedDoc,
    presence: Presence,
    conns: HashMap<ConnId, Conn>,
    limits: RoomLimits,
}

impl Room {
    /// A room with an empty document.
    pub fn new(limits: RoomLimits) -> Self {
        Self::with_doc(SharedDoc::new(), limits)
    }

    /// Rebuilds a room from the stored snapshot (if any) and the updates
    /// logged after it, in order. Corrupt data is an error, never a panic.
    pub fn load<'a>(
        snapshot: Option<&[u8]>,
        updates: impl IntoIterator<Item = &'a [u8]>,
        limits: RoomLimits,
    ) -> Result<Self, LoadError> {
        Ok(Self::with_doc(SharedDoc::load(snapshot, updates)?, limits))
    }

    fn with_doc(doc: SharedDoc, limits: RoomLimits) -> Self {
        Self {
            doc,
            presence: Presence::default(),
            conns: HashMap::new(),
            limits,
        }
    }

    /// Registers a connection and returns the frames to send it first, as
    /// the y-websocket server does: sync step 1 with our state vector, then
    /// every awareness state if anyone is present. Connecting an id that is
    /// already connected only updates its role.
    pub fn connect(&mut self, conn: ConnId, can_edit: bool) -> Vec<Vec<u8>> {
        self.conns.insert(conn, Conn { can_edit });
        let mut frames = vec![message::encode_sync_step1(&self.doc.encoded_state_vector())];
        frames.extend(self.presence.all_states_frame());
        frames
    }

    /// Changes whether a connection may edit (a live downgrade or upgrade).
    /// Returns `false` if the connection is unknown.
    pub fn set_role(&mut self, conn: ConnId, can_edit: bool) -> bool {
        match self.conns.get_mut(&conn) {
            Some(c) => {
                c.can_edit = can_edit;
                true
            }
            None => false,
        }
    }

    /// Forgets a connection. Returns the awareness frame to broadcast to the
    /// remaining connections so they drop the states it owned at once, or
    /// `None` if it owned none.
    pub fn disconnect(&mut self, conn: ConnId) -> Option<Vec<u8>> {
        self.conns.remove(&conn);
        self.presence.disconnect(conn)
    }

    /// Handles one binary frame from `conn`. On error nothing changed; the
    /// server should close the connection with the error as its reason.
    pub fn receive(&mut self, conn: ConnId, frame: &[u8]) -> Result<Outcome, ProtocolError> {
        let can_edit = self
            .conns
            .get(&conn)
            .ok_or(ProtocolError::UnknownConnection(conn))?
            .can_edit;
        if frame.len() > self.limits.max_message_bytes {
            return Err(ProtocolError::MessageTooLarge {
                size: frame.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        let mut out = Outcome::default();
        match message::decode(frame)? {
            Message::SyncStep1(state_vector) => {
                let missing = self.doc.diff(state_vector)?;
                out.reply.push(message::encode_sync_step2(&missing));
            }
            Message::SyncStep2(update) | Message::SyncUpdate(update) if !can_edit => {
                if self.doc.would_change(update)? {
                    out.reply.push(encode_permission_denied(READ_ONLY_REASON));
                }
            }
            Message::SyncStep2(update) => match self.doc.apply(update, self.max_doc())? {
                Applied::Changed(bytes) => out.persist_and_relay(bytes),
                Applied::Unchanged => {}
                // Step 2 should carry everything we lack; it does not.
                Applied::NotReady => return Err(ProtocolError::OutOfSync),
            },
            Message::SyncUpdate(update) => match self.doc.apply(update, self.max_doc())? {
                Applied::Changed(bytes) => out.persist_and_relay(bytes),
                Applied::Unchanged => {}
                // Content it builds on has not reached us yet (typically
                // offline edits still on their way in the client's step 2).
                // Ask for everything we lack, as a fresh handshake would.
                Applied::NotReady => out
                    .reply
                    .push(message::encode_sync_step1(&self.doc.encoded_state_vector())),
            },
            Message::Awareness(entries) => {
                out.broadcast
                    .extend(self.presence.apply(conn, &entries, &self.limits)?);
            }
            Message::QueryAwareness => {
                out.reply.push(self.presence.all_states_frame_even_empty());
            }
            // y-websocket servers ignore auth messages from clients; so do we.
            Message::Auth => {}
            Message::Custom(json) => out.custom = Some(json.to_owned()),
        }
        Ok(out)
    }

    fn max_doc(&self) -> usize {
        self.limits.max_document_bytes
    }

    /// The current Python source (what a run executes).
    pub fn text(&self) -> String {
        self.doc.text()
    }

    /// The whole document as one v1 update, for compaction into the store.
    /// Encodes it if it changed since the last encoding (`&mut` for that).
    pub fn snapshot(&mut self) -> Vec<u8> {
        self.doc.snapshot()
    }

    /// The document's state vector, v1-encoded (to compare two states).
    pub fn state_vector(&self) -> Vec<u8> {
        self.doc.encoded_state_vector()
    }

    /// The exact encoded size of the document, in bytes (encodes it if it
    /// changed since the last encoding).
    pub fn document_size(&mut self) -> usize {
        self.doc.size()
    }

    /// How many connections are registered.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// How many awareness clients are present.
    pub fn presence_count(&self) -> usize {
        self.presence.len()
    }

    /// The limits this room enforces.
    pub fn limits(&self) -> &RoomLimits {
        &self.limits
    }
}
