//! The room's yrs document: the Python source is the `Y.Text` named
//! [`CODE`], and this type is the only place that applies updates to it.
//!
//! Two costs decide how this type is built: the exact v1 encoding of the
//! whole state is 5–15 µs per KiB of document in a release build (20–60 ms
//! at the 4 MiB cap), while applying a small update costs microseconds. So
//! the encoding is made only when it is needed, not once per update:
//! - `base` is an exact encoding of the state at some point, and `since`
//!   the updates applied after it, in order: `base` + `since` *is* the
//!   document, which makes it the undo buffer. yrs cannot roll a
//!   transaction back, and an update can fail half-way
//!   (`UpdateError::InvalidParent` after earlier blocks were integrated) or
//!   make the document too large; either way the document is rebuilt from
//!   `base` + `since`, and a refused update leaves no trace.
//! - The size limit is exact where it matters. `size_bound` is an upper
//!   bound on the current encoded size: exact right after an encoding, then
//!   grown by each update's [`Shape::growth_bound`]. While the bound stays
//!   under the cap nothing needs measuring; once an update could cross it,
//!   the document is encoded before and after the update, and only real
//!   growth past the cap is refused.
//! - Compaction snapshots and sync step 2 for a client with an empty state
//!   vector (every new participant) take the full encoding: it is made
//!   then, at most once per change, and becomes the new `base`.
//! - `since` is folded into a fresh `base` once it holds as many bytes as
//!   `base` (and at least [`MIN_REBASE_BYTES`]), so its memory stays
//!   bounded and a rebuild stays cheap; that costs one encoding per
//!   document's worth of updates instead of one per update.

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

/// Updates are folded into a fresh `base` no sooner than this many bytes.
const MIN_REBASE_BYTES: usize = 64 << 10;

/// A yrs document, an exact encoding of an earlier state of it, and the
/// updates applied since.
pub(crate) struct SharedDoc {
    doc: Doc,
    code: TextRef,
    /// The exact v1 encoding of the whole state before `since`.
    base: Vec<u8>,
    /// Updates applied after `base`, in order.
    since: Vec<Vec<u8>>,
    /// Total length of `since`.
    since_bytes: usize,
    /// An upper bound on the current encoded size (exact when `since` is
    /// empty).
    size_bound: usize,
}

impl std::fmt::Debug for SharedDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDoc")
            .field("base_len", &self.base.len())
            .field("since", &self.since.len())
            .field("size_bound", &self.size_bound)
            .finish_non_exhaustive()
    }
}

impl SharedDoc {
    /// An empty document.
    pub(crate) fn new() -> Self {
        Self::from_doc(new_doc())
    }

    /// Rebuilds a document from a stored snapshot and the updates logged
    /// after it. Stored data goes through the same checks as live updates.
    /// The size limit is not applied: a document stored under a larger limit
    /// still loads, and can then only shrink.
    pub(crate) fn load<'a>(
        snapshot: Option<&[u8]>,
        updates: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, LoadError> {
        let doc = new_doc();
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
        let base = encode_full(&doc);
        Self {
            doc,
            code,
            size_bound: base.len(),
            base,
            since: Vec::new(),
            since_bytes: 0,
        }
    }

    /// The exact encoding of the current state, made now if updates came
    /// since the last one.
    fn encoded(&mut self) -> &[u8] {
        if !self.since.is_empty() {
            self.set_base(encode_full(&self.doc));
        }
        &self.base
    }

    /// Takes `encoded`, the exact encoding of the current state, as `base`.
    fn set_base(&mut self, encoded: Vec<u8>) {
        self.size_bound = encoded.len();
        self.base = encoded;
        self.since.clear();
        self.since_bytes = 0;
    }

    /// The current Python source.
    pub(crate) fn text(&self) -> String {
        self.code.get_string(&self.doc.transact())
    }

    /// The exact encoded size of the document, in bytes.
    pub(crate) fn size(&mut self) -> usize {
        self.encoded().len()
    }

    /// The whole state as one v1 update.
    pub(crate) fn snapshot(&mut self) -> Vec<u8> {
        self.encoded().to_vec()
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
    pub(crate) fn diff(&mut self, state_vector: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let sv = decode_state_vector(state_vector)?;
        if sv.is_empty() {
            return Ok(self.encoded().to_vec());
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
    /// content. Whether it changed anything is read from the transaction:
    /// the blocks it integrated and the items it deleted.
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
        let growth = shape.growth_bound(bytes.len());
        // Could this update cross the cap? Then measure exactly, before
        // and after it.
        let measure = self.size_bound.saturating_add(growth) > max_bytes;
        let size_before = if measure { self.size() } else { 0 };
        let applied = {
            let mut txn = self.doc.transact_mut();
            txn.apply_update(update).map(|()| {
                let changed = !txn.insert_set().is_empty() || !txn.delete_set().is_empty();
                (txn.has_missing_updates(), changed)
            })
        };
        let changed = match applied {
            Ok((false, changed)) => changed,
            // Ready by the check, yet yrs could not integrate all of it
            // (blocks that depend on each other in a cycle).
            Ok((true, _)) => {
                self.restore();
                return Err(ProtocolError::OutOfSync);
            }
            Err(e) => {
                self.restore();
                return Err(invalid(e));
            }
        };
        if !changed {
            return Ok(Applied::Unchanged);
        }
        if measure {
            let encoded = encode_full(&self.doc);
            // Only growth is refused: a document over the cap may still shrink.
            if encoded.len() > max_bytes && encoded.len() > size_before {
                let size = encoded.len();
                self.restore();
                return Err(ProtocolError::DocumentTooLarge {
                    size,
                    limit: max_bytes,
                });
            }
            self.set_base(encoded);
        } else {
            self.size_bound += growth;
            self.since_bytes += bytes.len();
            self.since.push(bytes.to_vec());
            if self.since_bytes >= self.base.len().max(MIN_REBASE_BYTES) {
                self.set_base(encode_full(&self.doc));
            }
        }
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

    /// Puts the document back to `base` + `since`: the state before the
    /// update being applied.
    fn restore(&mut self) {
        let doc = new_doc();
        let mut reloaded = true;
        for bytes in std::iter::once(&self.base).chain(&self.since) {
            reloaded &= match Update::decode_v1(bytes) {
                Ok(update) => doc.transact_mut().apply_update(update).is_ok(),
                Err(_) => false,
            };
        }
        // These bytes were all applied before (`base` came out of yrs
        // itself), so they always load back; were they ever not to, keeping
        // the current document beats losing it.
        debug_assert!(reloaded, "a document's own history did not load back");
        if reloaded {
            self.code = doc.get_or_insert_text(CODE);
            self.doc = doc;
        }
    }
}

/// An empty document counting text in UTF-16 units, as Yjs does. With
/// yrs's default (UTF-8 bytes), an item split inside a surrogate pair (each
/// half becomes U+FFFD: 3 bytes where the pair had 4) leaves the text's
/// cached length too small, and deleting both halves underflows it (a
/// panic in debug builds, a wrapped length in release builds); in UTF-16
/// units the halves count exactly what the pair did.
fn new_doc() -> Doc {
    Doc::with_options(yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        ..yrs::Options::default()
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Map, Text};

    /// A deterministic xorshift, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            if n == 0 {
                0
            } else {
                self.0 % n
            }
        }
    }

    /// Editors make random edits (inserts anywhere, deletes of ranges, map
    /// entries replaced) in their own copies; their updates reach the shared
    /// document in random groups and orders, some merged, some repeated.
    /// Every applied update must grow the exact encoding by no more than its
    /// bound, and "changed" must agree with the encoding.
    #[test]
    fn growth_stays_within_the_bound_and_changes_are_detected() {
        for seed in [1u64, 2, 3, 0x5eed, 0xdead_beef] {
            let mut rng = Rng(seed);
            // UTF-16 offsets, as in Yjs, so indexes never fall inside a char.
            let editors: Vec<Doc> = (1..=3u64)
                .map(|id| {
                    Doc::with_options(yrs::Options {
                        offset_kind: yrs::OffsetKind::Utf16,
                        ..yrs::Options::with_client_id(ClientID::new(id * 1000))
                    })
                })
                .collect();
            let mut shared = SharedDoc::new();
            let mut pending: Vec<Vec<u8>> = Vec::new();
            for _ in 0..600 {
                let e = &editors[rng.below(3) as usize];
                let text = e.get_or_insert_text(CODE);
                let meta = e.get_or_insert_map("meta");
                let update = {
                    let mut txn = e.transact_mut();
                    let len = text.len(&txn);
                    match rng.below(10) {
                        0..=2 if len > 0 => {
                            let at = rng.below(u64::from(len)) as u32;
                            let n = 1 + rng.below(u64::from(len - at).min(20)) as u32;
                            text.remove_range(&mut txn, at, n);
                        }
                        3 => {
                            meta.insert(&mut txn, "k", rng.below(100) as i64);
                        }
                        _ => {
                            let chunk =
                                ["x", "yz", "é", "🐍", "\n", "print(1)\n"][rng.below(6) as usize];
                            text.insert(&mut txn, rng.below(u64::from(len) + 1) as u32, chunk);
                        }
                    }
                    txn.encode_update_v1()
                };
                pending.push(update);
                if rng.below(4) == 0 {
                    // Deliver, and cross-sync the editors through the
                    // shared document's full state now and then.
                    while !pending.is_empty() {
                        let u = pending.remove(rng.below(pending.len() as u64) as usize);
                        if !check_one(&mut shared, &u) {
                            // Not ready: it comes again after the others.
                            pending.push(u);
                            continue;
                        }
                        if rng.below(5) == 0 {
                            // A repeat changes nothing.
                            assert_eq!(shared.apply(&u, usize::MAX), Ok(Applied::Unchanged));
                        }
                    }
                    if rng.below(3) == 0 {
                        let full = shared.snapshot();
                        for e in &editors {
                            let mine = e
                                .transact()
                                .encode_state_as_update_v1(&StateVector::default());
                            e.transact_mut()
                                .apply_update(Update::decode_v1(&full).unwrap())
                                .unwrap();
                            // Partly known: everything this editor has,
                            // although the document has most of it.
                            check_one(&mut shared, &mine);
                        }
                    }
                }
            }
            assert!(shared.size_bound >= encode_full(&shared.doc).len());
        }
    }

    /// Applies one update and checks the bound; false if it was not ready.
    fn check_one(shared: &mut SharedDoc, update: &[u8]) -> bool {
        let before = encode_full(&shared.doc);
        let (shape, _) = decode_update(update).unwrap();
        let bound = shape.growth_bound(update.len());
        match shared.apply(update, usize::MAX).unwrap() {
            Applied::NotReady => false,
            applied => {
                let after = encode_full(&shared.doc);
                assert_eq!(
                    matches!(applied, Applied::Changed(_)),
                    after != before,
                    "changed must agree with the encoding"
                );
                assert!(
                    after.len() <= before.len() + bound,
                    "grew {} bytes, bound {bound}",
                    after.len() - before.len()
                );
                assert!(shared.size_bound >= after.len());
                true
            }
        }
    }

    /// A failing update after many applied ones (all still in `since`)
    /// rolls back to exactly the state before it, and editing goes on.
    #[test]
    fn a_refusal_rolls_back_over_updates_not_yet_encoded() {
        let editor = Doc::with_client_id(5);
        let text = editor.get_or_insert_text(CODE);
        let mut shared = SharedDoc::new();
        for i in 0..50 {
            let mut txn = editor.transact_mut();
            text.insert(&mut txn, i, "a");
            let update = txn.encode_update_v1();
            assert!(matches!(
                shared.apply(&update, 1 << 20),
                Ok(Applied::Changed(_))
            ));
        }
        assert_eq!(shared.since.len(), 50, "nothing was encoded along the way");
        // Client 6 adds an item whose parent is a string item: yrs fails
        // only after integrating client 7's block, also in the update.
        let mut bad = vec![2];
        bad.extend_from_slice(&[1, 7, 0, 4, 1, 4]);
        bad.extend_from_slice(b"code");
        bad.extend_from_slice(&[2, b'x', b'y']);
        bad.extend_from_slice(&[1, 6, 0, 4, 0, 7, 0, 1, b'z']);
        bad.push(0);
        assert!(matches!(
            shared.apply(&bad, 1 << 20),
            Err(ProtocolError::InvalidUpdate(_))
        ));
        assert_eq!(shared.text(), "a".repeat(50));
        let mut txn = editor.transact_mut();
        text.insert(&mut txn, 0, "b");
        let update = txn.encode_update_v1();
        drop(txn);
        assert!(matches!(
            shared.apply(&update, 1 << 20),
            Ok(Applied::Changed(_))
        ));
        assert_eq!(shared.text(), format!("b{}", "a".repeat(50)));
        let expected = editor
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let reloaded = SharedDoc::load(Some(&shared.snapshot()), []).unwrap();
        assert_eq!(reloaded.text(), shared.text());
        assert_eq!(shared.snapshot().len(), expected.len());
    }

    /// Near the cap the size is measured exactly: an update that fits is
    /// taken however little room is left, and a document over the cap may
    /// still shrink.
    #[test]
    fn the_cap_is_exact_near_the_limit() {
        let editor = Doc::with_client_id(9);
        let text = editor.get_or_insert_text(CODE);
        let mut shared = SharedDoc::new();
        let update = |f: &dyn Fn(&mut TransactionMut<'_>)| {
            let mut txn = editor.transact_mut();
            f(&mut txn);
            txn.encode_update_v1()
        };
        let first = update(&|t| text.insert(t, 0, &"x".repeat(500)));
        assert!(matches!(
            shared.apply(&first, 1 << 20),
            Ok(Applied::Changed(_))
        ));
        let exact = shared.size();
        // One more character grows the encoding by a byte or two; a cap of
        // exact + 2 fits it although the bound is far larger.
        let one = update(&|t| text.insert(t, 500, "y"));
        assert!(matches!(
            shared.apply(&one, exact + 2),
            Ok(Applied::Changed(_))
        ));
        let now = shared.size();
        assert!(now <= exact + 2);
        let more = update(&|t| text.insert(t, 0, &"z".repeat(100)));
        assert!(matches!(
            shared.apply(&more, now),
            Err(ProtocolError::DocumentTooLarge { .. })
        ));
        assert_eq!(shared.size(), now);
        // Shrinking under a cap it is already over.
        editor
            .transact_mut()
            .apply_update(Update::decode_v1(&shared.snapshot()).unwrap())
            .unwrap();
        let shrink = update(&|t| text.remove_range(t, 100, 100));
        assert!(matches!(shared.apply(&shrink, 10), Ok(Applied::Changed(_))));
    }
}
