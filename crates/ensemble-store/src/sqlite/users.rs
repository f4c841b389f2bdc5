//! Users and bearer tokens in SQLite.

use super::{SqlResultExt, SqliteStore};
use async_trait::async_trait;
use ensemble_core::ids::UserId;
use ensemble_core::model::{TokenRecord, User};
use ensemble_core::names::Username;
use ensemble_core::store::{StoreResult, TokenStore, UserStore};
use ensemble_core::time::Millis;
use rusqlite::{params, OptionalExtension, Row};

const USER_COLUMNS: &str = "id, username, password_hash, created_at, failed_logins, locked_until";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId::from_stored(r.get(0)?),
        username: Username::from_stored(r.get(1)?),
        password_hash: r.get(2)?,
        created_at: r.get(3)?,
        failed_logins: r.get(4)?,
        locked_until: r.get(5)?,
    })
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO users (id, username, username_key, password_hash, created_at, failed_logins, locked_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![u.id.as_str(), u.username.as_str(), u.username.key(), u.password_hash,
                        u.created_at, u.failed_logins, u.locked_until],
            )
            .db()
            .map(drop)
        })
        .await
    }

    async fn user_by_name(&self, name: &Username) -> StoreResult<Option<User>> {
        let key = name.key();
        self.call(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = ?1"),
                [key],
                user_from_row,
            )
            .optional()
            .db()
        })
        .await
    }

    async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<User>> {
        let id = id.to_string();
        self.call(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [id],
                user_from_row,
            )
            .optional()
            .db()
        })
        .await
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> StoreResult<()> {
        let (id, hash) = (id.to_string(), hash.to_owned());
        self.call(move |c| {
            c.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![id, hash],
            )
            .db()
            .map(drop)
        })
        .await
    }

    async fn record_login_failure(&self, id: &UserId) -> StoreResult<u32> {
        let id = id.to_string();
        self.call(move |c| {
            c.query_row(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?1 RETURNING failed_logins",
                [id],
                |r| r.get(0),
            )
            .db()
        })
        .await
    }

    async fn record_unknown_name_failure(&self, key: &str, now: Millis) -> StoreResult<u32> {
        let key = key.to_owned();
        self.call(move |c| {
            c.query_row(
                "INSERT INTO unknown_name_failures (name_key, failures, last_at) VALUES (?1, 1, ?2)
                 ON CONFLICT (name_key) DO UPDATE SET failures = failures + 1, last_at = excluded.last_at
                 RETURNING failures",
                params![key, now],
                |r| r.get(0),
            )
            .db()
        })
        .await
    }

    async fn unknown_name_failures(&self, key: &str) -> StoreResult<Option<(u32, Millis)>> {
        let key = key.to_owned();
        self.call(move |c| {
            c.query_row(
                "SELECT failures, last_at FROM unknown_name_failures WHERE name_key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .db()
        })
        .await
    }

    async fn forget_unknown_names(&self, before: Millis) -> StoreResult<u64> {
        self.call(move |c| {
            c.execute(
                "DELETE FROM unknown_name_failures WHERE last_at < ?1",
                [before],
            )
            .db()
            .map(|n| n as u64)
        })
        .await
    }

    async fn set_locked_until(&self, id: &UserId, until: Option<Millis>) -> StoreResult<()> {
        let id = id.to_string();
        self.call(move |c| {
            c.execute(
                "UPDATE users SET locked_until = ?2 WHERE id = ?1",
                params![id, until],
            )
            .db()
            .map(drop)
        })
        .await
    }

    async fn reset_login_failures(&self, id: &UserId) -> StoreResult<()> {
        let id = id.to_string();
        self.call(move |c| {
            c.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
                [id],
            )
            .db()
            .map(drop)
        })
        .await
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let t = token.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![t.token_hash, t.user_id.as_str(), t.created_at, t.expires_at],
            )
            .db()
            .map(drop)
        })
        .await
    }

    async fn token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let h = token_hash.to_owned();
        self.call(move |c| {
            c.query_row(
                "SELECT token_hash, user_id, created_at, expires_at FROM tokens WHERE token_hash = ?1",
                [h],
                |r| {
                    Ok(TokenRecord {
                        token_hash: r.get(0)?,
                        user_id: UserId::from_stored(r.get(1)?),
                        created_at: r.get(2)?,
                        expires_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .db()
        })
        .await
    }

    async fn delete_token(&self, token_hash: &str) -> StoreResult<bool> {
        let h = token_hash.to_owned();
        self.call(move |c| {
            c.execute("DELETE FROM tokens WHERE token_hash = ?1", [h])
                .db()
                .map(|n| n > 0)
        })
        .await
    }

    async fn delete_expired_tokens(&self, now: Millis) -> StoreResult<u64> {
        self.call(move |c| {
            c.execute("DELETE FROM tokens WHERE expires_at < ?1", [now])
                .db()
                .map(|n| n as u64)
        })
        .await
    }
}
