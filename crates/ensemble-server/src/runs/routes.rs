//! Run history and watching without Yjs.
//!
//! - `GET /api/sessions/{id}/runs?limit=&before=` (member): newest first,
//!   `{runs: [...], next}`; pass `next` as `before` for the following page.
//! - `GET /api/runs/{id}` (member of its session): the exact code and output.
//! - `GET /api/sessions/{id}/runs/{run_id}/events` (bearer or `?ticket=`):
//!   Server-Sent Events. On an active run: everything so far, then live until
//!   it ends. On a finished one: everything, then the stream ends. A watcher
//!   that falls [`super::active::WATCHER_QUEUE`] events behind gets an
//!   `output_skipped` error event and is disconnected.

use crate::auth::tokens::{bearer, AuthUser};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ensemble_core::ids::{RunId, SessionId};
use ensemble_core::model::{Run, RunSummary, Stream};
use ensemble_protocol::run::ServerMsg;
use futures::stream::{self, Stream as FutStream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;

/// Largest history page.
pub const MAX_PAGE: u32 = 100;

fn summary(r: &RunSummary) -> Value {
    json!({
        "id": r.id, "session_id": r.session_id, "author": r.author, "author_name": r.author_name,
        "status": r.status.as_str(), "exit_code": r.exit_code, "reason": r.reason,
        "created_at": r.created_at, "duration_ms": r.duration_ms,
    })
}

async fn member(state: &AppState, session: &SessionId, who: &AuthUser) -> Result<(), ApiError> {
    let s = state
        .store
        .session(session)
        .await?
        .ok_or(ApiError::NotFound("session"))?;
    s.role_of(&who.user.id)
        .map(drop)
        .ok_or(ApiError::NotFound("session"))
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u32>,
    before: Option<String>,
}

async fn history(
    State(state): State<AppState>,
    who: AuthUser,
    Path(id): Path<String>,
    Query(p): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let session = SessionId::parse(&id).ok_or(ApiError::NotFound("session"))?;
    member(&state, &session, &who).await?;
    let limit = p.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    let before = match p.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(
            RunId::parse(b)
                .ok_or_else(|| ApiError::field("before", "must be a run id from `next`"))?,
        ),
        None => None,
    };
    let runs = state
        .store
        .runs_for_session(&session, before.as_ref(), limit)
        .await?;
    let next = (runs.len() == limit as usize)
        .then(|| runs.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(
        json!({"runs": runs.iter().map(summary).collect::<Vec<_>>(), "next": next}),
    ))
}

fn full(r: &Run) -> Value {
    let mut v = summary(&RunSummary::from(r));
    v["code"] = json!(r.code);
    v["output"] = json!(r.output);
    v["truncated"] = json!(r.truncated);
    v["started_at"] = json!(r.started_at);
    v["finished_at"] = json!(r.finished_at);
    v
}

async fn one(
    State(state): State<AppState>,
    who: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = RunId::parse(&id).ok_or(ApiError::NotFound("run"))?;
    let run = state
        .store
        .run(&id)
        .await?
        .ok_or(ApiError::NotFound("run"))?;
    member(&state, &run.session_id, &who)
        .await
        .map_err(|_| ApiError::NotFound("run"))?;
    Ok(Json(full(&run)))
}

/// Bearer token of a member, or a handshake ticket for the session.
struct Watcher;

impl Watcher {
    async fn check(
        state: &AppState,
        parts: &Parts,
        session: &SessionId,
        ticket: Option<&str>,
    ) -> Result<(), ApiError> {
        if bearer(parts).is_some() {
            let who = AuthUser::from_token(state, bearer(parts).unwrap_or_default())
                .await?
                .ok_or_else(|| {
                    ApiError::Unauthorized("unauthorized", "the bearer token is not valid".into())
                })?;
            return member(state, session, &who).await;
        }
        let ticket = ticket.ok_or_else(|| {
            ApiError::Unauthorized("unauthorized", "send a bearer token or ?ticket=".into())
        })?;
        crate::sessions::redeem_ticket(state, ticket, session).await?;
        Ok(())
    }
}

#[derive(Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}

fn event(json: &str) -> Result<Event, Infallible> {
    Ok(Event::default().data(json))
}

async fn events(
    State(state): State<AppState>,
    Path((id, run_id)): Path<(String, String)>,
    Query(q): Query<TicketQuery>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let session = SessionId::parse(&id).ok_or(ApiError::NotFound("session"))?;
    let run_id = RunId::parse(&run_id).ok_or(ApiError::NotFound("run"))?;
    let (parts, _) = req.into_parts();
    Watcher::check(&state, &parts, &session, q.ticket.as_deref()).await?;

    if let Some(run) = state.hub.active_run(&session).filter(|r| r.id == run_id) {
        let (frames, mut last, mut live) = run.watch();
        let ended = run.ended();
        let replay = stream::iter(frames.into_iter().map(|f| event(&f.json)));
        if ended {
            return Ok(Sse::new(replay).into_response());
        }
        let follow = async_stream(move |tx| async move {
            loop {
                match live.recv().await {
                    Ok(f) => {
                        if let Some(seq) = f.seq {
                            if seq <= last {
                                continue;
                            }
                            last = seq;
                        }
                        let done = f.json.contains(r#""type":"run.exited""#);
                        if tx.send(f.json.to_string()).await.is_err() || done {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        let notice = ServerMsg::error("output_skipped", format!("this watcher fell {n} events behind and was disconnected; reconnect to catch up"));
                        let _ = tx.send(notice.to_json()).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        let stream = replay.chain(follow.map(|j| event(&j)));
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }

    let run = state
        .store
        .run(&run_id)
        .await?
        .filter(|r| r.session_id == session)
        .ok_or(ApiError::NotFound("run"))?;
    let mut items = vec![ServerMsg::Started {
        run_id: run.id.to_string(),
        by: run.author_name.clone(),
    }
    .to_json()];
    for c in &run.output {
        let stream = match c.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Stdin => "stdin",
        };
        items.push(
            ServerMsg::Output {
                run_id: run.id.to_string(),
                seq: c.seq,
                stream: stream.into(),
                data: c.data.clone(),
            }
            .to_json(),
        );
    }
    if run.status.is_final() {
        items.push(
            ServerMsg::Exited {
                run_id: run.id.to_string(),
                status: run.status.as_str().into(),
                exit_code: run.exit_code,
                reason: run.reason.clone().unwrap_or_default(),
                duration_ms: run.duration_ms.unwrap_or(0),
            }
            .to_json(),
        );
    }
    Ok(Sse::new(stream::iter(items.into_iter().map(|j| event(&j)))).into_response())
}

/// A stream fed by a task through a small bounded channel.
fn async_stream<F, Fut>(f: F) -> impl FutStream<Item = String> + Send
where
    F: FnOnce(tokio::sync::mpsc::Sender<String>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|j| (j, rx)) })
}

/// The run routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sessions/{id}/runs", get(history))
        .route("/api/runs/{id}", get(one))
        .route("/api/sessions/{id}/runs/{run_id}/events", get(events))
}
