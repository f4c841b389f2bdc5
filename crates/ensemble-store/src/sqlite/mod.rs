//! The embedded store: one SQLite file in WAL mode.
//!
//! One connection behind a `std::sync::Mutex`, used only inside
//! `spawn_blocking`: SQLite allows one writer at a time anyway, a std mutex is
//! right because the lock is never held across an `.await`, and the async
//! workers never block on disk. `synchronous = FULL` makes every commit durable
//! before the call returns (the server batches document updates into group
//! commits, so the fsync cost is paid per batch, not per keystroke).

mod docs;
mod leases;
mod runs;
pub(crate) mod schema;
mod sessions;
mod users;

use async_trait::async_trait;
use ensemble_core::ids::SessionId;
use ensemble_core::store::{Store, StoreError, StoreKind, StoreResult};
use rusqlite::{Connection, ErrorCode};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The file name inside the data directory.
pub const DB_FILE: &str = "ensemble.db";

/// The embedded SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    dir: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/ensemble.db` and migrates it.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut conn = Connection::open(dir.join(DB_FILE)).map_err(|e| {
            StoreError::Unavailable(format!("cannot open {}: {e}", dir.join(DB_FILE).display()))
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).db()?;
        // journal_mode answers with a row, so it is queried rather than set.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "data directory {} is not writable: {e}",
                    dir.display()
                ))
            })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "cannot use WAL mode (got {mode})"
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL").db()?;
        conn.pragma_update(None, "foreign_keys", "ON").db()?;
        schema::migrate(&mut conn).map_err(|e| {
            StoreError::Unavailable(format!("cannot migrate {}: {e}", dir.display()))
        })?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            dir: dir.to_path_buf(),
        })
    }

    /// Runs `f` on the connection on tokio's blocking pool.
    async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Unavailable("sqlite connection poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("sqlite task failed: {e}")))?
    }
}

/// Turns rusqlite errors into the contract's errors: UNIQUE and other
/// constraint violations are conflicts; everything else means the store is
/// not usable right now.
pub(crate) trait SqlResultExt<T> {
    /// Maps the error.
    fn db(self) -> StoreResult<T>;
}

impl<T> SqlResultExt<T> for rusqlite::Result<T> {
    fn db(self) -> StoreResult<T> {
        self.map_err(|e| match &e {
            rusqlite::Error::SqliteFailure(f, msg) if f.code == ErrorCode::ConstraintViolation => {
                StoreError::Conflict(msg.clone().unwrap_or_else(|| e.to_string()))
            }
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        })
    }
}

/// Reads a stored enum-like text column back, or reports corruption.
pub(crate) fn parse_stored<T>(
    value: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> StoreResult<T> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("bad {what}: {value:?}")))
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.call(|c| c.query_row("SELECT 1", [], |_| Ok(())).db())
            .await
    }

    async fn close(&self) -> StoreResult<()> {
        // Fold the WAL back into the main file so the data directory is
        // self-contained after a clean stop.
        self.call(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .db()
        })
        .await
    }

    async fn purge_session(&self, id: &SessionId) -> StoreResult<()> {
        let id = id.to_string();
        self.call(move |c| {
            let tx = c.transaction().db()?;
            for table in ["doc_updates", "doc_snapshots", "runs", "leases"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE session_id = ?1"),
                    rusqlite::params![id],
                )
                .db()?;
            }
            tx.commit().db()
        })
        .await
    }

    async fn orphaned_sessions(&self, limit: usize) -> StoreResult<Vec<SessionId>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |c| {
            // One statement, so it sees one snapshot: a session created
            // meanwhile is either wholly visible or not at all.
            let mut stmt = c
                .prepare_cached(
                    "SELECT session_id FROM doc_updates
                     UNION SELECT session_id FROM doc_snapshots
                     UNION SELECT session_id FROM runs
                     UNION SELECT session_id FROM leases
                     EXCEPT SELECT id FROM sessions
                     LIMIT ?1",
                )
                .db()?;
            let ids = stmt
                .query_map([limit], |r| r.get::<_, String>(0))
                .db()?
                .map(|r| r.map(SessionId::from_stored))
                .collect::<Result<_, _>>()
                .db()?;
            Ok(ids)
        })
        .await
    }
}
