//! Who may do what on `/v2`: credentials (a Berth JWT as a bearer token, or as the password of
//! Basic auth, as `docker login` sends it), the actions a repository request needs, and the
//! `WWW-Authenticate` challenge that sends clients to the token endpoint.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use poem::Request;

use super::RegistryState;
use super::errcode::{ErrorCode, RegistryError, RegistryResult};
use crate::auth::{AuthError, Principal, Scope};
use crate::domain::ResourceName;
use crate::domain::oci::RepositoryName;

/// What a request does to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read manifests and blobs.
    Pull,
    /// Upload blobs and manifests.
    Push,
    /// Delete manifests, tags and blob links.
    Delete,
}

impl Action {
    /// The action as the token specification writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Delete => "delete",
        }
    }

    /// Parses one action.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pull" => Some(Self::Pull),
            "push" => Some(Self::Push),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// The token the caller presented, if any: `Bearer <jwt>` or `Basic <user:jwt>`.
pub fn presented_token(request: &Request) -> Option<String> {
    let header = request.headers().get("authorization")?.to_str().ok()?;
    let (kind, value) = header.split_once(' ')?;
    if kind.eq_ignore_ascii_case("bearer") {
        Some(value.trim().to_owned())
    } else if kind.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(value.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        Some(password.to_owned())
    } else {
        None
    }
}

/// The caller's credentials, if it sent any: `Bearer <jwt>` or `Basic <user:jwt>`.
pub fn credentials(
    state: &RegistryState,
    request: &Request,
) -> Option<Result<Principal, AuthError>> {
    let header = request.headers().get("authorization")?.to_str().ok()?;
    let Some(token) = presented_token(request) else {
        // An Authorization header of another kind, or one that cannot be read.
        return header.split_once(' ').map(|_| Err(AuthError::Missing));
    };
    Some(state.authenticator.verify(&token))
}

/// Whether `principal` may do `action` on `repository`.
pub fn allows(principal: &Principal, repository: &RepositoryName, action: Action) -> bool {
    allows_where(principal, action, |name| name == repository.as_str())
}

/// Whether `principal` may do `action` in `registry`: on the repository of `chart` when it is
/// known, else on some repository of the registry.
pub fn allows_in_registry(
    principal: &Principal,
    registry: &ResourceName,
    chart: Option<&str>,
    action: Action,
) -> bool {
    let prefix = format!("{registry}/");
    allows_where(principal, action, |name| match chart {
        Some(chart) => name.strip_prefix(&prefix) == Some(chart),
        None => name.starts_with(&prefix),
    })
}

fn allows_where(principal: &Principal, action: Action, names: impl Fn(&str) -> bool) -> bool {
    match &principal.access {
        // A registry token grants exactly what it lists.
        Some(grants) => grants.iter().any(|grant| {
            grant.kind == "repository"
                && names(&grant.name)
                && grant.actions.iter().any(|a| a == action.as_str())
        }),
        None => match action {
            Action::Pull => {
                principal.scopes.allows(Scope::RegistryRead)
                    || principal.scopes.allows(Scope::RegistryWrite)
            }
            Action::Push | Action::Delete => principal.scopes.allows(Scope::RegistryWrite),
        },
    }
}

/// The base URL clients reach this server at: configured, or from the request's Host.
pub fn base_url(state: &RegistryState, request: &Request) -> String {
    if let Some(base) = &state.base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let host = request
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The `WWW-Authenticate` value that sends a client to the token endpoint.
fn challenge_header(
    state: &RegistryState,
    request: &Request,
    scope: Option<&str>,
    error: Option<&str>,
) -> String {
    let mut value = format!(
        "Bearer realm=\"{}/v2/token\",service=\"{}\"",
        base_url(state, request),
        state.service
    );
    if let Some(scope) = scope {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    if let Some(error) = error {
        value.push_str(&format!(",error=\"{error}\""));
    }
    value
}

/// A 401 that tells the client where to get a token for `scope`.
pub fn challenge(state: &RegistryState, request: &Request, scope: Option<String>) -> RegistryError {
    RegistryError::new(ErrorCode::Unauthorized, "authentication required").header(
        "WWW-Authenticate",
        challenge_header(state, request, scope.as_deref(), None),
    )
}

/// Lets the request through if the caller may do `actions` on `repository`; otherwise a 401
/// challenge (no or bad credentials) or a 403.
pub fn authorize(
    state: &RegistryState,
    request: &Request,
    repository: &RepositoryName,
    actions: &[Action],
) -> RegistryResult<Option<Principal>> {
    let scope = format!(
        "repository:{}:{}",
        repository,
        actions
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    match credentials(state, request) {
        None => Err(challenge(state, request, Some(scope))),
        Some(Err(e)) => Err(challenge(state, request, Some(scope))
            .detail(serde_json::json!({ "reason": e.to_string() }))),
        Some(Ok(principal)) => {
            if actions.iter().all(|a| allows(&principal, repository, *a)) {
                Ok(Some(principal))
            } else if principal.access.is_some() {
                // A registry token that lacks the scope: send the client for a new one.
                let value =
                    challenge_header(state, request, Some(&scope), Some("insufficient_scope"));
                Err(RegistryError::new(
                    ErrorCode::Unauthorized,
                    format!("the token does not allow {scope}"),
                )
                .header("WWW-Authenticate", value))
            } else {
                Err(RegistryError::new(
                    ErrorCode::Denied,
                    format!("the token does not allow {scope}"),
                ))
            }
        }
    }
}
