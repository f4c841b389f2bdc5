//! Late join: one client builds a document out of many small edits, then
//! fresh clients join and are timed from the TCP connect until the server's
//! sync step 2 is received and applied to an empty yrs document.
//!
//! The builder types like a person: a cursor that mostly stays put and
//! sometimes jumps (`--jump-percent`), short insertions and some backspaces,
//! each edit its own transaction and its own update frame. Frames go out in
//! batches without waiting; after each batch a sync step 1 is sent and its
//! step 2 awaited, which (the room handling a connection's frames in order,
//! and replying only after the batch is stored) means the batch is durable.
//!
//! The server's CPU time is sampled at each quarter of the build: the cost
//! of one edit as the document grows.
//!
//! Joins are timed twice: while the builder is still connected (the room is
//! loaded), and after everyone left and the room unloaded (`--cold-wait`
//! longer than the server's 30 s unload delay), so the join includes
//! loading the snapshot and update log from the store.

use crate::api::Api;
use crate::client::{self, Joined};
use crate::measure::{self, ms, percentile, Server};
use crate::Error;
use futures::SinkExt;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, TextRef, Transact, Update};

/// How the late-join scenario runs.
pub struct Options {
    /// Edits (update frames) in the document's history.
    pub edits: usize,
    /// Frames sent before waiting for the server to catch up.
    pub batch: usize,
    /// Timed joins while the room is loaded.
    pub joins: usize,
    /// Wait before the cold join (0 skips it).
    pub cold_wait: Duration,
    /// Chance, in percent, that an edit moves the cursor somewhere random.
    pub jump_percent: u64,
}

/// How long one sync may take before the tool gives up.
const SYNC_WAIT: Duration = Duration::from_secs(60);
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz_ ().:=0123456789\n    ";

/// A small deterministic generator (xorshift64*), so runs are comparable.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// One typed edit at the cursor; returns its v1 update.
pub(crate) fn edit(
    doc: &Doc,
    text: &TextRef,
    rng: &mut Rng,
    cursor: &mut u32,
    jump: u64,
) -> Vec<u8> {
    let mut txn = doc.transact_mut();
    let len = text.len(&txn);
    if rng.below(100) < jump {
        *cursor = rng.below(u64::from(len) + 1) as u32;
    }
    *cursor = (*cursor).min(len);
    if rng.below(100) < 15 && *cursor > 0 {
        let n = (1 + rng.below(3) as u32).min(*cursor);
        *cursor -= n;
        text.remove_range(&mut txn, *cursor, n);
    } else {
        let n = 1 + rng.below(6) as usize;
        let s: String = (0..n)
            .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
            .collect();
        text.insert(&mut txn, *cursor, &s);
        *cursor += n as u32;
    }
    txn.encode_update_v1()
}

/// Timings of one join that converged.
struct Timed {
    upgraded: Duration,
    step2_at: Duration,
    synced: Duration,
    bytes: usize,
}

/// Applies a joiner's step 2 to a fresh document and checks the text.
fn finish(j: &Joined, want: &str) -> Result<Timed, Error> {
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(&j.step2)?)?;
    let text = doc.get_or_insert_text("code");
    let got = text.get_string(&doc.transact());
    let synced = j.started.elapsed();
    if got != want {
        return Err(format!(
            "late joiner's text differs: {} chars, expected {}",
            got.len(),
            want.len()
        )
        .into());
    }
    Ok(Timed {
        upgraded: j.upgraded,
        step2_at: j.step2_at,
        synced,
        bytes: j.step2.len(),
    })
}

async fn timed_join(api: &Api, session: &str, want: &str) -> Result<Timed, Error> {
    // `join` times from the TCP connect; the ticket request is not counted.
    let j = client::join(api, session, &client::EMPTY_STATE_VECTOR, SYNC_WAIT).await?;
    finish(&j, want)
}

fn row(case: &str, t: &[Timed]) -> String {
    let pick = |t: &[Timed], f: fn(&Timed) -> Duration| {
        let mut v: Vec<Duration> = t.iter().map(f).collect();
        v.sort_unstable();
        (percentile(&v, 50.0), percentile(&v, 100.0))
    };
    let (up50, up_max) = pick(t, |x| x.upgraded);
    let (s50, s_max) = pick(t, |x| x.step2_at);
    let (y50, y_max) = pick(t, |x| x.synced);
    format!(
        "| {case} | {} | {} / {} | {} / {} | {} / {} | {} |",
        t.len(),
        ms(up50),
        ms(up_max),
        ms(s50),
        ms(s_max),
        ms(y50),
        ms(y_max),
        t.first().map_or(0, |x| x.bytes),
    )
}

/// Builds the document, times the joins, prints the tables.
pub async fn run(api: &Api, server: Server, opts: &Options) -> Result<(), Error> {
    let session = api.create_session("late join").await?;
    let mut builder = client::join(api, &session, &client::EMPTY_STATE_VECTOR, SYNC_WAIT).await?;
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(&builder.step2)?)?;
    let text = doc.get_or_insert_text("code");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cursor = 0;

    let start = Instant::now();
    let mut slowest_batch = Duration::ZERO;
    let mut done = 0;
    // Server CPU at the start and at each quarter of the build.
    let mut cpu_marks = vec![(0, server.cpu())];
    while done < opts.edits {
        let batch_start = Instant::now();
        let n = opts.batch.max(1).min(opts.edits - done);
        for _ in 0..n {
            let u = edit(&doc, &text, &mut rng, &mut cursor, opts.jump_percent);
            let frame = yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(u));
            builder
                .ws
                .feed(Message::Binary(frame.encode_v1().into()))
                .await?;
        }
        let sv = doc.transact().state_vector().encode_v1();
        builder.ws.send(client::step1(&sv)).await?;
        client::wait_step2(&mut builder.ws, SYNC_WAIT).await?;
        slowest_batch = slowest_batch.max(batch_start.elapsed());
        done += n;
        if done * 4 >= opts.edits * cpu_marks.len() {
            cpu_marks.push((done, server.cpu()));
        }
    }
    let built = start.elapsed();
    let want = text.get_string(&doc.transact());
    let encoded = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default())
        .len();

    // Server CPU µs per edit in each quarter of the build.
    let per_edit: Vec<String> = cpu_marks
        .windows(2)
        .map(|w| match (w[0], w[1]) {
            ((d0, Some(c0)), (d1, Some(c1))) if d1 > d0 => format!(
                "{:.0}",
                c1.saturating_sub(c0).as_secs_f64() * 1e6 / (d1 - d0) as f64
            ),
            _ => "n/a".into(),
        })
        .collect();
    println!("| edits | built in s | edits/s accepted | slowest batch ms | server CPU µs per edit, by quarter | text chars | encoded document bytes | load avg |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {:.1} | {:.0} | {} | {} | {} | {encoded} | {} |",
        opts.edits,
        built.as_secs_f64(),
        opts.edits as f64 / built.as_secs_f64(),
        ms(slowest_batch),
        per_edit.join(" / "),
        want.chars().count(),
        measure::load_avg(),
    );

    let mut warm = Vec::new();
    for _ in 0..opts.joins {
        warm.push(timed_join(api, &session, &want).await?);
    }
    let _ = builder.ws.close(None).await;
    drop(builder);
    let mut cold = Vec::new();
    if !opts.cold_wait.is_zero() {
        tokio::time::sleep(opts.cold_wait).await;
        cold.push(timed_join(api, &session, &want).await?);
    }

    println!();
    println!("| join | joins | upgraded ms (p50 / max) | step 2 received ms (p50 / max) | synced ms (p50 / max) | step 2 bytes |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!("{}", row("room loaded", &warm));
    if !cold.is_empty() {
        println!(
            "{}",
            row(
                &format!(
                    "room unloaded ({} s after the last client left)",
                    opts.cold_wait.as_secs()
                ),
                &cold
            )
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_replay_to_the_same_text() {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("code");
        let (mut rng, mut cursor) = (Rng(1), 0);
        let copy = Doc::new();
        for _ in 0..500 {
            let u = edit(&doc, &text, &mut rng, &mut cursor, 10);
            copy.transact_mut()
                .apply_update(Update::decode_v1(&u).unwrap())
                .unwrap();
        }
        let a = text.get_string(&doc.transact());
        let b = copy.get_or_insert_text("code").get_string(&copy.transact());
        assert!(!a.is_empty());
        assert_eq!(a, b);
    }
}
