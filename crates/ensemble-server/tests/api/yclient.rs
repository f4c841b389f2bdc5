//! A minimal y-websocket client for tests, on yrs and tokio-tungstenite: it
//! syncs, edits the `code` text, applies what the server relays, and reports
//! auth messages, type-100 events and close frames.

use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Something the server sent.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// A document update (or sync step 2) was applied.
    Applied,
    /// y-protocols auth: permission denied, with the reason.
    Denied(String),
    /// A type-100 JSON event.
    Custom(String),
    /// Awareness or anything else.
    Other,
    /// The server closed the socket with this code and reason.
    Closed(u16, String),
}

pub struct YClient {
    ws: Ws,
    pub doc: Doc,
    /// Events read while syncing, handed out by `next` first.
    pending: std::collections::VecDeque<Event>,
}

/// Opens `/ws/{session}?ticket=…`; on refusal returns the HTTP status.
pub async fn connect(
    base: &str,
    session: &str,
    ticket: &str,
    origin: Option<&str>,
) -> Result<YClient, u16> {
    let url = format!(
        "{}/ws/{session}?ticket={ticket}",
        base.replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request().expect("request");
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(YClient {
            ws,
            doc: Doc::new(),
            pending: Default::default(),
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("websocket connect failed: {e}"),
    }
}

impl YClient {
    pub async fn send(&mut self, msg: Message) {
        self.ws
            .send(WsMessage::Binary(msg.encode_v1().into()))
            .await
            .expect("send");
    }

    /// Sends a type-100 JSON message.
    pub async fn send_custom(&mut self, json: &serde_json::Value) {
        let text = json.to_string();
        let mut frame = vec![100u8];
        let mut n = text.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                frame.push(byte);
                break;
            }
            frame.push(byte | 0x80);
        }
        frame.extend_from_slice(text.as_bytes());
        self.send_raw(frame).await;
    }

    /// Reads type-100 events until one has `"type": want` (bounded); returns
    /// every event seen, that one last.
    pub async fn events_until(&mut self, wait: Duration, want: &str) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                None => panic!("no {want:?} event in time; saw {seen:?}"),
                Some(Event::Custom(text)) => {
                    let v: serde_json::Value = serde_json::from_str(&text).expect("event JSON");
                    let done = v["type"] == want;
                    seen.push(v);
                    if done {
                        return seen;
                    }
                }
                Some(Event::Closed(code, reason)) => {
                    panic!("closed ({code} {reason}) waiting for {want:?}; saw {seen:?}")
                }
                Some(_) => {}
            }
        }
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(WsMessage::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// Sends sync step 1 and reads until the server's step 2 is applied.
    pub async fn sync(&mut self) {
        let sv = self.doc.transact().state_vector();
        self.send(Message::Sync(SyncMessage::SyncStep1(sv))).await;
        loop {
            match self
                .read(Duration::from_secs(10))
                .await
                .expect("sync reply")
            {
                Event::Applied => return,
                Event::Closed(code, reason) => panic!("closed while syncing: {code} {reason}"),
                // Kept for later readers (a late joiner's run replay).
                other => self.pending.push_back(other),
            }
        }
    }

    /// Appends `s` to the text and sends the update.
    pub async fn append(&mut self, s: &str) {
        let update = {
            let text = self.doc.get_or_insert_text("code");
            let mut txn = self.doc.transact_mut();
            let len = text.len(&txn);
            text.insert(&mut txn, len, s);
            txn.encode_update_v1()
        };
        self.send(Message::Sync(SyncMessage::Update(update))).await;
    }

    pub fn text(&self) -> String {
        let text = self.doc.get_or_insert_text("code");
        let txn = self.doc.transact();
        text.get_string(&txn)
    }

    /// The next event, or `None` after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Event> {
        if let Some(e) = self.pending.pop_front() {
            return Some(e);
        }
        self.read(wait).await
    }

    async fn read(&mut self, wait: Duration) -> Option<Event> {
        // One deadline for the whole call: pings (every 15 s) must not
        // restart the wait, or a missing event hangs the test instead of
        // failing it.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            let msg = match frame {
                None => return Some(Event::Closed(1006, String::new())),
                Some(Err(_)) => return Some(Event::Closed(1006, String::new())),
                Some(Ok(m)) => m,
            };
            match msg {
                WsMessage::Binary(b) => return Some(self.handle(&b)),
                WsMessage::Close(c) => {
                    return Some(c.map_or(Event::Closed(1005, String::new()), |c| {
                        Event::Closed(c.code.into(), c.reason.to_string())
                    }))
                }
                _ => continue,
            }
        }
    }

    fn handle(&mut self, b: &[u8]) -> Event {
        match Message::decode_v1(b) {
            Ok(Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u))) => {
                let update = Update::decode_v1(&u).expect("server sent a valid update");
                self.doc.transact_mut().apply_update(update).expect("apply");
                Event::Applied
            }
            Ok(Message::Auth(reason)) => Event::Denied(reason.unwrap_or_default()),
            // yrs reads the varString's length itself: `data` is the UTF-8.
            Ok(Message::Custom(100, data)) => {
                Event::Custom(String::from_utf8_lossy(&data).into_owned())
            }
            _ => Event::Other,
        }
    }

    /// Reads events (bounded) until the text equals `want`.
    pub async fn wait_text(&mut self, wait: Duration, want: &str) {
        let deadline = tokio::time::Instant::now() + wait;
        while self.text() != want {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                None => panic!("text is {:?}, expected {want:?}", self.text()),
                Some(Event::Closed(code, reason)) => {
                    panic!("closed ({code} {reason}) waiting for {want:?}")
                }
                Some(_) => {}
            }
        }
    }

    /// Waits (bounded) until an event matching `want` arrives; returns it.
    pub async fn until(&mut self, wait: Duration, mut want: impl FnMut(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self
                .next(left)
                .await
                .expect("expected event did not arrive in time");
            if want(&e) {
                return e;
            }
            if let Event::Closed(code, reason) = e {
                panic!("closed ({code} {reason}) before the expected event");
            }
        }
    }
}
