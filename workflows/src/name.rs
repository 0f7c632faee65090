//! Names that end up in workflow IDs, task queues, file paths, search-attribute queries and
//! URLs: services, environments, drills and schedules. One set of rules, so a name accepted in
//! a plan is accepted by every command that filters or schedules by it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest name accepted.
pub const MAX_NAME: usize = 63;

/// The rules, in words, for error messages and hints.
pub const NAME_RULES: &str =
    "use 1 to 63 lowercase letters, digits, `-`, `_` or `.`, starting with a letter or digit";

/// A valid name: 1 to 63 lowercase ASCII letters, digits, `-`, `_` or `.`, starting with a
/// letter or digit. Safe inside `rollout/<service>/<environment>`, a path segment and a
/// quoted visibility query.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// Why a text is not a [`Name`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing was given.
    #[error("the name is empty: {NAME_RULES}")]
    Empty,
    /// Longer than [`MAX_NAME`].
    #[error("`{0}…` is longer than {MAX_NAME} characters")]
    TooLong(String),
    /// A character outside the allowed set, or a bad first character.
    #[error("`{0}` is not a valid name: {NAME_RULES}")]
    Invalid(String),
}

impl Name {
    /// Checks `text` against the rules.
    ///
    /// # Errors
    /// [`NameError`] saying what is wrong, with the offending text shortened.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        let shown = || text.chars().take(40).collect::<String>();
        if text.len() > MAX_NAME {
            return Err(NameError::TooLong(shown()));
        }
        let first_ok = text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !(first_ok && rest_ok) {
            return Err(NameError::Invalid(shown()));
        }
        Ok(Self(text.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(text: String) -> Result<Self, NameError> {
        Self::parse(&text)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> Self {
        name.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_and_hostile_ones_do_not() {
        for ok in ["checkout", "eu-west-1", "a", "v1.2_x", &"a".repeat(63)] {
            assert_eq!(Name::parse(ok).map(|n| n.to_string()), Ok(ok.to_owned()));
        }
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert!(matches!(
            Name::parse(&"a".repeat(64)),
            Err(NameError::TooLong(_))
        ));
        for bad in [
            "Checkout", "-lead", ".hidden", "a/b", "a b", "x'; DROP", "é", "a\nb",
        ] {
            assert!(
                matches!(Name::parse(bad), Err(NameError::Invalid(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn deserialising_checks_the_rules() {
        assert!(serde_json::from_str::<Name>("\"ok-name\"").is_ok());
        assert!(serde_json::from_str::<Name>("\"Not OK\"").is_err());
    }
}
