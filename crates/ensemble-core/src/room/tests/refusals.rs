//! Refusals that must leave the room untouched: size limits, updates yrs
//! fails on half-way, unsupported content.

use super::*;

#[test]
fn oversized_messages_are_refused() {
    let limits = RoomLimits {
        max_message_bytes: 64,
        ..RoomLimits::default()
    };
    let mut room = Room::new(limits);
    room.connect(ConnId(1), true);
    let frame = encode_custom(&"x".repeat(100));
    assert_eq!(
        room.receive(ConnId(1), &frame),
        Err(ProtocolError::MessageTooLarge {
            size: frame.len(),
            limit: 64
        })
    );
}

#[test]
fn growth_past_the_document_cap_is_refused_and_not_applied() {
    let limits = RoomLimits {
        max_document_bytes: 200,
        ..RoomLimits::default()
    };
    let mut net = Net::new(Room::new(limits));
    let a = net.add(11, true);
    let b = net.add(22, true);
    net.connect(a);
    net.connect(b);
    net.clients[a].insert(0, &"a".repeat(100));
    net.settle();
    let before = (net.room.text(), net.room.state_vector(), net.log.len());

    let conn = net.clients[a].conn;
    let big = {
        let doc = Doc::with_client_id(99);
        let text = doc.get_or_insert_text(CODE);
        let mut txn = doc.transact_mut();
        yrs::Text::insert(&text, &mut txn, 0, &"b".repeat(150));
        txn.encode_update_v1()
    };
    let frame = message::encode_sync_update(&big);
    let err = net.room.receive(conn, &frame).unwrap_err();
    assert!(matches!(
        err,
        ProtocolError::DocumentTooLarge { limit: 200, .. }
    ));
    assert_eq!(err.code(), "document_too_large");
    assert_eq!(
        (net.room.text(), net.room.state_vector(), net.log.len()),
        before
    );
    assert!(net.room.document_size() <= 200);

    // Shrinking is still allowed.
    net.clients[a].remove(0, 90);
    net.settle();
    assert_eq!(net.room.text(), "a".repeat(10));
    assert_eq!(net.clients[b].text(), "a".repeat(10));
}

#[test]
fn an_update_failing_half_way_leaves_no_trace() {
    // Client 5 adds "ab" to `code`; client 6 adds an item whose parent is
    // that string item, which yrs rejects (InvalidParent) only after it has
    // integrated client 5's block.
    let mut update = vec![2];
    update.extend_from_slice(&[1, 5, 0, 4, 1, 4]);
    update.extend_from_slice(b"code");
    update.extend_from_slice(&[2, b'a', b'b']);
    update.extend_from_slice(&[1, 6, 0, 4, 0, 5, 0, 1, b'x']);
    update.push(0);
    let mut room = Room::new(RoomLimits::default());
    room.connect(ConnId(1), true);
    let before = (room.text(), room.state_vector(), room.snapshot());
    let err = room
        .receive(ConnId(1), &message::encode_sync_update(&update))
        .unwrap_err();
    assert!(matches!(err, ProtocolError::InvalidUpdate(_)), "{err}");
    assert_eq!((room.text(), room.state_vector(), room.snapshot()), before);
}

#[test]
fn nested_types_are_refused() {
    let doc = Doc::with_client_id(3);
    let update = {
        let mut txn = doc.transact_mut();
        let map = txn.get_or_insert_map("meta");
        yrs::Map::insert(&map, &mut txn, "inner", MapPrelim::default());
        txn.encode_state_as_update_v1(&StateVector::default())
    };
    let mut room = Room::new(RoomLimits::default());
    room.connect(ConnId(1), true);
    assert_eq!(
        room.receive(ConnId(1), &message::encode_sync_update(&update)),
        Err(ProtocolError::UnsupportedContent("nested shared types"))
    );
    assert_eq!(ProtocolError::UnsupportedContent("x").code(), "unsupported");
}

#[test]
fn client_ids_past_53_bits_are_refused() {
    // Yjs client ids are JavaScript safe integers; yrs asserts that in
    // debug builds and folds larger ids together in release builds.
    let mut room = Room::new(RoomLimits::default());
    room.connect(ConnId(1), true);
    let too_big = 1u64 << 53;
    let var = |v: u64| {
        let mut out = Vec::new();
        lib0::write_var_u64(&mut out, v);
        out
    };
    let before = (room.text(), room.state_vector(), room.snapshot());

    // Sync step 1 whose state vector names such a client.
    let mut sv = vec![1];
    sv.extend(var(too_big));
    sv.push(0);
    let err = room
        .receive(ConnId(1), &message::encode_sync_step1(&sv))
        .unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed { .. }), "{err}");

    // An update from such a client, and one deleting from one.
    let mut update = vec![1, 1];
    update.extend(var(too_big));
    update.extend_from_slice(&[0, 4, 1, 4]);
    update.extend_from_slice(b"code");
    update.extend_from_slice(&[1, b'x', 0]);
    let mut deletes = vec![0, 1];
    deletes.extend(var(too_big));
    deletes.extend_from_slice(&[1, 0, 1]);
    for bad in [update, deletes] {
        let err = room
            .receive(ConnId(1), &message::encode_sync_update(&bad))
            .unwrap_err();
        assert!(matches!(err, ProtocolError::Malformed { .. }), "{err}");
    }
    // The largest allowed id still works.
    let mut ok = vec![1];
    ok.extend(var(too_big - 1));
    ok.push(0);
    assert!(room
        .receive(ConnId(1), &message::encode_sync_step1(&ok))
        .is_ok());
    assert_eq!((room.text(), room.state_vector(), room.snapshot()), before);
}
