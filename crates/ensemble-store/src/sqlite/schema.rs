//! The SQLite schema as an ordered list of migrations.
//!
//! `PRAGMA user_version` records how many have been applied; each runs in its
//! own transaction, so a crash mid-migration leaves the previous version. Add
//! new migrations at the end; never edit one that has shipped.

use rusqlite::Connection;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the whole data model of DESIGN.md.
    r#"
    CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        username      TEXT NOT NULL,
        username_key  TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until  INTEGER
    );
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX tokens_by_expiry ON tokens(expires_at);
    CREATE TABLE sessions (
        id         TEXT PRIMARY KEY,
        title      TEXT NOT NULL,
        owner      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE session_members (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        user_id    TEXT NOT NULL,
        username   TEXT NOT NULL,
        role       TEXT NOT NULL,
        PRIMARY KEY (session_id, user_id)
    );
    CREATE INDEX members_by_user ON session_members(user_id, session_id);
    CREATE TABLE share_links (
        link_hash  TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role       TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX links_by_session ON share_links(session_id);
    CREATE TABLE tickets (
        ticket_hash TEXT PRIMARY KEY,
        session_id  TEXT NOT NULL,
        user_id     TEXT,
        username    TEXT,
        guest_name  TEXT,
        role        TEXT NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    CREATE INDEX tickets_by_expiry ON tickets(expires_at);
    CREATE TABLE doc_updates (
        session_id TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        data       BLOB NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE doc_snapshots (
        session_id TEXT PRIMARY KEY,
        upto_seq   INTEGER NOT NULL,
        data       BLOB NOT NULL
    );
    CREATE TABLE runs (
        id          TEXT PRIMARY KEY,
        session_id  TEXT NOT NULL,
        author      TEXT NOT NULL,
        author_name TEXT NOT NULL,
        code        TEXT NOT NULL,
        status      TEXT NOT NULL,
        exit_code   INTEGER,
        reason      TEXT,
        node        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        started_at  INTEGER,
        finished_at INTEGER,
        duration_ms INTEGER,
        output      TEXT NOT NULL DEFAULT '[]',
        truncated   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_session ON runs(session_id, id DESC);
    CREATE INDEX runs_by_author ON runs(author, id DESC);
    CREATE INDEX runs_by_node_status ON runs(node, status);
    "#,
    // 2: session leases (one node serves a session at a time).
    r#"
    CREATE TABLE leases (
        session_id TEXT PRIMARY KEY,
        node       TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    "#,
    // 3: hand-over requests (a refused node asks the holder for the session).
    r#"
    ALTER TABLE leases ADD COLUMN wanted_by TEXT;
    ALTER TABLE leases ADD COLUMN wanted_at INTEGER;
    "#,
    // 4: failed logins for names without an account (kept like an
    // account's, so every node and every restart answers the same).
    r#"
    CREATE TABLE unknown_name_failures (
        name_key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_at  INTEGER NOT NULL
    );
    CREATE INDEX unknown_names_by_last ON unknown_name_failures(last_at);
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: usize = MIGRATIONS.len();

/// Brings the database up to [`CURRENT_VERSION`]. Refuses a database written
/// by a newer build rather than guessing at its layout.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "database schema version {version} is newer than this build's {CURRENT_VERSION}"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        migrate(&mut c).unwrap();
        let v: usize = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        assert!(migrate(&mut c).is_err());
    }
}
