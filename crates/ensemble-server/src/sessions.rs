//! Sessions, their members and share links, and websocket handshake tickets.
//!
//! Routes (contract in DESIGN.md; all JSON, bearer unless noted):
//! - `POST /api/sessions` `{title}` → 201 `{id, title, owner, role: "owner"}`
//! - `GET /api/sessions` → `{sessions: [...]}` (mine and shared with me)
//! - `GET /api/sessions/{id}` → the session with members (links for the owner)
//! - `POST /api/sessions/{id}/links` `{role}` (owner) → 201 `{link, role, link_id}`
//! - `DELETE /api/sessions/{id}/links/{link_id}` (owner) → 204
//! - `PUT /api/sessions/{id}/members/{user_id}` `{role}` (owner) → 200
//! - `DELETE /api/sessions/{id}/members/{user_id}` (owner) → 204
//! - `POST /api/sessions/{id}/ticket` (member) → `{session_id, title, ticket, role, expires_in}`
//! - `POST /api/links/{link}/ticket` (bearer optional; `{name}` for guests)
//!
//! A session that the caller cannot see answers 404, so ids reveal nothing.
//! Role changes and removals also reach live connections through
//! [`crate::hub::Hub`].

use crate::auth::tokens::{digest, new_secret, AuthUser, MaybeUser};
use crate::error::ApiError;
use crate::extract::{ApiJson, ClientIp};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use ensemble_core::ids::{SessionId, UserId};
use ensemble_core::model::{Member, Participant, Session, ShareLink, Ticket};
use ensemble_core::names::Title;
use ensemble_core::role::Role;
use ensemble_core::time::now_ms;
use serde::Deserialize;
use serde_json::{json, Value};

/// How long a handshake ticket works.
pub const TICKET_TTL_SECS: i64 = 60;
/// Most members a session may have (guests through links are not members).
pub const MAX_MEMBERS: usize = 1000;
/// Most share links per session.
pub const MAX_LINKS: usize = 50;
/// Longest guest display name, in characters.
pub const MAX_GUEST_NAME: usize = 40;

fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).ok_or(ApiError::NotFound("session"))
}

/// Loads a session the caller is a member of, with their role.
async fn visible(state: &AppState, id: &str, who: &AuthUser) -> Result<(Session, Role), ApiError> {
    let id = session_id(id)?;
    let session = state
        .store
        .session(&id)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    let role = session
        .role_of(&who.user.id)
        .ok_or(ApiError::NotFound("session"))?;
    Ok((session, role))
}

async fn owned(state: &AppState, id: &str, who: &AuthUser) -> Result<Session, ApiError> {
    let (session, role) = visible(state, id, who).await?;
    if !role.can_manage() {
        return Err(ApiError::Forbidden(
            "not_owner",
            "only the session's owner can do that".into(),
        ));
    }
    Ok(session)
}

fn summary(s: &Session, role: Role) -> Value {
    json!({
        "id": s.id,
        "title": s.title,
        "owner": s.owner,
        "role": role.as_str(),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

#[derive(Deserialize)]
struct NewSession {
    title: String,
}

async fn create(
    State(state): State<AppState>,
    who: AuthUser,
    ApiJson(body): ApiJson<NewSession>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let title = Title::parse(&body.title).map_err(|e| ApiError::field("title", e.to_string()))?;
    let now = now_ms();
    let session = Session {
        id: SessionId::generate(),
        title,
        owner: who.user.id.clone(),
        members: vec![Member {
            user_id: who.user.id.clone(),
            username: who.user.username.clone(),
            role: Role::Owner,
        }],
        links: vec![],
        created_at: now,
        updated_at: now,
    };
    state.store.create_session(&session).await?;
    Ok((StatusCode::CREATED, Json(summary(&session, Role::Owner))))
}

/// `PATCH /api/sessions/{id}` `{"title"}` (owner): renames the session and
/// tells everyone in it at once.
async fn rename(
    State(state): State<AppState>,
    who: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewSession>,
) -> Result<Json<Value>, ApiError> {
    let title = Title::parse(&body.title).map_err(|e| ApiError::field("title", e.to_string()))?;
    let mut session = owned(&state, &id, &who).await?;
    let now = now_ms();
    state.store.rename_session(&session.id, &title, now).await?;
    state.hub.set_title(&session.id, title.as_str()).await;
    session.title = title;
    session.updated_at = now;
    Ok(Json(summary(&session, Role::Owner)))
}

/// `DELETE /api/sessions/{id}` (owner): deletes the session for everyone.
/// The session record goes first, so nobody can get a ticket or join it
/// any more; then its live room stops (its run is cancelled, everyone is
/// told and disconnected with 4404); then its document, runs and lease are
/// purged. If the server stops between the two store steps, the session is
/// gone for every user and only unreachable rows remain.
async fn remove(
    State(state): State<AppState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session = owned(&state, &id, &who).await?;
    if !state.store.delete_session(&session.id).await? {
        return Err(ApiError::NotFound("session"));
    }
    state
        .hub
        .end_session(&session.id, who.user.username.as_str())
        .await;
    state.store.purge_session(&session.id).await?;
    tracing::info!(session = %session.id, by = %who.user.username, "session deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn list(State(state): State<AppState>, who: AuthUser) -> Result<Json<Value>, ApiError> {
    let sessions = state.store.sessions_for_user(&who.user.id).await?;
    let items: Vec<Value> = sessions
        .iter()
        .filter_map(|s| s.role_of(&who.user.id).map(|r| summary(s, r)))
        .collect();
    Ok(Json(json!({ "sessions": items })))
}

async fn show(
    State(state): State<AppState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (session, role) = visible(&state, &id, &who).await?;
    let mut body = summary(&session, role);
    body["members"] = session
        .members
        .iter()
        .map(|m| json!({"id": m.user_id, "username": m.username, "role": m.role.as_str()}))
        .collect();
    if role.can_manage() {
        body["links"] = session
            .links
            .iter()
            .map(|l| json!({"link_id": l.link_hash, "role": l.role.as_str(), "created_at": l.created_at}))
            .collect();
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
struct RoleBody {
    role: String,
}

/// Viewer or editor: the roles a link or the owner may hand out.
fn grantable(raw: &str) -> Result<Role, ApiError> {
    match Role::parse(raw) {
        Some(r @ (Role::Viewer | Role::Editor)) => Ok(r),
        _ => Err(ApiError::field("role", "must be \"viewer\" or \"editor\"")),
    }
}

async fn create_link(
    State(state): State<AppState>,
    who: AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let role = grantable(&body.role)?;
    let session = owned(&state, &id, &who).await?;
    if session.links.len() >= MAX_LINKS {
        return Err(ApiError::field(
            "role",
            format!("a session has at most {MAX_LINKS} share links; revoke one first"),
        ));
    }
    let link = new_secret();
    let now = now_ms();
    let record = ShareLink {
        link_hash: digest(&link),
        role,
        created_at: now,
    };
    state.store.add_link(&session.id, &record, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"link": link, "role": role.as_str(), "link_id": record.link_hash})),
    ))
}

async fn revoke_link(
    State(state): State<AppState>,
    who: AuthUser,
    Path((id, link_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let session = owned(&state, &id, &who).await?;
    if !state
        .store
        .remove_link(&session.id, &link_id, now_ms())
        .await?
    {
        return Err(ApiError::NotFound("link"));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn member_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).ok_or(ApiError::NotFound("member"))
}

async fn set_role(
    State(state): State<AppState>,
    who: AuthUser,
    Path((id, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<Value>, ApiError> {
    let role = grantable(&body.role)?;
    let session = owned(&state, &id, &who).await?;
    let user = member_id(&user)?;
    let member = session
        .members
        .iter()
        .find(|m| m.user_id == user)
        .ok_or(ApiError::NotFound("member"))?;
    if member.role == Role::Owner {
        return Err(ApiError::Forbidden(
            "owner_role",
            "the owner's role cannot change".into(),
        ));
    }
    let updated = Member {
        role,
        ..member.clone()
    };
    state
        .store
        .set_member(&session.id, &updated, now_ms())
        .await?;
    state.hub.set_role(&session.id, &user, role).await;
    Ok(Json(
        json!({"id": user, "username": updated.username, "role": role.as_str()}),
    ))
}

/// `DELETE /api/sessions/{id}/members/{user_id}`: the owner removes a
/// member, or a member leaves (their own id). The owner cannot leave.
async fn remove_member(
    State(state): State<AppState>,
    who: AuthUser,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = member_id(&user)?;
    let session = if user == who.user.id {
        visible(&state, &id, &who).await?.0
    } else {
        owned(&state, &id, &who).await?
    };
    if user == session.owner {
        return Err(ApiError::Forbidden(
            "owner_role",
            "the owner cannot be removed or leave; the session stays theirs".into(),
        ));
    }
    if !state
        .store
        .remove_member(&session.id, &user, now_ms())
        .await?
    {
        return Err(ApiError::NotFound("member"));
    }
    state.hub.remove_user(&session.id, &user).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Redeems a handshake ticket for `session`: taken atomically (it works
/// once); unknown, expired or used → 401; for another session → 403.
pub async fn redeem_ticket(
    state: &AppState,
    ticket: &str,
    session: &SessionId,
) -> Result<Ticket, ApiError> {
    let t = state
        .store
        .take_ticket(&digest(ticket), now_ms())
        .await?
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "ticket",
                "the ticket is unknown, expired or already used".into(),
            )
        })?;
    if &t.session_id != session {
        return Err(ApiError::Forbidden(
            "ticket",
            "the ticket is for another session".into(),
        ));
    }
    Ok(t)
}

/// Stores a new ticket and answers with it.
async fn issue(
    state: &AppState,
    session: &Session,
    participant: Participant,
    role: Role,
) -> Result<Json<Value>, ApiError> {
    let ticket = new_secret();
    let record = Ticket {
        ticket_hash: digest(&ticket),
        session_id: session.id.clone(),
        participant,
        role,
        expires_at: now_ms() + TICKET_TTL_SECS * 1000,
    };
    state.store.insert_ticket(&record).await?;
    Ok(Json(json!({
        "session_id": session.id,
        "title": session.title.as_str(),
        "ticket": ticket,
        "role": role.as_str(),
        "expires_in": TICKET_TTL_SECS,
    })))
}

fn as_participant(who: &AuthUser) -> Participant {
    Participant::User {
        id: who.user.id.clone(),
        username: who.user.username.clone(),
    }
}

/// Takes one ticket from the client address's allowance.
fn ticket_allowance(state: &AppState, ip: std::net::IpAddr) -> Result<(), ApiError> {
    state
        .auth
        .throttle
        .ticket(ip)
        .map_err(|s| crate::auth::too_many(s, "session tickets from your address"))
}

async fn member_ticket(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    ticket_allowance(&state, ip)?;
    let (session, role) = visible(&state, &id, &who).await?;
    issue(&state, &session, as_participant(&who), role).await
}

#[derive(Deserialize, Default)]
struct GuestBody {
    name: Option<String>,
}

async fn link_ticket(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    MaybeUser(who): MaybeUser,
    Path(link): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    ticket_allowance(&state, ip)?;
    let (session, link_role) = state
        .store
        .session_by_link(&digest(&link))
        .await?
        .ok_or(ApiError::NotFound("link"))?;
    match who {
        Some(who) => {
            // Joining through a link makes a registered user a member, with
            // the better of their current role and the link's.
            let role = match session.role_of(&who.user.id) {
                Some(current) if current >= link_role => current,
                _ => {
                    let member = Member {
                        user_id: who.user.id.clone(),
                        username: who.user.username.clone(),
                        role: link_role,
                    };
                    if session.members.len() >= MAX_MEMBERS {
                        return Err(ApiError::Forbidden(
                            "session_full",
                            format!("this session has {MAX_MEMBERS} members already"),
                        ));
                    }
                    state
                        .store
                        .set_member(&session.id, &member, now_ms())
                        .await?;
                    state
                        .hub
                        .set_role(&session.id, &who.user.id, link_role)
                        .await;
                    link_role
                }
            };
            issue(&state, &session, as_participant(&who), role).await
        }
        None => {
            let body: GuestBody = if body.iter().all(u8::is_ascii_whitespace) {
                GuestBody::default()
            } else {
                serde_json::from_slice(&body)
                    .map_err(|_| ApiError::field("name", "send {\"name\": \"...\"} or no body"))?
            };
            let name = body.name.unwrap_or_default();
            let name = guest_name(&name)?;
            issue(
                &state,
                &session,
                Participant::Guest { display_name: name },
                link_role,
            )
            .await
        }
    }
}

/// A guest's display name: trimmed, 1–40 characters, no control characters;
/// empty becomes "Guest".
fn guest_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok("Guest".into());
    }
    if name.chars().count() > MAX_GUEST_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::field(
            "name",
            format!("must be 1–{MAX_GUEST_NAME} characters without control characters"),
        ));
    }
    Ok(format!("{name} (guest)"))
}

/// The session routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sessions", post(create).get(list))
        .route("/api/sessions/{id}", get(show).patch(rename).delete(remove))
        .route("/api/sessions/{id}/links", post(create_link))
        .route("/api/sessions/{id}/links/{link_id}", delete(revoke_link))
        .route(
            "/api/sessions/{id}/members/{user_id}",
            put(set_role).delete(remove_member),
        )
        .route("/api/sessions/{id}/ticket", post(member_ticket))
        .route("/api/links/{link}/ticket", post(link_ticket))
}
