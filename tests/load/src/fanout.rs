//! Fan-out: one writer types into the `code` text at a fixed rate while N
//! readers in the same session receive every update.
//!
//! Each update inserts `@T<19-digit nanoseconds>;`, stamped from the tool's
//! own monotonic clock just before it is sent. A reader finds the stamp in
//! the relayed update's bytes (the inserted string is stored verbatim in a
//! v1 update) and records arrival minus stamp: the delivery latency through
//! the server, including the tool's own scheduling on a shared machine.
//!
//! The server's CPU time is read before the first update and after the last
//! delivery (or the drain timeout), and divided by the updates delivered.

use crate::api::Api;
use crate::client::{self, Frame, Ws};
use crate::measure::{self, now_ns, percentile, Server};
use crate::Error;
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Text, Transact, Update};

/// How the fan-out scenario runs.
pub struct Options {
    /// Reader counts, one table row each.
    pub readers: Vec<usize>,
    /// Updates per second from the writer.
    pub rate: f64,
    /// How long the writer writes.
    pub duration: Duration,
    /// How long to wait after the last update for deliveries to finish.
    pub drain: Duration,
    /// Connections opened at once.
    pub concurrency: usize,
}

/// What the readers share.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) delivered: AtomicU64,
    pub(crate) closed: AtomicU64,
    first_close: Mutex<Option<String>>,
}

impl Tally {
    fn closed(&self, why: String) {
        self.closed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_close.lock() {
            first.get_or_insert(why);
        }
    }
}

/// Runs every reader count and prints the table.
pub async fn run(api: &Api, server: Server, opts: &Options) -> Result<(), Error> {
    println!("| readers | join s | updates sent (per s) | delivered / expected | readers dropped | p50 ms | p99 ms | max ms | server CPU % | server CPU µs / delivered update | load tool CPU % | load avg |");
    println!(
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for &n in &opts.readers {
        let row = one(api, server, n, opts).await?;
        println!("{row}");
        // Let the server forget the closed connections before the next row.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(())
}

/// An update frame appending `@T<now>;` to the text: its send time, which
/// `reader` finds in the relayed bytes.
pub(crate) fn stamped(doc: &Doc, text: &yrs::TextRef) -> Message {
    let update = {
        let mut txn = doc.transact_mut();
        let end = text.len(&txn);
        text.insert(&mut txn, end, &format!("@T{:019};", now_ns()));
        txn.encode_update_v1()
    };
    let frame = yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update));
    Message::Binary(yrs::updates::encoder::Encode::encode_v1(&frame).into())
}

/// The stamp in an update: the digits after `@T`, up to `;`.
fn find_stamp(update: &[u8]) -> Option<u64> {
    let at = update.windows(2).position(|w| w == b"@T")? + 2;
    let digits = update.get(at..at + 19)?;
    if update.get(at + 19) != Some(&b';') {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Reads relayed updates until `stop`, returning each stamped one's latency
/// in µs.
pub(crate) async fn reader(
    mut ws: Ws,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    loop {
        let next = tokio::select! {
            n = ws.next() => n,
            _ = stop.changed() => break,
        };
        client::ack_now(&ws);
        match next {
            Some(Ok(Message::Binary(b))) => {
                if let Frame::Update(u) = client::parse(&b) {
                    if let Some(stamp) = find_stamp(u) {
                        let micros = now_ns().saturating_sub(stamp) / 1000;
                        latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                        tally.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Some(Ok(Message::Close(c))) => {
                tally.closed(client::close_text(c.as_ref()));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tally.closed(format!("error: {e}"));
                break;
            }
            None => {
                tally.closed("ended".into());
                break;
            }
        }
    }
    latencies
}

async fn one(api: &Api, server: Server, n: usize, opts: &Options) -> Result<String, Error> {
    let session = api.create_session(&format!("fan-out {n}")).await?;
    let writer = client::join(
        api,
        &session,
        &client::EMPTY_STATE_VECTOR,
        Duration::from_secs(10),
    )
    .await?;
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(&writer.step2)?)?;
    let text = doc.get_or_insert_text("code");
    let (mut sink, mut stream) = writer.ws.split();
    // Keep reading the writer's socket, so pings are answered.
    let writer_reads = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });

    let tally = Arc::new(Tally::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut readers = Vec::with_capacity(n);
    let join_start = Instant::now();
    let (failed, first_err) = client::open_many(api, &session, n, opts.concurrency, |ws| {
        readers.push(tokio::spawn(reader(ws, tally.clone(), stop_rx.clone())));
    })
    .await;
    let join_time = join_start.elapsed();
    if let Some(e) = &first_err {
        eprintln!("fan-out {n}: {failed} readers failed to join; first: {e}");
    }

    let me = Server::new(Some(std::process::id()));
    let (cpu_before, my_cpu_before) = (server.cpu(), me.cpu());
    let window = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = 0u64;
    while window.elapsed() < opts.duration {
        tick.tick().await;
        sink.send(stamped(&doc, &text)).await?;
        sent += 1;
    }
    let write_time = window.elapsed();

    let joined = readers.len() as u64;
    let drain_until = Instant::now() + opts.drain;
    loop {
        let live = joined - tally.closed.load(Ordering::Relaxed);
        if tally.delivered.load(Ordering::Relaxed) >= sent * live || Instant::now() > drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (cpu_after, my_cpu_after) = (server.cpu(), me.cpu());
    let wall = window.elapsed();

    let _ = stop_tx.send(true);
    let mut latencies = Vec::with_capacity(n * sent as usize);
    for r in readers {
        latencies.extend(r.await?);
    }
    let _ = sink.close().await;
    writer_reads.abort();
    latencies.sort_unstable();
    let delivered = latencies.len() as u64;
    let dropped = tally.closed.load(Ordering::Relaxed);
    if let Some(why) = tally.first_close.lock().ok().and_then(|f| f.clone()) {
        eprintln!("fan-out {n}: {dropped} readers were disconnected; first: {why}");
    }

    let lat = |p: f64| format!("{:.1}", f64::from(percentile(&latencies, p)) / 1000.0);
    let pct = |c: Duration| format!("{:.0}", 100.0 * c.as_secs_f64() / wall.as_secs_f64());
    let cpu = cpu_before.zip(cpu_after).map(|(a, b)| b.saturating_sub(a));
    let cpu_pct = cpu.map(pct);
    let my_cpu = my_cpu_before
        .zip(my_cpu_after)
        .map(|(a, b)| pct(b.saturating_sub(a)));
    let cpu_per = cpu
        .filter(|_| delivered > 0)
        .map(|c| format!("{:.1}", c.as_secs_f64() * 1e6 / delivered as f64));
    Ok(format!(
        "| {n}{} | {:.1} | {sent} ({:.1}) | {delivered} / {} | {dropped} | {} | {} | {} | {} | {} | {} | {} |",
        if failed > 0 { format!(" ({failed} failed)") } else { String::new() },
        join_time.as_secs_f64(),
        sent as f64 / write_time.as_secs_f64(),
        sent * joined,
        lat(50.0),
        lat(99.0),
        lat(100.0),
        measure::or_na(cpu_pct),
        measure::or_na(cpu_per),
        measure::or_na(my_cpu),
        measure::load_avg(),
    ))
}

#[cfg(test)]
mod tests {
    use super::find_stamp;

    #[test]
    fn stamps_are_found_in_update_bytes() {
        let mut u = vec![1, 2, 0x74, 0x40];
        u.extend_from_slice(b"@T0000000000123456789;");
        u.push(0);
        assert_eq!(find_stamp(&u), Some(123_456_789));
        assert_eq!(find_stamp(b"@T12;"), None);
        assert_eq!(find_stamp(b"@T0000000000123456789x"), None);
    }
}
