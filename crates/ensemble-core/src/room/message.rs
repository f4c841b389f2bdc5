//! y-protocols frames, as the y-websocket server reads and writes them, plus
//! Ensemble's own type 100.
//!
//! One websocket binary frame carries exactly one message:
//!
//! | type | after the type varint |
//! | --- | --- |
//! | 0 sync | varUint 0 step 1 + varUint8Array(state vector), 1 step 2 + varUint8Array(update), 2 update + varUint8Array(update) |
//! | 1 awareness | varUint8Array(awareness update: count, then per client: varUint id, varUint clock, varString JSON state) |
//! | 2 auth | varUint 0 + varString reason (permission denied), or varUint 1 (granted) |
//! | 3 query awareness | nothing |
//! | 100 Ensemble | varString JSON |
//!
//! [`decode`] checks the whole frame (including nested lengths and that
//! nothing follows the message) but leaves document updates and state vectors
//! as byte slices for the document layer to check and decode. The `encode_*`
//! functions build the frames the room sends.

use super::error::ProtocolError;
use super::lib0::{malformed, write_bytes, write_string, write_var_u64, Reader};

/// Message type: document sync.
pub(crate) const MSG_SYNC: u64 = 0;
/// Message type: awareness (presence) update.
pub(crate) const MSG_AWARENESS: u64 = 1;
/// Message type: auth (permission denied).
pub(crate) const MSG_AUTH: u64 = 2;
/// Message type: query awareness.
pub(crate) const MSG_QUERY_AWARENESS: u64 = 3;
/// Message type: Ensemble's JSON channel.
pub const MSG_CUSTOM: u64 = 100;

const SYNC_STEP1: u64 = 0;
const SYNC_STEP2: u64 = 1;
const SYNC_UPDATE: u64 = 2;
const AUTH_DENIED: u64 = 0;
const AUTH_GRANTED: u64 = 1;

/// One decoded frame. Slices borrow from the frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    /// Sync step 1: the sender's encoded state vector.
    SyncStep1(&'a [u8]),
    /// Sync step 2: what the sender has that we lack (a v1 update).
    SyncStep2(&'a [u8]),
    /// A live v1 document update.
    SyncUpdate(&'a [u8]),
    /// Awareness states the sender reports.
    Awareness(Vec<AwarenessEntry<'a>>),
    /// An auth message (clients have no reason to send one; it is ignored).
    Auth,
    /// "Send me every awareness state you know."
    QueryAwareness,
    /// Ensemble's channel: the JSON text, uninterpreted.
    Custom(&'a str),
}

/// One client's entry in an awareness update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwarenessEntry<'a> {
    /// The awareness client id (the sender's `doc.clientID`).
    pub(crate) client: u64,
    /// Its logical clock; a higher clock replaces a lower one.
    pub(crate) clock: u64,
    /// The JSON state text; `None` when it is JSON `null` (the client left).
    pub(crate) state: Option<&'a str>,
}

/// Decodes one complete frame.
pub(crate) fn decode(frame: &[u8]) -> Result<Message<'_>, ProtocolError> {
    let mut r = Reader::new(frame);
    let message = match r.read_var_u64("message type")? {
        MSG_SYNC => match r.read_var_u64("sync message type")? {
            SYNC_STEP1 => Message::SyncStep1(r.read_bytes("sync step 1 state vector")?),
            SYNC_STEP2 => Message::SyncStep2(r.read_bytes("sync step 2 update")?),
            SYNC_UPDATE => Message::SyncUpdate(r.read_bytes("sync update")?),
            other => return Err(ProtocolError::UnknownSyncMessageType(other)),
        },
        MSG_AWARENESS => Message::Awareness(decode_awareness(r.read_bytes("awareness update")?)?),
        MSG_AUTH => {
            match r.read_var_u64("auth message type")? {
                AUTH_DENIED => {
                    r.read_string("auth reason")?;
                }
                AUTH_GRANTED => {}
                _ => return Err(malformed("auth message type", "neither denied nor granted")),
            }
            Message::Auth
        }
        MSG_QUERY_AWARENESS => Message::QueryAwareness,
        MSG_CUSTOM => Message::Custom(r.read_string("custom message")?),
        other => return Err(ProtocolError::UnknownMessageType(other)),
    };
    r.finish("message")?;
    Ok(message)
}

/// The payload of an awareness message.
fn decode_awareness(payload: &[u8]) -> Result<Vec<AwarenessEntry<'_>>, ProtocolError> {
    let mut r = Reader::new(payload);
    // An entry is at least three bytes: id, clock, empty string length.
    let count = r.read_count("awareness client count", 3)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let client = r.read_var_u64("awareness client id")?;
        let clock = r.read_var_u64("awareness clock")?;
        let json = r.read_string("awareness state")?;
        let state = (json.trim() != "null").then_some(json);
        entries.push(AwarenessEntry {
            client,
            clock,
            state,
        });
    }
    r.finish("awareness update")?;
    Ok(entries)
}

/// A sync message: type 0, then `sync_type`, then the payload as a byte array.
fn encode_sync(sync_type: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    write_var_u64(&mut out, MSG_SYNC);
    write_var_u64(&mut out, sync_type);
    write_bytes(&mut out, payload);
    out
}

/// Sync step 1 carrying our encoded state vector.
pub(crate) fn encode_sync_step1(state_vector: &[u8]) -> Vec<u8> {
    encode_sync(SYNC_STEP1, state_vector)
}

/// Sync step 2 carrying the v1 update the peer is missing.
pub(crate) fn encode_sync_step2(update: &[u8]) -> Vec<u8> {
    encode_sync(SYNC_STEP2, update)
}

/// A live document update (sync type 2).
pub(crate) fn encode_sync_update(update: &[u8]) -> Vec<u8> {
    encode_sync(SYNC_UPDATE, update)
}

/// An awareness message for the given `(client, clock, state)` entries; a
/// `None` state is written as JSON `null`.
pub(crate) fn encode_awareness<'s>(
    entries: impl ExactSizeIterator<Item = (u64, u64, Option<&'s str>)>,
) -> Vec<u8> {
    let mut payload = Vec::new();
    write_var_u64(&mut payload, entries.len() as u64);
    for (client, clock, state) in entries {
        write_var_u64(&mut payload, client);
        write_var_u64(&mut payload, clock);
        write_string(&mut payload, state.unwrap_or("null"));
    }
    let mut out = Vec::with_capacity(payload.len() + 6);
    write_var_u64(&mut out, MSG_AWARENESS);
    write_bytes(&mut out, &payload);
    out
}

/// The y-protocols auth "permission denied" message (as `writePermissionDenied`
/// in y-protocols/auth.js writes it).
pub fn encode_permission_denied(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(reason.len() + 4);
    write_var_u64(&mut out, MSG_AUTH);
    write_var_u64(&mut out, AUTH_DENIED);
    write_string(&mut out, reason);
    out
}

/// A type-100 frame carrying `json` (server → client run events). The text is
/// sent as given; the caller serializes it.
pub fn encode_custom(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 6);
    write_var_u64(&mut out, MSG_CUSTOM);
    write_string(&mut out, json);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        assert_eq!(
            decode(&encode_sync_step1(&[0])),
            Ok(Message::SyncStep1(&[0]))
        );
        assert_eq!(
            decode(&encode_sync_step2(&[0, 0])),
            Ok(Message::SyncStep2(&[0, 0]))
        );
        assert_eq!(
            decode(&encode_sync_update(&[0, 0])),
            Ok(Message::SyncUpdate(&[0, 0]))
        );
        let aw = encode_awareness([(7, 3, Some("{\"a\":1}")), (8, 2, None)].into_iter());
        let Ok(Message::Awareness(entries)) = decode(&aw) else {
            panic!("awareness did not decode");
        };
        assert_eq!(entries[0].state, Some("{\"a\":1}"));
        assert_eq!((entries[1].client, entries[1].clock), (8, 2));
        assert_eq!(entries[1].state, None);
        assert_eq!(decode(&[3]), Ok(Message::QueryAwareness));
        assert_eq!(decode(&encode_permission_denied("no")), Ok(Message::Auth));
        assert_eq!(
            decode(&encode_custom("{\"type\":\"run.start\"}")),
            Ok(Message::Custom("{\"type\":\"run.start\"}"))
        );
    }

    #[test]
    fn permission_denied_matches_y_protocols() {
        // varUint 2 (auth), varUint 0 (denied), varString "no"
        assert_eq!(encode_permission_denied("no"), vec![2, 0, 2, b'n', b'o']);
        // varUint 100 is one byte; then the JSON as a varString
        assert_eq!(encode_custom("{}"), vec![100, 2, b'{', b'}']);
    }

    #[test]
    fn the_examples_in_docs_protocol_md_hold() {
        // awareness: client 7, clock 1, {"user":{"name":"ada"}}
        let mut joined = vec![1, 0x1b, 1, 7, 1, 0x17];
        joined.extend_from_slice(br#"{"user":{"name":"ada"}}"#);
        let state = r#"{"user":{"name":"ada"}}"#;
        assert_eq!(encode_awareness([(7, 1, Some(state))].into_iter()), joined);
        // the same client gone
        let left = [1, 8, 1, 7, 1, 4, b'n', b'u', b'l', b'l'];
        assert_eq!(encode_awareness([(7, 1, None)].into_iter()), left);
        // permission denied with the room's reason
        let denied = encode_permission_denied(crate::room::READ_ONLY_REASON);
        assert_eq!(&denied[..3], &[2, 0, 0x2e]);
        // type 100
        let custom = encode_custom(r#"{"type":"run.start"}"#);
        assert_eq!(&custom[..2], &[100, 0x14]);
    }

    #[test]
    fn bad_frames_are_refused() {
        assert!(decode(&[]).is_err());
        assert_eq!(decode(&[4]), Err(ProtocolError::UnknownMessageType(4)));
        assert_eq!(
            decode(&[0, 3, 0]),
            Err(ProtocolError::UnknownSyncMessageType(3))
        );
        assert!(matches!(
            decode(&[3, 0]),
            Err(ProtocolError::TrailingBytes { .. })
        ));
        assert!(decode(&[0, 2, 5, 0, 0]).is_err());
        assert!(decode(&[1, 4, 1, 7, 1, 9]).is_err());
        assert!(decode(&[100, 2, 0xc3, 0x28]).is_err());
        assert!(decode(&[2, 7]).is_err());
    }
}
