//! Nothing acknowledged is lost: kill -9 the server while someone types,
//! start it again on the same store, and every update any client had
//! received is still in the document. On both stores, with the real binary.

use crate::both_stores;
use crate::helpers::{fresh_mongo_uri, Backend, PASSWORD};
use crate::yclient::{connect, Event};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server process and its base URL.
pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(store_args: &[String]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .args(["--bind", "127.0.0.1:0", "--log", "info"])
        .args(store_args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start ensemble");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("address=")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap_or(a).to_owned())
        })
        .expect("start-up line with the address");
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Proc { child, base }
}

pub async fn ready(client: &reqwest::Client, base: &str) {
    crate::helpers::eventually(Duration::from_secs(15), || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
    })
    .await;
}

/// Creates a session titled `title` on `base`; returns its id.
pub async fn create_session(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    title: &str,
) -> String {
    let created: Value = client
        .post(format!("{base}/api/sessions"))
        .bearer_auth(token)
        .json(&json!({"title": title}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// Connects to `session` on `base` with a fresh ticket, without syncing.
pub async fn open(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    session: &str,
) -> crate::yclient::YClient {
    let t = ticket(client, base, token, session).await;
    connect(base, session, &t, None)
        .await
        .expect("websocket opens")
}

/// Connects to `session` on `base` with a fresh ticket and syncs.
pub async fn join(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    session: &str,
) -> crate::yclient::YClient {
    let mut c = open(client, base, token, session).await;
    c.sync().await;
    c
}

pub async fn ticket(client: &reqwest::Client, base: &str, token: &str, session: &str) -> String {
    let r = client
        .post(format!("{base}/api/sessions/{session}/ticket"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_owned()
}

both_stores!(acknowledged_edits_survive_kill_9);

async fn acknowledged_edits_survive_kill_9(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store_args: Vec<String> = match b {
        Backend::Sqlite => vec![
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
        ],
        Backend::Mongo => vec!["--mongodb-uri".into(), fresh_mongo_uri()],
    };
    let client = reqwest::Client::new();
    let mut server = start(&store_args);
    ready(&client, &server.base).await;
    let creds = json!({"username": "typist", "password": PASSWORD});
    client
        .post(format!("{}/api/auth/register", server.base))
        .json(&creds)
        .send()
        .await
        .unwrap();
    let login: Value = client
        .post(format!("{}/api/auth/login", server.base))
        .json(&creds)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let session = create_session(&client, &server.base, &token, "Crash").await;
    let mut writer = join(&client, &server.base, &token, &session).await;
    let mut reader = join(&client, &server.base, &token, &session).await;

    // The writer types continuously; the reader applies what it receives.
    let typing = tokio::spawn(async move {
        for i in 0..2000 {
            writer.append(&format!("w{i};")).await;
            tokio::task::yield_now().await;
        }
        writer
    });
    let mut received = 0;
    while received < 100 {
        match reader.next(Duration::from_secs(10)).await {
            Some(Event::Applied) => received += 1,
            Some(Event::Closed(..)) | None => panic!("reader lost the server before the crash"),
            _ => {}
        }
    }
    server.child.kill().expect("kill -9");
    server.child.wait().unwrap();
    // Drain what was already on the wire before the crash.
    while let Some(e) = reader.next(Duration::from_secs(2)).await {
        if matches!(e, Event::Closed(..)) {
            break;
        }
    }
    typing.abort();
    let seen = reader.text();
    let seen_tokens: Vec<&str> = seen.split(';').filter(|t| !t.is_empty()).collect();
    assert!(
        seen_tokens.len() >= 100,
        "the reader saw {} updates",
        seen_tokens.len()
    );

    let server = start(&store_args);
    ready(&client, &server.base).await;
    let mut fresh = connect(
        &server.base,
        &session,
        &ticket(&client, &server.base, &token, &session).await,
        None,
    )
    .await
    .unwrap();
    fresh.sync().await;
    let after = fresh.text();
    let kept: std::collections::HashSet<&str> = after.split(';').collect();
    let lost: Vec<&&str> = seen_tokens.iter().filter(|t| !kept.contains(**t)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged updates lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    println!(
        "{b:?}: the reader had {} updates at the crash; {} are stored",
        seen_tokens.len(),
        kept.len() - 1
    );
    drop(server);
}
