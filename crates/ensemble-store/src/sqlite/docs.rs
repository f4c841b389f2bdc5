//! Document update log and snapshots in SQLite.

use super::{SqlResultExt, SqliteStore};
use async_trait::async_trait;
use ensemble_core::ids::SessionId;
use ensemble_core::model::{DocUpdate, StoredDoc};
use ensemble_core::store::{DocStore, StoreResult};
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl DocStore for SqliteStore {
    async fn append_doc_updates(&self, id: &SessionId, updates: &[DocUpdate]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let (id, updates) = (id.to_string(), updates.to_vec());
        self.call(move |c| {
            // One transaction, one fsync: this is the group commit.
            let tx = c.transaction().db()?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO doc_updates (session_id, seq, data) VALUES (?1, ?2, ?3)",
                    )
                    .db()?;
                for u in &updates {
                    stmt.execute(params![id, u.seq as i64, u.data]).db()?;
                }
            }
            tx.commit().db()
        })
        .await
    }

    async fn load_doc(&self, id: &SessionId) -> StoreResult<StoredDoc> {
        let id = id.to_string();
        self.call(move |c| {
            let tx = c.transaction().db()?;
            let snap = tx
                .query_row(
                    "SELECT upto_seq, data FROM doc_snapshots WHERE session_id = ?1",
                    [&id],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
                )
                .optional()
                .db()?;
            let snapshot_seq = snap.as_ref().map_or(0, |(s, _)| *s);
            let updates = tx
                .prepare_cached(
                    "SELECT seq, data FROM doc_updates WHERE session_id = ?1 AND seq > ?2 ORDER BY seq",
                )
                .db()?
                .query_map(params![id, snapshot_seq], |r| {
                    Ok(DocUpdate {
                        seq: r.get::<_, i64>(0)? as u64,
                        data: r.get(1)?,
                    })
                })
                .db()?
                .collect::<rusqlite::Result<Vec<_>>>()
                .db()?;
            tx.commit().db()?;
            Ok(StoredDoc {
                snapshot: snap.map(|(_, d)| d),
                snapshot_seq: snapshot_seq as u64,
                updates,
            })
        })
        .await
    }

    async fn compact_doc(&self, id: &SessionId, snapshot: &[u8], upto_seq: u64) -> StoreResult<()> {
        let (id, data) = (id.to_string(), snapshot.to_vec());
        self.call(move |c| {
            // SQLite can do both steps atomically; the MongoDB store cannot,
            // which is why loading ignores updates the snapshot covers.
            let tx = c.transaction().db()?;
            tx.execute(
                "INSERT INTO doc_snapshots (session_id, upto_seq, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT (session_id) DO UPDATE SET upto_seq = excluded.upto_seq, data = excluded.data
                 WHERE excluded.upto_seq >= doc_snapshots.upto_seq",
                params![id, upto_seq as i64, data],
            )
            .db()?;
            tx.execute(
                "DELETE FROM doc_updates WHERE session_id = ?1 AND seq <= ?2",
                params![id, upto_seq as i64],
            )
            .db()?;
            tx.commit().db()
        })
        .await
    }
}
