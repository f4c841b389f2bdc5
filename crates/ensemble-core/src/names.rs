//! Validated user input: usernames and session titles.
//!
//! A value of these types has passed its rules, so the rest of the code never
//! re-checks. Rules (DESIGN.md, Security):
//! - a username is 3–32 characters of `a-z 0-9 _ -`; letters may be typed in
//!   either case but `Alice` and `alice` are one account, so the store keys on
//!   [`Username::key`] (lowercase) and keeps the spelling for display;
//!   anything outside ASCII is refused, which also refuses look-alike letters;
//! - some names are reserved and cannot be registered;
//! - a title is 1–200 characters after trimming, without control characters.

use serde::Serialize;
use std::fmt;
use thiserror::Error;

/// Names nobody may register: they would impersonate the system or a guest.
pub const RESERVED_USERNAMES: &[&str] = &[
    "admin",
    "administrator",
    "anonymous",
    "api",
    "ensemble",
    "guest",
    "help",
    "mod",
    "moderator",
    "none",
    "null",
    "owner",
    "root",
    "support",
    "system",
    "undefined",
];

/// Why a name was refused; the text is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Too short or too long.
    #[error("must be between {min} and {max} characters")]
    Length {
        /// Smallest accepted length.
        min: usize,
        /// Largest accepted length.
        max: usize,
    },
    /// A character outside the allowed alphabet.
    #[error("may only contain letters a-z, digits 0-9, '_' and '-'")]
    Alphabet,
    /// A reserved name.
    #[error("is reserved")]
    Reserved,
    /// Control characters in free text.
    #[error("must not contain control characters")]
    Control,
}

/// A username that passed the rules. Compare accounts with [`Username::key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Shortest accepted username.
    pub const MIN: usize = 3;
    /// Longest accepted username.
    pub const MAX: usize = 32;

    /// Checks a username for login or lookup (reserved names pass, so that
    /// logging in as `admin` fails the same way as any unknown name).
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if !s.is_ascii() && s.chars().count() <= Self::MAX {
            return Err(NameError::Alphabet);
        }
        if s.len() < Self::MIN || s.len() > Self::MAX {
            return Err(NameError::Length {
                min: Self::MIN,
                max: Self::MAX,
            });
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(NameError::Alphabet);
        }
        Ok(Self(s.to_owned()))
    }

    /// Checks a username for registration: [`Username::parse`] plus the
    /// reserved list.
    pub fn parse_new(s: &str) -> Result<Self, NameError> {
        let name = Self::parse(s)?;
        if RESERVED_USERNAMES.contains(&name.key().as_str()) {
            return Err(NameError::Reserved);
        }
        Ok(name)
    }

    /// Wraps a name read back from the store, which validated it on the way in.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The name as the user typed it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that identifies the account.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session title that passed the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    /// Longest accepted title, in characters.
    pub const MAX: usize = 200;

    /// Trims and checks a title.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let t = s.trim();
        let n = t.chars().count();
        if n == 0 || n > Self::MAX {
            return Err(NameError::Length {
                min: 1,
                max: Self::MAX,
            });
        }
        if t.chars().any(char::is_control) {
            return Err(NameError::Control);
        }
        Ok(Self(t.to_owned()))
    }

    /// Wraps a title read back from the store.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The title as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_alphabet_and_length() {
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a_b-c9").is_ok());
        assert!(Username::parse(&"x".repeat(32)).is_ok());
        assert_eq!(
            Username::parse(&"x".repeat(33)),
            Err(NameError::Length { min: 3, max: 32 })
        );
        assert_eq!(Username::parse("al ice"), Err(NameError::Alphabet));
        assert_eq!(Username::parse("al.ice"), Err(NameError::Alphabet));
    }

    #[test]
    fn look_alike_unicode_is_refused() {
        // Cyrillic "а" (U+0430) looks like Latin "a".
        assert_eq!(Username::parse("\u{430}lice"), Err(NameError::Alphabet));
        // Fullwidth letters.
        assert_eq!(Username::parse("ａｌｉｃｅ"), Err(NameError::Alphabet));
    }

    #[test]
    fn case_does_not_make_a_new_account() {
        let a = Username::parse("Alice").unwrap();
        let b = Username::parse("alice").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "Alice");
    }

    #[test]
    fn reserved_names_cannot_be_registered_in_any_case() {
        for n in ["admin", "Anonymous", "ROOT", "guest", "null"] {
            assert_eq!(Username::parse_new(n), Err(NameError::Reserved), "{n}");
            assert!(Username::parse(n).is_ok(), "{n} must still parse for login");
        }
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(Title::parse("  Demo  ").unwrap().as_str(), "Demo");
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert!(Title::parse(&"é".repeat(201)).is_err());
        assert_eq!(Title::parse("a\u{7}b"), Err(NameError::Control));
    }
}
