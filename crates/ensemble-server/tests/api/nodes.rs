//! More than one node on one store: a session is served by at most one node
//! at a time (a lease in the store), the other refuses with a close code
//! that makes clients reconnect, and when the holder dies its sessions move.

use crate::both_stores;
use crate::durability::{create_session, join, open, ready, start, Proc};
use crate::helpers::{eventually, fresh_mongo_uri, holds_session, Backend, PASSWORD};
use crate::yclient::{Event, YClient};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

both_stores!(one_node_serves_a_session_and_another_takes_over_when_it_dies);
both_stores!(a_node_that_gets_the_sessions_clients_has_it_handed_over_after_the_run);
both_stores!(a_session_deleted_through_another_node_ends_where_it_is_served);

/// Two nodes, `node-a` and `node-b`, on one store with a lease TTL of
/// `ttl_secs`, and a signed-in account; the temp dir must outlive them.
struct TwoNodes {
    _dir: tempfile::TempDir,
    /// Where both nodes keep their data: a MongoDB URI or a data dir.
    mongodb_uri: Option<String>,
    data_dir: std::path::PathBuf,
    a: Proc,
    b: Proc,
    client: reqwest::Client,
    token: String,
}

async fn two_nodes(b: Backend, ttl_secs: u64) -> TwoNodes {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mongodb_uri = matches!(b, Backend::Mongo).then(fresh_mongo_uri);
    let store: Vec<String> = match &mongodb_uri {
        None => vec!["--data-dir".into(), data_dir.display().to_string()],
        Some(uri) => vec!["--mongodb-uri".into(), uri.clone()],
    };
    let args = |node: &str| {
        let mut a = store.clone();
        a.extend([
            "--node-id".into(),
            node.into(),
            "--lease-ttl-secs".into(),
            ttl_secs.to_string(),
        ]);
        a
    };
    let a = start(&args("node-a"));
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
    TwoNodes {
        _dir: dir,
        mongodb_uri,
        data_dir,
        a,
        b: node_b,
        client,
        token,
    }
}

async fn one_node_serves_a_session_and_another_takes_over_when_it_dies(b: Backend) {
    let TwoNodes {
        _dir,
        mut a,
        b: node_b,
        client,
        token,
        ..
    } = two_nodes(b, 2).await;
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

/// The `/metrics` text of the node at `base`.
async fn metrics(nodes: &TwoNodes, base: &str) -> String {
    let r = nodes.client.get(format!("{base}/metrics")).send().await;
    r.unwrap().text().await.unwrap()
}

/// Joins `session` on `base` the way a client sent there by the proxy does:
/// a refusal with 1013 naming `holder` is `None` ("retry"); otherwise the
/// node serves the session and the client is returned.
async fn ask(nodes: &TwoNodes, base: &str, sid: &str, holder: &str) -> Option<YClient> {
    let mut c = open(&nodes.client, base, &nodes.token, sid).await;
    let sv = yrs::sync::Message::Sync(yrs::sync::SyncMessage::SyncStep1(Default::default()));
    c.send(sv).await;
    match c.next(Duration::from_secs(10)).await {
        Some(Event::Closed(1013, reason)) => {
            assert!(reason.contains(holder), "refused with {reason:?}");
            None
        }
        Some(Event::Closed(code, reason)) => panic!("closed with {code} {reason}"),
        None => panic!("no answer from {base}"),
        Some(_) => Some(c),
    }
}

async fn a_node_that_gets_the_sessions_clients_has_it_handed_over_after_the_run(b: Backend) {
    let ttl = Duration::from_secs(2);
    let nodes = two_nodes(b, ttl.as_secs()).await;
    let (a, node_b) = (&nodes.a.base, &nodes.b.base);
    let sid = create_session(&nodes.client, a, &nodes.token, "Hand-over").await;
    let mut on_a = join(&nodes.client, a, &nodes.token, &sid).await;
    let held_from = Instant::now();
    let program = "print('waiting', flush=True)\nprint('hello', input())\n";
    on_a.append(program).await;
    on_a.send_custom(&json!({"type": "run.start"})).await;
    on_a.events_until(Duration::from_secs(20), "run.output")
        .await;

    // The proxy now sends this session's clients to node B (its hashed node
    // came back). B refuses them and asks; while the run is live, A keeps
    // the session for well past the TTL and its renewals.
    let mut refusals = 0;
    while held_from.elapsed() < ttl * 3 {
        assert!(
            ask(&nodes, node_b, &sid, "node-a").await.is_none(),
            "B served during A's run"
        );
        refusals += 1;
        // A client's retry back-off (pacing only; nothing waits on it).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing of that reached A's client: its socket is open, the run goes on.
    while let Some(e) = on_a.next(Duration::from_millis(1)).await {
        assert!(
            !matches!(e, Event::Closed(..)),
            "A's client was closed during the run: {e:?}"
        );
    }
    on_a.send_custom(&json!({"type": "run.stdin", "data": "ada\n"}))
        .await;
    let exited = on_a
        .events_until(Duration::from_secs(20), "run.exited")
        .await;
    assert_eq!(exited.last().unwrap()["status"], "finished", "{exited:?}");

    // Once the run is over, A hands the session over: its client is told to
    // reconnect (1013, naming B), and B's next client gets the document.
    let asked = Instant::now();
    let mut served = None;
    let mut a_closed = None;
    while served.is_none() {
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "A never handed the session over"
        );
        if a_closed.is_none() {
            if let Some(Event::Closed(code, reason)) = on_a.next(Duration::from_millis(1)).await {
                a_closed = Some((code, reason));
            }
        }
        served = ask(&nodes, node_b, &sid, "node-a").await;
        if served.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut on_b = served.unwrap();
    on_b.wait_text(Duration::from_secs(10), program).await;
    let a_closed = match a_closed {
        Some(c) => c,
        None => match on_a.next(Duration::from_secs(10)).await {
            Some(Event::Closed(code, reason)) => (code, reason),
            other => panic!("A's client was not closed: {other:?}"),
        },
    };
    assert_eq!(a_closed.0, 1013, "{a_closed:?}");
    assert!(a_closed.1.contains("node-b"), "{a_closed:?}");
    // Now A refuses, naming B (and asks B back, but B has not held it a TTL).
    assert!(ask(&nodes, a, &sid, "node-b").await.is_none());
    on_b.append(" # on b").await;
    on_b.wait_text(Duration::from_secs(10), &format!("{program} # on b"))
        .await;
    let metrics = metrics(&nodes, a).await;
    assert!(
        metrics.contains("\nensemble_sessions_handed_over_total 1\n"),
        "{metrics}"
    );
    println!(
        "{b:?}: {refusals} refusals during the run; hand-over {:?} after the run ended",
        asked.elapsed()
    );
}

/// The owner deletes a session through a node that does not serve it (the
/// proxy hashes `/api/sessions/{id}` to the session's node, but a client
/// may reach any node, and the serving node may be a failover one). The
/// room on the serving node learns it at its next lease renewal: its
/// clients are closed with 4404, its run is stopped, and what it wrote
/// after the purge is purged too.
async fn a_session_deleted_through_another_node_ends_where_it_is_served(b: Backend) {
    let nodes = two_nodes(b, 2).await;
    let (a, node_b) = (&nodes.a.base, &nodes.b.base);
    let sid = create_session(&nodes.client, a, &nodes.token, "Deleted on b").await;
    let mut on_a = join(&nodes.client, a, &nodes.token, &sid).await;
    on_a.append("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
        .await;
    on_a.send_custom(&json!({"type": "run.start"})).await;
    on_a.events_until(Duration::from_secs(20), "run.output")
        .await;

    let deleted = Instant::now();
    let r = nodes
        .client
        .delete(format!("{node_b}/api/sessions/{sid}"))
        .bearer_auth(&nodes.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["x-ensemble-node"], "node-b");
    let closed = on_a
        .until(Duration::from_secs(20), |e| matches!(e, Event::Closed(..)))
        .await;
    // Named, as on the node that deleted it: the owner is in the room.
    assert_eq!(
        closed,
        Event::Closed(4404, "ada deleted this session".into())
    );
    let told = deleted.elapsed();
    // A's sandbox was stopped.
    eventually(Duration::from_secs(20), || async {
        let m = metrics(&nodes, a).await;
        m.lines().any(|l| l == "ensemble_runs_running 0")
    })
    .await;
    // Nothing of the session is left, whichever node wrote it.
    eventually(Duration::from_secs(20), || async {
        !holds_session(nodes.mongodb_uri.as_deref(), &nodes.data_dir, &sid).await
    })
    .await;
    // And neither node serves it again.
    for base in [a, node_b] {
        let r = nodes
            .client
            .post(format!("{base}/api/sessions/{sid}/ticket"))
            .bearer_auth(&nodes.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{base}");
    }
    println!("{b:?}: node-a's clients were told of the delete {told:?} after it");
}
