//! The two implementations of `ensemble_core::store::Store`.
//!
//! - [`SqliteStore`]: the embedded default, one SQLite file (WAL) under the
//!   data directory, with versioned migrations. SQLite calls block, so they run
//!   on tokio's blocking pool, never on the async worker threads.
//! - [`MongoStore`]: production, on the official `mongodb` driver. It starts
//!   even when the server is unreachable and creates its indexes on the first
//!   successful [`Store::ping`](ensemble_core::store::Store::ping).
//!
//! Both pass the same contract suite (`tests/contract`), which is the
//! definition of "a store" for the rest of Ensemble.

pub mod mongo;
pub mod sqlite;

pub use mongo::MongoStore;
pub use sqlite::SqliteStore;
