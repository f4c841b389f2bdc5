//! Users and bearer tokens in MongoDB.

use super::{mongo_err, MongoStore};
use async_trait::async_trait;
use bson::doc;
use ensemble_core::ids::UserId;
use ensemble_core::model::{TokenRecord, User};
use ensemble_core::names::Username;
use ensemble_core::store::{StoreError, StoreResult, TokenStore, UserStore};
use ensemble_core::time::Millis;
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct UserDoc {
    #[serde(rename = "_id")]
    id: String,
    username: String,
    username_key: String,
    password_hash: String,
    created_at: i64,
    failed_logins: i64,
    locked_until: Option<i64>,
}

/// Failed logins for a name without an account; `_id` is the name's key.
#[derive(Serialize, Deserialize)]
struct UnknownNameDoc {
    failures: i64,
    last_at: i64,
}

impl From<UserDoc> for User {
    fn from(d: UserDoc) -> Self {
        User {
            id: UserId::from_stored(d.id),
            username: Username::from_stored(d.username),
            password_hash: d.password_hash,
            created_at: d.created_at,
            failed_logins: u32::try_from(d.failed_logins).unwrap_or(u32::MAX),
            locked_until: d.locked_until,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TokenDoc {
    #[serde(rename = "_id")]
    token_hash: String,
    user_id: String,
    created_at: i64,
    expires_at: i64,
}

impl MongoStore {
    fn users(&self) -> Collection<UserDoc> {
        self.db.collection("users")
    }

    fn unknown_names(&self) -> Collection<UnknownNameDoc> {
        self.db.collection("unknown_name_failures")
    }

    fn tokens(&self) -> Collection<TokenDoc> {
        self.db.collection("tokens")
    }
}

#[async_trait]
impl UserStore for MongoStore {
    async fn create_user(&self, u: &User) -> StoreResult<()> {
        let d = UserDoc {
            id: u.id.to_string(),
            username: u.username.to_string(),
            username_key: u.username.key(),
            password_hash: u.password_hash.clone(),
            created_at: u.created_at,
            failed_logins: i64::from(u.failed_logins),
            locked_until: u.locked_until,
        };
        self.users()
            .insert_one(d)
            .await
            .map_err(mongo_err)
            .map(drop)
    }

    async fn user_by_name(&self, name: &Username) -> StoreResult<Option<User>> {
        let found = self
            .users()
            .find_one(doc! {"username_key": name.key()})
            .await
            .map_err(mongo_err)?;
        Ok(found.map(User::from))
    }

    async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<User>> {
        let found = self
            .users()
            .find_one(doc! {"_id": id.as_str()})
            .await
            .map_err(mongo_err)?;
        Ok(found.map(User::from))
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> StoreResult<()> {
        self.users()
            .update_one(
                doc! {"_id": id.as_str()},
                doc! {"$set": {"password_hash": hash}},
            )
            .await
            .map_err(mongo_err)
            .map(drop)
    }

    async fn record_login_failure(&self, id: &UserId) -> StoreResult<u32> {
        let after = self
            .users()
            .find_one_and_update(
                doc! {"_id": id.as_str()},
                doc! {"$inc": {"failed_logins": 1}},
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(mongo_err)?
            .ok_or(StoreError::NotFound)?;
        Ok(u32::try_from(after.failed_logins).unwrap_or(u32::MAX))
    }

    async fn record_unknown_name_failure(&self, key: &str, now: Millis) -> StoreResult<u32> {
        let names = self.unknown_names();
        let bump = || {
            names
                .find_one_and_update(
                    doc! {"_id": key},
                    doc! {"$inc": {"failures": 1}, "$set": {"last_at": now}},
                )
                .upsert(true)
                .return_document(ReturnDocument::After)
        };
        // Two first failures at once: one upsert inserts, the other hits the
        // unique `_id` and, retried, increments.
        let after = match bump().await.map_err(mongo_err) {
            Err(StoreError::Conflict(_)) => bump().await.map_err(mongo_err)?,
            other => other?,
        };
        let after = after.ok_or(StoreError::NotFound)?;
        Ok(u32::try_from(after.failures).unwrap_or(u32::MAX))
    }

    async fn unknown_name_failures(&self, key: &str) -> StoreResult<Option<(u32, Millis)>> {
        let found = self
            .unknown_names()
            .find_one(doc! {"_id": key})
            .await
            .map_err(mongo_err)?;
        Ok(found.map(|d| (u32::try_from(d.failures).unwrap_or(u32::MAX), d.last_at)))
    }

    async fn forget_unknown_names(&self, before: Millis) -> StoreResult<u64> {
        let r = self
            .unknown_names()
            .delete_many(doc! {"last_at": {"$lt": before}})
            .await
            .map_err(mongo_err)?;
        Ok(r.deleted_count)
    }

    async fn set_locked_until(&self, id: &UserId, until: Option<Millis>) -> StoreResult<()> {
        self.users()
            .update_one(
                doc! {"_id": id.as_str()},
                doc! {"$set": {"locked_until": until}},
            )
            .await
            .map_err(mongo_err)
            .map(drop)
    }

    async fn reset_login_failures(&self, id: &UserId) -> StoreResult<()> {
        self.users()
            .update_one(
                doc! {"_id": id.as_str()},
                doc! {"$set": {"failed_logins": 0_i64, "locked_until": null}},
            )
            .await
            .map_err(mongo_err)
            .map(drop)
    }
}

#[async_trait]
impl TokenStore for MongoStore {
    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<()> {
        let d = TokenDoc {
            token_hash: t.token_hash.clone(),
            user_id: t.user_id.to_string(),
            created_at: t.created_at,
            expires_at: t.expires_at,
        };
        self.tokens()
            .insert_one(d)
            .await
            .map_err(mongo_err)
            .map(drop)
    }

    async fn token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let found = self
            .tokens()
            .find_one(doc! {"_id": token_hash})
            .await
            .map_err(mongo_err)?;
        Ok(found.map(|d| TokenRecord {
            token_hash: d.token_hash,
            user_id: UserId::from_stored(d.user_id),
            created_at: d.created_at,
            expires_at: d.expires_at,
        }))
    }

    async fn delete_token(&self, token_hash: &str) -> StoreResult<bool> {
        let r = self
            .tokens()
            .delete_one(doc! {"_id": token_hash})
            .await
            .map_err(mongo_err)?;
        Ok(r.deleted_count > 0)
    }

    async fn delete_expired_tokens(&self, now: Millis) -> StoreResult<u64> {
        let r = self
            .tokens()
            .delete_many(doc! {"expires_at": {"$lt": now}})
            .await
            .map_err(mongo_err)?;
        Ok(r.deleted_count)
    }
}
