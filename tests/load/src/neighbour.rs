//! A noisy neighbour: one editor floods a large document with small edits
//! at random places, as fast as the socket takes them, while another
//! session's writer and reader (on the same server) measure their own
//! delivery latency, first without the flood and then during it.
//!
//! The flooded document is typed, not pasted: built from small edits at
//! random places, so it holds many small blocks, as a real file typed over
//! a lesson does (a pasted document is one block, whose encoding is a
//! memcpy). What matters is the server's CPU per flooded edit, and whether
//! the quiet session still gets its updates promptly, i.e. whether a busy
//! room hogs a runtime worker.

use crate::api::Api;
use crate::client::{self, Frame, Joined};
use crate::fanout::{reader, stamped, Tally};
use crate::late_join::{edit, Rng};
use crate::measure::{self, percentile, Server};
use crate::Error;
use futures::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Text, Transact};

/// How the neighbour scenario runs.
pub struct Options {
    /// Size of the flooded document, in KiB.
    pub doc_kib: usize,
    /// Edits in the flood.
    pub flood: usize,
    /// The quiet session's updates per second.
    pub rate: f64,
    /// How long each phase (without, with the flood) measures.
    pub phase: Duration,
}

/// Runs both phases and prints one table.
pub async fn run(api: &Api, server: Server, opts: &Options) -> Result<(), Error> {
    let wait = Duration::from_secs(60);
    // The flooded session: a large document, a flooder with its own copy,
    // and a watcher that counts the relayed edits.
    let busy = api.create_session("flooded").await?;
    let (flooder, flood_doc, size, typed) = build_typed(api, &busy, opts.doc_kib).await?;
    let flood_text = flood_doc.get_or_insert_text("code");
    let mut watcher = client::join(api, &busy, &client::EMPTY_STATE_VECTOR, wait).await?;
    let mut flooder_ws = Some(flooder.ws);

    // The quiet session.
    let quiet = api.create_session("quiet").await?;
    let writer = client::join(api, &quiet, &client::EMPTY_STATE_VECTOR, wait).await?;
    let doc = Doc::new();
    let text = doc.get_or_insert_text("code");
    let (mut sink, mut stream) = writer.ws.split();
    let writer_reads = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });

    // The flood's edits, made up front: editing a large document in the
    // tool is slow too, and must not delay the quiet writer.
    let mut flood_edits: Vec<Vec<u8>> = {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut cursor = 0;
        (0..opts.flood)
            .map(|_| edit(&flood_doc, &flood_text, &mut rng, &mut cursor, 100))
            .collect()
    };
    let mut rows = Vec::new();
    let mut flood_result = None;
    for flooding in [false, true] {
        let r = client::join(api, &quiet, &client::EMPTY_STATE_VECTOR, wait).await?;
        let tally = Arc::new(Tally::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let quiet_reader = tokio::spawn(reader(r.ws, tally.clone(), stop_rx));
        let cpu_before = server.cpu();
        let start = Instant::now();
        let flood = if flooding { flooder_ws.take() } else { None };
        let flood = flood.map(|mut ws| {
            let edits = std::mem::take(&mut flood_edits);
            tokio::spawn(async move {
                for update in edits {
                    let frame = yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update));
                    let bytes = yrs::updates::encoder::Encode::encode_v1(&frame);
                    if ws.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                ws
            })
        });
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sent = 0u64;
        while start.elapsed() < opts.phase {
            tick.tick().await;
            sink.send(stamped(&doc, &text)).await?;
            sent += 1;
        }
        let drain = Instant::now() + Duration::from_secs(30);
        while tally.delivered.load(Ordering::Relaxed) < sent && Instant::now() < drain {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop_tx.send(true);
        let mut lat = quiet_reader.await?;
        lat.sort_unstable();
        if let Some(flood) = flood {
            // Count the flood's relays at the watcher until all arrived.
            let mut relayed = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
            while relayed < opts.flood {
                match tokio::time::timeout_at(deadline, watcher.ws.next()).await {
                    Ok(Some(Ok(Message::Binary(b)))) => {
                        if let Frame::Update(_) = client::parse(&b) {
                            relayed += 1;
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            flood_result = Some((relayed, start.elapsed(), server.cpu()));
            drop(flood.await?);
        }
        let cpu = cpu_before.zip(server.cpu()).map(|(a, b)| {
            format!(
                "{:.0}",
                100.0 * b.saturating_sub(a).as_secs_f64() / start.elapsed().as_secs_f64()
            )
        });
        let ms = |p: f64| format!("{:.1}", f64::from(percentile(&lat, p)) / 1000.0);
        rows.push(format!(
            "| {} | {} / {sent} | {} | {} | {} | {} |",
            if flooding {
                "during the flood"
            } else {
                "quiet"
            },
            lat.len(),
            ms(50.0),
            ms(99.0),
            ms(100.0),
            measure::or_na(cpu),
        ));
    }
    let _ = sink.close().await;
    writer_reads.abort();

    println!(
        "Flooded document: {} KiB typed in {typed} edits; load avg {}",
        size / 1024,
        measure::load_avg()
    );
    if let Some((relayed, took, _)) = flood_result {
        println!(
            "Flood: {relayed} of {} edits relayed in {:.1} s ({:.0} edits/s)",
            opts.flood,
            took.as_secs_f64(),
            relayed as f64 / took.as_secs_f64()
        );
    }
    println!("| quiet session at {} updates/s | delivered / sent | p50 ms | p99 ms | max ms | server CPU % |", opts.rate);
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

/// Types a document of at least `kib` KiB into `session`: batches of small
/// edits at random places, each batch sent as one update and acknowledged
/// (sync step 1 → 2) before the next. Returns the typist's connection and
/// document, the encoded size and the number of edits.
async fn build_typed(
    api: &Api,
    session: &str,
    kib: usize,
) -> Result<(Joined, Doc, usize, usize), Error> {
    const PER_UPDATE: usize = 2000;
    let wait = Duration::from_secs(60);
    let mut typist = client::join(api, session, &client::EMPTY_STATE_VECTOR, wait).await?;
    let doc = Doc::new();
    let text = doc.get_or_insert_text("code");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut cursor, mut edits, mut size) = (0, 0, 0);
    while size < kib * 1024 {
        let before = doc.transact().state_vector();
        for _ in 0..PER_UPDATE {
            edit(&doc, &text, &mut rng, &mut cursor, 30);
        }
        edits += PER_UPDATE;
        let update = doc.transact().encode_state_as_update_v1(&before);
        let frame = yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update));
        typist
            .ws
            .send(Message::Binary(frame.encode_v1().into()))
            .await?;
        let sv = doc.transact().state_vector().encode_v1();
        typist.ws.send(client::step1(&sv)).await?;
        client::wait_step2(&mut typist.ws, wait).await?;
        size = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
            .len();
    }
    let len = text.len(&doc.transact());
    if len == 0 {
        return Err("the typed document is empty".into());
    }
    Ok((typist, doc, size, edits))
}
