//! Runs watched by many (issue 6): from `run.start` to the first output at
//! each of N watchers, and one run printing about 1 MiB delivered to all of
//! them — once with every watcher reading, once with one more watcher that
//! never reads (the others must not notice it).

use crate::api::Api;
use crate::client::{self, Ws};
use crate::measure::{self, Server};
use crate::Error;
use futures::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::encoder::Encode;
use yrs::{Text, Transact};

/// How the runs scenario runs.
pub struct Options {
    /// Watchers per session.
    pub watchers: usize,
}

const SMALL: &str = "print('hello')\n";
const MIB: &str = "import sys\nfor i in range(8000):\n    sys.stdout.write('x' * 127 + '\\n')\n";

/// A type-100 frame carrying `json`.
fn custom(json: &str) -> Message {
    let mut out = vec![100u8];
    let mut len = json.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(json.as_bytes());
    Message::Binary(out.into())
}

/// The JSON of a type-100 frame, if it is one.
fn custom_text(b: &[u8]) -> Option<&str> {
    let rest = b.strip_prefix(&[100u8])?;
    let mut pos = 0;
    let mut len = 0usize;
    for shift in (0..35).step_by(7) {
        let byte = *rest.get(pos)?;
        pos += 1;
        len |= usize::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return std::str::from_utf8(rest.get(pos..pos + len)?).ok();
        }
    }
    None
}

/// Reads until `run.exited`; returns (first output, end) since `t0`, and
/// the bytes of run frames received.
async fn watch(mut ws: Ws, t0: Instant) -> Option<(Duration, Duration, usize)> {
    let mut first = None;
    let mut bytes = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        let Message::Binary(b) = msg else { continue };
        let Some(text) = custom_text(&b) else {
            continue;
        };
        bytes += text.len();
        if first.is_none() && text.contains("\"type\":\"run.output\"") {
            first = Some(t0.elapsed());
        }
        if text.contains("\"type\":\"run.exited\"") {
            return first.map(|f| (f, t0.elapsed(), bytes));
        }
    }
    None
}

/// One session: `code` in the document, N watchers (+ a stalled one), one run.
async fn once(
    api: &Api,
    server: &Server,
    code: &str,
    watchers: usize,
    stalled: bool,
) -> Result<String, Error> {
    let session = api.create_session("runs").await?;
    let wait = Duration::from_secs(30);
    let mut editor = client::join(api, &session, &client::EMPTY_STATE_VECTOR, wait).await?;
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("code");
    let update = {
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, code);
        txn.encode_update_v1()
    };
    let frame = yrs::sync::Message::Sync(yrs::sync::SyncMessage::Update(update));
    editor
        .ws
        .send(Message::Binary(frame.encode_v1().into()))
        .await?;
    let mut conns = Vec::new();
    for _ in 0..watchers {
        conns.push(
            client::join(api, &session, &client::EMPTY_STATE_VECTOR, wait)
                .await?
                .ws,
        );
    }
    let _stalled = if stalled {
        Some(client::join(api, &session, &client::EMPTY_STATE_VECTOR, wait).await?)
    } else {
        None
    };
    let cpu = server.cpu();
    let t0 = Instant::now();
    editor.ws.send(custom(r#"{"type":"run.start"}"#)).await?;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|ws| tokio::spawn(watch(ws, t0)))
        .collect();
    let editor_task = tokio::spawn(watch(editor.ws, t0));
    let mut firsts = Vec::new();
    let mut ends = Vec::new();
    let mut least_bytes = usize::MAX;
    for t in tasks {
        if let Some((f, e, b)) = t.await? {
            firsts.push(f);
            ends.push(e);
            least_bytes = least_bytes.min(b);
        }
    }
    let _ = editor_task.await;
    let cpu = match (cpu, server.cpu()) {
        (Some(a), Some(b)) => format!("{:.0}", (b - a).as_secs_f64() * 1000.0),
        _ => "n/a".into(),
    };
    firsts.sort();
    ends.sort();
    let got = firsts.len();
    Ok(format!(
        "| {watchers}{} | {got} | {} | {} | {} | {} | {cpu} |",
        if stalled { " + 1 stalled" } else { "" },
        measure::ms(measure::percentile(&firsts, 0.5)),
        measure::ms(measure::percentile(&firsts, 0.99)),
        measure::ms(ends.last().copied().unwrap_or_default()),
        least_bytes / 1024,
    ))
}

/// Prints one table: a small run, a 1 MiB run, and a 1 MiB run with a stalled watcher.
pub async fn run(api: &Api, server: Server, opts: &Options) -> Result<(), Error> {
    println!("| program | watchers | finished | first output p50 ms | p99 ms | last watcher done ms | KiB each watcher got (least) | server CPU ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (label, code, stalled) in [
        ("print once", SMALL, false),
        ("~1 MiB of output", MIB, false),
        ("~1 MiB of output", MIB, true),
    ] {
        let row = once(api, &server, code, opts.watchers, stalled).await?;
        println!("| {label} {row}");
    }
    println!("\nload average: {}", measure::load_avg());
    Ok(())
}
