//! Runs and their output in SQLite. The transcript is one JSON column: it is
//! always read and written whole, and capped by the server.

use super::{parse_stored, SqlResultExt, SqliteStore};
use async_trait::async_trait;
use ensemble_core::ids::{RunId, SessionId, UserId};
use ensemble_core::model::{Run, RunEnd, RunStatus, RunSummary};
use ensemble_core::store::{RunStore, StoreError, StoreResult};
use ensemble_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};

const SUMMARY_COLUMNS: &str =
    "id, session_id, author, author_name, status, exit_code, reason, created_at, duration_ms";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RunSummary, String)> {
    Ok((
        RunSummary {
            id: RunId::from_stored(r.get(0)?),
            session_id: SessionId::from_stored(r.get(1)?),
            author: UserId::from_stored(r.get(2)?),
            author_name: r.get(3)?,
            status: RunStatus::Queued, // replaced by the caller from column 4
            exit_code: r.get(5)?,
            reason: r.get(6)?,
            created_at: r.get(7)?,
            duration_ms: r.get::<_, Option<i64>>(8)?.map(|d| d as u64),
        },
        r.get(4)?,
    ))
}

/// Pages through runs where `column = key`, newest first.
fn page(
    c: &Connection,
    column: &str,
    key: &str,
    before: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<RunSummary>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM runs WHERE {column} = ?1 AND (?2 IS NULL OR id < ?2)
         ORDER BY id DESC LIMIT ?3"
    );
    let rows = c
        .prepare_cached(&sql)
        .db()?
        .query_map(params![key, before, limit], summary_from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    rows.into_iter()
        .map(|(mut s, status)| {
            s.status = parse_stored(&status, "run status", RunStatus::parse)?;
            Ok(s)
        })
        .collect()
}

fn changed(n: usize) -> StoreResult<()> {
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn create_run(&self, run: &Run) -> StoreResult<()> {
        let r = run.clone();
        let output =
            serde_json::to_string(&r.output).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.call(move |c| {
            c.execute(
                "INSERT INTO runs (id, session_id, author, author_name, code, status, exit_code, reason, node,
                                   created_at, started_at, finished_at, duration_ms, output, truncated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    r.id.as_str(), r.session_id.as_str(), r.author.as_str(), r.author_name, r.code,
                    r.status.as_str(), r.exit_code, r.reason, r.node, r.created_at, r.started_at,
                    r.finished_at, r.duration_ms.map(|d| d as i64), output, r.truncated
                ],
            )
            .db()
            .map(drop)
        })
        .await
    }

    async fn mark_run_started(&self, id: &RunId, started_at: Millis) -> StoreResult<()> {
        let id = id.to_string();
        self.call(move |c| {
            changed(
                c.execute(
                    "UPDATE runs SET status = 'running', started_at = ?2 WHERE id = ?1",
                    params![id, started_at],
                )
                .db()?,
            )
        })
        .await
    }

    async fn finish_run(&self, id: &RunId, end: &RunEnd) -> StoreResult<()> {
        let (id, e) = (id.to_string(), end.clone());
        let output =
            serde_json::to_string(&e.output).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.call(move |c| {
            changed(
                c.execute(
                    "UPDATE runs SET status = ?2, exit_code = ?3, reason = ?4, started_at = COALESCE(?5, started_at),
                         finished_at = ?6, duration_ms = ?7, output = ?8, truncated = ?9
                     WHERE id = ?1",
                    params![
                        id, e.status.as_str(), e.exit_code, e.reason, e.started_at, e.finished_at,
                        e.duration_ms.map(|d| d as i64), output, e.truncated
                    ],
                )
                .db()?,
            )
        })
        .await
    }

    async fn run(&self, id: &RunId) -> StoreResult<Option<Run>> {
        let id = id.to_string();
        self.call(move |c| {
            let row = c
                .query_row(
                    "SELECT id, session_id, author, author_name, code, status, exit_code, reason, node,
                            created_at, started_at, finished_at, duration_ms, output, truncated
                     FROM runs WHERE id = ?1",
                    [id],
                    |r| {
                        Ok((
                            Run {
                                id: RunId::from_stored(r.get(0)?),
                                session_id: SessionId::from_stored(r.get(1)?),
                                author: UserId::from_stored(r.get(2)?),
                                author_name: r.get(3)?,
                                code: r.get(4)?,
                                status: RunStatus::Queued,
                                exit_code: r.get(6)?,
                                reason: r.get(7)?,
                                node: r.get(8)?,
                                created_at: r.get(9)?,
                                started_at: r.get(10)?,
                                finished_at: r.get(11)?,
                                duration_ms: r.get::<_, Option<i64>>(12)?.map(|d| d as u64),
                                output: Vec::new(),
                                truncated: r.get(14)?,
                            },
                            r.get::<_, String>(5)?,
                            r.get::<_, String>(13)?,
                        ))
                    },
                )
                .optional()
                .db()?;
            let Some((mut run, status, output)) = row else { return Ok(None) };
            run.status = parse_stored(&status, "run status", RunStatus::parse)?;
            run.output = serde_json::from_str(&output).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(Some(run))
        })
        .await
    }

    async fn runs_for_session(
        &self,
        id: &SessionId,
        before: Option<&RunId>,
        limit: u32,
    ) -> StoreResult<Vec<RunSummary>> {
        let (id, before) = (id.to_string(), before.map(|b| b.to_string()));
        self.call(move |c| page(c, "session_id", &id, before.as_deref(), limit))
            .await
    }

    async fn runs_for_user(
        &self,
        user: &UserId,
        before: Option<&RunId>,
        limit: u32,
    ) -> StoreResult<Vec<RunSummary>> {
        let (user, before) = (user.to_string(), before.map(|b| b.to_string()));
        self.call(move |c| page(c, "author", &user, before.as_deref(), limit))
            .await
    }

    async fn interrupt_session_runs(
        &self,
        id: &SessionId,
        node: &str,
        now: Millis,
    ) -> StoreResult<u64> {
        let (id, node) = (id.to_string(), node.to_owned());
        self.call(move |c| {
            c.execute(
                "UPDATE runs SET status = 'interrupted', reason = 'the server stopped during the run',
                     finished_at = ?3
                 WHERE session_id = ?1 AND node = ?2 AND status IN ('queued', 'running')",
                params![id, node, now],
            )
            .db()
            .map(|n| n as u64)
        })
        .await
    }

    async fn interrupt_unfinished_runs(&self, node: &str, now: Millis) -> StoreResult<u64> {
        let node = node.to_owned();
        self.call(move |c| {
            c.execute(
                "UPDATE runs SET status = 'interrupted', reason = 'the server stopped during the run',
                     finished_at = ?2
                 WHERE node = ?1 AND status IN ('queued', 'running')",
                params![node, now],
            )
            .db()
            .map(|n| n as u64)
        })
        .await
    }
}
