//! OCI value types: digests, repository names, tags and references, parsed once at the edge
//! with the grammar of the OCI distribution specification.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ResourceName;

/// Why an OCI value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OciError {
    /// Not `algorithm:hex`, or not a supported algorithm, or the wrong length.
    #[error("invalid digest {0:?}: {1}")]
    Digest(String, &'static str),
    /// Not a valid repository name.
    #[error("invalid repository name {0:?}: {1}")]
    Name(String, String),
    /// Not a valid tag.
    #[error(
        "invalid tag {0:?}: a tag is 1 to 128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"
    )]
    Tag(String),
}

/// A content digest. Berth stores content under sha256 only.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(value: &str) -> Result<Self, OciError> {
        let bad = |why| OciError::Digest(value.to_owned(), why);
        let (algorithm, hex) = value
            .split_once(':')
            .ok_or_else(|| bad("expected algorithm:hex"))?;
        if algorithm != "sha256" {
            return Err(bad("only sha256 digests are supported"));
        }
        if hex.len() != 64 {
            return Err(bad("a sha256 digest has 64 hex digits"));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("hex digits must be 0-9 or a-f"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The digest of 32 raw sha256 bytes.
    pub fn from_sha256(bytes: &[u8]) -> Self {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("sha256:{hex}"))
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The whole digest as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Digest {
    type Error = OciError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> Self {
        d.0
    }
}

/// The longest repository name Berth accepts.
pub const MAX_REPOSITORY_LEN: usize = 255;

/// A repository: `<registry>/<path>`, where the first component names a registry (or an
/// upstream proxy) and every component follows the OCI path-component grammar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepositoryName {
    full: String,
    registry_len: usize,
}

impl RepositoryName {
    /// Parses `<registry>/<image path>`.
    pub fn parse(value: &str) -> Result<Self, OciError> {
        let bad = |why: String| OciError::Name(value.to_owned(), why);
        if value.len() > MAX_REPOSITORY_LEN {
            return Err(bad(format!("longer than {MAX_REPOSITORY_LEN} characters")));
        }
        let Some((registry, path)) = value.split_once('/') else {
            return Err(bad("expected <registry>/<image>".into()));
        };
        ResourceName::parse(registry).map_err(|e| bad(format!("registry name {e}")))?;
        for component in path.split('/') {
            if !is_path_component(component) {
                return Err(bad(format!(
                    "component {component:?} must be lowercase letters and digits, separated by '.', '_', '__' or dashes"
                )));
            }
        }
        Ok(Self {
            full: value.to_owned(),
            registry_len: registry.len(),
        })
    }

    /// The registry (or upstream proxy) the repository lives in.
    pub fn registry(&self) -> ResourceName {
        ResourceName::parse(&self.full[..self.registry_len]).expect("checked on parse")
    }

    /// The image path within the registry.
    pub fn path(&self) -> &str {
        &self.full[self.registry_len + 1..]
    }

    /// The whole name.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

fn is_path_component(component: &str) -> bool {
    if component.is_empty()
        || !component
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return false;
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !component.starts_with(alnum) || !component.ends_with(alnum) {
        return false;
    }
    component.split(alnum).all(|run| {
        run.is_empty() || run == "." || run == "_" || run == "__" || run.chars().all(|c| c == '-')
    })
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl TryFrom<String> for RepositoryName {
    type Error = OciError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RepositoryName> for String {
    fn from(name: RepositoryName) -> Self {
        name.full
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    /// Parses a tag.
    pub fn parse(value: &str) -> Result<Self, OciError> {
        let ok = (1..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !value.starts_with(['.', '-']);
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(OciError::Tag(value.to_owned()))
        }
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Tag {
    type Error = OciError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Tag> for String {
    fn from(tag: Tag) -> Self {
        tag.0
    }
}

/// What a manifest request names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// By tag.
    Tag(Tag),
    /// By digest.
    Digest(Digest),
}

impl Reference {
    /// A digest if it contains ':', else a tag.
    pub fn parse(value: &str) -> Result<Self, OciError> {
        if value.contains(':') {
            Digest::parse(value).map(Self::Digest)
        } else {
            Tag::parse(value).map(Self::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_digests_parse_and_others_are_refused_with_the_reason() {
        let digest = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(digest.hex(), HEX);
        for (bad, why) in [
            ("sha256", "expected algorithm:hex"),
            ("sha512:abc", "only sha256"),
            ("sha256:abc", "64 hex digits"),
            (&format!("sha256:{}", HEX.to_uppercase()), "0-9 or a-f"),
            (
                "sha256:../../../../etc/passwd0000000000000000000000000000000000000",
                "hex digits",
            ),
        ] {
            let err = Digest::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn repository_names_need_a_registry_and_valid_components() {
        let name = RepositoryName::parse("team-images/api/server").unwrap();
        assert_eq!(name.registry().as_str(), "team-images");
        assert_eq!(name.path(), "api/server");
        for ok in ["r/a", "r/a.b_c__d---e/f0"] {
            assert!(RepositoryName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "single", "r/", "r//a", "r/A", "r/a/../b", "r/-a", "r/a-", "1r/a", "r/a..b",
            "r/%2e%2e", "r/a\0b",
        ] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RepositoryName::parse(&format!("r/{}", "a".repeat(254))).is_err());
    }

    #[test]
    fn tags_and_references_follow_the_spec() {
        assert!(Tag::parse("v1.2.3-rc_1").is_ok());
        assert!(Tag::parse(&"a".repeat(128)).is_ok());
        for bad in ["", ".hidden", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(Tag::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(Reference::parse("latest"), Ok(Reference::Tag(_))));
        assert!(matches!(
            Reference::parse(&format!("sha256:{HEX}")),
            Ok(Reference::Digest(_))
        ));
        assert!(Reference::parse("sha256:zz").is_err());
    }
}
