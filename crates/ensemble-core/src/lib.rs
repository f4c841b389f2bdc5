//! Ensemble's domain, free of IO.
//!
//! This crate holds what every other crate agrees on and nothing that needs a
//! socket, a runtime or a database: identifiers, validated names, roles and
//! their permissions, the stored records, and the [`store`] contract that the
//! MongoDB and SQLite stores both implement. Keeping it IO-free means the rules
//! are unit-tested here in milliseconds (compare y-sweet's core).
//!
//! Layout:
//! - [`ids`]: typed identifiers and how new ones are made.
//! - [`names`]: validated user input (usernames, titles).
//! - [`password`]: what a new password must be.
//! - [`role`]: owner / editor / viewer and what each may do.
//! - [`room`]: a session's shared document, presence and y-sync handling.
//! - [`model`]: the records the store keeps.
//! - [`store`]: the `Store` traits and `StoreError`.
//! - [`time`]: timestamps as epoch milliseconds.

pub mod ids;
pub mod model;
pub mod names;
pub mod password;
pub mod role;
pub mod room;
pub mod store;
pub mod time;
