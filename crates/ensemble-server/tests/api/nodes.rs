//! More than one node on one store: a session is served by at most one node
//! at a time (a lease in the store), the other refuses with a close code
//! that makes clients reconnect, and when the holder dies its sessions move.

use crate::both_stores;
use crate::durability::{create_session, join, open, ready, start};
use crate::helpers::{fresh_mongo_uri, Backend, PASSWORD};
use crate::yclient::Event;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

both_stores!(one_node_serves_a_session_and_another_takes_over_when_it_dies);

async fn one_node_serves_a_session_and_another_takes_over_when_it_dies(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store: Vec<String> = match b {
        Backend::Sqlite => vec![
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
        ],
        Backend::Mongo => vec!["--mongodb-uri".into(), fresh_mongo_uri()],
    };
    let args = |node: &str| {
        let mut a = store.clone();
        a.extend([
            "--node-id".into(),
            node.into(),
            "--lease-ttl-secs".into(),
            "2".into(),
        ]);
        a
    };
    let mut a = start(&args("node-a"));
    let node_b = start(&args("node-b"));
    let client = reqwest::Client::new();
    ready(&client, &a.base).await;
    ready(&client, &node_b.base).await;

    let creds = json!({"username": "ada", "password": PASSWORD});
    client
        .post(format!("{}/api/auth/register", a.base))
        .json(&creds)
        .send()
        .await
        .unwrap();
    let login = client
        .post(format!("{}/api/auth/login", node_b.base))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.headers()["x-ensemble-node"],
        "node-b",
        "every node answers stateless routes"
    );
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sid = create_session(&client, &a.base, &token, "Nodes").await;
    let mut on_a = join(&client, &a.base, &token, &sid).await;
    on_a.append("written on a").await;

    // Node B refuses the session while A holds it, with a reconnect code.
    let mut on_b = open(&client, &node_b.base, &token, &sid).await;
    let closed = on_b.next(Duration::from_secs(10)).await;
    assert!(
        matches!(&closed, Some(Event::Closed(1013, reason)) if reason.contains("node-a")),
        "{closed:?}"
    );

    // A dies without releasing; after its lease expires, B serves the session.
    let mut probe = join(&client, &a.base, &token, &sid).await;
    probe
        .wait_text(Duration::from_secs(10), "written on a")
        .await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let started = Instant::now();
    let text = loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "node-b never took the session over"
        );
        let mut c = open(&client, &node_b.base, &token, &sid).await;
        let sv = yrs::sync::Message::Sync(yrs::sync::SyncMessage::SyncStep1(Default::default()));
        c.send(sv).await;
        match c.next(Duration::from_secs(5)).await {
            Some(Event::Closed(1013, _)) | None => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
            _ => {}
        }
        c.wait_text(Duration::from_secs(10), "written on a").await;
        break c.text();
    };
    assert_eq!(text, "written on a");
    println!(
        "{b:?}: node-b took over {:?} after node-a died",
        started.elapsed()
    );
}
