//! Who may do what: viewers are refused and told so, live downgrades, and
//! presence (relayed, and removed when a connection goes).

use super::*;

#[test]
fn a_viewer_is_told_no_and_its_edit_goes_nowhere() {
    let mut net = Net::new(Room::new(RoomLimits::default()));
    let editor = net.add(11, true);
    let viewer = net.add(22, false);
    net.connect(editor);
    net.connect(viewer);
    net.clients[editor].insert(0, "x = 1\n");
    net.settle();
    // Syncing on connect is not an edit: no complaint.
    assert!(net.clients[viewer].denied.is_empty());
    assert_eq!(net.clients[viewer].text(), "x = 1\n");

    let logged = net.log.len();
    net.clients[viewer].insert(0, "evil()\n");
    net.settle();
    assert_eq!(
        net.clients[viewer].denied,
        vec![READ_ONLY_REASON.to_owned()]
    );
    assert_eq!(net.room.text(), "x = 1\n");
    assert_eq!(net.clients[editor].text(), "x = 1\n");
    assert_eq!(net.log.len(), logged, "nothing persisted");

    // Reconnecting, its step 2 still carries the local change: refused again.
    net.disconnect(viewer);
    net.connect(viewer);
    net.settle();
    assert_eq!(net.clients[viewer].denied.len(), 2);
    assert_eq!(net.room.text(), "x = 1\n");
}

#[test]
fn viewers_may_sync_after_deletions_without_being_refused() {
    let mut net = Net::new(Room::new(RoomLimits::default()));
    let editor = net.add(11, true);
    net.connect(editor);
    net.clients[editor].insert(0, "abcdef");
    net.clients[editor].remove(1, 2);
    net.settle();
    let viewer = net.add(22, false);
    net.connect(viewer);
    net.settle();
    // Reconnecting sends our whole delete set in step 2; all of it is known.
    net.disconnect(viewer);
    net.connect(viewer);
    net.settle();
    assert!(net.clients[viewer].denied.is_empty());
    assert_eq!(net.clients[viewer].text(), "adef");
}

#[test]
fn a_live_downgrade_takes_effect_at_once() {
    let mut net = two_editors();
    let conn = net.clients[1].conn;
    assert!(net.room.set_role(conn, false));
    net.clients[1].insert(0, "nope");
    net.settle();
    assert_eq!(net.clients[1].denied.len(), 1);
    assert_eq!(net.room.text(), "");
    assert!(!net.room.set_role(ConnId(999), true));
}

#[test]
fn presence_is_relayed_and_removed_on_disconnect() {
    let mut net = Net::new(Room::new(RoomLimits::default()));
    let a = net.add(11, true);
    let b = net.add(22, false);
    net.connect(a);
    net.clients[a].set_presence(r#"{"user":{"name":"ada"}}"#);
    net.settle();
    // A newcomer gets everyone's state on connect; viewers share presence.
    net.connect(b);
    net.clients[b].set_presence(r#"{"user":{"name":"bob"}}"#);
    net.settle();
    assert_eq!(net.clients[b].sees(), vec![11, 22]);
    assert_eq!(net.clients[a].sees(), vec![11, 22]);
    assert_eq!(net.room.presence_count(), 2);

    net.disconnect(a);
    net.settle();
    assert_eq!(net.clients[b].sees(), vec![22]);
    assert_eq!(net.room.presence_count(), 1);
    assert_eq!(net.room.connection_count(), 1);

    // The same client comes back with a newer state and is seen again.
    net.connect(a);
    net.clients[a].set_presence(r#"{"user":{"name":"ada","back":true}}"#);
    net.settle();
    assert_eq!(net.clients[b].sees(), vec![11, 22]);
}

#[test]
fn query_awareness_is_answered_even_when_nobody_is_there() {
    let mut room = Room::new(RoomLimits::default());
    let frames = room.connect(ConnId(1), true);
    assert_eq!(frames.len(), 1, "only sync step 1 while nobody is present");
    let out = room.receive(ConnId(1), &[3]).expect("query accepted");
    assert_eq!(out.reply, vec![vec![1, 1, 0]]);
}

#[test]
fn unknown_connections_are_refused() {
    let mut room = Room::new(RoomLimits::default());
    assert_eq!(
        room.receive(ConnId(5), &[3]),
        Err(ProtocolError::UnknownConnection(ConnId(5)))
    );
}
