//! Session leases in SQLite: one immediate transaction reads and writes the
//! lease row, so two processes sharing the file cannot both take it.

use super::{SqlResultExt, SqliteStore};
use async_trait::async_trait;
use ensemble_core::ids::SessionId;
use ensemble_core::store::{fresh_request, Lease, LeaseStore, StoreResult};
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
        ask: bool,
    ) -> StoreResult<Lease> {
        let (id, node) = (id.to_string(), node.to_owned());
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
            let current = tx
                .query_row(
                    "SELECT node, expires_at, wanted_by, wanted_at FROM leases WHERE session_id = ?1",
                    [&id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Millis>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<Millis>>(3)?,
                        ))
                    },
                )
                .optional()
                .db()?;
            let expires_at = now.saturating_add(ttl_ms);
            let outcome = match current {
                Some((holder, expires, ..)) if holder != node && expires > now => {
                    if ask {
                        tx.execute(
                            "UPDATE leases SET wanted_by = ?2, wanted_at = ?3 WHERE session_id = ?1",
                            params![id, node, now],
                        )
                        .db()?;
                    }
                    Lease::HeldBy(holder)
                }
                Some((holder, _, wanted_by, wanted_at)) if holder == node => {
                    tx.execute(
                        "UPDATE leases SET expires_at = ?2 WHERE session_id = ?1",
                        params![id, expires_at],
                    )
                    .db()?;
                    Lease::Acquired {
                        previous: None,
                        wanted_by: fresh_request(&node, wanted_by, wanted_at, now, ttl_ms),
                        renewed: true,
                    }
                }
                other => {
                    tx.execute(
                        "INSERT INTO leases (session_id, node, expires_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (session_id) DO UPDATE SET node = excluded.node,
                           expires_at = excluded.expires_at, wanted_by = NULL, wanted_at = NULL",
                        params![id, node, expires_at],
                    )
                    .db()?;
                    Lease::Acquired {
                        previous: other.map(|(h, ..)| h),
                        wanted_by: None,
                        renewed: false,
                    }
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
