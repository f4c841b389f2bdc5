//! `GET /ws/{session_id}?ticket=…`: the websocket handshake.
//!
//! Everything is checked **before** the upgrade, so a refused client gets a
//! plain HTTP status: an `Origin` not on the allow-list → 403 (cross-site
//! websocket hijacking); a missing, expired or used ticket → 401; a ticket
//! for another session → 403. A ticket is taken (deleted) atomically, so it
//! works once. A registered user's role is re-read from the session at this
//! moment, so a role change or removal after the ticket was issued counts,
//! and a session deleted since → 404 for guests and members alike.

use crate::error::ApiError;
use crate::extract::ClientIp;
use crate::hub::{conn, Who};
use crate::sessions::redeem_ticket;
use crate::state::AppState;
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::header::ORIGIN;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ensemble_core::ids::SessionId;
use ensemble_core::model::Participant;
use serde::Deserialize;

#[derive(Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}

async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TicketQuery>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
        if !state.origins.iter().any(|o| o == origin) {
            return Err(ApiError::Forbidden(
                "origin",
                "this origin may not open a session".into(),
            ));
        }
    }
    let session = SessionId::parse(&id).ok_or(ApiError::NotFound("session"))?;
    let ticket = q
        .ticket
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or_else(|| ApiError::Unauthorized("ticket", "a handshake ticket is required".into()))?;
    let ticket = redeem_ticket(&state, &ticket, &session).await?;
    // The session may have been deleted since the ticket was issued.
    let stored = state
        .store
        .session(&session)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    let who = match ticket.participant {
        Participant::User { id, username } => {
            let role = stored.role_of(&id).ok_or_else(|| {
                ApiError::Forbidden(
                    "not_member",
                    "you are no longer a member of this session".into(),
                )
            })?;
            Who {
                quota_key: id.to_string(),
                user: Some(id),
                name: username.to_string(),
                role,
            }
        }
        Participant::Guest { display_name } => Who {
            user: None,
            name: display_name,
            role: ticket.role,
            // Guests have no identity beyond their address, and a whole
            // school can share one: keyed per session too, so pairs of
            // guests in different sessions do not block each other's runs.
            quota_key: format!("guest:{ip}:{session}"),
        },
    };
    let limits = state.hub.limits();
    let max = limits.room.max_message_bytes;
    let hub = state.hub.clone();
    let tasks = hub.tasks().clone();
    Ok(ws
        // Frames up to twice the room's limit reach the room, which refuses
        // them with a clear close reason; beyond that tungstenite cuts off.
        .max_message_size(max.saturating_mul(2))
        .max_frame_size(max.saturating_mul(2))
        .write_buffer_size(0)
        // An idle socket then costs ~15 KiB instead of ~136 KiB (measured by
        // tests/load); larger frames still grow the buffer as needed.
        .read_buffer_size(8 * 1024)
        .max_write_buffer_size(max.saturating_mul(4))
        .on_upgrade(move |socket| {
            let fut = conn::serve(socket, hub, session, who);
            async move {
                tasks.track_future(fut).await;
            }
        }))
}

/// The websocket route.
pub fn router() -> Router<AppState> {
    Router::new().route("/ws/{session_id}", get(upgrade))
}
