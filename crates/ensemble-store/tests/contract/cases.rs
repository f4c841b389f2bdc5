//! The contract's test bodies. Each takes any `Store` and asserts what every
//! implementation must do.

use ensemble_core::ids::{RunId, SessionId, UserId};
use ensemble_core::model::{
    DocUpdate, Member, OutputChunk, Participant, Run, RunEnd, RunStatus, Session, ShareLink,
    Stream, Ticket, TokenRecord, User,
};
use ensemble_core::names::{Title, Username};
use ensemble_core::role::Role;
use ensemble_core::store::{Lease, Store, StoreError};
use ensemble_core::time::now_ms;

fn user(name: &str) -> User {
    User {
        id: UserId::generate(),
        username: Username::parse(name).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: now_ms(),
        failed_logins: 0,
        locked_until: None,
    }
}

fn member(u: &User, role: Role) -> Member {
    Member {
        user_id: u.id.clone(),
        username: u.username.clone(),
        role,
    }
}

fn session(owner: &User, title: &str) -> Session {
    let now = now_ms();
    Session {
        id: SessionId::generate(),
        title: Title::parse(title).unwrap(),
        owner: owner.id.clone(),
        members: vec![member(owner, Role::Owner)],
        links: vec![],
        created_at: now,
        updated_at: now,
    }
}

fn run(session: &SessionId, author: &User, node: &str) -> Run {
    Run {
        id: RunId::generate(),
        session_id: session.clone(),
        author: author.id.clone(),
        author_name: author.username.to_string(),
        code: "print('hi')\n".into(),
        status: RunStatus::Queued,
        exit_code: None,
        reason: None,
        node: node.into(),
        created_at: now_ms(),
        started_at: None,
        finished_at: None,
        duration_ms: None,
        output: vec![],
        truncated: false,
    }
}

fn ticket(session: &SessionId, expires_at: i64) -> Ticket {
    Ticket {
        ticket_hash: format!("{:064x}", rand::random::<u128>()),
        session_id: session.clone(),
        participant: Participant::Guest {
            display_name: "Visitor".into(),
        },
        role: Role::Viewer,
        expires_at,
    }
}

pub async fn usernames_are_unique_regardless_of_case(s: &dyn Store) {
    s.create_user(&user("Alice")).await.unwrap();
    let err = s.create_user(&user("alice")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    let err = s.create_user(&user("ALICE")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    s.create_user(&user("alice2")).await.unwrap();
}

pub async fn users_are_found_by_name_in_any_case_and_by_id(s: &dyn Store) {
    let u = user("Bob_the-2nd");
    s.create_user(&u).await.unwrap();
    let by_name = s
        .user_by_name(&Username::parse("bob_THE-2nd").unwrap())
        .await
        .unwrap()
        .expect("found ignoring case");
    assert_eq!(by_name, u);
    assert_eq!(by_name.username.as_str(), "Bob_the-2nd", "spelling kept");
    assert_eq!(s.user_by_id(&u.id).await.unwrap(), Some(u));
    assert_eq!(
        s.user_by_name(&Username::parse("nobody").unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.user_by_id(&UserId::generate()).await.unwrap(), None);
}

pub async fn login_failures_count_up_and_reset(s: &dyn Store) {
    let u = user("carol");
    s.create_user(&u).await.unwrap();
    for expected in 1..=3 {
        assert_eq!(s.record_login_failure(&u.id).await.unwrap(), expected);
    }
    let until = now_ms() + 60_000;
    s.set_locked_until(&u.id, Some(until)).await.unwrap();
    let got = s.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!((got.failed_logins, got.locked_until), (3, Some(until)));
    s.reset_login_failures(&u.id).await.unwrap();
    let got = s.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!((got.failed_logins, got.locked_until), (0, None));
}

pub async fn failures_of_names_without_an_account_are_kept_and_forgotten(s: &dyn Store) {
    assert_eq!(s.unknown_name_failures("ghost").await.unwrap(), None);
    for (n, at) in [(1, 1_000), (2, 2_000), (3, 5_000)] {
        assert_eq!(s.record_unknown_name_failure("ghost", at).await.unwrap(), n);
    }
    s.record_unknown_name_failure("other", 9_000).await.unwrap();
    assert_eq!(
        s.unknown_name_failures("ghost").await.unwrap(),
        Some((3, 5_000))
    );
    // Concurrent first failures of one name all count.
    let bumps = (0..8).map(|i| s.record_unknown_name_failure("racer", i));
    let mut counts: Vec<u32> = futures::future::try_join_all(bumps).await.unwrap();
    counts.sort_unstable();
    assert_eq!(counts, (1..=8).collect::<Vec<_>>());

    assert_eq!(s.forget_unknown_names(5_000).await.unwrap(), 1, "racer");
    assert_eq!(
        s.unknown_name_failures("ghost").await.unwrap(),
        Some((3, 5_000)),
        "not before its last failure"
    );
    assert_eq!(s.forget_unknown_names(5_001).await.unwrap(), 1);
    assert_eq!(s.unknown_name_failures("ghost").await.unwrap(), None);
    assert_eq!(
        s.unknown_name_failures("other").await.unwrap(),
        Some((1, 9_000))
    );
}

pub async fn password_hash_can_be_replaced(s: &dyn Store) {
    let u = user("dave");
    s.create_user(&u).await.unwrap();
    s.set_password_hash(&u.id, "$argon2id$v=19$new")
        .await
        .unwrap();
    let got = s.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!(got.password_hash, "$argon2id$v=19$new");
}

pub async fn tokens_are_kept_by_digest_and_revoked(s: &dyn Store) {
    let u = user("erin");
    s.create_user(&u).await.unwrap();
    let t = TokenRecord {
        token_hash: "ab".repeat(32),
        user_id: u.id.clone(),
        created_at: now_ms(),
        expires_at: now_ms() + 1000,
    };
    s.insert_token(&t).await.unwrap();
    assert!(matches!(
        s.insert_token(&t).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.token(&t.token_hash).await.unwrap(), Some(t.clone()));
    assert!(s.delete_token(&t.token_hash).await.unwrap());
    assert!(!s.delete_token(&t.token_hash).await.unwrap());
    assert_eq!(s.token(&t.token_hash).await.unwrap(), None);
}

pub async fn expired_tokens_are_swept(s: &dyn Store) {
    let u = user("frank");
    s.create_user(&u).await.unwrap();
    let now = now_ms();
    for (i, exp) in [now - 10, now - 5, now + 10_000].into_iter().enumerate() {
        let t = TokenRecord {
            token_hash: format!("{i:064}"),
            user_id: u.id.clone(),
            created_at: now - 100,
            expires_at: exp,
        };
        s.insert_token(&t).await.unwrap();
    }
    assert_eq!(s.delete_expired_tokens(now).await.unwrap(), 2);
    assert!(s.token(&format!("{:064}", 2)).await.unwrap().is_some());
}

pub async fn sessions_list_members_newest_first(s: &dyn Store) {
    let a = user("gina");
    let b = user("hank");
    let first = session(&a, "First");
    let second = session(&a, "Second");
    let hers = session(&b, "Not hers");
    for x in [&first, &second, &hers] {
        s.create_session(x).await.unwrap();
    }
    assert_eq!(s.session(&first.id).await.unwrap(), Some(first.clone()));
    let titles: Vec<String> = s
        .sessions_for_user(&a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.title.as_str().to_owned())
        .collect();
    assert_eq!(titles, ["Second", "First"]);
    assert!(matches!(
        s.create_session(&first).await,
        Err(StoreError::Conflict(_))
    ));
}

pub async fn members_are_added_changed_and_removed(s: &dyn Store) {
    let owner = user("ivan");
    let zed = user("zed");
    let bea = user("bea");
    let sess = session(&owner, "Pairing");
    s.create_session(&sess).await.unwrap();
    let t = now_ms() + 5;
    s.set_member(&sess.id, &member(&zed, Role::Viewer), t)
        .await
        .unwrap();
    s.set_member(&sess.id, &member(&bea, Role::Editor), t)
        .await
        .unwrap();
    s.set_member(&sess.id, &member(&zed, Role::Editor), t)
        .await
        .unwrap();
    let got = s.session(&sess.id).await.unwrap().unwrap();
    let roles: Vec<(&str, Role)> = got
        .members
        .iter()
        .map(|m| (m.username.as_str(), m.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("ivan", Role::Owner),
            ("bea", Role::Editor),
            ("zed", Role::Editor)
        ]
    );
    assert_eq!(got.updated_at, t);
    assert_eq!(s.sessions_for_user(&zed.id).await.unwrap().len(), 1);

    assert!(s.remove_member(&sess.id, &zed.id, t + 1).await.unwrap());
    assert!(!s.remove_member(&sess.id, &zed.id, t + 2).await.unwrap());
    let got = s.session(&sess.id).await.unwrap().unwrap();
    assert_eq!(got.role_of(&zed.id), None);
    assert_eq!(got.role_of(&bea.id), Some(Role::Editor));
    assert!(s.sessions_for_user(&zed.id).await.unwrap().is_empty());
}

pub async fn share_links_open_their_session_with_their_role(s: &dyn Store) {
    let owner = user("judy");
    let sess = session(&owner, "Class");
    s.create_session(&sess).await.unwrap();
    let now = now_ms();
    let view = ShareLink {
        link_hash: "a1".repeat(32),
        role: Role::Viewer,
        created_at: now,
    };
    let edit = ShareLink {
        link_hash: "b2".repeat(32),
        role: Role::Editor,
        created_at: now + 1,
    };
    s.add_link(&sess.id, &view, now).await.unwrap();
    s.add_link(&sess.id, &edit, now + 1).await.unwrap();
    let (found, role) = s.session_by_link(&view.link_hash).await.unwrap().unwrap();
    assert_eq!((found.id.clone(), role), (sess.id.clone(), Role::Viewer));
    assert_eq!(found.links, vec![view.clone(), edit.clone()]);
    assert_eq!(
        s.session_by_link(&edit.link_hash).await.unwrap().unwrap().1,
        Role::Editor
    );
    assert!(s
        .remove_link(&sess.id, &view.link_hash, now + 2)
        .await
        .unwrap());
    assert_eq!(s.session_by_link(&view.link_hash).await.unwrap(), None);
    assert!(!s
        .remove_link(&sess.id, &view.link_hash, now + 3)
        .await
        .unwrap());
}

pub async fn a_rename_changes_the_title_everywhere(s: &dyn Store) {
    let a = user("lena");
    let x = session(&a, "Week 1");
    s.create_session(&x).await.unwrap();
    let title = Title::parse("Week 1: loops").unwrap();
    s.rename_session(&x.id, &title, x.updated_at + 5)
        .await
        .unwrap();
    let got = s.session(&x.id).await.unwrap().unwrap();
    assert_eq!(got.title.as_str(), "Week 1: loops");
    assert_eq!(got.updated_at, x.updated_at + 5);
    assert_eq!(got.members, x.members, "nothing else changed");
    let listed = s.sessions_for_user(&a.id).await.unwrap();
    assert_eq!(listed[0].title.as_str(), "Week 1: loops");
    assert!(matches!(
        s.rename_session(&SessionId::generate(), &title, 1).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn deleting_a_session_removes_it_and_purging_removes_its_data(s: &dyn Store) {
    let (a, b) = (user("mira"), user("noah"));
    let (x, keep) = (session(&a, "Scratch"), session(&a, "Keep"));
    let link = ShareLink {
        link_hash: "d4".repeat(32),
        role: Role::Editor,
        created_at: 0,
    };
    for sess in [&x, &keep] {
        s.create_session(sess).await.unwrap();
        s.append_doc_updates(&sess.id, &updates(1..=4))
            .await
            .unwrap();
        s.compact_doc(&sess.id, b"state-through-2", 2)
            .await
            .unwrap();
        s.create_run(&run(&sess.id, &a, "n1")).await.unwrap();
    }
    s.set_member(&x.id, &member(&b, Role::Editor), 1)
        .await
        .unwrap();
    s.add_link(&x.id, &link, 1).await.unwrap();
    let x_run = run(&x.id, &b, "n1");
    s.create_run(&x_run).await.unwrap();
    s.acquire_lease(&x.id, "n1", now_ms(), 60_000, false)
        .await
        .unwrap();

    assert!(s.delete_session(&x.id).await.unwrap());
    assert_eq!(s.session(&x.id).await.unwrap(), None);
    assert_eq!(s.session_by_link(&link.link_hash).await.unwrap(), None);
    assert!(s.sessions_for_user(&b.id).await.unwrap().is_empty());
    let left: Vec<_> = s.sessions_for_user(&a.id).await.unwrap();
    assert_eq!(left.iter().map(|x| &x.id).collect::<Vec<_>>(), [&keep.id]);
    assert!(!s.delete_session(&x.id).await.unwrap(), "gone already");
    // Until it is purged, its rows are found as a deleted session's.
    assert_eq!(s.orphaned_sessions(10).await.unwrap(), vec![x.id.clone()]);
    assert!(s.orphaned_sessions(0).await.unwrap().is_empty());

    s.purge_session(&x.id).await.unwrap();
    s.purge_session(&x.id).await.unwrap();
    let doc = s.load_doc(&x.id).await.unwrap();
    assert_eq!((doc.snapshot, doc.updates.len()), (None, 0));
    assert!(s
        .runs_for_session(&x.id, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.run(&x_run.id).await.unwrap(), None);
    assert!(s.runs_for_user(&b.id, None, 10).await.unwrap().is_empty());
    // The lease went too: the node that held it learns at its next
    // renewal that it no longer did.
    assert_eq!(
        s.acquire_lease(&x.id, "n1", now_ms(), 60_000, false)
            .await
            .unwrap(),
        NEW
    );
    // The lease just re-taken is a deleted session's row too.
    assert_eq!(s.orphaned_sessions(10).await.unwrap(), vec![x.id.clone()]);
    s.purge_session(&x.id).await.unwrap();
    assert!(s.orphaned_sessions(10).await.unwrap().is_empty());

    // The other session kept everything.
    let kept = s.load_doc(&keep.id).await.unwrap();
    assert_eq!(kept.snapshot.as_deref(), Some(&b"state-through-2"[..]));
    assert_eq!(kept.updates.len(), 2);
    assert_eq!(
        s.runs_for_session(&keep.id, None, 10).await.unwrap().len(),
        1
    );
}

pub async fn changes_to_a_missing_session_are_not_found(s: &dyn Store) {
    let u = user("kate");
    let missing = SessionId::generate();
    let link = ShareLink {
        link_hash: "c3".repeat(32),
        role: Role::Viewer,
        created_at: 0,
    };
    assert!(matches!(
        s.set_member(&missing, &member(&u, Role::Editor), 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.add_link(&missing, &link, 1).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.session(&missing).await.unwrap(), None);
}

pub async fn tickets_work_once(s: &dyn Store) {
    let sid = SessionId::generate();
    let mut t = ticket(&sid, now_ms() + 60_000);
    t.participant = Participant::User {
        id: UserId::generate(),
        username: Username::parse("liam").unwrap(),
    };
    t.role = Role::Editor;
    s.insert_ticket(&t).await.unwrap();
    assert_eq!(
        s.take_ticket(&t.ticket_hash, now_ms()).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(s.take_ticket(&t.ticket_hash, now_ms()).await.unwrap(), None);
    let guest = ticket(&sid, now_ms() + 60_000);
    s.insert_ticket(&guest).await.unwrap();
    assert_eq!(
        s.take_ticket(&guest.ticket_hash, now_ms()).await.unwrap(),
        Some(guest)
    );
}

pub async fn concurrent_takes_of_one_ticket_give_it_to_one_caller(s: &dyn Store) {
    let t = ticket(&SessionId::generate(), now_ms() + 60_000);
    s.insert_ticket(&t).await.unwrap();
    let takes = (0..8).map(|_| s.take_ticket(&t.ticket_hash, now_ms()));
    let results = futures::future::join_all(takes).await;
    let won = results
        .into_iter()
        .filter(|r| matches!(r, Ok(Some(_))))
        .count();
    assert_eq!(won, 1);
}

pub async fn expired_tickets_are_refused(s: &dyn Store) {
    let now = now_ms();
    let t = ticket(&SessionId::generate(), now - 1);
    s.insert_ticket(&t).await.unwrap();
    assert_eq!(s.take_ticket(&t.ticket_hash, now).await.unwrap(), None);
    let old = ticket(&SessionId::generate(), now - 1);
    let fresh = ticket(&SessionId::generate(), now + 60_000);
    s.insert_ticket(&old).await.unwrap();
    s.insert_ticket(&fresh).await.unwrap();
    assert_eq!(s.delete_expired_tickets(now).await.unwrap(), 1);
    assert!(s
        .take_ticket(&fresh.ticket_hash, now)
        .await
        .unwrap()
        .is_some());
}

fn updates(range: std::ops::RangeInclusive<u64>) -> Vec<DocUpdate> {
    range
        .map(|seq| DocUpdate {
            seq,
            data: vec![seq as u8; 3],
        })
        .collect()
}

pub async fn doc_updates_load_in_order(s: &dyn Store) {
    let sid = SessionId::generate();
    assert_eq!(s.load_doc(&sid).await.unwrap().last_seq(), 0);
    s.append_doc_updates(&sid, &updates(1..=3)).await.unwrap();
    s.append_doc_updates(&sid, &updates(4..=4)).await.unwrap();
    s.append_doc_updates(&sid, &[]).await.unwrap();
    let other = SessionId::generate();
    s.append_doc_updates(&other, &updates(1..=2)).await.unwrap();
    let doc = s.load_doc(&sid).await.unwrap();
    assert_eq!(doc.snapshot, None);
    assert_eq!(doc.updates, updates(1..=4));
    assert_eq!(doc.last_seq(), 4);
}

pub async fn duplicate_doc_seq_is_a_conflict(s: &dyn Store) {
    let sid = SessionId::generate();
    s.append_doc_updates(&sid, &updates(1..=2)).await.unwrap();
    let err = s
        .append_doc_updates(&sid, &updates(2..=3))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    assert_eq!(
        s.load_doc(&sid).await.unwrap().updates[..2],
        updates(1..=2)[..]
    );
}

pub async fn compaction_keeps_every_update(s: &dyn Store) {
    let sid = SessionId::generate();
    s.append_doc_updates(&sid, &updates(1..=5)).await.unwrap();
    s.compact_doc(&sid, b"state-through-3", 3).await.unwrap();
    let doc = s.load_doc(&sid).await.unwrap();
    assert_eq!(doc.snapshot.as_deref(), Some(&b"state-through-3"[..]));
    assert_eq!(doc.snapshot_seq, 3);
    assert_eq!(doc.updates, updates(4..=5));
    s.append_doc_updates(&sid, &updates(6..=6)).await.unwrap();
    s.compact_doc(&sid, b"state-through-6", 6).await.unwrap();
    let doc = s.load_doc(&sid).await.unwrap();
    assert_eq!(
        (doc.snapshot_seq, doc.updates.len(), doc.last_seq()),
        (6, 0, 6)
    );
}

pub async fn an_older_snapshot_never_replaces_a_newer_one(s: &dyn Store) {
    let sid = SessionId::generate();
    s.append_doc_updates(&sid, &updates(1..=4)).await.unwrap();
    s.compact_doc(&sid, b"through-4", 4).await.unwrap();
    s.compact_doc(&sid, b"through-2", 2).await.unwrap();
    let doc = s.load_doc(&sid).await.unwrap();
    assert_eq!(
        (doc.snapshot.as_deref(), doc.snapshot_seq),
        (Some(&b"through-4"[..]), 4)
    );
}

pub async fn large_binary_updates_round_trip(s: &dyn Store) {
    let sid = SessionId::generate();
    let data: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i * 7 + 3) as u8).collect();
    s.append_doc_updates(
        &sid,
        &[DocUpdate {
            seq: 1,
            data: data.clone(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(s.load_doc(&sid).await.unwrap().updates[0].data, data);
}

pub async fn runs_keep_code_status_and_output(s: &dyn Store) {
    let u = user("mia");
    let sid = SessionId::generate();
    let mut r = run(&sid, &u, "node-a");
    r.code = "for i in range(3):\n    print(i, '→ ünïcode')\n".into();
    s.create_run(&r).await.unwrap();
    assert_eq!(s.run(&r.id).await.unwrap(), Some(r.clone()));
    s.mark_run_started(&r.id, r.created_at + 5).await.unwrap();
    assert_eq!(
        s.run(&r.id).await.unwrap().unwrap().status,
        RunStatus::Running
    );
    let output = vec![
        OutputChunk {
            seq: 1,
            stream: Stream::Stdout,
            data: "0 → ünïcode\n".into(),
        },
        OutputChunk {
            seq: 2,
            stream: Stream::Stdin,
            data: "42\n".into(),
        },
        OutputChunk {
            seq: 3,
            stream: Stream::Stderr,
            data: "Traceback".into(),
        },
    ];
    let end = RunEnd {
        status: RunStatus::Finished,
        exit_code: Some(1),
        reason: Some("exited with code 1".into()),
        started_at: None,
        finished_at: r.created_at + 400,
        duration_ms: Some(395),
        output: output.clone(),
        truncated: true,
    };
    s.finish_run(&r.id, &end).await.unwrap();
    let got = s.run(&r.id).await.unwrap().unwrap();
    assert_eq!(got.code, r.code);
    assert_eq!(
        (got.status, got.exit_code, got.reason.as_deref()),
        (RunStatus::Finished, Some(1), Some("exited with code 1"))
    );
    assert_eq!(
        (got.started_at, got.finished_at, got.duration_ms),
        (Some(r.created_at + 5), Some(r.created_at + 400), Some(395))
    );
    assert_eq!(got.output, output);
    assert!(got.truncated);
}

pub async fn runs_are_listed_newest_first_and_paged(s: &dyn Store) {
    let (a, b) = (user("nina"), user("omar"));
    let sid = SessionId::generate();
    let mut ids = Vec::new();
    for i in 0..7 {
        let r = run(&sid, if i % 2 == 0 { &a } else { &b }, "n");
        s.create_run(&r).await.unwrap();
        ids.push(r.id);
    }
    s.create_run(&run(&SessionId::generate(), &a, "n"))
        .await
        .unwrap();
    let newest_first: Vec<RunId> = ids.iter().rev().cloned().collect();

    let page1 = s.runs_for_session(&sid, None, 3).await.unwrap();
    let got1: Vec<RunId> = page1.iter().map(|r| r.id.clone()).collect();
    assert_eq!(got1, newest_first[..3]);
    let page2 = s.runs_for_session(&sid, got1.last(), 3).await.unwrap();
    let got2: Vec<RunId> = page2.iter().map(|r| r.id.clone()).collect();
    assert_eq!(got2, newest_first[3..6]);
    let page3 = s.runs_for_session(&sid, got2.last(), 3).await.unwrap();
    assert_eq!(
        page3.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        newest_first[6..]
    );
    assert_eq!(page1[0].author_name, "nina");

    let by_b: Vec<RunId> = s
        .runs_for_user(&b.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(by_b, vec![ids[5].clone(), ids[3].clone(), ids[1].clone()]);
}

pub async fn restart_interrupts_only_this_nodes_unfinished_runs(s: &dyn Store) {
    let u = user("pia");
    let sid = SessionId::generate();
    let queued = run(&sid, &u, "node-a");
    let running = run(&sid, &u, "node-a");
    let done = run(&sid, &u, "node-a");
    let elsewhere = run(&sid, &u, "node-b");
    for r in [&queued, &running, &done, &elsewhere] {
        s.create_run(r).await.unwrap();
    }
    s.mark_run_started(&running.id, now_ms()).await.unwrap();
    let end = RunEnd {
        status: RunStatus::Finished,
        exit_code: Some(0),
        reason: None,
        started_at: Some(now_ms()),
        finished_at: now_ms(),
        duration_ms: Some(1),
        output: vec![],
        truncated: false,
    };
    s.finish_run(&done.id, &end).await.unwrap();
    assert_eq!(
        s.interrupt_unfinished_runs("node-a", now_ms())
            .await
            .unwrap(),
        2
    );
    let status = |id: RunId| async move { s.run(&id).await.unwrap().unwrap().status };
    assert_eq!(status(queued.id).await, RunStatus::Interrupted);
    assert_eq!(status(running.id).await, RunStatus::Interrupted);
    assert_eq!(status(done.id).await, RunStatus::Finished);
    assert_eq!(status(elsewhere.id).await, RunStatus::Queued);
}

pub async fn finishing_a_missing_run_is_not_found(s: &dyn Store) {
    let end = RunEnd {
        status: RunStatus::Cancelled,
        exit_code: None,
        reason: Some("cancelled by alice".into()),
        started_at: None,
        finished_at: now_ms(),
        duration_ms: None,
        output: vec![],
        truncated: false,
    };
    assert!(matches!(
        s.finish_run(&RunId::generate(), &end).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.mark_run_started(&RunId::generate(), 1).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.run(&RunId::generate()).await.unwrap(), None);
}

/// Taken where there was no lease.
const NEW: Lease = Lease::Acquired {
    previous: None,
    wanted_by: None,
    renewed: false,
};

/// Renewed by its holder.
const RENEWED: Lease = Lease::Acquired {
    previous: None,
    wanted_by: None,
    renewed: true,
};

pub async fn a_lease_is_held_by_one_node_until_it_expires(s: &dyn Store) {
    let sid = SessionId::generate();
    let now = now_ms();
    assert_eq!(
        s.acquire_lease(&sid, "a", now, 1000, false).await.unwrap(),
        NEW
    );
    assert_eq!(
        s.acquire_lease(&sid, "b", now + 10, 1000, false)
            .await
            .unwrap(),
        Lease::HeldBy("a".into())
    );
    // The holder renews.
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 500, 1000, false)
            .await
            .unwrap(),
        RENEWED
    );
    assert_eq!(
        s.acquire_lease(&sid, "b", now + 1400, 1000, false)
            .await
            .unwrap(),
        Lease::HeldBy("a".into())
    );
    // Expired: another node takes it over and learns from whom.
    assert_eq!(
        s.acquire_lease(&sid, "b", now + 1600, 1000, false)
            .await
            .unwrap(),
        Lease::Acquired {
            previous: Some("a".into()),
            wanted_by: None,
            renewed: false,
        }
    );
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 1700, 1000, false)
            .await
            .unwrap(),
        Lease::HeldBy("b".into())
    );
    // Only the holder can release.
    s.release_lease(&sid, "a").await.unwrap();
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 1800, 1000, false)
            .await
            .unwrap(),
        Lease::HeldBy("b".into())
    );
    s.release_lease(&sid, "b").await.unwrap();
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 1900, 1000, false)
            .await
            .unwrap(),
        NEW
    );
}

pub async fn a_refused_node_can_ask_the_holder_for_the_session(s: &dyn Store) {
    let sid = SessionId::generate();
    let now = now_ms();
    let wanted = |by: &str| Lease::Acquired {
        previous: None,
        wanted_by: Some(by.into()),
        renewed: true,
    };
    assert_eq!(
        s.acquire_lease(&sid, "a", now, 1000, true).await.unwrap(),
        NEW
    );
    // Refused without asking: the holder hears nothing.
    assert_eq!(
        s.acquire_lease(&sid, "b", now + 10, 1000, false)
            .await
            .unwrap(),
        Lease::HeldBy("a".into())
    );
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 20, 1000, false)
            .await
            .unwrap(),
        RENEWED
    );
    // Refused and asking: the holder hears it at its renewals...
    assert_eq!(
        s.acquire_lease(&sid, "b", now + 100, 1000, true)
            .await
            .unwrap(),
        Lease::HeldBy("a".into())
    );
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 200, 1000, false)
            .await
            .unwrap(),
        wanted("b")
    );
    // ...the latest asker wins...
    assert_eq!(
        s.acquire_lease(&sid, "c", now + 300, 1000, true)
            .await
            .unwrap(),
        Lease::HeldBy("a".into())
    );
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 400, 1000, false)
            .await
            .unwrap(),
        wanted("c")
    );
    // ...and a request older than one TTL is forgotten.
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 1300, 1000, false)
            .await
            .unwrap(),
        RENEWED
    );
    // Releasing drops the request with the lease; the asker takes it clean.
    assert_eq!(
        s.acquire_lease(&sid, "b", now + 1400, 1000, true)
            .await
            .unwrap(),
        Lease::HeldBy("a".into())
    );
    s.release_lease(&sid, "a").await.unwrap();
    assert_eq!(
        s.acquire_lease(&sid, "b", now + 1500, 1000, true)
            .await
            .unwrap(),
        NEW
    );
    assert_eq!(
        s.acquire_lease(&sid, "b", now + 1600, 1000, true)
            .await
            .unwrap(),
        RENEWED
    );
    // A takeover after expiry clears a request made to the dead holder.
    assert_eq!(
        s.acquire_lease(&sid, "c", now + 1700, 1000, true)
            .await
            .unwrap(),
        Lease::HeldBy("b".into())
    );
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 2700, 1000, true)
            .await
            .unwrap(),
        Lease::Acquired {
            previous: Some("b".into()),
            wanted_by: None,
            renewed: false,
        }
    );
    assert_eq!(
        s.acquire_lease(&sid, "a", now + 2800, 1000, true)
            .await
            .unwrap(),
        RENEWED
    );
}

pub async fn concurrent_acquires_give_the_lease_to_one_node(s: &dyn Store) {
    let sid = SessionId::generate();
    let now = now_ms();
    let nodes: Vec<String> = (0..6).map(|i| format!("n{i}")).collect();
    let tries = nodes
        .iter()
        .map(|n| s.acquire_lease(&sid, n, now, 10_000, true));
    let won = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Lease::Acquired { .. })))
        .count();
    assert_eq!(won, 1);
}

pub async fn a_takeover_interrupts_the_dead_nodes_runs_in_that_session(s: &dyn Store) {
    let u = user("quinn");
    let sid = SessionId::generate();
    let dead = run(&sid, &u, "dead");
    let other_session = run(&SessionId::generate(), &u, "dead");
    s.create_run(&dead).await.unwrap();
    s.create_run(&other_session).await.unwrap();
    assert_eq!(
        s.interrupt_session_runs(&sid, "dead", now_ms())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.run(&dead.id).await.unwrap().unwrap().status,
        RunStatus::Interrupted
    );
    assert_eq!(
        s.run(&other_session.id).await.unwrap().unwrap().status,
        RunStatus::Queued
    );
}
