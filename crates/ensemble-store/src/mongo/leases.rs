//! Session leases in MongoDB, with single-document atomic operations only
//! (no transactions): insert if absent, else renew if ours, else take over
//! if expired, else report the holder (and, when asked, record in the same
//! step that this node wants the session).

use super::{mongo_err, MongoStore};
use async_trait::async_trait;
use bson::doc;
use ensemble_core::ids::SessionId;
use ensemble_core::store::{fresh_request, Lease, LeaseStore, StoreError, StoreResult};
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
    /// A refused node that asked for the session, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wanted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wanted_at: Option<i64>,
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
        ask: bool,
    ) -> StoreResult<Lease> {
        let expires_at = now.saturating_add(ttl_ms);
        let sid = id.as_str();
        // A few rounds cover a lease that disappears between two steps.
        for _ in 0..3 {
            let fresh = LeaseDoc {
                session_id: sid.to_owned(),
                node: node.to_owned(),
                expires_at,
                wanted_by: None,
                wanted_at: None,
            };
            match self.leases().insert_one(fresh).await.map_err(mongo_err) {
                Ok(_) => {
                    return Ok(Lease::Acquired {
                        previous: None,
                        wanted_by: None,
                        renewed: false,
                    })
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            let renewed = self
                .leases()
                .find_one_and_update(
                    doc! {"_id": sid, "node": node},
                    doc! {"$set": {"expires_at": expires_at}},
                )
                .await
                .map_err(mongo_err)?;
            if let Some(mine) = renewed {
                return Ok(Lease::Acquired {
                    previous: None,
                    wanted_by: fresh_request(node, mine.wanted_by, mine.wanted_at, now, ttl_ms),
                    renewed: true,
                });
            }
            let taken = self
                .leases()
                .find_one_and_update(
                    doc! {"_id": sid, "expires_at": {"$lte": now}},
                    doc! {
                        "$set": {"node": node, "expires_at": expires_at},
                        "$unset": {"wanted_by": "", "wanted_at": ""},
                    },
                )
                .return_document(ReturnDocument::Before)
                .await
                .map_err(mongo_err)?;
            if let Some(before) = taken {
                return Ok(Lease::Acquired {
                    previous: Some(before.node).filter(|n| n != node),
                    wanted_by: None,
                    renewed: false,
                });
            }
            let live = doc! {"_id": sid, "node": {"$ne": node}, "expires_at": {"$gt": now}};
            let holder = if ask {
                self.leases()
                    .find_one_and_update(live, doc! {"$set": {"wanted_by": node, "wanted_at": now}})
                    .await
            } else {
                self.leases().find_one(live).await
            };
            if let Some(holder) = holder.map_err(mongo_err)? {
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
