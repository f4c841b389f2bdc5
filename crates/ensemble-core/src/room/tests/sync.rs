//! Syncing and persistence: convergence, late joiners, what is persisted and
//! relayed, rebuilding from the store, updates that arrive ahead of us.

use super::*;

#[test]
fn three_editors_converge_under_concurrent_edits() {
    for seed in [0x5eed, 1, 2, 3, 42] {
        converge_with(seed);
    }
}

fn converge_with(seed: u64) {
    let mut net = two_editors();
    let third = net.add(33, true);
    net.connect(third);
    net.settle();
    let mut rng = Rng(seed);
    for _ in 0..300 {
        let i = rng.below(3) as usize;
        let len = u64::from(net.clients[i].len());
        if rng.below(4) == 0 {
            let (at, n) = (rng.below(len + 1) as u32, 1 + rng.below(3) as u32);
            net.clients[i].remove(at, n);
        } else {
            let chunk = ["x", "yz", "é", "🐍", "\n"][rng.below(5) as usize];
            net.clients[i].insert(rng.below(len + 1) as u32, chunk);
        }
        // Let edits pile up on every side before they cross.
        match rng.below(6) {
            0 => net.settle(),
            1 => {
                net.flush(rng.below(3) as usize);
            }
            _ => {}
        }
    }
    net.settle();
    let text = net.room.text();
    assert!(!text.is_empty());
    for client in &net.clients {
        assert_eq!(client.text(), text);
    }
    // What was persisted rebuilds exactly what everyone sees.
    let log = net.log.iter().map(Vec::as_slice);
    let reloaded = Room::load(None, log, RoomLimits::default()).expect("the log loads");
    assert_eq!(reloaded.text(), text);
}

#[test]
fn a_late_joiner_gets_everything_and_the_log_rebuilds_it() {
    let mut net = two_editors();
    net.clients[0].insert(0, "print('hi')\n");
    net.clients[1].insert(0, "# greeting\n");
    net.settle();
    let late = net.add(33, true);
    net.connect(late);
    net.settle();
    assert_eq!(net.clients[late].text(), net.room.text());

    let loaded = Room::load(
        None,
        net.log.iter().map(Vec::as_slice),
        RoomLimits::default(),
    )
    .expect("the persisted log loads");
    assert_eq!(loaded.text(), net.room.text());
    assert_eq!(loaded.state_vector(), net.room.state_vector());
}

#[test]
fn snapshot_plus_tail_rebuilds_the_same_document() {
    let mut net = two_editors();
    net.clients[0].insert(0, "def f():\n    return 1\n");
    net.settle();
    let snapshot = net.room.snapshot();
    let already = net.log.len();
    net.clients[1].insert(0, "import os\n");
    net.clients[0].remove(0, 3);
    net.settle();
    let tail: Vec<&[u8]> = net.log[already..].iter().map(Vec::as_slice).collect();
    let loaded =
        Room::load(Some(&snapshot), tail, RoomLimits::default()).expect("snapshot and tail load");
    assert_eq!(loaded.text(), net.room.text());
    assert_eq!(loaded.state_vector(), net.room.state_vector());
}

#[test]
fn corrupt_stored_data_is_an_error() {
    let good = Room::new(RoomLimits::default()).snapshot();
    assert!(matches!(
        Room::load(Some(&[1, 2, 3]), [], RoomLimits::default()),
        Err(LoadError::Snapshot(_))
    ));
    let log: [&[u8]; 2] = [&good, &[0xff, 0xff]];
    assert!(matches!(
        Room::load(None, log, RoomLimits::default()),
        Err(LoadError::Update { index: 1, .. })
    ));
}

#[test]
fn step1_with_an_empty_state_vector_gets_the_snapshot() {
    let mut net = two_editors();
    net.clients[0].insert(0, "abc");
    net.settle();
    let out = net
        .room
        .receive(net.clients[0].conn, &[0, 0, 1, 0])
        .expect("step 1");
    let mut expected = vec![0, 1];
    lib0::write_bytes(&mut expected, &net.room.snapshot());
    assert_eq!(out.reply, vec![expected]);
}

#[test]
fn an_editor_update_is_persisted_then_relayed_as_received() {
    let mut room = Room::new(RoomLimits::default());
    room.connect(ConnId(1), true);
    let doc = Doc::with_client_id(8);
    let text = doc.get_or_insert_text(CODE);
    let update = {
        let mut txn = doc.transact_mut();
        yrs::Text::insert(&text, &mut txn, 0, "hi");
        txn.encode_update_v1()
    };
    let out = room
        .receive(ConnId(1), &message::encode_sync_update(&update))
        .expect("applied");
    assert_eq!(out.persist.as_ref(), Some(&update));
    assert_eq!(out.broadcast, vec![message::encode_sync_update(&update)]);
    assert!(out.reply.is_empty());
    // The same update again changes nothing: nothing to persist or relay.
    let again = room
        .receive(ConnId(1), &message::encode_sync_update(&update))
        .expect("accepted");
    assert_eq!(again, Outcome::default());
    assert_eq!(room.text(), "hi");
}

#[test]
fn an_update_ahead_of_us_asks_for_a_resync_and_changes_nothing() {
    // Client 8 edits `code` (clock 0) and then a map (clock 1). The map
    // update has no dependency on the first, but it leaves a gap in client
    // 8's clocks, which yrs would fill later in a different order.
    let doc = Doc::with_client_id(8);
    let text = doc.get_or_insert_text(CODE);
    let first = {
        let mut txn = doc.transact_mut();
        yrs::Text::insert(&text, &mut txn, 0, "a");
        txn.encode_update_v1()
    };
    let second = {
        let mut txn = doc.transact_mut();
        let meta = txn.get_or_insert_map("meta");
        yrs::Map::insert(&meta, &mut txn, "k", "v");
        txn.encode_update_v1()
    };
    let mut room = Room::new(RoomLimits::default());
    room.connect(ConnId(1), true);
    let empty_room = room.snapshot();
    let out = room
        .receive(ConnId(1), &message::encode_sync_update(&second))
        .expect("not an error");
    assert_eq!(
        out.reply,
        vec![message::encode_sync_step1(&room.state_vector())]
    );
    assert!(out.persist.is_none() && out.broadcast.is_empty());
    assert_eq!(room.snapshot(), empty_room);
    // As sync step 2, which should carry everything we lack, it is an error.
    assert_eq!(
        room.receive(ConnId(1), &message::encode_sync_step2(&second)),
        Err(ProtocolError::OutOfSync)
    );
    // In order, both apply.
    for update in [first, second] {
        let out = room
            .receive(ConnId(1), &message::encode_sync_update(&update))
            .expect("applies");
        assert_eq!(out.persist, Some(update));
    }
    assert_eq!(room.text(), "a");
}

#[test]
fn typing_during_the_handshake_after_offline_edits_converges() {
    let mut net = two_editors();
    net.clients[0].insert(0, "hello");
    net.settle();
    net.disconnect(1);
    net.clients[1].insert(0, "X");
    net.clients[0].insert(5, "!");
    net.settle();
    // B reconnects and types before its step 2 has gone out.
    net.connect(1);
    net.clients[1].insert(1, "Y");
    net.settle();
    let text = net.room.text();
    assert_eq!(text, "XYhello!");
    assert_eq!(net.clients[0].text(), text);
    assert_eq!(net.clients[1].text(), text);
    let loaded = Room::load(
        None,
        net.log.iter().map(Vec::as_slice),
        RoomLimits::default(),
    )
    .expect("the log loads");
    assert_eq!(loaded.text(), text);
}

#[test]
fn custom_messages_are_handed_to_the_caller() {
    let mut room = Room::new(RoomLimits::default());
    room.connect(ConnId(1), false);
    let out = room
        .receive(ConnId(1), &encode_custom(r#"{"type":"run.start"}"#))
        .expect("type 100 accepted");
    assert_eq!(out.custom.as_deref(), Some(r#"{"type":"run.start"}"#));
    assert!(out.reply.is_empty() && out.broadcast.is_empty() && out.persist.is_none());
}
