//! Password rules (NIST 800-63B): 10–256 characters, no composition rules,
//! but not the username and not one of the most common passwords (a short
//! list ships in `common_passwords.txt`, compared case-insensitively).
//! Hashing is the server's job; this only decides what is acceptable.

use thiserror::Error;

const COMMON: &str = include_str!("common_passwords.txt");

/// Why a password was refused; shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("must be between {} and {} characters", Password::MIN, Password::MAX)]
    Length,
    /// Equal to the username.
    #[error("must not be the username")]
    SameAsUsername,
    /// On the list of common passwords.
    #[error("is too common; choose a less guessable one")]
    Common,
}

/// A password that passed the rules for a new account. Not `Debug`, so it
/// cannot end up in a log by accident.
pub struct Password(String);

impl Password {
    /// Fewest characters.
    pub const MIN: usize = 10;
    /// Most characters.
    pub const MAX: usize = 256;

    /// Checks a new password for the account `username`.
    pub fn parse_new(s: &str, username: &str) -> Result<Self, PasswordError> {
        let n = s.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&n) {
            return Err(PasswordError::Length);
        }
        if s.eq_ignore_ascii_case(username) {
            return Err(PasswordError::SameAsUsername);
        }
        let lower = s.to_lowercase();
        if COMMON.lines().any(|c| c == lower) {
            return Err(PasswordError::Common);
        }
        Ok(Self(s.to_owned()))
    }

    /// The password text, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert_eq!(
            Password::parse_new("short", "alice").err(),
            Some(PasswordError::Length)
        );
        assert!(Password::parse_new("éééééééééé", "alice").is_ok());
        assert!(Password::parse_new(&"x".repeat(256), "alice").is_ok());
        assert_eq!(
            Password::parse_new(&"x".repeat(257), "alice").err(),
            Some(PasswordError::Length)
        );
    }

    #[test]
    fn the_username_and_common_passwords_are_refused() {
        assert_eq!(
            Password::parse_new("Alice_Smith", "alice_smith").err(),
            Some(PasswordError::SameAsUsername)
        );
        assert_eq!(
            Password::parse_new("Password123", "bob").err(),
            Some(PasswordError::Common)
        );
        assert_eq!(
            Password::parse_new("qwertyuiop", "bob").err(),
            Some(PasswordError::Common)
        );
        assert!(Password::parse_new("correct horse battery", "bob").is_ok());
    }

    #[test]
    fn the_common_list_holds_only_lowercase_candidates_long_enough_to_matter() {
        for line in COMMON.lines() {
            assert_eq!(line, line.to_lowercase());
            assert!(
                line.chars().count() >= Password::MIN,
                "{line} is refused by length anyway"
            );
        }
    }
}
