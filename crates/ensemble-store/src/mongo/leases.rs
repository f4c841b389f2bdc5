//! Session leases in MongoDB, with single-document atomic operations only
//! (no transactions): insert if absent, else renew if ours, else take over
//! if expired, else report the holder.

use super::{mongo_err, MongoStore};
use async_trait::async_trait;
use bson::doc;
use ensemble_core::ids::SessionId;
use ensemble_core::store::{Lease, LeaseStore, StoreError, StoreResult};
use ensemble_core::time::Millis;
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct LeaseDoc {
    #[serde(rename = "_id")]
    session_id: String,
    node: String,
    expires_at: i64,
}

impl MongoStore {
    fn leases(&self) -> Collection<LeaseDoc> {
        self.db.collection("leases")
    }
}

#[async_trait]
impl LeaseStore for MongoStore {
    async fn acquire_lease(
        &self,
        id: &SessionId,
        node: &str,
        now: Millis,
        ttl_ms: i64,
    ) -> StoreResult<Lease> {
        let expires_at = now.saturating_add(ttl_ms);
        let sid = id.as_str();
        // A few rounds cover a lease that disappears between two steps.
        for _ in 0..3 {
            let fresh = LeaseDoc {
                session_id: sid.to_owned(),
                node: node.to_owned(),
                expires_at,
            };
            match self.leases().insert_one(fresh).await.map_err(mongo_err) {
                Ok(_) => return Ok(Lease::Acquired { previous: None }),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            let renewed = self
                .leases()
                .update_one(
                    doc! {"_id": sid, "node": node},
                    doc! {"$set": {"expires_at": expires_at}},
                )
                .await
                .map_err(mongo_err)?;
            if renewed.matched_count > 0 {
                return Ok(Lease::Acquired { previous: None });
            }
            let taken = self
                .leases()
                .find_one_and_update(
                    doc! {"_id": sid, "expires_at": {"$lte": now}},
                    doc! {"$set": {"node": node, "expires_at": expires_at}},
                )
                .return_document(ReturnDocument::Before)
                .await
                .map_err(mongo_err)?;
            if let Some(before) = taken {
                return Ok(Lease::Acquired {
                    previous: Some(before.node).filter(|n| n != node),
                });
            }
            if let Some(holder) = self
                .leases()
                .find_one(doc! {"_id": sid})
                .await
                .map_err(mongo_err)?
            {
                return Ok(Lease::HeldBy(holder.node));
            }
        }
        Err(StoreError::Unavailable(
            "lease kept changing; try again".into(),
        ))
    }

    async fn release_lease(&self, id: &SessionId, node: &str) -> StoreResult<()> {
        self.leases()
            .delete_one(doc! {"_id": id.as_str(), "node": node})
            .await
            .map_err(mongo_err)
            .map(drop)
    }
}
