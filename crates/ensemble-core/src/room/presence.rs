//! Awareness (presence) for one room, with the rules of y-protocols'
//! `applyAwarenessUpdate` and the bookkeeping of the y-websocket server.
//!
//! Each awareness client id has a clock and a JSON state. An incoming entry
//! replaces ours when its clock is higher, or when it has the same clock and
//! a `null` state for a client we still show (that is how a client says it
//! left). A removed client keeps its clock as a tombstone, exactly like the
//! `meta` map in y-protocols: stock clients echo every awareness change they
//! receive back to the server, and without the clock such a late echo would
//! bring a departed client back. Tombstones are capped at [`MAX_TOMBSTONES`],
//! oldest dropped first, so a long-lived room cannot grow without bound.
//!
//! We do not use `yrs::sync::Awareness`: its `remove_state` bumps the clock
//! (y-protocols keeps it), so a client that comes back would stay invisible
//! for two of its 15-second renewals instead of one, and it never forgets
//! removed clients.
//!
//! Which connection "owns" a client id: the one whose update last set a
//! state for it. When a connection goes, the states it owns are removed and
//! the others are told at once (y-websocket keeps the same per-connection
//! set, but only for ids a connection added first). With the last writer
//! owning, a client that reconnected before its old socket was noticed dead
//! is not removed by that socket's end once it has renewed its state.

use super::error::ProtocolError;
use super::message::{encode_awareness, AwarenessEntry};
use super::{ConnId, RoomLimits};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// How many removed clients keep their clock.
pub(crate) const MAX_TOMBSTONES: usize = 4096;

/// One awareness client as the room knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientState {
    clock: u64,
    /// `None`: the client left; its clock is kept as a tombstone.
    state: Option<String>,
}

/// All awareness states of a room and who owns them.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    clients: HashMap<u64, ClientState>,
    /// Client id → the connection that owns it (present clients only).
    owner: HashMap<u64, ConnId>,
    /// Connection → the client ids it owns; the inverse of `owner`.
    owned: HashMap<ConnId, BTreeSet<u64>>,
    /// Removed clients with the clock they were removed at, oldest first.
    tombstones: VecDeque<(u64, u64)>,
}

impl Presence {
    /// Number of clients currently present (with a state). Every present
    /// client has an owner, so this is the size of `owner`.
    pub(crate) fn len(&self) -> usize {
        self.owner.len()
    }

    /// An awareness frame with every present client, or `None` if there is
    /// nobody (what y-websocket sends a new connection).
    pub(crate) fn all_states_frame(&self) -> Option<Vec<u8>> {
        (self.len() > 0).then(|| self.all_states_frame_even_empty())
    }

    /// An awareness frame with every present client, possibly empty (the
    /// answer to a query).
    pub(crate) fn all_states_frame_even_empty(&self) -> Vec<u8> {
        let mut present: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, c)| c.state.is_some())
            .map(|(&id, _)| id)
            .collect();
        present.sort_unstable();
        self.frame_for(&present)
    }

    /// Applies an awareness update from `conn`. Returns the frame to relay
    /// to the other connections (the changed clients with their new state),
    /// or `None` if nothing changed. On error nothing is applied.
    pub(crate) fn apply(
        &mut self,
        conn: ConnId,
        entries: &[AwarenessEntry<'_>],
        limits: &RoomLimits,
    ) -> Result<Option<Vec<u8>>, ProtocolError> {
        // Work out every change first, so a refused update changes nothing.
        // `changes` overlays `clients`, so a repeated id sees its earlier entry.
        let mut changes: HashMap<u64, ClientState> = HashMap::new();
        let mut order: Vec<u64> = Vec::new();
        for entry in entries {
            if let Some(state) = entry.state {
                if state.len() > limits.max_awareness_state_bytes {
                    return Err(ProtocolError::AwarenessStateTooLarge {
                        size: state.len(),
                        limit: limits.max_awareness_state_bytes,
                    });
                }
            }
            let current = changes
                .get(&entry.client)
                .or_else(|| self.clients.get(&entry.client));
            let (clock, present) = current.map_or((0, false), |c| (c.clock, c.state.is_some()));
            let newer = clock < entry.clock;
            let leaves = clock == entry.clock && entry.state.is_none() && present;
            if newer || leaves {
                let change = ClientState {
                    clock: entry.clock,
                    state: entry.state.map(str::to_owned),
                };
                if changes.insert(entry.client, change).is_none() {
                    order.push(entry.client);
                }
            }
        }
        if order.is_empty() {
            return Ok(None);
        }
        self.check_ownership_limit(conn, &changes, limits)?;

        order.sort_unstable();
        for &id in &order {
            let Some(change) = changes.remove(&id) else {
                continue;
            };
            if change.state.is_some() {
                if let Some(previous) = self.owner.insert(id, conn) {
                    if previous != conn {
                        self.disown(previous, id);
                    }
                }
                self.owned.entry(conn).or_default().insert(id);
            } else {
                if let Some(previous) = self.owner.remove(&id) {
                    self.disown(previous, id);
                }
                self.remember_tombstone(id, change.clock);
            }
            self.clients.insert(id, change);
        }
        Ok(Some(self.frame_for(&order)))
    }

    /// Takes `id` out of `conn`'s set.
    fn disown(&mut self, conn: ConnId, id: u64) {
        if let Some(ids) = self.owned.get_mut(&conn) {
            ids.remove(&id);
        }
    }

    /// Refuses changes that would leave `conn` owning too many client ids.
    fn check_ownership_limit(
        &self,
        conn: ConnId,
        changes: &HashMap<u64, ClientState>,
        limits: &RoomLimits,
    ) -> Result<(), ProtocolError> {
        let mut owned = self.owned.get(&conn).cloned().unwrap_or_default();
        for (id, change) in changes {
            if change.state.is_some() {
                owned.insert(*id);
            } else {
                owned.remove(id);
            }
        }
        if owned.len() > limits.max_awareness_clients_per_connection {
            return Err(ProtocolError::TooManyAwarenessClients {
                limit: limits.max_awareness_clients_per_connection,
            });
        }
        Ok(())
    }

    /// Forgets `conn` and removes the states it owned. Returns the frame
    /// telling the others they left, if there were any.
    pub(crate) fn disconnect(&mut self, conn: ConnId) -> Option<Vec<u8>> {
        let ids = self.owned.remove(&conn)?;
        let mut removed = Vec::new();
        for id in ids {
            self.owner.remove(&id);
            if let Some(client) = self.clients.get_mut(&id) {
                if client.state.take().is_some() {
                    let clock = client.clock;
                    removed.push(id);
                    self.remember_tombstone(id, clock);
                }
            }
        }
        (!removed.is_empty()).then(|| self.frame_for(&removed))
    }

    /// The awareness frame for `ids` as they are now.
    fn frame_for(&self, ids: &[u64]) -> Vec<u8> {
        let entries: Vec<(u64, u64, Option<&str>)> = ids
            .iter()
            .filter_map(|id| {
                self.clients
                    .get(id)
                    .map(|c| (*id, c.clock, c.state.as_deref()))
            })
            .collect();
        encode_awareness(entries.into_iter())
    }

    /// Records a removal and drops the oldest tombstones past the cap.
    fn remember_tombstone(&mut self, id: u64, clock: u64) {
        self.tombstones.push_back((id, clock));
        while self.tombstones.len() > MAX_TOMBSTONES {
            let Some((old_id, old_clock)) = self.tombstones.pop_front() else {
                break;
            };
            // Only forget it if it is still that same tombstone.
            let stale = self
                .clients
                .get(&old_id)
                .is_some_and(|c| c.state.is_none() && c.clock == old_clock);
            if stale {
                self.clients.remove(&old_id);
            }
        }
    }

    /// Number of client ids kept, present or tombstoned (for tests).
    #[cfg(test)]
    pub(crate) fn known(&self) -> usize {
        self.clients.len()
    }

    /// The JSON state of one client, if present (for tests).
    #[cfg(test)]
    pub(crate) fn state(&self, id: u64) -> Option<&str> {
        self.clients.get(&id).and_then(|c| c.state.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ConnId = ConnId(1);
    const B: ConnId = ConnId(2);

    fn entry(client: u64, clock: u64, state: Option<&str>) -> AwarenessEntry<'_> {
        AwarenessEntry {
            client,
            clock,
            state,
        }
    }

    #[test]
    fn newer_clocks_win_and_equal_echoes_are_ignored() {
        let limits = RoomLimits::default();
        let mut p = Presence::default();
        assert!(p
            .apply(A, &[entry(7, 1, Some("{}"))], &limits)
            .unwrap()
            .is_some());
        // an echo of the same clock from another client changes nothing
        assert_eq!(p.apply(B, &[entry(7, 1, Some("{}"))], &limits), Ok(None));
        assert_eq!(
            p.apply(A, &[entry(7, 0, Some("{\"x\":1}"))], &limits),
            Ok(None)
        );
        assert!(p
            .apply(A, &[entry(7, 2, Some("{\"x\":2}"))], &limits)
            .unwrap()
            .is_some());
        assert_eq!(p.state(7), Some("{\"x\":2}"));
        // same clock + null = the client left
        assert!(p.apply(A, &[entry(7, 2, None)], &limits).unwrap().is_some());
        assert_eq!(p.len(), 0);
        // a late echo of the old state does not bring it back
        assert_eq!(
            p.apply(B, &[entry(7, 2, Some("{\"x\":2}"))], &limits),
            Ok(None)
        );
    }

    #[test]
    fn disconnect_removes_what_the_connection_owns() {
        let limits = RoomLimits::default();
        let mut p = Presence::default();
        p.apply(A, &[entry(7, 1, Some("{}"))], &limits).unwrap();
        p.apply(B, &[entry(8, 1, Some("{}"))], &limits).unwrap();
        let frame = p.disconnect(A).expect("a removal frame");
        assert_eq!(frame, encode_awareness([(7, 1, None)].into_iter()));
        assert_eq!(p.state(7), None);
        assert_eq!(p.state(8), Some("{}"));
        assert_eq!(p.disconnect(A), None);
    }

    #[test]
    fn the_last_writer_owns_a_client() {
        let limits = RoomLimits::default();
        let mut p = Presence::default();
        p.apply(A, &[entry(7, 1, Some("{}"))], &limits).unwrap();
        // the same client reconnected on B before A was noticed gone
        p.apply(B, &[entry(7, 2, Some("{}"))], &limits).unwrap();
        assert_eq!(p.disconnect(A), None);
        assert_eq!(p.state(7), Some("{}"));
    }

    #[test]
    fn limits_refuse_without_changing_anything() {
        let limits = RoomLimits {
            max_awareness_state_bytes: 8,
            max_awareness_clients_per_connection: 2,
            ..RoomLimits::default()
        };
        let mut p = Presence::default();
        let big = "{\"a\":\"0123456789\"}";
        assert!(p.apply(A, &[entry(7, 1, Some(big))], &limits).is_err());
        let three = [
            entry(1, 1, Some("{}")),
            entry(2, 1, Some("{}")),
            entry(3, 1, Some("{}")),
        ];
        assert_eq!(
            p.apply(A, &three, &limits),
            Err(ProtocolError::TooManyAwarenessClients { limit: 2 })
        );
        assert_eq!(p.known(), 0);
    }

    #[test]
    fn tombstones_are_bounded() {
        let limits = RoomLimits::default();
        let mut p = Presence::default();
        for id in 0..(MAX_TOMBSTONES as u64 + 100) {
            p.apply(A, &[entry(id, 1, Some("{}"))], &limits).unwrap();
            p.apply(A, &[entry(id, 1, None)], &limits).unwrap();
        }
        assert_eq!(p.known(), MAX_TOMBSTONES);
    }
}
