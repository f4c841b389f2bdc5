//! Live runs over real websockets and SSE, on both stores: everyone sees the
//! same numbered output, late joiners catch up, the run outlives its
//! starter, and runs are stored for history.

use crate::both_stores;
use crate::helpers::{respawn, Backend};
use crate::live::{session, Setup};
use crate::yclient::YClient;
use ensemble_core::ids::{RunId, SessionId, UserId};
use ensemble_core::model::{Run, RunStatus};
use ensemble_core::time::now_ms;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The output events among `events`, as (seq, stream, data).
fn output(events: &[Value]) -> Vec<(u64, String, String)> {
    events
        .iter()
        .filter(|e| e["type"] == "run.output")
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["stream"].as_str().unwrap().to_owned(),
                e["data"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn stdout(out: &[(u64, String, String)]) -> String {
    out.iter()
        .filter(|(_, s, _)| s == "stdout")
        .map(|(_, _, d)| d.as_str())
        .collect()
}

async fn sse(client: reqwest::Client, url: String, token: String) -> Vec<Value> {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut r = r;
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, r.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(data) = line.strip_prefix("data: ") {
                    events.push(serde_json::from_str::<Value>(data).unwrap());
                }
            }
        }
    }
    events
}

/// `starter` types `code` and presses Run once `watcher` has the text;
/// returns the run's id and what `watcher` got up to its first output.
pub async fn start_watched(
    starter: &mut YClient,
    watcher: &mut YClient,
    code: &str,
) -> (String, Vec<Value>) {
    starter.append(code).await;
    watcher.wait_text(WAIT, code).await;
    starter.send_custom(&json!({"type": "run.start"})).await;
    let first = watcher.events_until(WAIT, "run.output").await;
    let started = first
        .iter()
        .find(|e| e["type"] == "run.started")
        .expect("run.started");
    (started["run_id"].as_str().unwrap().to_owned(), first)
}

const SLOW: &str =
    "import time\nfor i in range(6):\n    print('line', i, flush=True)\n    time.sleep(0.15)\n";

both_stores!(everyone_sees_the_same_numbered_output_and_the_run_is_stored);

async fn everyone_sees_the_same_numbered_output_and_the_run_is_stored(b: Backend) {
    let s = session(b).await;
    let (ed_token, _) = s.member("editor1", "editor").await;
    let mut owner = s.join(&s.owner).await;
    let mut editor = s.join(&ed_token).await;
    let (run_id, first) = start_watched(&mut editor, &mut owner, SLOW).await;
    assert_eq!(
        first.iter().find(|e| e["type"] == "run.started").unwrap()["by"],
        "editor1"
    );
    let metrics = s.app.get("/metrics").await.text().await.unwrap();
    for line in ["ensemble_runs_running 1", "ensemble_ws_connections 2"] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // The starter leaves: the run goes on. A late joiner and an SSE watcher come.
    drop(editor);
    let mut late = s.join(&s.owner).await;
    let events_url = s
        .app
        .url(&format!("/api/sessions/{}/runs/{run_id}/events", s.session));
    let watcher = tokio::spawn(sse(
        s.app.client.clone(),
        events_url.clone(),
        s.owner.clone(),
    ));

    let mut owner_events = first;
    owner_events.extend(owner.events_until(WAIT, "run.exited").await);
    let late_events = late.events_until(WAIT, "run.exited").await;
    let sse_events = watcher.await.unwrap();

    let expected: String = (0..6).map(|i| format!("line {i}\n")).collect();
    for (who, ev) in [
        ("owner", &owner_events),
        ("late joiner", &late_events),
        ("sse", &sse_events),
    ] {
        let out = output(ev);
        let seqs: Vec<u64> = out.iter().map(|o| o.0).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "{who}: seq must be contiguous from 1"
        );
        assert_eq!(stdout(&out), expected, "{who}");
        let exited = ev.last().unwrap();
        assert_eq!(
            (
                exited["type"].as_str(),
                exited["status"].as_str(),
                exited["exit_code"].as_i64()
            ),
            (Some("run.exited"), Some("finished"), Some(0)),
            "{who}: {exited}"
        );
    }
    assert_eq!(output(&owner_events), output(&late_events));
    assert_eq!(output(&owner_events), output(&sse_events));

    // History: stored with the exact code and the output.
    let r: Value = s
        .app
        .client
        .get(s.app.url(&format!("/api/sessions/{}/runs", s.session)))
        .bearer_auth(&s.owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["runs"][0]["id"], run_id.as_str());
    assert_eq!(r["runs"][0]["status"], "finished");
    let run: Value = s
        .app
        .client
        .get(s.app.url(&format!("/api/runs/{run_id}")))
        .bearer_auth(&s.owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["code"], SLOW);
    let stored: String = run["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["stream"] == "stdout")
        .map(|c| c["data"].as_str().unwrap())
        .collect();
    assert_eq!(stored, expected);
    // SSE on a finished run sends everything and ends.
    let again = sse(s.app.client.clone(), events_url, s.owner.clone()).await;
    assert_eq!(stdout(&output(&again)), expected);
    assert_eq!(again.last().unwrap()["type"], "run.exited");
}

/// A guest editor of `session` (any session of `s`'s owner), joined.
async fn guest(s: &Setup, session: &str, name: &str) -> crate::yclient::YClient {
    let post = |path: String, body: Value, token: Option<&str>| {
        let mut req = s.app.client.post(s.app.url(&path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    let link = post(
        format!("/api/sessions/{session}/links"),
        json!({"role": "editor"}),
        Some(&s.owner),
    )
    .await["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let ticket = post(
        format!("/api/links/{link}/ticket"),
        json!({"name": name}),
        None,
    )
    .await;
    let mut c = crate::yclient::connect(
        &s.app.addr,
        session,
        ticket["ticket"].as_str().unwrap(),
        None,
    )
    .await
    .expect("joins");
    c.sync().await;
    c
}

/// A school reaches us from one address. Guests there are different people
/// in different sessions: one pair's run must not refuse another pair's.
#[tokio::test]
async fn guests_behind_one_address_run_at_once_in_different_sessions() {
    let s = session(Backend::Sqlite).await;
    let other = s.app.create_session(&s.owner, "Pair 2").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let waits = "input()\n";
    let mut ann = guest(&s, &s.session, "ann").await;
    let mut ben = guest(&s, &other, "ben").await;
    ann.append(waits).await;
    ben.append(waits).await;
    // Both rooms hold the code once a fresh joiner sees it.
    for session in [&s.session, &other] {
        guest(&s, session, "probe")
            .await
            .wait_text(WAIT, waits)
            .await;
    }
    for c in [&mut ann, &mut ben] {
        c.send_custom(&json!({"type": "run.start"})).await;
        let ev = c.events_until(WAIT, "run.started").await;
        assert!(ev.iter().all(|e| e["type"] != "error"), "{ev:?}");
    }
    // One person still runs one thing at a time within a session.
    ann.send_custom(&json!({"type": "run.start"})).await;
    let ev = ann.events_until(WAIT, "error").await;
    assert_eq!(ev.last().unwrap()["code"], "run_active");
    for c in [&mut ann, &mut ben] {
        c.send_custom(&json!({"type": "run.cancel"})).await;
        c.events_until(WAIT, "run.exited").await;
    }
}

async fn start(c: &mut crate::yclient::YClient, s: &Setup, code: &str) {
    c.append(code).await;
    let mut probe = s.join(&s.owner).await;
    probe.wait_text(WAIT, &c.text()).await;
    c.send_custom(&json!({"type": "run.start"})).await;
}

#[tokio::test]
async fn cancel_stdin_and_refusals() {
    let s = session(Backend::Sqlite).await;
    let mut owner = s.join(&s.owner).await;

    // Interactive input: the prompt arrives before any input, input is echoed.
    start(
        &mut owner,
        &s,
        "name = input('name? ')\nprint('hello', name)\n",
    )
    .await;
    let ev = owner.events_until(WAIT, "run.output").await;
    assert_eq!(output(&ev)[0].2, "name? ");
    // Everyone is told the program waits for input, late joiners too.
    let hint = owner.events_until(WAIT, "run.input_wanted").await;
    assert_eq!(hint.len(), 1, "right after the prompt: {hint:?}");
    let mut late = s.join(&s.owner).await;
    let replay = late.events_until(WAIT, "run.input_wanted").await;
    assert_eq!(replay.last().unwrap()["run_id"], hint[0]["run_id"]);
    drop(late);
    // A second start while one is active is refused.
    owner.send_custom(&json!({"type": "run.start"})).await;
    let ev = owner.events_until(WAIT, "error").await;
    assert_eq!(ev.last().unwrap()["code"], "run_active");
    owner
        .send_custom(&json!({"type": "run.stdin", "data": "bob\n"}))
        .await;
    let ev = owner.events_until(WAIT, "run.exited").await;
    let out = output(&ev);
    assert!(
        out.iter().any(|(_, s, d)| s == "stdin" && d == "bob\n"),
        "{out:?}"
    );
    assert!(stdout(&out).contains("hello bob"), "{out:?}");
    assert!(
        !ev.iter().any(|e| e["type"] == "run.input_wanted"),
        "one hint per wait: {ev:?}"
    );

    // Oversized input, unknown types and bad JSON get errors; the connection stays.
    owner
        .send_custom(&json!({"type": "run.stdin", "data": "x".repeat(70 * 1024)}))
        .await;
    assert_eq!(
        owner.events_until(WAIT, "error").await.last().unwrap()["code"],
        "too_large"
    );
    owner.send_custom(&json!({"type": "run.fly"})).await;
    assert_eq!(
        owner.events_until(WAIT, "error").await.last().unwrap()["code"],
        "unknown_type"
    );

    // Cancel says who.
    owner.send_raw(b"\x64\x00".to_vec()).await;
    assert_eq!(
        owner.events_until(WAIT, "error").await.last().unwrap()["code"],
        "bad_message"
    );
    let mut again = s.join(&s.owner).await;
    // A joiner first gets the session's last run replayed, ended or not.
    let replay = again.events_until(WAIT, "run.exited").await;
    assert!(stdout(&output(&replay)).contains("hello bob"));
    again.send_custom(&json!({"type": "run.start"})).await;
    again.events_until(WAIT, "run.started").await;
    again.send_custom(&json!({"type": "run.cancel"})).await;
    let ev = again.events_until(WAIT, "run.exited").await;
    let exited = ev.last().unwrap();
    assert_eq!(
        (exited["status"].as_str(), exited["reason"].as_str()),
        (Some("cancelled"), Some("cancelled by olivia")),
        "{exited}"
    );
}

#[tokio::test]
async fn viewers_cannot_run() {
    let s = session(Backend::Sqlite).await;
    let (viewer, _) = s.member("watcher", "viewer").await;
    let mut v = s.join(&viewer).await;
    for msg in [
        json!({"type": "run.start"}),
        json!({"type": "run.cancel"}),
        json!({"type": "run.stdin", "data": "x"}),
    ] {
        v.send_custom(&msg).await;
        let e = v.events_until(WAIT, "error").await;
        assert_eq!(e.last().unwrap()["code"], "viewer", "{msg}");
    }
    let r: Value = s
        .app
        .client
        .get(s.app.url(&format!("/api/sessions/{}/runs", s.session)))
        .bearer_auth(&s.owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["runs"].as_array().unwrap().len(), 0, "nothing happened");
}

#[tokio::test]
async fn quota_and_history_paging() {
    let s = session(Backend::Sqlite).await;
    let mut owner = s.join(&s.owner).await;
    owner.append("print('hi')\n").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        owner.send_custom(&json!({"type": "run.start"})).await;
        let ev = owner.events_until(WAIT, "run.exited").await;
        ids.push(ev.last().unwrap()["run_id"].as_str().unwrap().to_owned());
    }
    let page = |before: Option<String>| {
        let url = match before {
            Some(b) => s.app.url(&format!(
                "/api/sessions/{}/runs?limit=2&before={b}",
                s.session
            )),
            None => s
                .app
                .url(&format!("/api/sessions/{}/runs?limit=2", s.session)),
        };
        let req = s.app.client.get(url).bearer_auth(&s.owner);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let p1 = page(None).await;
    let got: Vec<&str> = p1["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let p2 = page(p1["next"].as_str().map(str::to_owned)).await;
    assert_eq!(p2["runs"][0]["id"], ids[0].as_str());
    assert!(p2["next"].is_null());
}

#[tokio::test]
async fn runs_per_minute_are_limited() {
    let app = crate::helpers::spawn_with(Backend::Sqlite, |c| c.sandbox.runs_per_minute = 2).await;
    let s = crate::live::session_on(app).await;
    let mut owner = s.join(&s.owner).await;
    owner.append("pass\n").await;
    for _ in 0..2 {
        owner.send_custom(&json!({"type": "run.start"})).await;
        owner.events_until(WAIT, "run.exited").await;
    }
    owner.send_custom(&json!({"type": "run.start"})).await;
    let e = owner.events_until(WAIT, "error").await;
    let e = e.last().unwrap();
    assert_eq!(e["code"], "rate_limited");
    assert!(e["retry_after"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn a_restart_marks_unfinished_runs_interrupted() {
    let s = session(Backend::Sqlite).await;
    let id = RunId::generate();
    let run = Run {
        id: id.clone(),
        session_id: SessionId::parse(&s.session).unwrap(),
        author: UserId::generate(),
        author_name: "olivia".into(),
        code: "while True: pass".into(),
        status: RunStatus::Running,
        exit_code: None,
        reason: None,
        node: "test-node".into(),
        created_at: now_ms(),
        started_at: Some(now_ms()),
        finished_at: None,
        duration_ms: None,
        output: vec![],
        truncated: false,
    };
    s.app.state.store.create_run(&run).await.unwrap();
    s.app.shutdown.cancel();
    let restarted = respawn(&s.app, |_| {}).await;
    let got = restarted.state.store.run(&id).await.unwrap().unwrap();
    assert_eq!(got.status, RunStatus::Interrupted);
}

#[tokio::test]
async fn a_stalled_watcher_is_dropped_and_nobody_else_notices() {
    // More output than the kernel's socket buffers hold, so a socket that is
    // not read really stalls.
    let app = crate::helpers::spawn_with(Backend::Sqlite, |c| {
        c.send_queue_frames = 8;
        c.sandbox.run_output_kib = 16 * 1024;
    })
    .await;
    let s = crate::live::session_on(app).await;
    let mut owner = s.join(&s.owner).await;
    // A watcher with a tiny receive buffer that never reads after the handshake.
    let ticket = s.ticket(&s.owner).await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = s.app.addr.trim_start_matches("http://").parse().unwrap();
    let stream = sock.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/ws/{}?ticket={ticket}", s.session);
    let (stalled, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("handshake");

    let code = "import sys\nfor i in range(40000):\n    sys.stdout.write('x' * 200 + '\\n')\n    sys.stdout.flush()\n";
    start(&mut owner, &s, code).await;
    let ev = owner.events_until(WAIT, "run.exited").await;
    let out = output(&ev);
    let seqs: Vec<u64> = out.iter().map(|o| o.0).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "the reader missed nothing"
    );
    assert_eq!(
        stdout(&out).len(),
        40000 * 201,
        "all output reached the reader"
    );
    assert_eq!(ev.last().unwrap()["status"], "finished");

    // The stalled socket was cut off: reading it now ends without the end of the run.
    use futures::StreamExt;
    let mut stalled = stalled;
    let mut saw_exit = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, stalled.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Binary(b) = msg {
            saw_exit |= String::from_utf8_lossy(&b).contains("run.exited");
            if saw_exit {
                break;
            }
        }
    }
    assert!(
        !saw_exit,
        "a stalled watcher should have been disconnected before the run ended"
    );
    // Operators see it: one slow drop, only the reader still connected, and
    // (once the run's slot is given back) nothing running.
    let expected = [
        "ensemble_ws_dropped_slow_total 1",
        "ensemble_ws_connections 1",
        "ensemble_runs_running 0",
        "ensemble_runs_queued 0",
    ];
    crate::helpers::eventually(WAIT, || async {
        let metrics = s.app.get("/metrics").await.text().await.unwrap();
        expected.iter().all(|e| metrics.lines().any(|l| l == *e))
    })
    .await;
}
