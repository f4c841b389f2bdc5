//! A structural check of a yrs/Yjs v1 update, run before yrs sees the bytes.
//!
//! Why: yrs decodes updates from trusted peers well, but a hostile client
//! controls every byte. yrs's `Any` decoder recurses once per nesting level
//! (a megabyte of `[[[[…]]]]` overflows the stack, which aborts the process
//! and cannot be caught), a deleted nested type deletes its children
//! recursively, clocks near `u32::MAX` overflow its arithmetic, and declared
//! counts are reserved before the bytes behind them are seen. This walk
//! mirrors yrs's v1 grammar (`Update::decode`, `Block`/`ItemContent` and
//! `Any` decoding in yrs 0.28) field by field and refuses, before any yrs code
//! runs:
//! - counts and lengths larger than the bytes that are left;
//! - varints longer than lib0 ever writes, 32-bit fields that do not fit;
//! - clocks (block ranges, origins, delete ranges) past `i32::MAX`;
//! - `Any` values nested deeper than [`MAX_ANY_DEPTH`];
//! - content Ensemble's documents never hold: nested shared types (type ref
//!   7), sub-documents (9) and the legacy JSON content (2), which yrs and Yjs
//!   do not even decode alike;
//! - bytes after the delete set.
//!
//! Whatever passes is read by yrs exactly as it was read here (same field
//! boundaries), so these guarantees hold for what yrs decodes.
//!
//! The walk also records the update's causal [`Shape`]: which clock ranges
//! it adds and which ids it builds on. [`Shape::is_ready`] tells whether the
//! document already has everything the update needs. That matters because
//! yrs (unlike Yjs) integrates a block that arrives ahead of earlier blocks
//! of the same client at once, behind a placeholder, and the document's
//! order can then depend on arrival order: the live room and the same
//! updates replayed from the store could disagree. So the room applies only
//! ready updates.

use super::error::ProtocolError;
use super::lib0::{malformed, Reader};
use std::collections::HashMap;
use yrs::{ClientID, StateVector};

/// Deepest nesting of `Any` arrays and maps accepted inside an update.
pub(crate) const MAX_ANY_DEPTH: usize = 32;

/// Largest clock accepted anywhere in an update. yrs computes block offsets
/// as `i32` differences, so clocks stay below `2^31`; no real client gets near
/// (it would take two billion insertions by one client).
const MAX_CLOCK: u64 = i32::MAX as u64;

const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
const INFO_GC: u8 = 0;
const INFO_SKIP: u8 = 10;

/// What an update adds and what it builds on, for [`Shape::is_ready`].
#[derive(Debug, Default)]
pub(crate) struct Shape {
    /// Per client section, in order: the client and the clock ranges of
    /// its real blocks (skips are gaps, not content).
    sections: Vec<(u64, Vec<(u32, u32)>)>,
    /// Ids the blocks point at: origins, right origins, parent items.
    refs: Vec<(u64, u32)>,
    /// Deleted ranges: client, start, end.
    deletes: Vec<(u64, u32, u32)>,
}

impl Shape {
    /// Whether a document with state vector `sv` has everything this update
    /// builds on: each client's blocks continue from what is known (no gap),
    /// and every referenced id and deleted range is known, counting the
    /// update's own blocks.
    pub(crate) fn is_ready(&self, sv: &StateVector) -> bool {
        let mut known: HashMap<u64, u32> = HashMap::new();
        let clock_of = |known: &mut HashMap<u64, u32>, client: u64| {
            *known
                .entry(client)
                .or_insert_with(|| sv.get(&ClientID::new(client)))
        };
        for (client, ranges) in &self.sections {
            let mut clock = clock_of(&mut known, *client);
            for &(start, end) in ranges {
                if start > clock {
                    return false;
                }
                clock = clock.max(end);
            }
            known.insert(*client, clock);
        }
        let refs_known = self
            .refs
            .iter()
            .all(|&(client, clock)| clock < clock_of(&mut known, client));
        refs_known
            && self
                .deletes
                .iter()
                .all(|&(client, _, end)| end <= clock_of(&mut known, client))
    }
}

/// Most bytes one block split adds to a document's encoding: a block
/// header (info, origin and right origin ids of at most 15 bytes each) and a
/// content length, rounded up generously.
const SPLIT_BYTES: usize = 64;
/// Most bytes one range adds to the encoded delete set (client, clock and
/// length varints), rounded up.
const DELETE_RANGE_BYTES: usize = 32;
/// Most bytes a new client section adds (count, client and clock varints).
const SECTION_BYTES: usize = 32;

impl Shape {
    /// An upper bound on how much applying this update (`update_len` bytes)
    /// can grow the document's exact v1 encoding. The update's own blocks
    /// are encoded in the document as they are in the update; on top of
    /// that, integration can split existing blocks: once per id a block
    /// points at (origin, right origin), once per block that is only partly
    /// new (its new part gets an origin) or that replaces a map entry
    /// (deleting the old one), twice per deleted range (both ends), and
    /// each deleted range and client section adds its header. Merges and
    /// deleted content only shrink it. Tested against yrs's real encoding
    /// in `document.rs`.
    pub(crate) fn growth_bound(&self, update_len: usize) -> usize {
        let blocks: usize = self.sections.iter().map(|(_, r)| r.len()).sum();
        update_len
            + SPLIT_BYTES * (blocks + self.refs.len() + 2 * self.deletes.len())
            + DELETE_RANGE_BYTES * (blocks + self.deletes.len())
            + SECTION_BYTES * (self.sections.len() + self.deletes.len() + 1)
    }
}

/// Checks that `bytes` is one well-formed v1 update that yrs can decode
/// safely and that holds only supported content; returns its shape.
pub(crate) fn check_update(bytes: &[u8]) -> Result<Shape, ProtocolError> {
    let mut r = Reader::new(bytes);
    let mut shape = Shape::default();
    // A client section is at least three bytes: block count, client, clock.
    let clients = r.read_count("update client count", 3)?;
    for _ in 0..clients {
        // A block is at least two bytes: info and a length or content byte.
        let blocks = r.read_count("update block count", 2)?;
        let client = r.read_client_id("update client id")?;
        let mut clock = r.read_var_u32("update clock")?;
        check_clock(u64::from(clock), "update clock")?;
        let mut ranges = Vec::new();
        for _ in 0..blocks {
            let (len, is_skip) = check_block(&mut r, &mut shape.refs)?;
            let end = u64::from(clock) + len;
            check_clock(end, "update clock")?;
            // MAX_CLOCK < u32::MAX, so this cannot truncate.
            let end = end as u32;
            if !is_skip && end > clock {
                ranges.push((clock, end));
            }
            clock = end;
        }
        shape.sections.push((client, ranges));
    }
    check_delete_set(&mut r, &mut shape.deletes)?;
    r.finish("document update")?;
    Ok(shape)
}

/// One block: GC, skip, or an item with origins, parent and content.
/// Returns its length in clock units and whether it is a skip; the ids it
/// points at go to `refs`.
fn check_block(
    r: &mut Reader<'_>,
    refs: &mut Vec<(u64, u32)>,
) -> Result<(u64, bool), ProtocolError> {
    let info = r.read_u8("block info")?;
    if info == INFO_GC || info == INFO_SKIP {
        let len = r.read_var_u32("block length")?;
        if len == 0 {
            return Err(malformed("block length", "empty block"));
        }
        return Ok((u64::from(len), info == INFO_SKIP));
    }
    if info & HAS_ORIGIN != 0 {
        refs.push(check_id(r, "left origin")?);
    }
    if info & HAS_RIGHT_ORIGIN != 0 {
        refs.push(check_id(r, "right origin")?);
    }
    if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
        if r.read_var_u32("parent info")? == 1 {
            r.read_string("parent name")?;
        } else {
            refs.push(check_id(r, "parent id")?);
        }
        if info & HAS_PARENT_SUB != 0 {
            r.read_string("parent key")?;
        }
    }
    Ok((check_content(r, info & 0b1111)?, false))
}

/// An item's content, by the low four bits of its info byte. Returns its
/// length the way yrs counts it (UTF-16 units for strings, one per value).
fn check_content(r: &mut Reader<'_>, kind: u8) -> Result<u64, ProtocolError> {
    match kind {
        1 => Ok(u64::from(r.read_var_u32("deleted length")?)),
        2 => Err(ProtocolError::UnsupportedContent("legacy JSON content")),
        3 => r.read_bytes("binary content").map(|_| 1),
        4 => {
            let text = r.read_string("string content")?;
            Ok(text.encode_utf16().count() as u64)
        }
        5 => r.read_string("embed content").map(|_| 1),
        6 => {
            r.read_string("format key")?;
            r.read_string("format value").map(|_| 1)
        }
        7 => Err(ProtocolError::UnsupportedContent("nested shared types")),
        8 => {
            let count = r.read_count("any content count", 1)?;
            for _ in 0..count {
                check_any(r, 1)?;
            }
            Ok(count as u64)
        }
        9 => Err(ProtocolError::UnsupportedContent("sub-documents")),
        _ => Err(malformed("block info", "unknown content type")),
    }
}

/// One lib0 `Any` value, at nesting `depth` (1 for a top-level value).
fn check_any(r: &mut Reader<'_>, depth: usize) -> Result<(), ProtocolError> {
    if depth > MAX_ANY_DEPTH {
        return Err(malformed("any value", "nested too deeply"));
    }
    match r.read_u8("any value")? {
        // undefined, null, false, true
        127 | 126 | 121 | 120 => Ok(()),
        125 => r.skip_var_i64("any integer"),
        124 => r.skip(4, "any float32"),
        123 | 122 => r.skip(8, "any float64"),
        119 => r.read_string("any string").map(|_| ()),
        118 => {
            // A map entry is at least a key length and a value tag.
            let count = r.read_count("any map size", 2)?;
            for _ in 0..count {
                r.read_string("any map key")?;
                check_any(r, depth + 1)?;
            }
            Ok(())
        }
        117 => {
            let count = r.read_count("any array length", 1)?;
            for _ in 0..count {
                check_any(r, depth + 1)?;
            }
            Ok(())
        }
        116 => r.read_bytes("any buffer").map(|_| ()),
        _ => Err(malformed("any value", "unknown value tag")),
    }
}

/// The delete set: per client, a list of (clock, length) ranges.
fn check_delete_set(
    r: &mut Reader<'_>,
    deletes: &mut Vec<(u64, u32, u32)>,
) -> Result<(), ProtocolError> {
    let clients = r.read_count("delete set client count", 2)?;
    for _ in 0..clients {
        let client = r.read_client_id("delete set client id")?;
        let ranges = r.read_count("delete set range count", 2)?;
        for _ in 0..ranges {
            let start = r.read_var_u32("delete set clock")?;
            let len = r.read_var_u32("delete set length")?;
            let end = u64::from(start) + u64::from(len);
            check_clock(end, "delete set range")?;
            deletes.push((client, start, end as u32));
        }
    }
    Ok(())
}

/// A block id: client and clock.
fn check_id(r: &mut Reader<'_>, what: &'static str) -> Result<(u64, u32), ProtocolError> {
    let client = r.read_client_id(what)?;
    let clock = r.read_var_u32(what)?;
    check_clock(u64::from(clock), what)?;
    Ok((client, clock))
}

fn check_clock(clock: u64, what: &'static str) -> Result<(), ProtocolError> {
    if clock > MAX_CLOCK {
        return Err(malformed(what, "clock out of range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::lib0::write_var_u64;
    use yrs::{Array, Doc, Map, ReadTxn, StateVector, Text, Transact};

    fn full_state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    #[test]
    fn updates_from_yrs_pass() {
        let doc = Doc::with_client_id(7);
        let text = doc.get_or_insert_text("code");
        let list = doc.get_or_insert_array("list");
        let meta = doc.get_or_insert_map("meta");
        {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "print('héllo 🌍')\n");
            text.remove_range(&mut txn, 2, 3);
            list.insert(&mut txn, 0, vec![1.5, 2.0]);
            list.insert(&mut txn, 0, "nested");
            meta.insert(&mut txn, "k", true);
            meta.insert(&mut txn, "k", 42);
        }
        let shape = check_update(&full_state(&doc)).expect("yrs output passes");
        assert!(shape.is_ready(&StateVector::default()));
        assert!(check_update(&[0, 0]).is_ok());
    }

    #[test]
    fn nested_types_are_unsupported() {
        let doc = Doc::with_client_id(7);
        let meta = doc.get_or_insert_map("meta");
        meta.insert(&mut doc.transact_mut(), "inner", yrs::MapPrelim::default());
        assert_eq!(
            check_update(&full_state(&doc)).err(),
            Some(ProtocolError::UnsupportedContent("nested shared types"))
        );
    }

    /// `[[[[…]]]]` as ContentAny under the root array "a".
    fn deep_any(depth: usize) -> Vec<u8> {
        let mut out = vec![1, 1, 9, 0]; // one client, one block, client 9, clock 0
        out.push(8); // item, no origins, content Any
        write_var_u64(&mut out, 1); // parent info: named
        write_var_u64(&mut out, 1);
        out.push(b'a');
        out.push(1); // one value
        for _ in 0..depth - 1 {
            out.extend_from_slice(&[117, 1]);
        }
        out.extend_from_slice(&[117, 0]);
        out.push(0); // empty delete set
        out
    }

    #[test]
    fn any_nesting_is_bounded() {
        assert!(check_update(&deep_any(MAX_ANY_DEPTH)).is_ok());
        assert!(check_update(&deep_any(MAX_ANY_DEPTH + 1)).is_err());
        assert!(check_update(&deep_any(400_000)).is_err());
    }

    #[test]
    fn clocks_near_the_top_are_refused() {
        // one client, one GC block at clock i32::MAX - 1 of length 5
        let mut out = vec![1, 1, 9];
        write_var_u64(&mut out, i32::MAX as u64 - 1);
        out.extend_from_slice(&[0, 5, 0]);
        assert!(check_update(&out).is_err());
        // a delete range that ends past i32::MAX
        let mut ds = vec![0, 1, 9, 1];
        write_var_u64(&mut ds, u64::from(u32::MAX) - 2);
        ds.push(10);
        assert!(check_update(&ds).is_err());
    }

    #[test]
    fn readiness_needs_what_the_update_builds_on() {
        let doc = Doc::with_client_id(7);
        let text = doc.get_or_insert_text("code");
        let first = {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 0, "ab");
            txn.encode_update_v1()
        };
        let after_first = doc.transact().state_vector();
        let second = {
            let mut txn = doc.transact_mut();
            text.insert(&mut txn, 1, "x");
            text.remove_range(&mut txn, 0, 1);
            txn.encode_update_v1()
        };
        let empty = StateVector::default();
        let second = check_update(&second).expect("well-formed");
        assert!(check_update(&first).expect("well-formed").is_ready(&empty));
        assert!(!second.is_ready(&empty), "builds on the first update");
        assert!(second.is_ready(&after_first));
    }

    #[test]
    fn leftovers_and_truncation_are_refused() {
        assert!(matches!(
            check_update(&[0, 0, 0]).err(),
            Some(ProtocolError::TrailingBytes { .. })
        ));
        assert!(matches!(
            check_update(&[0]).err(),
            Some(ProtocolError::Truncated { .. })
        ));
        assert!(check_update(&[]).is_err());
    }
}
