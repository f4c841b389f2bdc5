//! The sandbox's hostile-program suite: every test runs a program only
//! through the sandbox, with small limits, and asserts exactly how it ended.
//! One binary (like zero2prod's `tests/api/main.rs`) so the probe runs once.

mod isolation;
mod lifecycle;
mod limits;
mod support;
