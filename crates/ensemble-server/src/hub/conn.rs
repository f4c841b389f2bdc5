//! One websocket connection: a reader that feeds binary frames to the room,
//! and a writer that drains the connection's bounded queue to the socket.
//!
//! Keepalive: the writer pings every [`PING_EVERY`]; the reader closes a
//! connection that sent nothing (not even a pong) for [`IDLE_TIMEOUT`].
//! The room can drop a connection at any time (too slow, removed, protocol
//! error, shutdown) through its [`Kill`]; the socket is then closed with the
//! recorded code and reason.

use super::{close, CloseReason, Cmd, Hub, Kill, OpenConn, Who};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use ensemble_core::ids::SessionId;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the server pings an open connection.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);

fn close_frame(r: &CloseReason) -> Message {
    // RFC 6455 allows 123 bytes of reason.
    let mut reason = r.reason.clone();
    while reason.len() > 123 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code: r.code,
        reason: Utf8Bytes::from(reason),
    }))
}

/// Serves one upgraded socket until either side ends it.
pub async fn serve(socket: WebSocket, hub: Hub, session: SessionId, who: Who) {
    let (out_tx, mut out_rx) = mpsc::channel(hub.limits().send_queue);
    let kill = Kill::default();
    let (mut sink, mut stream) = socket.split();
    let link = match hub.join(&session, who, out_tx, kill.clone()).await {
        Ok(link) => link,
        Err(reason) => {
            let _ = sink.send(close_frame(&reason)).await;
            return;
        }
    };
    let _open = OpenConn::new(&hub);
    let shutdown = hub.shutdown_token().clone();

    let writer = async {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let msg = tokio::select! {
                frame = out_rx.recv() => match frame {
                    Some(f) => {
                        kill.queued_bytes.fetch_sub(f.len(), std::sync::atomic::Ordering::AcqRel);
                        Message::Binary(f)
                    }
                    None => break,
                },
                _ = ping.tick() => Message::Ping(Default::default()),
                () = kill.token.cancelled() => break,
            };
            let sent = tokio::select! {
                r = sink.send(msg) => r.is_ok(),
                () = kill.token.cancelled() => false,
            };
            if !sent {
                break;
            }
        }
    };

    let reader = async {
        loop {
            let next = tokio::select! {
                n = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => n,
                () = kill.token.cancelled() => return,
            };
            let msg = match next {
                Err(_) => {
                    kill.kill(CloseReason::new(close::POLICY, "idle for too long"));
                    return;
                }
                Ok(None) | Ok(Some(Err(_))) => return,
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Binary(data) => {
                    if link
                        .tx
                        .send(Cmd::Frame {
                            conn: link.conn,
                            data,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Message::Text(_) => {
                    kill.kill(CloseReason::new(
                        close::PROTOCOL_ERROR,
                        "expected binary y-protocols frames",
                    ));
                    return;
                }
                Message::Close(_) => return,
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    };

    tokio::select! {
        () = writer => {}
        () = reader => {}
        () = shutdown.cancelled() => kill.kill(CloseReason::new(close::GOING_AWAY, "the server is restarting; reconnect")),
    }
    let _ = link.tx.send(Cmd::Leave { conn: link.conn }).await;
    let reason = kill
        .reason
        .get()
        .cloned()
        .unwrap_or_else(|| CloseReason::new(1000, "bye"));
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close_frame(&reason))).await;
}
