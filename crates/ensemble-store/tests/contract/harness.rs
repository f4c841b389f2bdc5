//! Fresh stores for each contract test.

use ensemble_core::store::Store;
use ensemble_store::{MongoStore, SqliteStore};
use std::sync::Arc;

/// A store plus whatever must live as long as it (a temp directory).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

/// A new SQLite store in its own temp directory.
pub fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open sqlite store");
    TestStore {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// A new database on the MongoDB wire server the test command started.
pub async fn mongo() -> TestStore {
    let base = std::env::var("ENSEMBLE_TEST_MONGODB_URI").expect(
        "ENSEMBLE_TEST_MONGODB_URI is not set: run the tests with `make test`, \
         which starts a MongoDB wire server (nx-27017) and sets it",
    );
    let db = format!("contract_{}", uuid::Uuid::new_v4().simple());
    let uri = format!("{}/{db}", base.trim_end_matches('/'));
    let store = MongoStore::connect(&uri).await.expect("connect");
    store
        .ping()
        .await
        .expect("the MongoDB test server answers and takes indexes");
    TestStore {
        store: Arc::new(store),
        _dir: None,
    }
}
