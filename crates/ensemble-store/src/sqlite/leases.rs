//! Session leases in SQLite: one immediate transaction reads and writes the
//! lease row, so two processes sharing the file cannot both take it.

use super::{SqlResultExt, SqliteStore};
use async_trait::async_trait;
use ensemble_core::ids::SessionId;
use ensemble_core::store::{Lease, LeaseStore, StoreResult};
use ensemble_core::time::Millis;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(
        &self,
        id: &SessionId,
        node: &str,
        now: Millis,
        ttl_ms: i64,
    ) -> StoreResult<Lease> {
        let (id, node) = (id.to_string(), node.to_owned());
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
            let current = tx
                .query_row("SELECT node, expires_at FROM leases WHERE session_id = ?1", [&id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Millis>(1)?))
                })
                .optional()
                .db()?;
            let outcome = match current {
                Some((holder, expires)) if holder != node && expires > now => Lease::HeldBy(holder),
                other => {
                    tx.execute(
                        "INSERT INTO leases (session_id, node, expires_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (session_id) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at",
                        params![id, node, now.saturating_add(ttl_ms)],
                    )
                    .db()?;
                    Lease::Acquired { previous: other.map(|(h, _)| h).filter(|h| *h != node) }
                }
            };
            tx.commit().db()?;
            Ok(outcome)
        })
        .await
    }

    async fn release_lease(&self, id: &SessionId, node: &str) -> StoreResult<()> {
        let (id, node) = (id.to_string(), node.to_owned());
        self.call(move |c| {
            c.execute(
                "DELETE FROM leases WHERE session_id = ?1 AND node = ?2",
                params![id, node],
            )
            .db()
            .map(drop)
        })
        .await
    }
}
