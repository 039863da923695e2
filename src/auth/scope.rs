//! Scopes: what a token allows.

use std::fmt;

/// One permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read registries, proxies and artifacts.
    RegistryRead,
    /// Create, change and delete registries and proxies; push.
    RegistryWrite,
    /// Read the event log and history.
    AuditRead,
    /// Everything.
    Admin,
}

impl Scope {
    /// The scope as written in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RegistryRead => "registry:read",
            Self::RegistryWrite => "registry:write",
            Self::AuditRead => "audit:read",
            Self::Admin => "admin",
        }
    }

    /// Parses one scope; unknown ones are ignored by [`Scopes::parse`].
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::RegistryRead,
            Self::RegistryWrite,
            Self::AuditRead,
            Self::Admin,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes a token grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Parses a space-separated `scope` claim, ignoring scopes Berth does not know.
    pub fn parse(claim: &str) -> Self {
        let mut scopes: Vec<Scope> = claim.split_whitespace().filter_map(Scope::parse).collect();
        scopes.dedup();
        Self(scopes)
    }

    /// Whether `scope` is granted; `admin` grants everything.
    pub fn allows(&self, scope: Scope) -> bool {
        self.0.contains(&Scope::Admin) || self.0.contains(&scope)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_every_scope_and_others_only_themselves() {
        let admin = Scopes::parse("admin");
        assert!(admin.allows(Scope::AuditRead) && admin.allows(Scope::RegistryWrite));
        let reader = Scopes::parse("registry:read unknown:thing");
        assert!(reader.allows(Scope::RegistryRead));
        assert!(!reader.allows(Scope::RegistryWrite));
        assert_eq!(reader.to_string(), "registry:read");
    }
}
