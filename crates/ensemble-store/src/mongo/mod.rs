//! The MongoDB store, on the official `mongodb` driver.
//!
//! Connecting does no network IO: the driver connects lazily and keeps
//! retrying in the background, so Ensemble starts even when MongoDB is down and
//! recovers by itself when it comes back. Indexes are created on the first
//! successful [`Store::ping`], and again after any failure to create them.
//!
//! Collections mirror DESIGN.md's data section. Times are `i64` epoch
//! milliseconds and booleans are read leniently (see `MONGO-IN-TESTS.md`:
//! some wire-compatible servers store `$set` booleans as integers). No
//! transactions are used; every change is a single-document atomic update,
//! except document compaction, whose two steps are safe in either order of
//! failure (loading ignores updates a snapshot already covers).

mod docs;
mod leases;
mod runs;
mod sessions;
mod users;

use async_trait::async_trait;
use bson::{doc, Document};
use ensemble_core::ids::SessionId;
use ensemble_core::store::{SessionStore, Store, StoreError, StoreKind, StoreResult};
use futures::TryStreamExt;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Database, IndexModel};
use serde::{Deserialize, Deserializer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The database used when the URI names none.
pub const DEFAULT_DATABASE: &str = "ensemble";

/// How long an operation waits for a reachable server before failing with
/// `Unavailable` (unless the URI sets `serverSelectionTimeoutMS`): short, so
/// requests fail fast with 503 while MongoDB is down.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the driver re-checks the servers (unless the URI sets
/// `heartbeatFrequencyMS`): often enough to notice a recovery within seconds.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The MongoDB store.
pub struct MongoStore {
    client: Client,
    db: Database,
    location: String,
    indexes_ready: AtomicBool,
}

impl MongoStore {
    /// Parses the URI and builds a client. Fails only on a malformed URI (or,
    /// for `mongodb+srv`, an SRV lookup failure); it does not wait for the
    /// server.
    pub async fn connect(uri: &str) -> StoreResult<Self> {
        let mut opts = ClientOptions::parse(uri)
            .await
            .map_err(|e| StoreError::Unavailable(format!("invalid MongoDB URI: {}", e.kind)))?;
        opts.app_name.get_or_insert_with(|| "ensemble".to_owned());
        opts.server_selection_timeout
            .get_or_insert(SERVER_SELECTION_TIMEOUT);
        opts.connect_timeout.get_or_insert(SERVER_SELECTION_TIMEOUT);
        opts.heartbeat_freq.get_or_insert(HEARTBEAT);
        let db_name = opts
            .default_database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let hosts: Vec<String> = opts.hosts.iter().map(ToString::to_string).collect();
        let location = format!("{}/{}", hosts.join(","), db_name);
        let client = Client::with_options(opts)
            .map_err(|e| StoreError::Unavailable(format!("invalid MongoDB options: {}", e.kind)))?;
        Ok(Self {
            db: client.database(&db_name),
            client,
            location,
            indexes_ready: AtomicBool::new(false),
        })
    }

    /// The database handle (tests read it directly to check what was stored).
    pub fn database(&self) -> &Database {
        &self.db
    }

    async fn ensure_indexes(&self) -> StoreResult<()> {
        if self.indexes_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let unique = || IndexOptions::builder().unique(true).build();
        // Sessions and runs keep their id in `session_id` / `run_id` rather
        // than `_id`, so compound indexes can end in it (some wire-compatible
        // servers cannot index `_id` inside a compound key, nor a field
        // named plain `id`). Array fields are indexed only in compound
        // indexes: the test server's single-field multikey index hides
        // matches.
        let plan: [(&str, Document, bool); 13] = [
            ("users", doc! {"username_key": 1}, true),
            ("tokens", doc! {"expires_at": 1}, false),
            ("sessions", doc! {"session_id": 1}, true),
            ("sessions", doc! {"member_ids": 1, "session_id": -1}, false),
            ("sessions", doc! {"link_hashes": 1, "session_id": 1}, false),
            ("tickets", doc! {"expires_at": 1}, false),
            ("doc_updates", doc! {"session_id": 1, "seq": 1}, true),
            (
                "doc_snapshots",
                doc! {"session_id": 1, "upto_seq": -1},
                true,
            ),
            ("runs", doc! {"run_id": 1}, true),
            ("runs", doc! {"session_id": 1, "run_id": -1}, false),
            ("runs", doc! {"author": 1, "run_id": -1}, false),
            ("runs", doc! {"node": 1, "status": 1}, false),
            ("unknown_name_failures", doc! {"last_at": 1}, false),
        ];
        for (coll, keys, is_unique) in plan {
            let model = IndexModel::builder()
                .keys(keys)
                .options(is_unique.then(unique))
                .build();
            self.db
                .collection::<Document>(coll)
                .create_index(model)
                .await
                .map_err(mongo_err)?;
        }
        self.indexes_ready.store(true, Ordering::Release);
        tracing::info!(location = %self.location, "mongodb indexes ready");
        Ok(())
    }
}

/// Maps driver errors to the contract's: duplicate key (11000, as a write
/// or a command error) is a conflict, undecodable documents are corrupt,
/// all else is unavailability.
pub(crate) fn mongo_err(e: mongodb::error::Error) -> StoreError {
    const DUPLICATE_KEY: i32 = 11000;
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == DUPLICATE_KEY => {
            StoreError::Conflict(w.message.clone())
        }
        // find_one_and_update with upsert reports it as a command error.
        ErrorKind::Command(c) if c.code == DUPLICATE_KEY => StoreError::Conflict(c.message.clone()),
        ErrorKind::InsertMany(m)
            if m.write_errors
                .as_ref()
                .is_some_and(|ws| ws.iter().any(|w| w.code == DUPLICATE_KEY)) =>
        {
            StoreError::Conflict("duplicate key in batch insert".into())
        }
        ErrorKind::BsonDeserialization(d) => StoreError::Corrupt(d.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// Reads a boolean that a server may have stored as an integer.
pub(crate) fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Int(i64),
    }
    Ok(match B::deserialize(d)? {
        B::Bool(b) => b,
        B::Int(i) => i != 0,
    })
}

#[async_trait]
impl Store for MongoStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Mongodb
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db
            .run_command(doc! {"ping": 1})
            .await
            .map_err(mongo_err)?;
        self.ensure_indexes().await
    }

    async fn close(&self) -> StoreResult<()> {
        // Every write was acknowledged already; shutting the client down
        // closes its pools and monitors cleanly.
        self.client.clone().shutdown().await;
        Ok(())
    }

    async fn purge_session(&self, id: &SessionId) -> StoreResult<()> {
        let by_session = doc! {"session_id": id.as_str()};
        // Each collection is indexed by session_id first; the lease is
        // keyed by the session id itself.
        for coll in ["doc_updates", "doc_snapshots", "runs"] {
            self.db
                .collection::<Document>(coll)
                .delete_many(by_session.clone())
                .await
                .map_err(mongo_err)?;
        }
        self.db
            .collection::<Document>("leases")
            .delete_one(doc! {"_id": id.as_str()})
            .await
            .map_err(mongo_err)?;
        Ok(())
    }

    async fn orphaned_sessions(&self, limit: usize) -> StoreResult<Vec<SessionId>> {
        // No joins and no snapshot across collections: list the session ids
        // that have data, drop those with a record, then confirm each one
        // left (a session created after the first list has a record by the
        // time its id shows up in the data). Each list streams through a
        // cursor: a `distinct` answer is one BSON document (16 MiB) and
        // would fail past a few 100,000 sessions.
        let ids_in = |coll: &'static str| async move {
            let mut cursor = self
                .db
                .collection::<Document>(coll)
                .aggregate([doc! {"$group": {"_id": "$session_id"}}])
                .allow_disk_use(true)
                .await
                .map_err(mongo_err)?;
            let mut ids = std::collections::BTreeSet::new();
            while let Some(d) = cursor.try_next().await.map_err(mongo_err)? {
                if let Ok(id) = d.get_str("_id") {
                    ids.insert(id.to_owned());
                }
            }
            Ok::<_, StoreError>(ids)
        };
        let live = ids_in("sessions").await?;
        let mut candidates = std::collections::BTreeSet::new();
        for coll in ["doc_updates", "doc_snapshots", "runs"] {
            candidates.extend(ids_in(coll).await?.difference(&live).cloned());
        }
        // Leases are keyed by the session id itself; there is one per
        // loaded session.
        let mut leases = self
            .db
            .collection::<Document>("leases")
            .find(doc! {})
            .projection(doc! {"_id": 1})
            .await
            .map_err(mongo_err)?;
        while let Some(d) = leases.try_next().await.map_err(mongo_err)? {
            match d.get_str("_id") {
                Ok(id) if !live.contains(id) => {
                    candidates.insert(id.to_owned());
                }
                _ => {}
            }
        }
        let mut orphans = Vec::new();
        for id in candidates {
            if orphans.len() == limit {
                break;
            }
            let id = SessionId::from_stored(id);
            if self.session(&id).await?.is_none() {
                orphans.push(id);
            }
        }
        Ok(orphans)
    }
}
