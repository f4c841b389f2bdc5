//! Test support: a simulated y-websocket client and a loopback "network".
//!
//! [`TestClient`] has its own yrs `Doc` and `Awareness` and speaks the
//! protocol through `yrs::sync` (an implementation independent of ours, so
//! the tests check our frames against it), behaving like y-websocket's
//! `WebsocketProvider`: step 1 on open, step 2 in answer to step 1, local
//! edits sent as updates, awareness applied and echoed back, "permission
//! denied" recorded.
//! [`Net`] carries frames between clients and one [`Room`], replies to the
//! sender and broadcasts to everyone else, and keeps the persisted log.

use super::{ConnId, Room, CODE};
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, GetString, OffsetKind, Options, ReadTxn, Text, Transact, Update};

/// One simulated participant.
pub(crate) struct TestClient {
    pub(crate) conn: ConnId,
    pub(crate) can_edit: bool,
    pub(crate) connected: bool,
    pub(crate) awareness: Awareness,
    inbox: Vec<Vec<u8>>,
    outbox: Vec<Vec<u8>>,
    /// Reasons of every "permission denied" received.
    pub(crate) denied: Vec<String>,
}

impl TestClient {
    fn new(conn: ConnId, client_id: u64, can_edit: bool) -> Self {
        // UTF-16 offsets, as in Yjs, so indexes never fall inside a char.
        let options = Options {
            offset_kind: OffsetKind::Utf16,
            ..Options::with_client_id(ClientID::new(client_id))
        };
        let doc = Doc::with_options(options);
        doc.get_or_insert_text(CODE);
        Self {
            conn,
            can_edit,
            connected: false,
            awareness: Awareness::new(doc),
            inbox: Vec::new(),
            outbox: Vec::new(),
            denied: Vec::new(),
        }
    }

    fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    /// What y-websocket sends when the socket opens.
    fn open(&mut self) {
        let sv = self.doc().transact().state_vector();
        self.outbox
            .push(Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1());
        if self.awareness.local_state_raw().is_some() {
            self.send_local_awareness();
        }
    }

    /// Sets our presence and queues it for the server.
    pub(crate) fn set_presence(&mut self, json: &str) {
        self.awareness.set_local_state_raw(json);
        self.send_local_awareness();
    }

    fn send_local_awareness(&mut self) {
        if let Ok(update) = self
            .awareness
            .update_with_clients([self.awareness.client_id()])
        {
            self.outbox.push(Message::Awareness(update).encode_v1());
        }
    }

    /// Inserts text locally and queues the update.
    pub(crate) fn insert(&mut self, index: u32, chunk: &str) {
        let text = self.doc().get_or_insert_text(CODE);
        let update = {
            let mut txn = self.doc().transact_mut();
            let index = index.min(text.len(&txn));
            text.insert(&mut txn, index, chunk);
            txn.encode_update_v1()
        };
        self.send_update(update);
    }

    /// Removes text locally (clamped to what exists) and queues the update.
    pub(crate) fn remove(&mut self, index: u32, len: u32) {
        let text = self.doc().get_or_insert_text(CODE);
        let update = {
            let mut txn = self.doc().transact_mut();
            let total = text.len(&txn);
            let index = index.min(total);
            let len = len.min(total - index);
            if len == 0 {
                return;
            }
            text.remove_range(&mut txn, index, len);
            txn.encode_update_v1()
        };
        self.send_update(update);
    }

    /// Queues a raw v1 update as a sync update message. Like y-websocket,
    /// a disconnected client sends nothing; step 2 delivers it later.
    pub(crate) fn send_update(&mut self, update: Vec<u8>) {
        if self.connected {
            self.outbox
                .push(Message::Sync(SyncMessage::Update(update)).encode_v1());
        }
    }

    /// The client's copy of the source.
    pub(crate) fn text(&self) -> String {
        let text = self.doc().get_or_insert_text(CODE);
        text.get_string(&self.doc().transact())
    }

    /// Length of the client's copy, in yrs units.
    pub(crate) fn len(&self) -> u32 {
        let text = self.doc().get_or_insert_text(CODE);
        text.len(&self.doc().transact())
    }

    /// Awareness ids this client currently sees with a state.
    pub(crate) fn sees(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .awareness
            .iter()
            .filter(|(_, state)| state.data.is_some())
            .map(|(id, _)| id.get())
            .collect();
        ids.sort_unstable();
        ids
    }

    fn handle(&mut self, frame: &[u8]) {
        let message = Message::decode_v1(frame).expect("server frames decode with yrs::sync");
        match message {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let update = self.doc().transact().encode_state_as_update_v1(&sv);
                self.outbox
                    .push(Message::Sync(SyncMessage::SyncStep2(update)).encode_v1());
            }
            Message::Sync(SyncMessage::SyncStep2(update))
            | Message::Sync(SyncMessage::Update(update)) => {
                let update = Update::decode_v1(&update).expect("server updates decode");
                self.doc()
                    .transact_mut()
                    .apply_update(update)
                    .expect("server updates apply");
            }
            Message::Awareness(update) => {
                let summary = self
                    .awareness
                    .apply_update_summary(update)
                    .expect("awareness applies");
                // y-websocket echoes every awareness change back to the server.
                if let Some(summary) = summary {
                    let echo = self.awareness.update_with_clients(summary.all_changes());
                    if let Ok(echo) = echo {
                        self.outbox.push(Message::Awareness(echo).encode_v1());
                    }
                }
            }
            Message::Auth(Some(reason)) => self.denied.push(reason),
            other => panic!("unexpected frame from the room: {other:?}"),
        }
    }
}

/// A room and its clients, connected by in-memory queues.
pub(crate) struct Net {
    pub(crate) room: Room,
    pub(crate) clients: Vec<TestClient>,
    /// Every update the room asked to persist, in order.
    pub(crate) log: Vec<Vec<u8>>,
}

impl Net {
    pub(crate) fn new(room: Room) -> Self {
        Self {
            room,
            clients: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Adds a client (not connected yet); returns its index.
    pub(crate) fn add(&mut self, client_id: u64, can_edit: bool) -> usize {
        let conn = ConnId(self.clients.len() as u64 + 1);
        self.clients
            .push(TestClient::new(conn, client_id, can_edit));
        self.clients.len() - 1
    }

    /// Opens client `i`'s connection.
    pub(crate) fn connect(&mut self, i: usize) {
        let client = &mut self.clients[i];
        let first = self.room.connect(client.conn, client.can_edit);
        client.connected = true;
        client.inbox.extend(first);
        client.open();
    }

    /// Closes client `i`'s connection and relays what the room says.
    pub(crate) fn disconnect(&mut self, i: usize) {
        let client = &mut self.clients[i];
        client.connected = false;
        client.outbox.clear();
        if let Some(frame) = self.room.disconnect(client.conn) {
            self.broadcast(i, &[frame]);
        }
    }

    fn broadcast(&mut self, from: usize, frames: &[Vec<u8>]) {
        for (j, other) in self.clients.iter_mut().enumerate() {
            if j != from && other.connected {
                other.inbox.extend(frames.iter().cloned());
            }
        }
    }

    /// Sends only client `i`'s queued frames to the room; returns how many.
    pub(crate) fn flush(&mut self, i: usize) -> usize {
        let frames = std::mem::take(&mut self.clients[i].outbox);
        let conn = self.clients[i].conn;
        for frame in &frames {
            let out = self
                .room
                .receive(conn, frame)
                .expect("frames from well-behaved clients are accepted");
            self.log.extend(out.persist);
            self.clients[i].inbox.extend(out.reply);
            self.broadcast(i, &out.broadcast);
        }
        frames.len()
    }

    /// Delivers everything in flight, both ways, until nothing moves.
    pub(crate) fn settle(&mut self) {
        loop {
            let mut moved = 0;
            for i in 0..self.clients.len() {
                if self.clients[i].connected {
                    moved += self.flush(i);
                }
            }
            for client in self.clients.iter_mut().filter(|c| c.connected) {
                let inbox = std::mem::take(&mut client.inbox);
                moved += inbox.len();
                for frame in inbox {
                    client.handle(&frame);
                }
            }
            if moved == 0 {
                break;
            }
        }
    }
}
