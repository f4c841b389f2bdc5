//! A reader that stops reading: how much server memory one such connection
//! can pin before the server drops it as too slow.
//!
//! A connection's send queue is bounded in frames, not bytes. Relayed
//! updates are shared between connections, but each sync step 2 reply is
//! the connection's own copy of the document. So this scenario builds a
//! document of `--doc-kib`, then one client sends `--requests` sync step 1
//! messages with an empty state vector and reads nothing. The server's RSS
//! is sampled meanwhile; then the client reads what reached its socket and
//! reports how the server closed the connection.

use crate::api::Api;
use crate::client::{self, Frame};
use crate::doc;
use crate::measure::{self, Server};
use crate::Error;
use futures::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// How the stall scenario runs.
pub struct Options {
    /// Size of the document to build, in KiB (encoded).
    pub doc_kib: usize,
    /// Sync step 1 requests the stalled client sends.
    pub requests: usize,
}

/// How long to watch the server's memory.
const WATCH: Duration = Duration::from_secs(20);

/// Builds the document, stalls one client, prints one table.
pub async fn run(api: &Api, server: Server, opts: &Options) -> Result<(), Error> {
    let session = api.create_session("stalled reader").await?;
    let (mut builder, size) = doc::build(api, &session, opts.doc_kib).await?;
    let wait = Duration::from_secs(60);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server.rss_kib();
    let mut staller = client::join(api, &session, &client::EMPTY_STATE_VECTOR, wait).await?;
    let start = Instant::now();
    let mut sent = 0;
    for _ in 0..opts.requests {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            staller.ws.send(client::step1(&client::EMPTY_STATE_VECTOR)),
        )
        .await;
        if !matches!(r, Ok(Ok(()))) {
            break;
        }
        sent += 1;
    }
    let mut peak = before;
    while start.elapsed() < WATCH {
        peak = peak.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = server.rss_kib();

    // Now read what reached our socket, up to the close.
    let (mut replies, mut ending) = (0, "still open".to_owned());
    loop {
        match tokio::time::timeout(Duration::from_secs(10), staller.ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                if let Frame::Step2(_) = client::parse(&b) {
                    replies += 1;
                }
            }
            Ok(Some(Ok(Message::Close(c)))) => {
                ending = client::close_text(c.as_ref());
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => {
                ending = format!("error: {e}");
                break;
            }
            Ok(None) => {
                ending = "ended without a close frame".into();
                break;
            }
            Err(_) => break,
        }
    }
    let _ = builder.ws.close(None).await;

    let mib = |k: Option<u64>| measure::or_na(k.map(|k| format!("{:.0}", k as f64 / 1024.0)));
    let growth = before.zip(peak).map(|(b, p)| p.saturating_sub(b));
    println!("| document KiB | step 1 requests sent | replies that reached the client | server RSS before MiB | peak MiB | growth MiB | after {} s MiB | how it ended |", WATCH.as_secs());
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    println!(
        "| {} | {sent} | {replies} | {} | {} | {} | {} | {ending} |",
        size / 1024,
        mib(before),
        mib(peak),
        mib(growth),
        mib(after),
    );
    Ok(())
}
