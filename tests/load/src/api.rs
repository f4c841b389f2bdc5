//! The REST calls the load tool needs, against a running server: register
//! and log in one throwaway account, create sessions, and fetch handshake
//! tickets. A ticket is single-use and lives 60 s, so every websocket
//! connection fetches its own right before connecting.

use crate::Error;
use serde_json::{json, Value};

/// A logged-in account on one server. Cheap to clone (reqwest's client is
/// an `Arc` inside, and its pool keeps HTTP connections alive).
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// Registers a fresh account (`load-<pid>-<nanos>`) and logs in.
    pub async fn sign_up(base: &str) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build()?;
        let base = base.trim_end_matches('/').to_owned();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let username = format!("load-{}-{nanos}", std::process::id());
        let creds = json!({"username": username, "password": "load-tool-passphrase-7Kq2"});
        let anon = Self {
            http,
            base,
            token: String::new(),
        };
        anon.post("/api/auth/register", Some(&creds), 201).await?;
        let login = anon.post("/api/auth/login", Some(&creds), 200).await?;
        let token = login["token"]
            .as_str()
            .ok_or("login answer has no token")?
            .to_owned();
        Ok(Self { token, ..anon })
    }

    /// Creates a session and returns its id.
    pub async fn create_session(&self, title: &str) -> Result<String, Error> {
        let s = self
            .post("/api/sessions", Some(&json!({ "title": title })), 201)
            .await?;
        Ok(s["id"].as_str().ok_or("session has no id")?.to_owned())
    }

    /// A fresh single-use handshake ticket for `session`.
    pub async fn ticket(&self, session: &str) -> Result<String, Error> {
        let t = self
            .post(&format!("/api/sessions/{session}/ticket"), None, 200)
            .await?;
        Ok(t["ticket"]
            .as_str()
            .ok_or("no ticket in answer")?
            .to_owned())
    }

    /// The websocket address of `session` with `ticket`.
    pub fn ws_url(&self, session: &str, ticket: &str) -> String {
        let ws_base = self.base.replacen("http", "ws", 1);
        format!("{ws_base}/ws/{session}?ticket={ticket}")
    }

    async fn post(&self, path: &str, body: Option<&Value>, want: u16) -> Result<Value, Error> {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        if status != want {
            return Err(format!("POST {path}: expected {want}, got {status}: {text}").into());
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
