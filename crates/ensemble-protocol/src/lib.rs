//! Wire types shared by the server, the tests and the tools.
//!
//! Everything here is plain data with serde derives and no IO, so a test or a
//! load tool can speak the protocol without pulling in the server. The REST
//! contract and the type-100 websocket messages are described in
//! `docs/PROTOCOL.md`; the names and shapes here are that contract.
//!
//! Layout:
//! - [`api`]: REST request and response bodies, and the error envelope.
//! - [`health`]: the `/readyz` body.
//! - [`run`]: the type-100 websocket messages (run commands and events).

pub mod api;
pub mod health;
pub mod run;
