//! Typed identifiers.
//!
//! Every id is a lowercase UUID string. Run ids are UUIDv7, whose text sorts by
//! creation time, so "newest first" is simply "id descending" and a history
//! page's cursor is the last id seen. Ids are strings, not binary UUIDs,
//! because MongoDB-compatible servers disagree on binary subtypes.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new, time-ordered id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// Parses an id from user input; only canonical UUID text is accepted.
            pub fn parse(s: &str) -> Option<Self> {
                let u = uuid::Uuid::try_parse(s).ok()?;
                let canonical = u.to_string();
                (canonical == s).then_some(Self(canonical))
            }

            /// Wraps a value read back from the store, which wrote it itself.
            pub fn from_stored(s: String) -> Self {
                Self(s)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A registered user.
    UserId
);
string_id!(
    /// A collaborative session: one document, its members and its runs.
    SessionId
);
string_id!(
    /// One execution of a session's code.
    RunId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_sort_by_time() {
        let a = RunId::generate();
        let b = RunId::generate();
        assert_eq!(RunId::parse(a.as_str()), Some(a.clone()));
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn non_canonical_text_is_refused() {
        let id = SessionId::generate();
        assert!(SessionId::parse(&id.as_str().to_uppercase()).is_none());
        assert!(SessionId::parse("../etc/passwd").is_none());
        assert!(SessionId::parse("").is_none());
    }
}
