//! Integration tests: the real server over real sockets. All compile into one
//! binary; each module is one area.

mod accounts;
mod cli;
mod deletion;
mod durability;
mod health;
mod helpers;
mod live;
mod nodes;
mod runs;
mod yclient;
