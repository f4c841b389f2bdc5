//! Accounts: register, log in, log out, and who am I.
//!
//! Routes (contract in DESIGN.md):
//! - `POST /api/auth/register` `{username, password}` → 201 `{user}`
//! - `POST /api/auth/login` `{username, password}` → 200 `{token, expires_at, user}`
//! - `POST /api/auth/logout` (bearer) → 204, the token stops working
//! - `GET /api/me` (bearer) → `{id, username}`
//!
//! A wrong password and an unknown username get the same status, message
//! and argon2 work. See [`throttle`] for the brute-force limits.

pub mod passwords;
pub mod throttle;
pub mod tokens;

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::extract::{ApiJson, ClientIp};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ensemble_core::ids::UserId;
use ensemble_core::model::{TokenRecord, User};
use ensemble_core::names::{NameError, Username};
use ensemble_core::password::Password;
use ensemble_core::store::StoreError;
use ensemble_core::time::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use throttle::{lock_after, secs_until, Throttle};
use tokens::AuthUser;

/// Account services shared by the handlers.
pub struct AuthService {
    /// argon2id hashing.
    pub hasher: passwords::Hasher,
    /// Brute-force limits.
    pub throttle: Throttle,
    token_ttl_ms: i64,
    trust_forwarded_for: bool,
}

impl AuthService {
    /// Builds the services; fails only on invalid argon2 parameters.
    pub fn new(c: &AuthConfig) -> Result<Self, String> {
        Ok(Self {
            hasher: passwords::Hasher::new(
                c.argon2_memory_kib,
                c.argon2_iterations,
                c.argon2_parallelism,
            )?,
            throttle: Throttle::new(
                c.login_per_minute,
                c.register_per_hour,
                c.tickets_per_minute,
            ),
            token_ttl_ms: i64::try_from(c.token_ttl_hours.saturating_mul(3_600_000))
                .unwrap_or(i64::MAX),
            trust_forwarded_for: c.trust_forwarded_for,
        })
    }

    /// Whether the client address comes from `X-Forwarded-For`.
    pub fn trust_forwarded_for(&self) -> bool {
        self.trust_forwarded_for
    }
}

/// A user as the API shows it.
#[derive(Serialize)]
pub struct UserView {
    id: String,
    username: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

fn name_error(e: NameError) -> ApiError {
    ApiError::field("username", e.to_string())
}

pub(crate) fn too_many(secs: u64, what: &str) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_secs: secs,
        message: format!("too many {what}; try again in {secs} s"),
    }
}

fn wrong_credentials() -> ApiError {
    ApiError::Unauthorized("invalid_credentials", "wrong username or password".into())
}

async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state
        .auth
        .throttle
        .registration(ip)
        .map_err(|s| too_many(s, "sign-ups from your address"))?;
    let username = Username::parse_new(&body.username).map_err(name_error)?;
    let password = Password::parse_new(&body.password, username.as_str())
        .map_err(|e| ApiError::field("password", e.to_string()))?;
    let hash = state.auth.hasher.hash(password.expose().to_owned()).await?;
    let user = User {
        id: UserId::generate(),
        username,
        password_hash: hash,
        created_at: now_ms(),
        failed_logins: 0,
        locked_until: None,
    };
    match state.store.create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(
                "username_taken",
                "username taken".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user = %user.id, "account registered");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": UserView::from(&user) })),
    ))
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<Value>, ApiError> {
    let auth = &state.auth;
    auth.throttle
        .login_attempt(ip)
        .map_err(|s| too_many(s, "sign-in attempts from your address"))?;
    let username = Username::parse(&body.username).map_err(name_error)?;
    let now = now_ms();
    let user = state.store.user_by_name(&username).await?;
    let lock = match &user {
        Some(u) => u.locked_until.filter(|t| *t > now),
        None => state
            .store
            .unknown_name_failures(&username.key())
            .await?
            .and_then(|(failures, last)| lock_after(failures, last))
            .filter(|t| *t > now),
    };
    if let Some(until) = lock {
        return Err(too_many(
            secs_until(until, now),
            "failed sign-ins for this account",
        ));
    }

    let verified = auth
        .hasher
        .verify(
            body.password,
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await?;
    let user = match user {
        Some(u) if verified.ok => u,
        Some(u) => {
            let failures = state.store.record_login_failure(&u.id).await?;
            if let Some(until) = lock_after(failures, now_ms()) {
                state.store.set_locked_until(&u.id, Some(until)).await?;
            }
            return Err(wrong_credentials());
        }
        None => {
            let store = &state.store;
            store
                .record_unknown_name_failure(&username.key(), now_ms())
                .await?;
            return Err(wrong_credentials());
        }
    };

    if user.failed_logins > 0 || user.locked_until.is_some() {
        state.store.reset_login_failures(&user.id).await?;
    }
    if let Some(fresh) = verified.rehash {
        state.store.set_password_hash(&user.id, &fresh).await?;
        tracing::info!(user = %user.id, "password re-hashed with the current parameters");
    }
    let token = tokens::new_secret();
    let now = now_ms();
    let record = TokenRecord {
        token_hash: tokens::digest(&token),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now.saturating_add(auth.token_ttl_ms),
    };
    state.store.insert_token(&record).await?;
    Ok(Json(json!({
        "token": token,
        "expires_at": record.expires_at,
        "user": UserView::from(&user),
    })))
}

async fn logout(State(state): State<AppState>, who: AuthUser) -> Result<StatusCode, ApiError> {
    state.store.delete_token(&who.token_hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(who: AuthUser) -> Json<UserView> {
    Json(UserView::from(&who.user))
}

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/me", get(me))
}
