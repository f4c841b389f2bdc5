//! The room's decoder against hostile input, through the public API only.
//!
//! A corpus of valid frames (sync step 1/2 and updates with every supported
//! kind of content, awareness, query, auth, type 100) is damaged every way a
//! broken or malicious client could: exhaustively (every single-bit flip,
//! every truncation, a huge varint inserted at every offset) and randomly
//! (proptest: several mutations at once, random bytes behind a valid type
//! byte). For every frame the room must not panic, and whenever it answers
//! with an error its text, state vector, snapshot and presence must be
//! exactly what they were. When a damaged frame still happens to be a valid
//! update, the update it asks us to persist must rebuild the same text.
//! Bounded: about 25,000 frames, well under a second in a debug build;
//! `ROOM_FUZZ_CASES=100000` hunts longer.

use ensemble_core::room::{encode_custom, encode_permission_denied, ConnId, Room, RoomLimits};
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::sync::OnceLock;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::types::Attrs;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Array, Doc, Map, ReadTxn, StateVector, Text, Transact, Update, WriteTxn};

const EDITOR: ConnId = ConnId(1);
const VIEWER: ConnId = ConnId(2);

/// Varints no client should send: 2^64 - 1, u32::MAX, 2^31, and overlong.
const HUGE: [&[u8]; 4] = [
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x08],
    &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
];

struct Fixture {
    /// The room's starting state: some text with a deletion.
    snapshot: Vec<u8>,
    /// Valid frames a client could send.
    corpus: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    let server = Doc::with_client_id(1);
    let code = server.get_or_insert_text("code");
    {
        let mut txn = server.transact_mut();
        code.insert(&mut txn, 0, "print('hello, world')\n");
        code.remove_range(&mut txn, 5, 3);
    }
    let snapshot = server
        .transact()
        .encode_state_as_update_v1(&StateVector::default());

    // A client that knows the server's state, then edits in many ways.
    let client = Doc::with_client_id(2);
    let text = client.get_or_insert_text("code");
    client
        .transact_mut()
        .apply_update(Update::decode_v1(&snapshot).expect("snapshot decodes"))
        .expect("snapshot applies");
    let before = client.transact().state_vector();
    // Some history, so step 2 holds many blocks and a real delete set.
    for i in 0..40u32 {
        let mut txn = client.transact_mut();
        let len = text.len(&txn);
        if i % 3 == 2 {
            text.remove_range(&mut txn, (i * 7) % len, 1);
        } else {
            text.insert(&mut txn, (i * 5) % (len + 1), "ab");
        }
    }
    let insert_middle = {
        let mut txn = client.transact_mut();
        text.insert(&mut txn, 4, "é🐍");
        txn.encode_update_v1()
    };
    let delete_only = {
        let mut txn = client.transact_mut();
        text.remove_range(&mut txn, 0, 2);
        txn.encode_update_v1()
    };
    let rich = {
        let mut txn = client.transact_mut();
        let bold = Attrs::from([("bold".into(), Any::Bool(true))]);
        text.insert_with_attributes(&mut txn, 1, "B", bold);
        let pair = Any::Array(vec![Any::from(1.5), Any::Null].into());
        text.insert_embed(&mut txn, 0, pair);
        let list = txn.get_or_insert_array("list");
        let inner = Any::Array(vec![Any::from("deep")].into());
        list.insert(&mut txn, 0, Any::Array(vec![inner].into()));
        list.insert(&mut txn, 0, Any::from(-7i64));
        let meta = txn.get_or_insert_map("meta");
        meta.insert(&mut txn, "title", "t");
        meta.insert(&mut txn, "bytes", Any::from(vec![1u8, 2, 3]));
        txn.encode_update_v1()
    };
    let step2 = client.transact().encode_state_as_update_v1(&before);

    let mut awareness = Awareness::new(Doc::with_client_id(9));
    awareness.set_local_state_raw(r##"{"user":{"name":"ada","color":"#30bced"}}"##);
    let presence = Message::Awareness(awareness.update().expect("awareness")).encode_v1();
    awareness.clean_local_state();
    let gone = Message::Awareness(
        awareness
            .update_with_clients([awareness.client_id()])
            .expect("awareness"),
    )
    .encode_v1();

    let sync = |m: SyncMessage| Message::Sync(m).encode_v1();
    let corpus = vec![
        sync(SyncMessage::SyncStep1(before.clone())),
        sync(SyncMessage::SyncStep1(StateVector::default())),
        sync(SyncMessage::SyncStep2(step2)),
        sync(SyncMessage::Update(insert_middle)),
        sync(SyncMessage::Update(delete_only)),
        sync(SyncMessage::Update(rich)),
        presence,
        gone,
        vec![3],
        encode_permission_denied("nope"),
        encode_custom(r#"{"type":"run.stdin","data":"42\n"}"#),
    ];
    Fixture { snapshot, corpus }
}

/// A fresh room in the fixture's state, with an editor and a viewer.
fn fresh_room() -> Room {
    room_with(RoomLimits::default())
}

/// The same, with a document cap just above its current size, so updates
/// hit the size limit and its rollback.
fn tight_room() -> Room {
    let limits = RoomLimits {
        max_document_bytes: fixture().snapshot.len() + 40,
        ..RoomLimits::default()
    };
    room_with(limits)
}

fn room_with(limits: RoomLimits) -> Room {
    let snapshot = &fixture().snapshot;
    let mut room = Room::load(Some(snapshot), [], limits).expect("fixture loads");
    room.connect(EDITOR, true);
    room.connect(VIEWER, false);
    room
}

/// Feeds one frame and checks the properties; panics are failures too.
fn check(room: &mut Room, conn: ConnId, frame: &[u8]) {
    let before = (
        room.text(),
        room.state_vector(),
        room.snapshot(),
        room.presence_count(),
    );
    match room.receive(conn, frame) {
        Err(_) => {
            let after = (
                room.text(),
                room.state_vector(),
                room.snapshot(),
                room.presence_count(),
            );
            assert_eq!(after, before, "an error must leave the room unchanged");
        }
        Ok(out) => {
            if let Some(update) = out.persist {
                let rebuilt =
                    Room::load(Some(&before.2), [update.as_slice()], RoomLimits::default())
                        .expect("a persisted update loads");
                assert_eq!(rebuilt.text(), room.text());
            } else {
                assert_eq!(room.text(), before.0);
            }
        }
    }
}

#[test]
fn the_corpus_itself_is_accepted() {
    for frame in &fixture().corpus {
        let mut room = fresh_room();
        assert!(room.receive(EDITOR, frame).is_ok(), "{frame:?}");
    }
    // The long step 2 does not fit in the tight room, and changes nothing.
    let mut tight = tight_room();
    let refused = tight.receive(EDITOR, &fixture().corpus[2]).map(|_| ());
    assert_eq!(refused.map_err(|e| e.code()), Err("document_too_large"));
    check(&mut tight, EDITOR, &fixture().corpus[2]);
}

#[test]
fn every_bit_flip_and_truncation() {
    for (n, frame) in fixture().corpus.iter().enumerate() {
        let mut room = if n % 2 == 0 {
            fresh_room()
        } else {
            tight_room()
        };
        for cut in 0..frame.len() {
            check(&mut room, EDITOR, &frame[..cut]);
        }
        for index in 0..frame.len() {
            for bit in 0..8 {
                let mut damaged = frame.clone();
                damaged[index] ^= 1 << bit;
                let conn = if bit % 2 == 0 { EDITOR } else { VIEWER };
                check(&mut room, conn, &damaged);
            }
        }
    }
}

#[test]
fn a_huge_varint_at_every_offset() {
    for (n, frame) in fixture().corpus.iter().enumerate() {
        let mut room = if n % 2 == 0 {
            tight_room()
        } else {
            fresh_room()
        };
        for index in 0..=frame.len() {
            for huge in HUGE {
                let mut damaged = frame.clone();
                damaged.splice(index..index, huge.iter().copied());
                check(&mut room, EDITOR, &damaged);
                // Also overwrite instead of insert, so lengths stay put.
                let mut over = frame.clone();
                let end = (index + huge.len()).min(over.len());
                over.splice(index..end, huge.iter().copied());
                check(&mut room, VIEWER, &over);
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Remove(usize, usize),
    Insert(usize, Vec<u8>),
    Repeat(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..8usize).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<usize>(), 0..HUGE.len()).prop_map(|(i, h)| Mutation::Insert(i, HUGE[h].to_vec())),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(i, bytes)| Mutation::Insert(i, bytes)),
        (any::<usize>(), 1..16usize).prop_map(|(i, n)| Mutation::Repeat(i, n)),
    ]
}

fn apply(frame: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match m {
        Mutation::Flip(i, bit) if !frame.is_empty() => {
            let i = at(*i, frame.len());
            frame[i] ^= 1 << bit;
        }
        Mutation::Set(i, value) if !frame.is_empty() => {
            let i = at(*i, frame.len());
            frame[i] = *value;
        }
        Mutation::Truncate(i) => frame.truncate(at(*i, frame.len() + 1)),
        Mutation::Remove(i, n) if !frame.is_empty() => {
            let i = at(*i, frame.len());
            let end = (i + n).min(frame.len());
            frame.drain(i..end);
        }
        Mutation::Insert(i, bytes) => {
            let i = at(*i, frame.len() + 1);
            frame.splice(i..i, bytes.iter().copied());
        }
        Mutation::Repeat(i, n) if !frame.is_empty() => {
            let i = at(*i, frame.len());
            let end = (i + n).min(frame.len());
            let chunk = frame[i..end].to_vec();
            frame.splice(end..end, chunk);
        }
        _ => {}
    }
}

/// 1000 cases per property; set `ROOM_FUZZ_CASES` for a longer hunt.
fn config() -> Config {
    let cases = std::env::var("ROOM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_frames_never_panic_and_errors_change_nothing(
        steps in proptest::collection::vec(
            (any::<proptest::sample::Index>(), proptest::collection::vec(mutation(), 1..4), any::<bool>()),
            1..6,
        ),
        tight in any::<bool>(),
    ) {
        let corpus = &fixture().corpus;
        let mut room = if tight { tight_room() } else { fresh_room() };
        for (pick, mutations, as_editor) in steps {
            let mut frame = corpus[pick.index(corpus.len())].clone();
            for m in &mutations {
                apply(&mut frame, m);
            }
            check(&mut room, if as_editor { EDITOR } else { VIEWER }, &frame);
        }
    }

    #[test]
    fn random_bytes_behind_a_valid_type(
        prefix in prop_oneof![
            Just(vec![]), Just(vec![0, 0]), Just(vec![0, 1]), Just(vec![0, 2]),
            Just(vec![1]), Just(vec![2]), Just(vec![3]), Just(vec![100]),
        ],
        tail in proptest::collection::vec(any::<u8>(), 0..300),
        as_editor in any::<bool>(),
    ) {
        let mut frame = prefix;
        frame.extend(tail);
        let mut room = fresh_room();
        check(&mut room, if as_editor { EDITOR } else { VIEWER }, &frame);
    }
}
