//! The room's yrs document: the Python source is the `Y.Text` named
//! [`CODE`], and this type is the only place that applies updates to it.
//!
//! It keeps `encoded`, the exact v1 encoding of the whole state (pending
//! updates included), refreshed after every change. That one buffer does
//! four jobs:
//! - its length *is* the document size that the limit applies to, measured
//!   exactly rather than estimated (an update can grow the encoding by more
//!   than its own length, since inserting into the middle of a block splits
//!   it, so "current size + update length" is not an upper bound);
//! - it is the snapshot handed to the store for compaction;
//! - it answers sync step 1 from a client with an empty state vector (every
//!   new participant), so a classroom joining at once costs one encoding;
//! - it is the undo buffer: yrs cannot roll a transaction back, and an
//!   update can fail half-way (`UpdateError::InvalidParent` after earlier
//!   blocks were integrated) or make the document too large. Either way the
//!   document is rebuilt from `encoded`, which still holds the state before
//!   the update, so a refused update leaves no trace.
//!
//! The price is one full encoding per applied update: 5–15 µs per KiB of
//! encoded document in a release build (0.3 ms for a file typed in 20,000
//! keystrokes, 20–60 ms at the 4 MiB cap), paid once per update, not per
//! receiver. Rebuilding (a few times that) happens only on the error path.

use super::error::{LoadError, ProtocolError};
use super::lib0::{write_var_u64, Reader};
use super::update_check::{check_update, Shape};
use yrs::updates::decoder::Decode;
use yrs::{
    ClientID, Doc, GetString, ReadTxn, StateVector, TextRef, Transact, TransactionMut, Update,
};

/// Name of the root `Y.Text` holding the session's Python source.
pub const CODE: &str = "code";

/// What became of an editor's update.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// It changed the document: persist, then relay, these bytes.
    Changed(Vec<u8>),
    /// Everything in it was known already.
    Unchanged,
    /// It builds on content the document does not have yet (a gap in a
    /// client's clocks, or an unknown origin); nothing was applied.
    NotReady,
}

/// A yrs document plus its current exact encoding.
pub(crate) struct SharedDoc {
    doc: Doc,
    code: TextRef,
    /// The exact v1 encoding of the whole state as of the last change.
    encoded: Vec<u8>,
}

impl std::fmt::Debug for SharedDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDoc")
            .field("encoded_len", &self.encoded.len())
            .finish_non_exhaustive()
    }
}

impl SharedDoc {
    /// An empty document.
    pub(crate) fn new() -> Self {
        Self::from_doc(Doc::new())
    }

    /// Rebuilds a document from a stored snapshot and the updates logged
    /// after it. Stored data goes through the same checks as live updates.
    /// The size limit is not applied: a document stored under a larger limit
    /// still loads, and can then only shrink.
    pub(crate) fn load<'a>(
        snapshot: Option<&[u8]>,
        updates: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, LoadError> {
        let doc = Doc::new();
        {
            let mut txn = doc.transact_mut();
            if let Some(bytes) = snapshot {
                apply_to(&mut txn, bytes).map_err(LoadError::Snapshot)?;
            }
            for (index, bytes) in updates.into_iter().enumerate() {
                apply_to(&mut txn, bytes).map_err(|source| LoadError::Update { index, source })?;
            }
        }
        Ok(Self::from_doc(doc))
    }

    fn from_doc(doc: Doc) -> Self {
        let code = doc.get_or_insert_text(CODE);
        let encoded = encode_full(&doc);
        Self { doc, code, encoded }
    }

    /// The current Python source.
    pub(crate) fn text(&self) -> String {
        self.code.get_string(&self.doc.transact())
    }

    /// The exact encoded size of the document, in bytes.
    pub(crate) fn size(&self) -> usize {
        self.encoded.len()
    }

    /// The whole state as one v1 update.
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// Our state vector, v1-encoded (the payload of sync step 1), with
    /// clients in ascending order so equal states give equal bytes.
    pub(crate) fn encoded_state_vector(&self) -> Vec<u8> {
        let sv = self.doc.transact().state_vector();
        let mut entries: Vec<(u64, u32)> = sv.iter().map(|(c, &clock)| (c.get(), clock)).collect();
        entries.sort_unstable();
        let mut out = Vec::with_capacity(1 + entries.len() * 8);
        write_var_u64(&mut out, entries.len() as u64);
        for (client, clock) in entries {
            write_var_u64(&mut out, client);
            write_var_u64(&mut out, u64::from(clock));
        }
        out
    }

    /// What a peer with the given encoded state vector is missing, as a v1
    /// update (the payload of sync step 2).
    pub(crate) fn diff(&self, state_vector: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let sv = decode_state_vector(state_vector)?;
        if sv.is_empty() {
            return Ok(self.encoded.clone());
        }
        Ok(self.doc.transact().encode_state_as_update_v1(&sv))
    }

    /// Applies a v1 update from an editor. A refused update (malformed,
    /// failing in yrs, or growing the encoded document past `max_bytes`) is
    /// rolled back completely; one that is not ready is not applied at all.
    ///
    /// What is persisted and relayed is the update exactly as received, not
    /// the transaction's own diff: updates are idempotent, so storing and
    /// relaying the whole of it is always right, and it stays right in the
    /// corner cases where a diff "since the state vector before" misses
    /// content. Whether it changed anything is read from the exact
    /// encoding, which covers content, deletions and pending data alike.
    pub(crate) fn apply(
        &mut self,
        bytes: &[u8],
        max_bytes: usize,
    ) -> Result<Applied, ProtocolError> {
        let (shape, update) = decode_update(bytes)?;
        if update.is_empty() {
            return Ok(Applied::Unchanged);
        }
        if !shape.is_ready(&self.doc.transact().state_vector()) {
            return Ok(Applied::NotReady);
        }
        let applied = {
            let mut txn = self.doc.transact_mut();
            txn.apply_update(update).map(|()| txn.has_missing_updates())
        };
        match applied {
            Ok(false) => {}
            // Ready by the check, yet yrs could not integrate all of it
            // (blocks that depend on each other in a cycle).
            Ok(true) => {
                self.restore();
                return Err(ProtocolError::OutOfSync);
            }
            Err(e) => {
                self.restore();
                return Err(invalid(e));
            }
        }
        let encoded = encode_full(&self.doc);
        if encoded == self.encoded {
            return Ok(Applied::Unchanged);
        }
        // Only growth is refused: a document over the cap may still shrink.
        if encoded.len() > max_bytes && encoded.len() > self.encoded.len() {
            let size = encoded.len();
            self.restore();
            return Err(ProtocolError::DocumentTooLarge {
                size,
                limit: max_bytes,
            });
        }
        self.encoded = encoded;
        Ok(Applied::Changed(bytes.to_vec()))
    }

    /// Whether a viewer's update would change the document: new blocks, or
    /// deletions of something not deleted yet. Clients send their whole
    /// delete set in sync step 2, so a viewer that merely reconnects sends
    /// an update that changes nothing; it is not worth a "permission denied".
    pub(crate) fn would_change(&self, bytes: &[u8]) -> Result<bool, ProtocolError> {
        let (_, update) = decode_update(bytes)?;
        if update.is_empty() {
            return Ok(false);
        }
        let txn = self.doc.transact();
        let known = txn.state_vector();
        let new_blocks = update
            .insertions(true)
            .iter()
            .any(|(client, ranges)| ranges.iter().any(|r| r.end > known.get(client)));
        if new_blocks {
            return Ok(true);
        }
        if update.delete_set().is_empty() {
            return Ok(false);
        }
        let deleted = txn.snapshot().delete_set;
        Ok(!update.delete_set().diff(&deleted).is_empty())
    }

    /// Puts the document back to the state in `encoded`.
    fn restore(&mut self) {
        let doc = Doc::new();
        let reloaded = match Update::decode_v1(&self.encoded) {
            Ok(update) => doc.transact_mut().apply_update(update).is_ok(),
            Err(_) => false,
        };
        // `encoded` came out of yrs itself, so it always loads back; were it
        // ever not to, keeping the current document beats losing it.
        debug_assert!(reloaded, "a document's own encoding did not load back");
        if reloaded {
            self.code = doc.get_or_insert_text(CODE);
            self.doc = doc;
        }
    }
}

/// The v1 encoding of a document's whole state, pending updates included.
fn encode_full(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// Checks, decodes and applies one stored update.
fn apply_to(txn: &mut TransactionMut<'_>, bytes: &[u8]) -> Result<(), ProtocolError> {
    let (_, update) = decode_update(bytes)?;
    txn.apply_update(update).map_err(invalid)
}

/// yrs's reason, cut to 80 bytes so the whole error fits a websocket close
/// frame (123 bytes).
fn invalid(e: impl std::fmt::Display) -> ProtocolError {
    let mut text = e.to_string();
    if text.len() > 80 {
        let mut cut = 80;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    ProtocolError::InvalidUpdate(text)
}

/// Checks an update's structure, then lets yrs decode it.
fn decode_update(bytes: &[u8]) -> Result<(Shape, Update), ProtocolError> {
    let shape = check_update(bytes)?;
    // `check_update` walked these bytes with yrs's own grammar, so decoding
    // should neither fail nor panic. Should a yrs bug still panic on hostile
    // input, catching it here is sound: decoding only builds new values from
    // the slice and touches no shared state, so nothing is left half-done.
    match std::panic::catch_unwind(|| Update::decode_v1(bytes)) {
        Ok(Ok(update)) => Ok((shape, update)),
        Ok(Err(e)) => Err(invalid(e)),
        Err(_) => Err(ProtocolError::InvalidUpdate(
            "the update could not be decoded".to_owned(),
        )),
    }
}

/// Decodes a v1 state vector: a count, then (client, clock) pairs.
fn decode_state_vector(bytes: &[u8]) -> Result<StateVector, ProtocolError> {
    let mut r = Reader::new(bytes);
    // An entry is at least two bytes: client and clock.
    let count = r.read_count("state vector length", 2)?;
    let mut sv = StateVector::default();
    for _ in 0..count {
        let client = r.read_client_id("state vector client id")?;
        let clock = r.read_var_u32("state vector clock")?;
        sv.set_max(ClientID::new(client), clock);
    }
    r.finish("state vector")?;
    Ok(sv)
}
