//! Runs and their output in MongoDB: one document per run, the transcript
//! as an array inside it (capped by the server well below 16 MB).

use super::{lenient_bool, mongo_err, MongoStore};
use async_trait::async_trait;
use bson::{doc, Document};
use ensemble_core::ids::{RunId, SessionId, UserId};
use ensemble_core::model::{OutputChunk, Run, RunEnd, RunStatus, RunSummary};
use ensemble_core::store::{RunStore, StoreError, StoreResult};
use ensemble_core::time::Millis;
use futures::TryStreamExt;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct RunDoc {
    run_id: String,
    session_id: String,
    author: String,
    author_name: String,
    #[serde(default)]
    code: String,
    status: RunStatus,
    exit_code: Option<i32>,
    reason: Option<String>,
    #[serde(default)]
    node: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    duration_ms: Option<i64>,
    #[serde(default)]
    output: Vec<OutputChunk>,
    #[serde(default, deserialize_with = "lenient_bool")]
    truncated: bool,
}

fn ms(d: Option<u64>) -> Option<i64> {
    d.map(|d| i64::try_from(d).unwrap_or(i64::MAX))
}

impl From<RunDoc> for Run {
    fn from(d: RunDoc) -> Self {
        Run {
            id: RunId::from_stored(d.run_id),
            session_id: SessionId::from_stored(d.session_id),
            author: UserId::from_stored(d.author),
            author_name: d.author_name,
            code: d.code,
            status: d.status,
            exit_code: d.exit_code,
            reason: d.reason,
            node: d.node,
            created_at: d.created_at,
            started_at: d.started_at,
            finished_at: d.finished_at,
            duration_ms: d.duration_ms.map(|v| u64::try_from(v).unwrap_or(0)),
            output: d.output,
            truncated: d.truncated,
        }
    }
}

impl MongoStore {
    fn runs(&self) -> Collection<RunDoc> {
        self.db.collection("runs")
    }

    /// Marks the queued or running runs matching `filter` as interrupted.
    async fn interrupt(&self, mut filter: Document, now: Millis) -> StoreResult<u64> {
        filter.insert("status", doc! {"$in": ["queued", "running"]});
        let r = self
            .runs()
            .update_many(
                filter,
                doc! {"$set": {
                    "status": RunStatus::Interrupted.as_str(),
                    "reason": "the server stopped during the run",
                    "finished_at": now,
                }},
            )
            .await
            .map_err(mongo_err)?;
        Ok(r.modified_count)
    }

    async fn page(
        &self,
        mut filter: Document,
        before: Option<&RunId>,
        limit: u32,
    ) -> StoreResult<Vec<RunSummary>> {
        if let Some(b) = before {
            filter.insert("run_id", doc! {"$lt": b.as_str()});
        }
        let docs: Vec<RunDoc> = self
            .runs()
            .find(filter)
            .sort(doc! {"run_id": -1})
            .limit(i64::from(limit))
            .projection(doc! {"code": 0, "output": 0, "_id": 0})
            .await
            .map_err(mongo_err)?
            .try_collect()
            .await
            .map_err(mongo_err)?;
        Ok(docs
            .into_iter()
            .map(|d| RunSummary::from(&Run::from(d)))
            .collect())
    }
}

#[async_trait]
impl RunStore for MongoStore {
    async fn create_run(&self, r: &Run) -> StoreResult<()> {
        let d = RunDoc {
            run_id: r.id.to_string(),
            session_id: r.session_id.to_string(),
            author: r.author.to_string(),
            author_name: r.author_name.clone(),
            code: r.code.clone(),
            status: r.status,
            exit_code: r.exit_code,
            reason: r.reason.clone(),
            node: r.node.clone(),
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: ms(r.duration_ms),
            output: r.output.clone(),
            truncated: r.truncated,
        };
        self.runs().insert_one(d).await.map_err(mongo_err).map(drop)
    }

    async fn mark_run_started(&self, id: &RunId, started_at: Millis) -> StoreResult<()> {
        let r = self
            .runs()
            .update_one(
                doc! {"run_id": id.as_str()},
                doc! {"$set": {"status": RunStatus::Running.as_str(), "started_at": started_at}},
            )
            .await
            .map_err(mongo_err)?;
        if r.matched_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn finish_run(&self, id: &RunId, e: &RunEnd) -> StoreResult<()> {
        let output =
            bson::to_bson(&e.output).map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let mut set = doc! {
            "status": e.status.as_str(),
            "exit_code": e.exit_code,
            "reason": e.reason.clone(),
            "finished_at": e.finished_at,
            "duration_ms": ms(e.duration_ms),
            "output": output,
            "truncated": e.truncated,
        };
        if let Some(s) = e.started_at {
            set.insert("started_at", s);
        }
        let r = self
            .runs()
            .update_one(doc! {"run_id": id.as_str()}, doc! {"$set": set})
            .await
            .map_err(mongo_err)?;
        if r.matched_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn run(&self, id: &RunId) -> StoreResult<Option<Run>> {
        let found = self
            .runs()
            .find_one(doc! {"run_id": id.as_str()})
            .await
            .map_err(mongo_err)?;
        Ok(found.map(Run::from))
    }

    async fn runs_for_session(
        &self,
        id: &SessionId,
        before: Option<&RunId>,
        limit: u32,
    ) -> StoreResult<Vec<RunSummary>> {
        self.page(doc! {"session_id": id.as_str()}, before, limit)
            .await
    }

    async fn runs_for_user(
        &self,
        user: &UserId,
        before: Option<&RunId>,
        limit: u32,
    ) -> StoreResult<Vec<RunSummary>> {
        self.page(doc! {"author": user.as_str()}, before, limit)
            .await
    }

    async fn interrupt_session_runs(
        &self,
        id: &SessionId,
        node: &str,
        now: Millis,
    ) -> StoreResult<u64> {
        self.interrupt(doc! {"session_id": id.as_str(), "node": node}, now)
            .await
    }

    async fn interrupt_unfinished_runs(&self, node: &str, now: Millis) -> StoreResult<u64> {
        self.interrupt(doc! {"node": node}, now).await
    }
}
