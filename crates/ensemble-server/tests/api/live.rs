//! Sessions and websockets over real sockets: tickets, Origin, live role
//! changes, viewers, bad frames, slow readers, and durability across kill -9.

use crate::both_stores;
use crate::helpers::{sign_up, spawn_with, Backend, TestApp};
use crate::yclient::{connect, Event, YClient};
use ensemble_core::ids::SessionId;
use ensemble_core::model::{Participant, Ticket};
use ensemble_core::role::Role;
use ensemble_core::time::now_ms;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

pub struct Setup {
    pub app: TestApp,
    pub owner: String,
    pub session: String,
}

pub async fn session(b: Backend) -> Setup {
    session_on(spawn_with(b, |_| {}).await).await
}

/// A session owned by a new user on `app`.
pub async fn session_on(app: TestApp) -> Setup {
    let owner = sign_up(&app, "olivia").await;
    let body = app.create_session(&owner, "Live").await;
    assert_eq!(body["role"], "owner");
    Setup {
        app,
        owner,
        session: body["id"].as_str().unwrap().to_owned(),
    }
}

impl Setup {
    pub async fn ticket(&self, token: &str) -> String {
        let r = self
            .app
            .client
            .post(
                self.app
                    .url(&format!("/api/sessions/{}/ticket", self.session)),
            )
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["expires_in"], 60);
        assert_eq!(body["title"], "Live", "a ticket names its session");
        body["ticket"].as_str().unwrap().to_owned()
    }

    /// A new member with `role` (through a share link); returns their token and id.
    pub async fn member(&self, name: &str, role: &str) -> (String, String) {
        let token = sign_up(&self.app, name).await;
        let r = self
            .app
            .client
            .post(
                self.app
                    .url(&format!("/api/sessions/{}/links", self.session)),
            )
            .bearer_auth(&self.owner)
            .json(&json!({"role": role}))
            .send()
            .await
            .unwrap();
        let link = r.json::<Value>().await.unwrap()["link"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = self
            .app
            .client
            .post(self.app.url(&format!("/api/links/{link}/ticket")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let me = self.app.get_as(&token, "/api/me").await;
        (token, me["id"].as_str().unwrap().to_owned())
    }

    pub async fn join(&self, token: &str) -> YClient {
        let mut c = connect(
            &self.app.addr,
            &self.session,
            &self.ticket(token).await,
            None,
        )
        .await
        .expect("joins");
        c.sync().await;
        c
    }
}

both_stores!(
    tickets_work_once_for_one_session,
    a_rename_reaches_everyone_in_the_session,
    a_downgrade_and_a_removal_take_effect_live
);

async fn tickets_work_once_for_one_session(b: Backend) {
    let s = session(b).await;
    let base = &s.app.addr;
    let t = s.ticket(&s.owner).await;
    assert!(connect(base, &s.session, &t, None).await.is_ok());
    assert_eq!(
        connect(base, &s.session, &t, None).await.err(),
        Some(401),
        "reuse"
    );
    assert_eq!(
        connect(base, &s.session, "", None).await.err(),
        Some(401),
        "missing"
    );

    let other = SessionId::generate();
    let t = s.ticket(&s.owner).await;
    assert_eq!(
        connect(base, other.as_str(), &t, None).await.err(),
        Some(403),
        "wrong session"
    );

    let expired = "e".repeat(64);
    s.app
        .state
        .store
        .insert_ticket(&Ticket {
            ticket_hash: ensemble_server::auth::tokens::digest(&expired),
            session_id: SessionId::parse(&s.session).unwrap(),
            participant: Participant::Guest {
                display_name: "Late".into(),
            },
            role: Role::Viewer,
            expires_at: now_ms() - 1,
        })
        .await
        .unwrap();
    assert_eq!(
        connect(base, &s.session, &expired, None).await.err(),
        Some(401),
        "expired"
    );

    let t = s.ticket(&s.owner).await;
    assert_eq!(
        connect(base, &s.session, &t, Some("https://evil.example"))
            .await
            .err(),
        Some(403),
        "bad origin"
    );
    // The refused handshake did not spend the ticket.
    let own = s.app.addr.clone();
    assert!(
        connect(base, &s.session, &t, Some(&own)).await.is_ok(),
        "own origin"
    );
}

async fn a_downgrade_and_a_removal_take_effect_live(b: Backend) {
    let s = session(b).await;
    let (ed_token, ed_id) = s.member("editor1", "editor").await;
    let (leaver_token, gone_id) = s.member("leaver", "editor").await;
    let mut owner = s.join(&s.owner).await;
    let mut editor = s.join(&ed_token).await;
    let mut leaver = s.join(&leaver_token).await;

    editor.append("before ").await;
    owner.wait_text(WAIT, "before ").await;

    let r = s
        .app
        .client
        .put(
            s.app
                .url(&format!("/api/sessions/{}/members/{ed_id}", s.session)),
        )
        .bearer_auth(&s.owner)
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The downgrade reaches the live connection at once: it is told, and its
    // next edit is refused.
    let told = editor.events_until(WAIT, "session.role").await;
    assert_eq!(told.last().unwrap()["role"], "viewer", "{told:?}");
    editor.append("x").await;
    let denied = match editor.until(WAIT, |e| matches!(e, Event::Denied(_))).await {
        Event::Denied(reason) => reason,
        _ => unreachable!(),
    };
    assert!(denied.contains("read-only"), "{denied}");
    owner.append("after").await;
    leaver.wait_text(WAIT, "before after").await;

    let r = s
        .app
        .client
        .delete(
            s.app
                .url(&format!("/api/sessions/{}/members/{gone_id}", s.session)),
        )
        .bearer_auth(&s.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let closed = leaver.until(WAIT, |e| matches!(e, Event::Closed(..))).await;
    assert!(
        matches!(&closed, Event::Closed(1008, r) if r.contains("removed")),
        "{closed:?}"
    );
}

/// The owner renames the session: everyone in it is told at once, the list
/// shows it, and only the owner may, with a valid title.
async fn a_rename_reaches_everyone_in_the_session(b: Backend) {
    let s = session(b).await;
    let (ed_token, _) = s.member("edith", "editor").await;
    let mut editor = s.join(&ed_token).await;
    let url = s.app.url(&format!("/api/sessions/{}", s.session));
    let patch = |token: &str, title: &str| {
        s.app
            .client
            .patch(&url)
            .bearer_auth(token)
            .json(&json!({ "title": title }))
            .send()
    };
    let r = patch(&ed_token, "Mine now").await.unwrap();
    assert_eq!(r.status(), 403);
    let r = patch(&s.owner, "   ").await.unwrap();
    assert_eq!(r.status(), 422);
    let r = patch(&s.owner, "Week 2: functions").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["title"],
        "Week 2: functions"
    );
    let told = editor.events_until(WAIT, "session.title").await;
    assert_eq!(told.last().unwrap()["title"], "Week 2: functions");
    assert_eq!(told.len(), 1, "the refused renames told nobody: {told:?}");
    let list = s.app.get_as(&ed_token, "/api/sessions").await;
    assert_eq!(list["sessions"][0]["title"], "Week 2: functions");
}

#[tokio::test]
async fn a_member_can_leave_but_the_owner_cannot() {
    let s = session(Backend::Sqlite).await;
    let (token, id) = s.member("leah", "editor").await;
    let (_, other) = s.member("omar", "editor").await;
    let mut leah = s.join(&token).await;
    let delete = |token: &str, user: &str| {
        s.app
            .client
            .delete(
                s.app
                    .url(&format!("/api/sessions/{}/members/{user}", s.session)),
            )
            .bearer_auth(token)
            .send()
    };
    // A member cannot remove someone else, nor the owner leave.
    assert_eq!(delete(&token, &other).await.unwrap().status(), 403);
    let owner_id = s.app.get_as(&s.owner, "/api/me").await;
    let r = delete(&s.owner, owner_id["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Leaving: gone from their list, their sockets closed, no more tickets.
    assert_eq!(delete(&token, &id).await.unwrap().status(), 204);
    let closed = leah.until(WAIT, |e| matches!(e, Event::Closed(..))).await;
    assert!(matches!(closed, Event::Closed(1008, _)), "{closed:?}");
    let list = s.app.get_as(&token, "/api/sessions").await;
    assert_eq!(list["sessions"], json!([]));
    let r = s
        .app
        .client
        .post(s.app.url(&format!("/api/sessions/{}/ticket", s.session)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        delete(&token, &id).await.unwrap().status(),
        404,
        "left already"
    );
}

#[tokio::test]
async fn bad_frames_close_only_that_connection() {
    let s = session(Backend::Sqlite).await;
    let mut good = s.join(&s.owner).await;
    let mut bad = s.join(&s.owner).await;
    bad.send_raw(vec![0, 2, 0xff, 0xff, 0xff, 0xff, 0x7f]).await;
    let closed = bad.until(WAIT, |e| matches!(e, Event::Closed(..))).await;
    assert!(matches!(closed, Event::Closed(1002, _)), "{closed:?}");
    good.append("still fine").await;
    let mut third = s.join(&s.owner).await;
    third.wait_text(WAIT, "still fine").await;
}

#[tokio::test]
async fn oversized_messages_are_refused_with_a_reason() {
    let s = session(Backend::Sqlite).await;
    let mut c = s.join(&s.owner).await;
    let mut big = vec![0u8, 2];
    big.extend(std::iter::repeat_n(0x41, (1 << 20) + 10));
    c.send_raw(big).await;
    let closed = c.until(WAIT, |e| matches!(e, Event::Closed(..))).await;
    assert!(matches!(closed, Event::Closed(1009, _)), "{closed:?}");
}

#[tokio::test]
async fn type_100_commands_get_an_error_event_and_the_connection_stays() {
    let s = session(Backend::Sqlite).await;
    let mut c = s.join(&s.owner).await;
    let mut frame = vec![100u8];
    let json = br#"{"type":"nope"}"#;
    frame.push(json.len() as u8);
    frame.extend_from_slice(json);
    c.send_raw(frame).await;
    let e = c.until(WAIT, |e| matches!(e, Event::Custom(_))).await;
    let Event::Custom(text) = e else {
        unreachable!()
    };
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["code"].as_str()),
        (Some("error"), Some("unknown_type"))
    );
    c.append("alive").await;
    let mut other = s.join(&s.owner).await;
    other.wait_text(WAIT, "alive").await;
}
