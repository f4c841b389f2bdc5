//! What one editor update costs the room, by document size and shape.
//!
//! `cargo run --release -p ensemble-core --example apply_bench`
//!
//! Two documents of about the same encoded size: one typed (keystrokes in a
//! row merge into one block; a jump elsewhere now and then), and one made
//! of single characters inserted at random places (no merges: about the
//! most blocks per byte). For each, it prints the time of one
//! full encoding (a snapshot) and the median and p99 time of applying one
//! more single-character edit through `Room::receive`.

use ensemble_core::room::{ConnId, Room, RoomLimits};
use std::time::{Duration, Instant};
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, OffsetKind, Options, ReadTxn, StateVector, Text, Transact};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// A y-sync "update" frame: message 0, sync 2, the update as var bytes.
fn frame(update: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 2];
    let mut n = update.len() as u64;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(update);
    out
}

fn doc(client: u64) -> Doc {
    Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::with_client_id(ClientID::new(client))
    })
}

/// Builds a document of at least `kib` KiB typed by one client: `chunk`
/// characters per edit, at a random place with probability `jump` %
/// (else right after the previous edit, where it merges into its block).
fn build(kib: usize, jump: u64, chunk: usize) -> Doc {
    let main = doc(1);
    let text = main.get_or_insert_text("code");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cursor = 0;
    for i in 1.. {
        let mut txn = main.transact_mut();
        let len = text.len(&txn);
        if rng.below(100) < jump {
            cursor = rng.below(u64::from(len) + 1) as u32;
        }
        text.insert(&mut txn, cursor.min(len), &"x".repeat(chunk));
        cursor = cursor.min(len) + chunk as u32;
        drop(txn);
        if i % 1024 == 0 && full(&main).len() >= kib << 10 {
            break;
        }
    }
    main
}

fn full(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn bench(name: &str, source: &Doc) {
    let snapshot = full(source);
    let mut room = Room::load(Some(&snapshot), [], RoomLimits::default()).unwrap();
    room.connect(ConnId(1), true);
    let t = Instant::now();
    let size = room.snapshot().len();
    let encode = t.elapsed();
    // One editor that has the whole document types 2000 characters at
    // random places, one update each.
    let editor = doc(4242);
    editor
        .transact_mut()
        .apply_update(yrs::Update::decode_v1(&snapshot).unwrap())
        .unwrap();
    let text = editor.get_or_insert_text("code");
    let mut rng = Rng(7);
    let updates: Vec<Vec<u8>> = (0..2000)
        .map(|_| {
            let mut txn = editor.transact_mut();
            let at = rng.below(u64::from(text.len(&txn)) + 1) as u32;
            text.insert(&mut txn, at, "y");
            frame(&txn.encode_update_v1())
        })
        .collect();
    let mut times: Vec<Duration> = updates
        .iter()
        .map(|f| {
            let t = Instant::now();
            let out = room.receive(ConnId(1), f).expect("applies");
            assert!(out.persist.is_some());
            t.elapsed()
        })
        .collect();
    times.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| {name} | {} KiB | {:.2} ms | {:.1} µs | {:.1} µs | {:.1} µs |",
        size >> 10,
        encode.as_secs_f64() * 1e3,
        us(times[times.len() / 2]),
        us(times[times.len() * 99 / 100]),
        us(times.iter().sum::<Duration>() / times.len() as u32),
    );
}

fn main() {
    println!("| document | encoded | one full encoding | apply p50 | apply p99 | apply mean |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for kib in [64, 256, 1024] {
        bench(&format!("typed, {kib} KiB"), &build(kib, 5, 4));
        bench(
            &format!("1-char edits at random places, {kib} KiB"),
            &build(kib, 100, 1),
        );
    }
}
