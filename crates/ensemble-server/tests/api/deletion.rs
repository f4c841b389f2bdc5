//! Deleting a session: the owner's call ends it for everyone at once and
//! leaves nothing of it in the database.

use crate::both_stores;
use crate::durability::join;
use crate::helpers::{eventually, holds_session, Backend, SESSION_TABLES};
use crate::live::session;
use crate::runs::start_watched;
use crate::yclient::{connect, Event};
use ensemble_core::ids::SessionId;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Prints a line, then waits far longer than the test.
const LONG: &str = "import time\nprint('started', flush=True)\ntime.sleep(60)\n";

both_stores!(the_owner_deletes_a_session_for_everyone);
both_stores!(a_delete_cut_short_is_finished_at_the_next_start);

async fn the_owner_deletes_a_session_for_everyone(b: Backend) {
    let s = session(b).await;
    let app = &s.app;
    let (ed_token, _) = s.member("edgar", "editor").await;
    let link = app
        .client
        .post(app.url(&format!("/api/sessions/{}/links", s.session)))
        .bearer_auth(&s.owner)
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["link"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = app.create_session(&s.owner, "Keep").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut owner = s.join(&s.owner).await;
    let mut editor = s.join(&ed_token).await;
    let (run_id, _) = start_watched(&mut editor, &mut owner, LONG).await;
    // A ticket fetched before the delete and used after it.
    let spare = s.ticket(&ed_token).await;

    let url = app.url(&format!("/api/sessions/{}", s.session));
    let delete = |token: &str| app.client.delete(&url).bearer_auth(token).send();
    let r = delete(&ed_token).await.unwrap();
    assert_eq!(r.status(), 403, "only the owner deletes");
    assert_eq!(
        app.get_as(&ed_token, "/api/sessions").await["sessions"][0]["id"],
        s.session.as_str()
    );

    let r = delete(&s.owner).await.unwrap();
    assert_eq!(r.status(), 204);
    // Everyone is disconnected with 4404 and told who did it.
    for c in [&mut owner, &mut editor] {
        let closed = c.until(WAIT, |e| matches!(e, Event::Closed(..))).await;
        assert_eq!(
            closed,
            Event::Closed(4404, "olivia deleted this session".into())
        );
    }
    // The run's sandbox was stopped.
    eventually(WAIT, || async {
        let m = app.get("/metrics").await.text().await.unwrap();
        m.lines().any(|l| l == "ensemble_runs_running 0")
    })
    .await;

    // Nothing reaches it any more.
    assert_eq!(
        connect(&app.addr, &s.session, &spare, None).await.err(),
        Some(404),
        "a ticket from before the delete"
    );
    for (token, path) in [
        (&s.owner, format!("/api/sessions/{}", s.session)),
        (&s.owner, format!("/api/runs/{run_id}")),
        (&s.owner, format!("/api/sessions/{}/runs", s.session)),
    ] {
        let r = app
            .client
            .get(app.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    for r in [
        app.client
            .post(app.url(&format!("/api/sessions/{}/ticket", s.session)))
            .bearer_auth(&ed_token)
            .send()
            .await
            .unwrap(),
        app.client
            .post(app.url(&format!("/api/links/{link}/ticket")))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(r.status(), 404);
    }
    assert_eq!(
        app.get_as(&ed_token, "/api/sessions").await["sessions"],
        json!([])
    );
    let mine = app.get_as(&s.owner, "/api/sessions").await;
    assert_eq!(mine["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(mine["sessions"][0]["id"], kept.as_str());
    assert_eq!(
        delete(&s.owner).await.unwrap().status(),
        404,
        "deleted already"
    );

    // Nothing of it is left in the database; the other session is whole.
    for table in SESSION_TABLES {
        let rows = app.raw_rows(table).await;
        assert!(
            !rows.iter().any(|r| r.contains(&s.session)),
            "{table} still holds the deleted session: {rows:?}"
        );
    }
    assert!(app
        .raw_rows("sessions")
        .await
        .iter()
        .any(|r| r.contains(&kept)));
}

/// The server deletes the session record first and purges the rest after;
/// if it stops in between, the next start purges what was left.
async fn a_delete_cut_short_is_finished_at_the_next_start(b: Backend) {
    let s = session(b).await;
    let kept = s.app.create_session(&s.owner, "Keep").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut other = join(&s.app.client, &s.app.addr, &s.owner, &kept).await;
    other.append("still here").await;
    let mut owner = s.join(&s.owner).await;
    let mut watcher = s.join(&s.owner).await;
    start_watched(&mut owner, &mut watcher, "print('ran')\n").await;
    watcher.events_until(WAIT, "run.exited").await;
    // The DELETE's first step, then the server stops before the purge.
    let id = SessionId::parse(&s.session).unwrap();
    assert!(s.app.state.store.delete_session(&id).await.unwrap());
    let app = s.app.restart().await;

    let (uri, dir) = (app.config.mongodb_uri.as_deref(), &app.config.data_dir);
    eventually(WAIT, || async {
        !holds_session(uri, dir, &s.session).await
    })
    .await;
    // The other session's document is whole.
    let mut other = join(&app.client, &app.addr, &s.owner, &kept).await;
    other.wait_text(WAIT, "still here").await;
}
