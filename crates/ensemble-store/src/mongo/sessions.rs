//! Sessions (with members and links inside the session document) and
//! handshake tickets in MongoDB.
//!
//! Members and links live in maps keyed by user id and link digest, plus
//! `member_ids` / `link_hashes` arrays that carry the indexes. Adding or
//! removing one is a single `update_one` touching both, so it is atomic
//! without transactions.

use super::{mongo_err, MongoStore};
use async_trait::async_trait;
use bson::doc;
use ensemble_core::ids::{SessionId, UserId};
use ensemble_core::model::{Member, Participant, Session, ShareLink, Ticket};
use ensemble_core::names::{Title, Username};
use ensemble_core::role::Role;
use ensemble_core::store::{SessionStore, StoreError, StoreResult, TicketStore};
use ensemble_core::time::Millis;
use futures::TryStreamExt;
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
struct MemberDoc {
    username: String,
    role: Role,
}

#[derive(Serialize, Deserialize)]
struct LinkDoc {
    role: Role,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
struct SessionDoc {
    session_id: String,
    title: String,
    owner: String,
    member_ids: Vec<String>,
    members: BTreeMap<String, MemberDoc>,
    link_hashes: Vec<String>,
    links: BTreeMap<String, LinkDoc>,
    created_at: i64,
    updated_at: i64,
}

impl From<SessionDoc> for Session {
    fn from(d: SessionDoc) -> Self {
        let mut s = Session {
            id: SessionId::from_stored(d.session_id),
            title: Title::from_stored(d.title),
            owner: UserId::from_stored(d.owner),
            members: d
                .members
                .into_iter()
                .map(|(id, m)| Member {
                    user_id: UserId::from_stored(id),
                    username: Username::from_stored(m.username),
                    role: m.role,
                })
                .collect(),
            links: d
                .links
                .into_iter()
                .map(|(link_hash, l)| ShareLink {
                    link_hash,
                    role: l.role,
                    created_at: l.created_at,
                })
                .collect(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        };
        s.sort_canonical();
        s
    }
}

#[derive(Serialize, Deserialize)]
struct TicketDoc {
    #[serde(rename = "_id")]
    ticket_hash: String,
    session_id: String,
    user_id: Option<String>,
    username: Option<String>,
    guest_name: Option<String>,
    role: Role,
    expires_at: i64,
}

impl MongoStore {
    fn sessions(&self) -> Collection<SessionDoc> {
        self.db.collection("sessions")
    }

    fn tickets(&self) -> Collection<TicketDoc> {
        self.db.collection("tickets")
    }
}

#[async_trait]
impl SessionStore for MongoStore {
    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        let d = SessionDoc {
            session_id: s.id.to_string(),
            title: s.title.as_str().to_owned(),
            owner: s.owner.to_string(),
            member_ids: s.members.iter().map(|m| m.user_id.to_string()).collect(),
            members: s
                .members
                .iter()
                .map(|m| {
                    let doc = MemberDoc {
                        username: m.username.to_string(),
                        role: m.role,
                    };
                    (m.user_id.to_string(), doc)
                })
                .collect(),
            link_hashes: s.links.iter().map(|l| l.link_hash.clone()).collect(),
            links: s
                .links
                .iter()
                .map(|l| {
                    let doc = LinkDoc {
                        role: l.role,
                        created_at: l.created_at,
                    };
                    (l.link_hash.clone(), doc)
                })
                .collect(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        };
        self.sessions()
            .insert_one(d)
            .await
            .map_err(mongo_err)
            .map(drop)
    }

    async fn session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        let found = self
            .sessions()
            .find_one(doc! {"session_id": id.as_str()})
            .await
            .map_err(mongo_err)?;
        Ok(found.map(Session::from))
    }

    async fn sessions_for_user(&self, user: &UserId) -> StoreResult<Vec<Session>> {
        let docs: Vec<SessionDoc> = self
            .sessions()
            .find(doc! {"member_ids": user.as_str()})
            .sort(doc! {"session_id": -1})
            .await
            .map_err(mongo_err)?
            .try_collect()
            .await
            .map_err(mongo_err)?;
        Ok(docs.into_iter().map(Session::from).collect())
    }

    async fn set_member(&self, id: &SessionId, m: &Member, now: Millis) -> StoreResult<()> {
        let uid = m.user_id.as_str();
        let r = self
            .sessions()
            .update_one(
                doc! {"session_id": id.as_str()},
                doc! {
                    "$addToSet": {"member_ids": uid},
                    "$set": {
                        format!("members.{uid}"): {"username": m.username.as_str(), "role": m.role.as_str()},
                        "updated_at": now,
                    },
                },
            )
            .await
            .map_err(mongo_err)?;
        if r.matched_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn rename_session(&self, id: &SessionId, title: &Title, now: Millis) -> StoreResult<()> {
        let r = self
            .sessions()
            .update_one(
                doc! {"session_id": id.as_str()},
                doc! {"$set": {"title": title.as_str(), "updated_at": now}},
            )
            .await
            .map_err(mongo_err)?;
        if r.matched_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<bool> {
        // Members and links live inside the session document.
        let r = self
            .sessions()
            .delete_one(doc! {"session_id": id.as_str()})
            .await
            .map_err(mongo_err)?;
        Ok(r.deleted_count > 0)
    }

    async fn remove_member(&self, id: &SessionId, user: &UserId, now: Millis) -> StoreResult<bool> {
        let uid = user.as_str();
        let r = self
            .sessions()
            .update_one(
                doc! {"session_id": id.as_str(), "member_ids": uid},
                doc! {
                    "$pull": {"member_ids": uid},
                    "$unset": {format!("members.{uid}"): ""},
                    "$set": {"updated_at": now},
                },
            )
            .await
            .map_err(mongo_err)?;
        Ok(r.matched_count > 0)
    }

    async fn add_link(&self, id: &SessionId, l: &ShareLink, now: Millis) -> StoreResult<()> {
        let h = l.link_hash.as_str();
        let r = self
            .sessions()
            .update_one(
                doc! {"session_id": id.as_str()},
                doc! {
                    "$addToSet": {"link_hashes": h},
                    "$set": {
                        format!("links.{h}"): {"role": l.role.as_str(), "created_at": l.created_at},
                        "updated_at": now,
                    },
                },
            )
            .await
            .map_err(mongo_err)?;
        if r.matched_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn remove_link(&self, id: &SessionId, link_hash: &str, now: Millis) -> StoreResult<bool> {
        let r = self
            .sessions()
            .update_one(
                doc! {"session_id": id.as_str(), "link_hashes": link_hash},
                doc! {
                    "$pull": {"link_hashes": link_hash},
                    "$unset": {format!("links.{link_hash}"): ""},
                    "$set": {"updated_at": now},
                },
            )
            .await
            .map_err(mongo_err)?;
        Ok(r.matched_count > 0)
    }

    async fn session_by_link(&self, link_hash: &str) -> StoreResult<Option<(Session, Role)>> {
        let found = self
            .sessions()
            .find_one(doc! {"link_hashes": link_hash})
            .await
            .map_err(mongo_err)?;
        let Some(d) = found else { return Ok(None) };
        let role = d
            .links
            .get(link_hash)
            .map(|l| l.role)
            .ok_or_else(|| StoreError::Corrupt("link hash without link".into()))?;
        Ok(Some((Session::from(d), role)))
    }
}

#[async_trait]
impl TicketStore for MongoStore {
    async fn insert_ticket(&self, t: &Ticket) -> StoreResult<()> {
        let (user_id, username, guest_name) = match &t.participant {
            Participant::User { id, username } => {
                (Some(id.to_string()), Some(username.to_string()), None)
            }
            Participant::Guest { display_name } => (None, None, Some(display_name.clone())),
        };
        let d = TicketDoc {
            ticket_hash: t.ticket_hash.clone(),
            session_id: t.session_id.to_string(),
            user_id,
            username,
            guest_name,
            role: t.role,
            expires_at: t.expires_at,
        };
        self.tickets()
            .insert_one(d)
            .await
            .map_err(mongo_err)
            .map(drop)
    }

    async fn take_ticket(&self, ticket_hash: &str, now: Millis) -> StoreResult<Option<Ticket>> {
        // find_one_and_delete is atomic: of two racing callers one gets it.
        let found = self
            .tickets()
            .find_one_and_delete(doc! {"_id": ticket_hash})
            .await
            .map_err(mongo_err)?;
        let Some(d) = found else { return Ok(None) };
        if d.expires_at <= now {
            return Ok(None);
        }
        let participant = match (d.user_id, d.username, d.guest_name) {
            (Some(id), Some(name), _) => Participant::User {
                id: UserId::from_stored(id),
                username: Username::from_stored(name),
            },
            (_, _, Some(display_name)) => Participant::Guest { display_name },
            _ => return Err(StoreError::Corrupt("ticket without participant".into())),
        };
        Ok(Some(Ticket {
            ticket_hash: d.ticket_hash,
            session_id: SessionId::from_stored(d.session_id),
            participant,
            role: d.role,
            expires_at: d.expires_at,
        }))
    }

    async fn delete_expired_tickets(&self, now: Millis) -> StoreResult<u64> {
        let r = self
            .tickets()
            .delete_many(doc! {"expires_at": {"$lte": now}})
            .await
            .map_err(mongo_err)?;
        Ok(r.deleted_count)
    }
}
