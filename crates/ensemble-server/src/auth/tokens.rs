//! Bearer tokens and the [`AuthUser`] extractor.
//!
//! A token is 256 random bits, sent as 64 hex characters. Only its SHA-256
//! is stored; a request's token is hashed and looked up by digest, and the
//! digests are compared again in constant time before the token is trusted.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ensemble_core::model::User;
use ensemble_core::time::now_ms;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new random secret (token, link or ticket): 256 bits as hex.
pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// SHA-256 of a secret, as lowercase hex: what the store keeps.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The signed-in user behind a request's bearer token, and the token's digest.
pub struct AuthUser {
    /// The account.
    pub user: User,
    /// The token's digest (for logout).
    pub token_hash: String,
}

fn unauthorized() -> ApiError {
    ApiError::Unauthorized(
        "unauthorized",
        "sign in first: a valid bearer token is required".into(),
    )
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl AuthUser {
    /// Resolves a bearer token to its user; `None` if invalid or expired.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Option<Self>, ApiError> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let token_hash = digest(token);
        let Some(record) = state.store.token(&token_hash).await? else {
            return Ok(None);
        };
        if !bool::from(record.token_hash.as_bytes().ct_eq(token_hash.as_bytes()))
            || record.expires_at <= now_ms()
        {
            return Ok(None);
        }
        let user = state.store.user_by_id(&record.user_id).await?;
        Ok(user.map(|user| AuthUser { user, token_hash }))
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(unauthorized)?;
        AuthUser::from_token(state, token)
            .await?
            .ok_or_else(unauthorized)
    }
}

/// A bearer token if the request has one (and it is valid); guests pass.
pub struct MaybeUser(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts) {
            None => Ok(MaybeUser(None)),
            // A token that is present but wrong is an error, not a guest:
            // the client believes it is signed in.
            Some(token) => AuthUser::from_token(state, token)
                .await?
                .map(|u| MaybeUser(Some(u)))
                .ok_or_else(unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_hex_and_digests_differ_from_them() {
        let s = new_secret();
        assert_eq!(s.len(), 64);
        assert_ne!(s, new_secret());
        let d = digest(&s);
        assert_eq!(d.len(), 64);
        assert_ne!(d, s);
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
