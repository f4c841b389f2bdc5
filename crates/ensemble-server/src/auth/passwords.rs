//! Password hashing with argon2id, off the async threads.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). Every
//! hash and verify runs on tokio's blocking pool, and at most
//! [`MAX_CONCURRENT`] at once: each takes `m` KiB of memory, so a login storm
//! queues instead of exhausting memory. Unknown usernames are verified
//! against a dummy hash made with the same parameters, so they cost the same
//! work as a wrong password and cannot be told apart by timing.

use crate::error::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// How many hashes may run at once (each holds `m` KiB).
pub const MAX_CONCURRENT: usize = 4;

/// What a verification found.
pub struct Verified {
    /// The password matched.
    pub ok: bool,
    /// It matched, and the stored hash used other parameters than the
    /// configured ones: store a fresh hash.
    pub rehash: Option<String>,
}

/// Hashes and verifies passwords with fixed parameters.
pub struct Hasher {
    params: Params,
    dummy: String,
    permits: Arc<Semaphore>,
}

impl Hasher {
    /// A hasher with argon2id parameters `m` (KiB), `t`, `p`.
    pub fn new(m: u32, t: u32, p: u32) -> Result<Self, String> {
        let params =
            Params::new(m, t, p, None).map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        let dummy = hash_with(&params, "not a real password, only for timing")?;
        Ok(Self {
            params,
            dummy,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
        })
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.blocking(move || {
            hash_with(&params, &password).map_err(|e| {
                tracing::error!(error = %e, "hashing failed");
                ApiError::Internal
            })
        })
        .await?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when
    /// there is no account (the answer is then always "no").
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        let real = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.clone());
        let params = self.params.clone();
        self.blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                tracing::error!("stored password hash is not a PHC string");
                return Verified {
                    ok: false,
                    rehash: None,
                };
            };
            let ok = argon2(&params)
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && real;
            let outdated = parsed.algorithm.as_str() != "argon2id"
                || Params::try_from(&parsed)
                    .map(|p| {
                        (p.m_cost(), p.t_cost(), p.p_cost())
                            != (params.m_cost(), params.t_cost(), params.p_cost())
                    })
                    .unwrap_or(true);
            let rehash = (ok && outdated)
                .then(|| hash_with(&params, &password).ok())
                .flatten();
            Verified { ok, rehash }
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::Internal)?;
        tokio::task::spawn_blocking(f).await.map_err(|e| {
            tracing::error!(error = %e, "password task failed");
            ApiError::Internal
        })
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_phc_and_verify() {
        let h = Hasher::new(8192, 1, 1).unwrap();
        let phc = h.hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{phc}");
        assert!(
            h.verify("correct horse battery".into(), Some(phc.clone()))
                .await
                .unwrap()
                .ok
        );
        assert!(
            !h.verify("wrong horse battery".into(), Some(phc))
                .await
                .unwrap()
                .ok
        );
    }

    #[tokio::test]
    async fn no_account_never_verifies() {
        let h = Hasher::new(8192, 1, 1).unwrap();
        let v = h
            .verify("not a real password, only for timing".into(), None)
            .await
            .unwrap();
        assert!(!v.ok);
    }

    #[tokio::test]
    async fn changed_parameters_rehash_on_success_only() {
        let old = Hasher::new(8192, 1, 1).unwrap();
        let new = Hasher::new(8192, 2, 1).unwrap();
        let phc = old.hash("correct horse battery".into()).await.unwrap();
        let v = new
            .verify("correct horse battery".into(), Some(phc.clone()))
            .await
            .unwrap();
        let fresh = v.rehash.expect("rehash");
        assert!(fresh.starts_with("$argon2id$v=19$m=8192,t=2,p=1$"));
        assert!(new
            .verify("wrong".into(), Some(phc))
            .await
            .unwrap()
            .rehash
            .is_none());
        assert!(new
            .verify("correct horse battery".into(), Some(fresh))
            .await
            .unwrap()
            .rehash
            .is_none());
    }
}
