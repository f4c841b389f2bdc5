//! Sessions, their members and share links, and handshake tickets in SQLite.

use super::{parse_stored, SqlResultExt, SqliteStore};
use async_trait::async_trait;
use ensemble_core::ids::{SessionId, UserId};
use ensemble_core::model::{Member, Participant, Session, ShareLink, Ticket};
use ensemble_core::names::{Title, Username};
use ensemble_core::role::Role;
use ensemble_core::store::{SessionStore, StoreError, StoreResult, TicketStore};
use ensemble_core::time::Millis;
use rusqlite::{params, Connection, OptionalExtension};

/// Reads one session with its members and links.
fn load_session(c: &Connection, id: &str) -> StoreResult<Option<Session>> {
    let head = c
        .query_row(
            "SELECT id, title, owner, created_at, updated_at FROM sessions WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Millis>(3)?,
                    r.get::<_, Millis>(4)?,
                ))
            },
        )
        .optional()
        .db()?;
    let Some((id, title, owner, created_at, updated_at)) = head else {
        return Ok(None);
    };
    let mut members = Vec::new();
    let mut stmt = c
        .prepare_cached("SELECT user_id, username, role FROM session_members WHERE session_id = ?1")
        .db()?;
    let rows = stmt
        .query_map([&id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .db()?;
    for row in rows {
        let (uid, name, role) = row.db()?;
        members.push(Member {
            user_id: UserId::from_stored(uid),
            username: Username::from_stored(name),
            role: parse_stored(&role, "role", Role::parse)?,
        });
    }
    let mut links = Vec::new();
    let mut stmt = c
        .prepare_cached("SELECT link_hash, role, created_at FROM share_links WHERE session_id = ?1")
        .db()?;
    let rows = stmt
        .query_map([&id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Millis>(2)?,
            ))
        })
        .db()?;
    for row in rows {
        let (link_hash, role, created_at) = row.db()?;
        links.push(ShareLink {
            link_hash,
            role: parse_stored(&role, "role", Role::parse)?,
            created_at,
        });
    }
    let mut session = Session {
        id: SessionId::from_stored(id),
        title: Title::from_stored(title),
        owner: UserId::from_stored(owner),
        members,
        links,
        created_at,
        updated_at,
    };
    session.sort_canonical();
    Ok(Some(session))
}

/// Bumps `updated_at`; `NotFound` if the session does not exist.
fn touch(c: &Connection, id: &str, now: Millis) -> StoreResult<()> {
    match c
        .execute(
            "UPDATE sessions SET updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )
        .db()?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        let s = session.clone();
        self.call(move |c| {
            let tx = c.transaction().db()?;
            tx.execute(
                "INSERT INTO sessions (id, title, owner, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.id.as_str(), s.title.as_str(), s.owner.as_str(), s.created_at, s.updated_at],
            )
            .db()?;
            for m in &s.members {
                tx.execute(
                    "INSERT INTO session_members (session_id, user_id, username, role) VALUES (?1, ?2, ?3, ?4)",
                    params![s.id.as_str(), m.user_id.as_str(), m.username.as_str(), m.role.as_str()],
                )
                .db()?;
            }
            for l in &s.links {
                tx.execute(
                    "INSERT INTO share_links (link_hash, session_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![l.link_hash, s.id.as_str(), l.role.as_str(), l.created_at],
                )
                .db()?;
            }
            tx.commit().db()
        })
        .await
    }

    async fn session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        let id = id.to_string();
        self.call(move |c| load_session(c, &id)).await
    }

    async fn sessions_for_user(&self, user: &UserId) -> StoreResult<Vec<Session>> {
        let user = user.to_string();
        self.call(move |c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT s.id FROM session_members m JOIN sessions s ON s.id = m.session_id
                     WHERE m.user_id = ?1 ORDER BY s.id DESC",
                )
                .db()?
                .query_map([user], |r| r.get(0))
                .db()?
                .collect::<rusqlite::Result<_>>()
                .db()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.extend(load_session(c, &id)?);
            }
            Ok(out)
        })
        .await
    }

    async fn set_member(&self, id: &SessionId, member: &Member, now: Millis) -> StoreResult<()> {
        let (id, m) = (id.to_string(), member.clone());
        self.call(move |c| {
            let tx = c.transaction().db()?;
            touch(&tx, &id, now)?;
            tx.execute(
                "INSERT INTO session_members (session_id, user_id, username, role) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (session_id, user_id) DO UPDATE SET role = excluded.role, username = excluded.username",
                params![id, m.user_id.as_str(), m.username.as_str(), m.role.as_str()],
            )
            .db()?;
            tx.commit().db()
        })
        .await
    }

    async fn remove_member(&self, id: &SessionId, user: &UserId, now: Millis) -> StoreResult<bool> {
        let (id, user) = (id.to_string(), user.to_string());
        self.call(move |c| {
            let tx = c.transaction().db()?;
            let n = tx
                .execute(
                    "DELETE FROM session_members WHERE session_id = ?1 AND user_id = ?2",
                    params![id, user],
                )
                .db()?;
            if n > 0 {
                touch(&tx, &id, now)?;
            }
            tx.commit().db()?;
            Ok(n > 0)
        })
        .await
    }

    async fn add_link(&self, id: &SessionId, link: &ShareLink, now: Millis) -> StoreResult<()> {
        let (id, l) = (id.to_string(), link.clone());
        self.call(move |c| {
            let tx = c.transaction().db()?;
            touch(&tx, &id, now)?;
            tx.execute(
                "INSERT INTO share_links (link_hash, session_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![l.link_hash, id, l.role.as_str(), l.created_at],
            )
            .db()?;
            tx.commit().db()
        })
        .await
    }

    async fn rename_session(&self, id: &SessionId, title: &Title, now: Millis) -> StoreResult<()> {
        let (id, title) = (id.to_string(), title.as_str().to_owned());
        self.call(move |c| {
            match c
                .execute(
                    "UPDATE sessions SET title = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, title, now],
                )
                .db()?
            {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool> {
        let id = id.to_string();
        // Members and links go with it (ON DELETE CASCADE).
        self.call(move |c| {
            c.execute("DELETE FROM sessions WHERE id = ?1", params![id])
                .db()
                .map(|n| n > 0)
        })
        .await
    }

    async fn remove_link(&self, id: &SessionId, link_hash: &str, now: Millis) -> StoreResult<bool> {
        let (id, h) = (id.to_string(), link_hash.to_owned());
        self.call(move |c| {
            let tx = c.transaction().db()?;
            let n = tx
                .execute(
                    "DELETE FROM share_links WHERE session_id = ?1 AND link_hash = ?2",
                    params![id, h],
                )
                .db()?;
            if n > 0 {
                touch(&tx, &id, now)?;
            }
            tx.commit().db()?;
            Ok(n > 0)
        })
        .await
    }

    async fn session_by_link(&self, link_hash: &str) -> StoreResult<Option<(Session, Role)>> {
        let h = link_hash.to_owned();
        self.call(move |c| {
            let found = c
                .query_row(
                    "SELECT session_id, role FROM share_links WHERE link_hash = ?1",
                    [h],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
                .db()?;
            let Some((sid, role)) = found else {
                return Ok(None);
            };
            let role = parse_stored(&role, "role", Role::parse)?;
            Ok(load_session(c, &sid)?.map(|s| (s, role)))
        })
        .await
    }
}

#[async_trait]
impl TicketStore for SqliteStore {
    async fn insert_ticket(&self, ticket: &Ticket) -> StoreResult<()> {
        let t = ticket.clone();
        self.call(move |c| {
            let (uid, uname, guest) = match &t.participant {
                Participant::User { id, username } => (Some(id.to_string()), Some(username.to_string()), None),
                Participant::Guest { display_name } => (None, None, Some(display_name.clone())),
            };
            c.execute(
                "INSERT INTO tickets (ticket_hash, session_id, user_id, username, guest_name, role, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![t.ticket_hash, t.session_id.as_str(), uid, uname, guest, t.role.as_str(), t.expires_at],
            )
            .db()
            .map(drop)
        })
        .await
    }

    async fn take_ticket(&self, ticket_hash: &str, now: Millis) -> StoreResult<Option<Ticket>> {
        let h = ticket_hash.to_owned();
        self.call(move |c| {
            // DELETE ... RETURNING removes and reads in one statement: two
            // callers racing for one ticket cannot both get it.
            let row = c
                .query_row(
                    "DELETE FROM tickets WHERE ticket_hash = ?1
                     RETURNING ticket_hash, session_id, user_id, username, guest_name, role, expires_at",
                    [h],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, Millis>(6)?,
                        ))
                    },
                )
                .optional()
                .db()?;
            let Some((ticket_hash, sid, uid, uname, guest, role, expires_at)) = row else {
                return Ok(None);
            };
            if expires_at <= now {
                return Ok(None);
            }
            let participant = match (uid, uname, guest) {
                (Some(id), Some(name), _) => Participant::User {
                    id: UserId::from_stored(id),
                    username: Username::from_stored(name),
                },
                (_, _, Some(display_name)) => Participant::Guest { display_name },
                _ => return Err(StoreError::Corrupt("ticket without participant".into())),
            };
            Ok(Some(Ticket {
                ticket_hash,
                session_id: SessionId::from_stored(sid),
                participant,
                role: parse_stored(&role, "role", Role::parse)?,
                expires_at,
            }))
        })
        .await
    }

    async fn delete_expired_tickets(&self, now: Millis) -> StoreResult<u64> {
        self.call(move |c| {
            c.execute("DELETE FROM tickets WHERE expires_at <= ?1", [now])
                .db()
                .map(|n| n as u64)
        })
        .await
    }
}
