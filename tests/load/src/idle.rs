//! Idle connections: the server's resident memory before and after opening
//! 1,000 and 10,000 synced connections that then do nothing but answer
//! pings, so the cost of one idle socket shows up as (RSS − baseline) / N.
//!
//! With `--doc-kib`, the session's document is filled to that size first,
//! so every connection receives it in its sync step 2 (a classroom joining
//! a large file); the difference to an empty document is what a
//! connection keeps after sending a large frame.
//!
//! After the last level the connections are held for a while (longer than
//! the server's 45 s idle timeout by default) to check keepalive at scale
//! and to measure the server's CPU while idle, then closed, and the RSS is
//! read once more to see how much the allocator gives back.

use crate::api::Api;
use crate::client::{self, Ws};
use crate::doc;
use crate::measure::{self, Server};
use crate::Error;
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// How the idle scenario runs.
pub struct Options {
    /// Total connection counts to measure at, ascending.
    pub levels: Vec<usize>,
    /// How long to hold the last level.
    pub hold: Duration,
    /// Connections opened at once.
    pub concurrency: usize,
    /// Size of the session's document, in KiB (0: empty).
    pub doc_kib: usize,
}

/// Pause after opening (or closing) connections before reading the RSS.
const SETTLE: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Tally {
    closed: AtomicU64,
    first_close: Mutex<Option<String>>,
}

/// Holds a connection open, reading (so tungstenite answers pings) until
/// told to stop or the server closes it.
async fn idle(mut ws: Ws, tally: Arc<Tally>, mut stop: watch::Receiver<bool>) {
    loop {
        let next = tokio::select! {
            n = ws.next() => n,
            _ = stop.changed() => return,
        };
        let why = match next {
            Some(Ok(Message::Close(c))) => client::close_text(c.as_ref()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => format!("error: {e}"),
            None => "ended".into(),
        };
        tally.closed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = tally.first_close.lock() {
            first.get_or_insert(why);
        }
        return;
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Opens the levels, prints the tables, closes everything.
pub async fn run(api: &Api, server: Server, opts: &Options) -> Result<(), Error> {
    let session = api.create_session("idle connections").await?;
    let mut builder = None;
    let mut doc_bytes = 0;
    if opts.doc_kib > 0 {
        let (b, size) = doc::build(api, &session, opts.doc_kib).await?;
        (builder, doc_bytes) = (Some(b), size);
    }
    let me = Server::new(Some(std::process::id()));
    let my_baseline = me.rss_kib();
    let tally = Arc::new(Tally::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = Vec::new();
    let baseline = server.rss_kib();

    println!("| connections | document KiB | opened in s | failed | server RSS before MiB | server RSS after MiB | server KiB per connection | load tool KiB per connection | load avg |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &level in &opts.levels {
        let want = level.saturating_sub(conns.len());
        let start = Instant::now();
        let (failed, first) = client::open_many(api, &session, want, opts.concurrency, |ws| {
            conns.push(tokio::spawn(idle(ws, tally.clone(), stop_rx.clone())));
        })
        .await;
        let took = start.elapsed();
        if let Some(e) = first {
            eprintln!("idle {level}: {failed} connections failed; first: {e}");
        }
        tokio::time::sleep(SETTLE).await;
        let rss = server.rss_kib();
        let open = conns.len() as u64 - tally.closed.load(Ordering::Relaxed);
        let per = |before: Option<u64>, now: Option<u64>| {
            before
                .zip(now)
                .filter(|_| open > 0)
                .map(|(b, r)| format!("{:.1}", r.saturating_sub(b) as f64 / open as f64))
        };
        println!(
            "| {open} | {} | {:.1} | {failed} | {} | {} | {} | {} | {} |",
            doc_bytes / 1024,
            took.as_secs_f64(),
            measure::or_na(baseline.map(mib)),
            measure::or_na(rss.map(mib)),
            measure::or_na(per(baseline, rss)),
            measure::or_na(per(my_baseline, me.rss_kib())),
            measure::load_avg(),
        );
    }

    let closed_before = tally.closed.load(Ordering::Relaxed);
    let held = conns.len() as u64 - closed_before;
    let cpu_before = server.cpu();
    tokio::time::sleep(opts.hold).await;
    let cpu = cpu_before.zip(server.cpu()).map(|(before, after)| {
        let used = after.saturating_sub(before).as_secs_f64();
        format!("{:.1}", 100.0 * used / opts.hold.as_secs_f64())
    });
    let lost = tally.closed.load(Ordering::Relaxed) - closed_before;
    if let Some(why) = tally.first_close.lock().ok().and_then(|f| f.clone()) {
        eprintln!("idle: connections were closed by the server; first: {why}");
    }

    let _ = stop_tx.send(true);
    for c in conns {
        let _ = c.await;
    }
    drop(builder);
    tokio::time::sleep(SETTLE + SETTLE).await;
    let after_close = server.rss_kib();
    println!();
    println!("| connections held | for s | server CPU % while idle | closed by the server meanwhile | server RSS MiB after closing all |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {held} | {} | {} | {lost} | {} |",
        opts.hold.as_secs(),
        measure::or_na(cpu),
        measure::or_na(after_close.map(mib)),
    );
    Ok(())
}
