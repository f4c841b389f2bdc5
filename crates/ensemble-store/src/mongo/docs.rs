//! Document update log and snapshots in MongoDB.

use super::{mongo_err, MongoStore};
use async_trait::async_trait;
use bson::spec::BinarySubtype;
use bson::{doc, Binary};
use ensemble_core::ids::SessionId;
use ensemble_core::model::{DocUpdate, StoredDoc};
use ensemble_core::store::{DocStore, StoreError, StoreResult};
use futures::TryStreamExt;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct UpdateDoc {
    session_id: String,
    seq: i64,
    data: Binary,
}

/// Snapshots are append-only: a new one is inserted beside the old, which
/// is deleted afterwards, and loading takes the highest `upto_seq`. No
/// document is ever rewritten in place.
#[derive(Serialize, Deserialize)]
struct SnapshotDoc {
    session_id: String,
    upto_seq: i64,
    data: Binary,
}

fn binary(bytes: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl MongoStore {
    fn updates(&self) -> Collection<UpdateDoc> {
        self.db.collection("doc_updates")
    }

    fn snapshots(&self) -> Collection<SnapshotDoc> {
        self.db.collection("doc_snapshots")
    }
}

#[async_trait]
impl DocStore for MongoStore {
    async fn append_doc_updates(&self, id: &SessionId, updates: &[DocUpdate]) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let docs = updates.iter().map(|u| UpdateDoc {
            session_id: id.to_string(),
            seq: seq_i64(u.seq),
            data: binary(&u.data),
        });
        // Ordered insert: on a duplicate seq nothing after it is written.
        self.updates()
            .insert_many(docs)
            .await
            .map_err(mongo_err)
            .map(drop)
    }

    async fn load_doc(&self, id: &SessionId) -> StoreResult<StoredDoc> {
        let snap = self
            .snapshots()
            .find_one(doc! {"session_id": id.as_str()})
            .sort(doc! {"upto_seq": -1})
            .await
            .map_err(mongo_err)?;
        let snapshot_seq = snap.as_ref().map_or(0, |s| s.upto_seq);
        let updates: Vec<UpdateDoc> = self
            .updates()
            .find(doc! {"session_id": id.as_str(), "seq": {"$gt": snapshot_seq}})
            .sort(doc! {"seq": 1})
            .await
            .map_err(mongo_err)?
            .try_collect()
            .await
            .map_err(mongo_err)?;
        Ok(StoredDoc {
            snapshot: snap.map(|s| s.data.bytes),
            snapshot_seq: u64::try_from(snapshot_seq).unwrap_or(0),
            updates: updates
                .into_iter()
                .map(|u| DocUpdate {
                    seq: u64::try_from(u.seq).unwrap_or(0),
                    data: u.data.bytes,
                })
                .collect(),
        })
    }

    async fn compact_doc(&self, id: &SessionId, snapshot: &[u8], upto_seq: u64) -> StoreResult<()> {
        let upto = seq_i64(upto_seq);
        // Step 1: add the new snapshot. A clash means an equal one exists.
        let inserted = self
            .snapshots()
            .insert_one(SnapshotDoc {
                session_id: id.to_string(),
                upto_seq: upto,
                data: binary(snapshot),
            })
            .await
            .map_err(mongo_err);
        match inserted {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        // Older snapshots are now redundant; a newer one, if any, stays and
        // wins at load time.
        self.snapshots()
            .delete_many(doc! {"session_id": id.as_str(), "upto_seq": {"$lt": upto}})
            .await
            .map_err(mongo_err)?;
        // Step 2: drop what the snapshot covers. A crash before this leaves
        // extra updates and snapshots that loading skips.
        self.updates()
            .delete_many(doc! {"session_id": id.as_str(), "seq": {"$lte": upto}})
            .await
            .map_err(mongo_err)
            .map(drop)
    }
}
