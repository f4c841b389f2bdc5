//! Timestamps are `i64` milliseconds since the Unix epoch everywhere.
//!
//! Plain integers survive both stores unchanged (the MongoDB test server turns
//! `$set` of a BSON date into a string), sort correctly, and serialise to JSON
//! without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current wall-clock time in epoch milliseconds.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
