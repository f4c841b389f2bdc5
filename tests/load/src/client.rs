//! A lean y-websocket client for load: open a connection with a fresh
//! ticket, sync it, and read frames at the byte level.
//!
//! Thousands of these run in one process on the same machine as the server,
//! so readers do not keep a yrs document: they look at the first bytes of a
//! frame (message type, sync type) and, for updates, scan the payload for
//! the writer's timestamp. Only the writer and the late joiner use yrs.
//! Each socket's read buffer is 8 KiB instead of tungstenite's 128 KiB (which
//! it zero-fills on the first read), so the tool itself stays small at
//! 10,000 connections; a large frame still grows the buffer as needed.
//!
//! `--quickack` (a diagnostic) sets `TCP_QUICKACK` on every client socket
//! after each frame read, so the client acknowledges at once instead of
//! delaying its ACK up to 40 ms. A server that writes small frames without
//! `TCP_NODELAY` has its next small frame held by Nagle's algorithm until
//! that ACK comes; comparing runs with and without the flag shows the cost.

use crate::api::Api;
use crate::Error;
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client websocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The read buffer of each client socket.
const READ_BUFFER: usize = 8 * 1024;
/// How long a websocket upgrade may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// An encoded empty state vector (zero clients): "send me everything".
pub const EMPTY_STATE_VECTOR: [u8; 1] = [0];

/// Whether client sockets acknowledge at once (`--quickack`).
static QUICKACK: AtomicBool = AtomicBool::new(false);

/// Turns `--quickack` on for every socket of this process.
pub fn use_quickack(on: bool) {
    QUICKACK.store(on, Ordering::Relaxed);
}

/// With `--quickack`, asks the kernel to acknowledge received data at once
/// (Linux clears the flag by itself, so this is repeated after each read).
pub fn ack_now(ws: &Ws) {
    if QUICKACK.load(Ordering::Relaxed) {
        if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            let _ = tcp.set_quickack(true);
        }
    }
}

const MSG_SYNC: u64 = 0;
const SYNC_STEP1: u8 = 0;
const SYNC_STEP2: u64 = 1;
const SYNC_UPDATE: u64 = 2;

/// What a binary frame is, as far as the load tool cares.
pub enum Frame<'a> {
    /// Sync step 2 with this v1 update.
    Step2(&'a [u8]),
    /// A relayed sync update with this v1 update.
    Update(&'a [u8]),
    /// Step 1, awareness, auth, type 100, or anything else.
    Other,
}

/// Reads a lib0 varUint at `*pos`.
fn var_uint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        n |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(n);
        }
    }
    None
}

/// Classifies a binary frame without decoding the update inside it.
pub fn parse(b: &[u8]) -> Frame<'_> {
    let mut pos = 0;
    if var_uint(b, &mut pos) != Some(MSG_SYNC) {
        return Frame::Other;
    }
    let kind = var_uint(b, &mut pos);
    let payload = var_uint(b, &mut pos)
        .and_then(|len| b.get(pos..pos.checked_add(usize::try_from(len).ok()?)?));
    match (kind, payload) {
        (Some(SYNC_STEP2), Some(p)) => Frame::Step2(p),
        (Some(SYNC_UPDATE), Some(p)) => Frame::Update(p),
        _ => Frame::Other,
    }
}

/// Sync step 1 carrying an encoded state vector.
pub fn step1(state_vector: &[u8]) -> Message {
    let mut out = vec![MSG_SYNC as u8, SYNC_STEP1];
    let mut len = state_vector.len() as u64;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(state_vector);
    Message::Binary(out.into())
}

/// Connects to `url` with small buffers and Nagle off.
pub async fn connect(url: &str) -> Result<Ws, Error> {
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let (ws, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    .map_err(|_| "websocket upgrade timed out")??;
    ack_now(&ws);
    Ok(ws)
}

/// A connection that completed the sync handshake.
pub struct Joined {
    /// The socket, positioned after the server's sync step 2.
    pub ws: Ws,
    /// The step 2 payload (a v1 update).
    pub step2: Vec<u8>,
    /// From starting the TCP connect to the upgraded websocket.
    pub upgraded: Duration,
    /// From starting the TCP connect to step 2 received.
    pub step2_at: Duration,
    /// When the TCP connect started.
    pub started: Instant,
}

/// Fetches a ticket, connects, sends step 1 with `state_vector`, and reads
/// until the server's step 2 (within `wait`). Ticket time is not counted.
pub async fn join(
    api: &Api,
    session: &str,
    state_vector: &[u8],
    wait: Duration,
) -> Result<Joined, Error> {
    let ticket = api.ticket(session).await?;
    let start = Instant::now();
    let mut ws = connect(&api.ws_url(session, &ticket)).await?;
    let upgraded = start.elapsed();
    ws.send(step1(state_vector)).await?;
    let step2 = wait_step2(&mut ws, wait).await?;
    Ok(Joined {
        ws,
        step2,
        upgraded,
        step2_at: start.elapsed(),
        started: start,
    })
}

/// Reads (bounded by `wait`) until a sync step 2 arrives; returns its payload.
pub async fn wait_step2(ws: &mut Ws, wait: Duration) -> Result<Vec<u8>, Error> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("no sync step 2 within {wait:?}"))?;
        ack_now(ws);
        match next {
            Some(Ok(Message::Binary(b))) => {
                if let Frame::Step2(p) = parse(&b) {
                    return Ok(p.to_vec());
                }
            }
            Some(Ok(Message::Close(c))) => return Err(close_text(c.as_ref()).into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("connection ended before sync".into()),
        }
    }
}

/// "closed: CODE REASON" for a close frame.
pub fn close_text(c: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    match c {
        Some(c) => format!("closed: {} {}", u16::from(c.code), c.reason),
        None => "closed without a reason".into(),
    }
}

/// Opens `n` synced connections to `session`, `concurrency` at a time, and
/// hands each to `keep` as it completes. Returns how many failed and the
/// first failure.
pub async fn open_many(
    api: &Api,
    session: &str,
    n: usize,
    concurrency: usize,
    mut keep: impl FnMut(Ws),
) -> (usize, Option<String>) {
    let mut failed = 0;
    let mut first = None;
    let mut joins = futures::stream::iter(0..n)
        .map(|_| join(api, session, &EMPTY_STATE_VECTOR, Duration::from_secs(30)))
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = joins.next().await {
        match r {
            Ok(j) => keep(j.ws),
            Err(e) => {
                failed += 1;
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
    (failed, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_classified_by_their_first_bytes() {
        assert!(matches!(
            parse(&[0, 2, 3, 9, 8, 7]),
            Frame::Update(&[9, 8, 7])
        ));
        assert!(matches!(parse(&[0, 1, 1, 5]), Frame::Step2(&[5])));
        assert!(matches!(parse(&[0, 2, 4, 1]), Frame::Other), "truncated");
        assert!(matches!(parse(&[1, 0]), Frame::Other), "awareness");
        assert!(matches!(parse(&[]), Frame::Other));
    }

    #[test]
    fn step1_prefixes_the_length() {
        let Message::Binary(b) = step1(&[0; 200]) else {
            panic!("binary")
        };
        assert_eq!(&b[..4], &[0, 0, 0xc8, 0x01]);
        assert_eq!(b.len(), 204);
    }
}
