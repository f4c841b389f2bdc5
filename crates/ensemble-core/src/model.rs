//! The records the store keeps, one struct per stored thing.
//!
//! They mirror DESIGN.md's data section: users, tokens, sessions (with
//! members and share links), handshake tickets, document updates and
//! snapshots, and runs with their output. Secrets are kept only as SHA-256
//! digests (`*_hash` fields, lowercase hex); times are epoch milliseconds.

use crate::ids::{RunId, SessionId, UserId};
use crate::names::{Title, Username};
use crate::role::Role;
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// A registered account.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The account's id.
    pub id: UserId,
    /// The name as registered; unique by [`Username::key`].
    pub username: Username,
    /// argon2id PHC string (`$argon2id$v=19$...`).
    pub password_hash: String,
    /// When the account was made.
    pub created_at: Millis,
    /// Failed logins since the last success (lockout state).
    pub failed_logins: u32,
    /// Logins are refused until this time, if set.
    pub locked_until: Option<Millis>,
}

/// A bearer token, stored by its digest only.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// SHA-256 of the token, lowercase hex.
    pub token_hash: String,
    /// Whose token it is.
    pub user_id: UserId,
    /// When it was issued.
    pub created_at: Millis,
    /// When it stops working.
    pub expires_at: Millis,
}

/// A member of a session and their role.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The member's account.
    pub user_id: UserId,
    /// Their name, for lists (copied when they joined).
    pub username: Username,
    /// What they may do.
    pub role: Role,
}

/// A share link: whoever holds the link's secret may join with its role.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareLink {
    /// SHA-256 of the link secret, lowercase hex.
    pub link_hash: String,
    /// The role the link grants: viewer or editor, never owner.
    pub role: Role,
    /// When it was made.
    pub created_at: Millis,
}

/// A collaborative session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The session's id.
    pub id: SessionId,
    /// Its title.
    pub title: Title,
    /// The account that created it.
    pub owner: UserId,
    /// Everyone with a role, the owner included.
    pub members: Vec<Member>,
    /// Its share links.
    pub links: Vec<ShareLink>,
    /// When it was made.
    pub created_at: Millis,
    /// When its title, members or links last changed.
    pub updated_at: Millis,
}

impl Session {
    /// The role a user holds here, if any.
    pub fn role_of(&self, user: &UserId) -> Option<Role> {
        self.members
            .iter()
            .find(|m| &m.user_id == user)
            .map(|m| m.role)
    }

    /// Puts members (owner first, then by name) and links (oldest first) in
    /// the one order every store returns them in.
    pub fn sort_canonical(&mut self) {
        self.members
            .sort_by_key(|m| (m.role != Role::Owner, m.username.key(), m.user_id.clone()));
        self.links
            .sort_by(|a, b| (a.created_at, &a.link_hash).cmp(&(b.created_at, &b.link_hash)));
    }
}

/// Who a handshake ticket lets in.
#[derive(Debug, Clone, PartialEq)]
pub enum Participant {
    /// A signed-in user.
    User {
        /// The account.
        id: UserId,
        /// Its name.
        username: Username,
    },
    /// A guest who came through a share link, under a display name.
    Guest {
        /// The name they chose (not an account; may repeat).
        display_name: String,
    },
}

/// A single-use websocket handshake ticket, stored by digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    /// SHA-256 of the ticket, lowercase hex.
    pub ticket_hash: String,
    /// The one session it opens.
    pub session_id: SessionId,
    /// Who it lets in.
    pub participant: Participant,
    /// With which role.
    pub role: Role,
    /// When it stops working.
    pub expires_at: Millis,
}

/// One stored yrs update of a session's document.
#[derive(Debug, Clone, PartialEq)]
pub struct DocUpdate {
    /// Position in the session's log, strictly increasing, starting at 1.
    pub seq: u64,
    /// The yrs v1 update bytes.
    pub data: Vec<u8>,
}

/// Everything needed to rebuild a document: a snapshot and the updates after it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredDoc {
    /// The compacted state (a yrs v1 update of the whole doc), if compacted.
    pub snapshot: Option<Vec<u8>>,
    /// The last update sequence folded into the snapshot (0 without one).
    pub snapshot_seq: u64,
    /// The updates after the snapshot, in order.
    pub updates: Vec<DocUpdate>,
}

impl StoredDoc {
    /// The highest sequence number this document holds.
    pub fn last_seq(&self) -> u64 {
        self.updates.last().map_or(self.snapshot_seq, |u| u.seq)
    }
}

/// Which stream a chunk of run output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
    /// What a participant typed, echoed so every transcript is complete.
    Stdin,
}

/// A numbered piece of a run's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputChunk {
    /// Position in the run's transcript, contiguous from 1.
    pub seq: u64,
    /// Where it came from.
    pub stream: Stream,
    /// The text (decoded as UTF-8, invalid bytes replaced).
    pub data: String,
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a sandbox slot.
    Queued,
    /// Executing.
    Running,
    /// The program ended by itself (any exit code).
    Finished,
    /// A limit ended it (time, memory, output, processes); `reason` says which.
    Killed,
    /// A participant cancelled it.
    Cancelled,
    /// The server stopped while it was queued or running.
    Interrupted,
    /// It could not be started (sandbox unavailable).
    Failed,
}

impl RunStatus {
    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// The snake_case name used on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Killed => "killed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Finished,
            RunStatus::Killed,
            RunStatus::Cancelled,
            RunStatus::Interrupted,
            RunStatus::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One execution of a session's code, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Its id (UUIDv7: sorts by creation time).
    pub id: RunId,
    /// The session it belongs to.
    pub session_id: SessionId,
    /// The account that started it (guests' runs are not stored).
    pub author: UserId,
    /// The author's name, for history lists.
    pub author_name: String,
    /// The exact code that ran.
    pub code: String,
    /// Where it is in its life.
    pub status: RunStatus,
    /// The program's exit code, when it exited by itself.
    pub exit_code: Option<i32>,
    /// How it ended, in words ("time limit (10 s) exceeded").
    pub reason: Option<String>,
    /// The node that executes it, so a restart marks only its own runs.
    pub node: String,
    /// When it was requested.
    pub created_at: Millis,
    /// When it began executing.
    pub started_at: Option<Millis>,
    /// When it ended.
    pub finished_at: Option<Millis>,
    /// Wall-clock duration of the execution.
    pub duration_ms: Option<u64>,
    /// The transcript, capped.
    pub output: Vec<OutputChunk>,
    /// Whether the transcript was cut at the cap.
    pub truncated: bool,
}

/// How a run ended: what [`crate::store::RunStore::finish_run`] records.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// A final status.
    pub status: RunStatus,
    /// The exit code, when the program exited by itself.
    pub exit_code: Option<i32>,
    /// How it ended, in words.
    pub reason: Option<String>,
    /// When it began executing, if it did.
    pub started_at: Option<Millis>,
    /// When it ended.
    pub finished_at: Millis,
    /// Wall-clock duration of the execution.
    pub duration_ms: Option<u64>,
    /// The transcript, capped.
    pub output: Vec<OutputChunk>,
    /// Whether the transcript was cut at the cap.
    pub truncated: bool,
}

/// A run in a history list: everything but the code and output.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Its id.
    pub id: RunId,
    /// Its session.
    pub session_id: SessionId,
    /// Who started it.
    pub author: UserId,
    /// Their name.
    pub author_name: String,
    /// Where it is in its life.
    pub status: RunStatus,
    /// The exit code, if any.
    pub exit_code: Option<i32>,
    /// How it ended.
    pub reason: Option<String>,
    /// When it was requested.
    pub created_at: Millis,
    /// Execution time.
    pub duration_ms: Option<u64>,
}

impl From<&Run> for RunSummary {
    fn from(r: &Run) -> Self {
        Self {
            id: r.id.clone(),
            session_id: r.session_id.clone(),
            author: r.author.clone(),
            author_name: r.author_name.clone(),
            status: r.status,
            exit_code: r.exit_code,
            reason: r.reason.clone(),
            created_at: r.created_at,
            duration_ms: r.duration_ms,
        }
    }
}
