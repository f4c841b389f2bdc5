//! The room end to end, without sockets: simulated clients (see
//! `test_client`) edit, watch and leave. Split by theme; shared helpers here.

mod access;
mod refusals;
mod sync;

use super::test_client::Net;
use super::*;
use yrs::{Doc, MapPrelim, ReadTxn, StateVector, Transact, WriteTxn};

/// A deterministic xorshift, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

fn two_editors() -> Net {
    let mut net = Net::new(Room::new(RoomLimits::default()));
    let a = net.add(11, true);
    let b = net.add(22, true);
    net.connect(a);
    net.connect(b);
    net.settle();
    net
}

#[test]
fn room_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Room>();
}
