//! Roles in a session and what each may do.
//!
//! The owner created the session and manages it; an editor changes the code
//! and runs it; a viewer watches. Permission checks go through the methods
//! here so the rule lives in one place.

use serde::{Deserialize, Serialize};

/// A participant's role in one session. Ordered by power: viewer < editor < owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches the document, presence and runs; cannot change anything.
    Viewer,
    /// Edits the document and starts, cancels and feeds runs.
    Editor,
    /// An editor who also manages members and share links.
    Owner,
}

impl Role {
    /// May change the document.
    pub fn can_edit(self) -> bool {
        matches!(self, Role::Editor | Role::Owner)
    }

    /// May start, cancel and write to runs.
    pub fn can_run(self) -> bool {
        self.can_edit()
    }

    /// May manage members, roles and share links.
    pub fn can_manage(self) -> bool {
        self == Role::Owner
    }

    /// The lowercase name used on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owners_manage_and_viewers_only_watch() {
        assert!(!Role::Viewer.can_edit() && !Role::Viewer.can_run());
        assert!(Role::Editor.can_edit() && Role::Editor.can_run() && !Role::Editor.can_manage());
        assert!(Role::Owner.can_manage() && Role::Owner.can_run());
    }

    #[test]
    fn names_round_trip() {
        for r in [Role::Viewer, Role::Editor, Role::Owner] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Owner"), None);
    }
}
