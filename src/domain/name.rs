//! `ResourceName`: the name of a registry or the key of an upstream proxy.
//!
//! Both are addressed by clients as the first path component of an image reference
//! (`host/<name>/<image>:<tag>`), so a name follows the OCI path-component grammar
//! `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, and additionally starts with a lowercase letter and is
//! at most 255 characters long.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest name Berth accepts.
pub const MAX_NAME_LEN: usize = 255;

/// Why a name was refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing was given.
    #[error("must not be empty")]
    Empty,
    /// Over [`MAX_NAME_LEN`] characters.
    #[error("must be at most {MAX_NAME_LEN} characters (it has {0})")]
    TooLong(usize),
    /// The first character is not a lowercase letter.
    #[error("must start with a lowercase letter")]
    BadStart,
    /// A character outside the allowed set.
    #[error(
        "may contain only lowercase letters, digits, '_', '.' and '-' (found {0:?} at position {1})"
    )]
    BadCharacter(char, usize),
    /// The last character is a separator.
    #[error("must end with a lowercase letter or digit")]
    BadEnd,
    /// Separators that an image reference cannot hold, such as `..` or `._`.
    #[error(
        "must not contain {0:?}: separators stand alone ('.', '_', '__' or a run of '-') between letters or digits"
    )]
    BadSeparator(String),
}

/// A valid registry name or upstream-proxy key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceName(String);

impl ResourceName {
    /// Checks `value` against the naming rule.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let len = value.chars().count();
        if len == 0 {
            return Err(NameError::Empty);
        }
        if len > MAX_NAME_LEN {
            return Err(NameError::TooLong(len));
        }
        for (i, c) in value.chars().enumerate() {
            let allowed =
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-');
            if !allowed {
                return Err(NameError::BadCharacter(c, i + 1));
            }
        }
        if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(NameError::BadStart);
        }
        if !value.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(NameError::BadEnd);
        }
        for run in value.split(|c: char| c.is_ascii_alphanumeric()) {
            let ok = run.is_empty()
                || run == "."
                || run == "_"
                || run == "__"
                || run.chars().all(|c| c == '-');
            if !ok {
                return Err(NameError::BadSeparator(run.to_owned()));
            }
        }
        Ok(Self(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResourceName {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ResourceName> for String {
    fn from(name: ResourceName) -> Self {
        name.0
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_fit_an_image_reference_are_accepted() {
        for name in [
            "a",
            "team-images",
            "a1.b2",
            "docker_hub",
            "a__b",
            "a---b",
            "x9",
        ] {
            assert!(ResourceName::parse(name).is_ok(), "{name}");
        }
        assert!(ResourceName::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn each_rule_is_named_when_a_name_is_refused() {
        let cases = [
            ("", NameError::Empty),
            ("1abc", NameError::BadStart),
            ("-abc", NameError::BadStart),
            ("Abc", NameError::BadCharacter('A', 1)),
            ("ab/c", NameError::BadCharacter('/', 3)),
            ("a b", NameError::BadCharacter(' ', 2)),
            ("abc-", NameError::BadEnd),
            ("abc.", NameError::BadEnd),
            ("a..b", NameError::BadSeparator("..".into())),
            ("a._b", NameError::BadSeparator("._".into())),
            ("a___b", NameError::BadSeparator("___".into())),
            ("a-.b", NameError::BadSeparator("-.".into())),
        ];
        for (name, expected) in cases {
            assert_eq!(ResourceName::parse(name), Err(expected), "{name:?}");
        }
        assert_eq!(
            ResourceName::parse(&"a".repeat(256)),
            Err(NameError::TooLong(256))
        );
        assert_eq!(
            NameError::BadStart.to_string(),
            "must start with a lowercase letter"
        );
    }
}
