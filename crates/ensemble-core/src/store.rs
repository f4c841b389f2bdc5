//! The storage contract: one set of traits, implemented by the MongoDB and the
//! SQLite store in `ensemble-store`, and held by the server as
//! `Arc<dyn Store>`.
//!
//! The traits are split by area so each reads on its own; [`Store`] is all of
//! them plus health. Rules both stores must keep (the contract tests in
//! `ensemble-store/tests` check each):
//! - usernames are unique by their case-folded key; a duplicate is
//!   [`StoreError::Conflict`];
//! - token, link and ticket digests are unique; a ticket can be taken once;
//! - document updates are unique per (session, seq); loading returns the
//!   snapshot and only the updates after it, in order;
//! - run lists are newest first (by id, which is UUIDv7) and page with
//!   `before`;
//! - every write is durable when the call returns.

use crate::ids::{RunId, SessionId, UserId};
use crate::model::{
    DocUpdate, Member, Run, RunEnd, RunSummary, Session, ShareLink, StoredDoc, Ticket, TokenRecord,
    User,
};
use crate::names::{Title, Username};
use crate::role::Role;
use crate::time::Millis;
use async_trait::async_trait;
use thiserror::Error;

/// What can go wrong in a store. The text is for logs, never for clients.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique rule was broken (MongoDB's duplicate key 11000, SQLite's
    /// UNIQUE constraint). The text names what clashed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing to change does not exist.
    #[error("not found")]
    NotFound,
    /// The database cannot be reached or failed; try again later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back into a record.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which implementation is behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded SQLite file.
    Sqlite,
    /// A MongoDB server.
    Mongodb,
}

impl StoreKind {
    /// `"sqlite"` or `"mongodb"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Mongodb => "mongodb",
        }
    }
}

/// Accounts and their lockout state.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Adds an account; `Conflict` if the username's key is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    /// Finds an account by name, ignoring case.
    async fn user_by_name(&self, name: &Username) -> StoreResult<Option<User>>;
    /// Finds an account by id.
    async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<User>>;
    /// Replaces the password hash (re-hash on login after a parameter change).
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> StoreResult<()>;
    /// Counts one more failed login, atomically; returns the new count.
    async fn record_login_failure(&self, id: &UserId) -> StoreResult<u32>;
    /// Sets or clears the time until which logins are refused.
    async fn set_locked_until(&self, id: &UserId, until: Option<Millis>) -> StoreResult<()>;
    /// Clears failures and lockout after a successful login.
    async fn reset_login_failures(&self, id: &UserId) -> StoreResult<()>;
    /// Counts one more failed login for a name that has no account (by the
    /// name's key), atomically, at `now`; returns the new count. Kept in the
    /// store like a real account's, so no node and no restart answers
    /// differently for a name that does not exist.
    async fn record_unknown_name_failure(&self, key: &str, now: Millis) -> StoreResult<u32>;
    /// A name without an account: its failure count and when the last
    /// failure happened.
    async fn unknown_name_failures(&self, key: &str) -> StoreResult<Option<(u32, Millis)>>;
    /// Forgets names whose last failure was before `before`; returns how many.
    async fn forget_unknown_names(&self, before: Millis) -> StoreResult<u64>;
}

/// Bearer tokens, by digest.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a token's digest.
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// Looks a digest up; expired tokens are returned too (the caller checks).
    async fn token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Revokes a token; true if it existed.
    async fn delete_token(&self, token_hash: &str) -> StoreResult<bool>;
    /// Removes tokens that expired before `now`; returns how many.
    async fn delete_expired_tokens(&self, now: Millis) -> StoreResult<u64>;
}

/// Sessions, their members and share links.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Adds a session (its owner should be among its members).
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// Finds a session by id.
    async fn session(&self, id: &SessionId) -> StoreResult<Option<Session>>;
    /// The sessions a user is a member of, newest first.
    async fn sessions_for_user(&self, user: &UserId) -> StoreResult<Vec<Session>>;
    /// Changes a session's title; `NotFound` without the session.
    async fn rename_session(&self, id: &SessionId, title: &Title, now: Millis) -> StoreResult<()>;
    /// Deletes the session with its members and links; false if there was
    /// none. Its document, runs and lease go with
    /// [`Store::purge_session`], called once its room has stopped.
    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool>;
    /// Adds a member or changes their role; `NotFound` without the session.
    async fn set_member(&self, id: &SessionId, member: &Member, now: Millis) -> StoreResult<()>;
    /// Removes a member; true if they were one.
    async fn remove_member(&self, id: &SessionId, user: &UserId, now: Millis) -> StoreResult<bool>;
    /// Adds a share link; `NotFound` without the session.
    async fn add_link(&self, id: &SessionId, link: &ShareLink, now: Millis) -> StoreResult<()>;
    /// Revokes a share link; true if it existed.
    async fn remove_link(&self, id: &SessionId, link_hash: &str, now: Millis) -> StoreResult<bool>;
    /// Finds the session a link opens, and the role it grants.
    async fn session_by_link(&self, link_hash: &str) -> StoreResult<Option<(Session, Role)>>;
}

/// Single-use websocket handshake tickets, by digest.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Stores a ticket.
    async fn insert_ticket(&self, ticket: &Ticket) -> StoreResult<()>;
    /// Removes and returns a ticket in one atomic step, so it works once;
    /// an expired ticket is removed and `None` is returned.
    async fn take_ticket(&self, ticket_hash: &str, now: Millis) -> StoreResult<Option<Ticket>>;
    /// Removes tickets that expired before `now`; returns how many.
    async fn delete_expired_tickets(&self, now: Millis) -> StoreResult<u64>;
}

/// A session document's update log and snapshot.
#[async_trait]
pub trait DocStore: Send + Sync {
    /// Appends updates (one group commit); `Conflict` if a seq exists.
    async fn append_doc_updates(&self, id: &SessionId, updates: &[DocUpdate]) -> StoreResult<()>;
    /// The snapshot and the updates after it, in seq order.
    async fn load_doc(&self, id: &SessionId) -> StoreResult<StoredDoc>;
    /// Stores `snapshot` as the state through `upto_seq`, then drops the
    /// updates it covers. A crash between the two steps loses nothing.
    async fn compact_doc(&self, id: &SessionId, snapshot: &[u8], upto_seq: u64) -> StoreResult<()>;
}

/// Runs and their output.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Records a new run (normally `Queued`).
    async fn create_run(&self, run: &Run) -> StoreResult<()>;
    /// Marks a run as executing.
    async fn mark_run_started(&self, id: &RunId, started_at: Millis) -> StoreResult<()>;
    /// Records how a run ended, with its transcript.
    async fn finish_run(&self, id: &RunId, end: &RunEnd) -> StoreResult<()>;
    /// A run with its code and output.
    async fn run(&self, id: &RunId) -> StoreResult<Option<Run>>;
    /// A session's runs, newest first, strictly older than `before`.
    async fn runs_for_session(
        &self,
        id: &SessionId,
        before: Option<&RunId>,
        limit: u32,
    ) -> StoreResult<Vec<RunSummary>>;
    /// A user's runs, newest first, strictly older than `before`.
    async fn runs_for_user(
        &self,
        user: &UserId,
        before: Option<&RunId>,
        limit: u32,
    ) -> StoreResult<Vec<RunSummary>>;
    /// Marks every queued or running run of `node` as interrupted (called at
    /// start-up); returns how many.
    async fn interrupt_unfinished_runs(&self, node: &str, now: Millis) -> StoreResult<u64>;
    /// Marks the queued or running runs of `node` in one session as
    /// interrupted (a node took the session over from a dead one).
    async fn interrupt_session_runs(
        &self,
        id: &SessionId,
        node: &str,
        now: Millis,
    ) -> StoreResult<u64>;
}

/// What [`LeaseStore::acquire_lease`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// This node holds the lease now.
    Acquired {
        /// The node that held it before, if it was another one whose lease
        /// had expired (it was taken over).
        previous: Option<String>,
        /// Another node that was refused this session within the last TTL
        /// and asked for it: the proxy sends its clients there, so the
        /// holder should hand the session over when it can.
        wanted_by: Option<String>,
        /// This node held the lease already (a renewal). False when the
        /// lease was absent or another node's: a node that believed it held
        /// the lease learns that it was taken or that the session was
        /// purged (deleted) meanwhile.
        renewed: bool,
    },
    /// Another live node holds it.
    HeldBy(String),
}

/// Session leases: at most one node serves a session at a time.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews the lease of `id` for `node` until `now + ttl_ms`,
    /// in one atomic single-document step; refused while another node's
    /// lease has not expired. When refused and `ask` is set, the same step
    /// records that `node` wants the session (the holder sees it as
    /// `wanted_by` at its next renewal, for `ttl_ms`). Taking the lease
    /// clears any such request.
    async fn acquire_lease(
        &self,
        id: &SessionId,
        node: &str,
        now: Millis,
        ttl_ms: i64,
        ask: bool,
    ) -> StoreResult<Lease>;
    /// Gives the lease up if `node` holds it.
    async fn release_lease(&self, id: &SessionId, node: &str) -> StoreResult<()>;
}

/// The hand-over request a lease row holds, if it is another node's and
/// younger than one TTL (shared by the store implementations).
pub fn fresh_request(
    holder: &str,
    wanted_by: Option<String>,
    wanted_at: Option<Millis>,
    now: Millis,
    ttl_ms: i64,
) -> Option<String> {
    let at = wanted_at?;
    wanted_by.filter(|w| w != holder && at > now.saturating_sub(ttl_ms))
}

/// The whole storage contract, plus health.
#[async_trait]
pub trait Store:
    UserStore + TokenStore + SessionStore + TicketStore + DocStore + RunStore + LeaseStore
{
    /// Which implementation this is.
    fn kind(&self) -> StoreKind;
    /// Where the data lives, for logs and `/readyz` (never credentials).
    fn location(&self) -> String;
    /// Checks that the store answers (and finishes any deferred set-up, such
    /// as creating indexes on a server that was down at start).
    async fn ping(&self) -> StoreResult<()>;
    /// Flushes and releases resources at shutdown.
    async fn close(&self) -> StoreResult<()>;
    /// Removes what a deleted session leaves behind: its document updates
    /// and snapshot, its runs and its lease. Idempotent.
    async fn purge_session(&self, id: &SessionId) -> StoreResult<()>;
    /// Up to `limit` ids of deleted sessions that still have rows to purge
    /// (the server stopped between deleting a session and purging it).
    /// Safe against concurrent creation: a session's record is written
    /// before anything else of it, and ids are never reused, so a listed
    /// id is one whose record is gone for good.
    async fn orphaned_sessions(&self, limit: usize) -> StoreResult<Vec<SessionId>>;
}
