//! `GET /v2/token`: the Docker registry token endpoint. The caller proves who it is with a
//! Berth JWT (as the Basic password, as `docker login` sends it, or as a bearer token) and
//! receives a short-lived token whose `access` claim lists the repository actions it asked
//! for that its scopes allow.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use poem::web::Json;
use poem::{IntoResponse, Request, Response};
use serde_json::json;

use super::RegistryState;
use super::access::{self, Action};
use super::errcode::{ErrorCode, RegistryError, RegistryResult};
use crate::auth::{Access, Principal};
use crate::domain::oci::RepositoryName;

/// How long a registry token lives.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);

/// Parses `repository:<name>:<actions>` into the grants it asks for.
fn requested(scope: &str) -> Option<(RepositoryName, Vec<Action>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind != "repository" {
        return None;
    }
    let name = RepositoryName::parse(name).ok()?;
    let mut wanted = Vec::new();
    for action in actions.split(',') {
        match action {
            "*" => wanted.extend([Action::Pull, Action::Push, Action::Delete]),
            other => wanted.extend(Action::parse(other)),
        }
    }
    Some((name, wanted))
}

/// The repositories the scopes ask about.
fn named(scopes: &[String]) -> Vec<RepositoryName> {
    scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter_map(requested)
        .map(|(name, _)| name)
        .collect()
}

/// The grants `principal` gets for the requested scopes; anyone may pull from the
/// repositories in `public`.
pub fn grants(
    principal: Option<&Principal>,
    scopes: &[String],
    public: &[RepositoryName],
) -> Vec<Access> {
    let mut grants: Vec<Access> = Vec::new();
    for scope in scopes.iter().flat_map(|s| s.split(' ')) {
        let Some((name, wanted)) = requested(scope) else {
            continue;
        };
        let mut actions: Vec<String> = wanted
            .into_iter()
            .filter(|a| {
                principal.is_some_and(|p| access::allows(p, &name, *a))
                    || (*a == Action::Pull && public.contains(&name))
            })
            .map(|a| a.as_str().to_owned())
            .collect();
        actions.sort();
        actions.dedup();
        match grants.iter_mut().find(|g| g.name == name.as_str()) {
            Some(existing) => {
                existing.actions.extend(actions);
                existing.actions.sort();
                existing.actions.dedup();
            }
            None => grants.push(Access {
                kind: "repository".into(),
                name: name.to_string(),
                actions,
            }),
        }
    }
    grants
}

/// Answers a token request.
pub async fn issue(state: &RegistryState, request: &Request) -> RegistryResult<Response> {
    let principal = match access::credentials(state, request) {
        None => None,
        Some(Ok(principal)) => Some(principal),
        Some(Err(e)) => {
            return Err(RegistryError::new(ErrorCode::Unauthorized, e.to_string())
                .header("WWW-Authenticate", "Basic realm=\"berth\""));
        }
    };
    let scopes: Vec<String> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut public = Vec::new();
    for name in named(&scopes) {
        if state.is_public(&name).await {
            public.push(name);
        }
    }
    let access = grants(principal.as_ref(), &scopes, &public);
    let subject = principal
        .as_ref()
        .map_or("anonymous", |p| p.subject.as_str());
    let token = state
        .authenticator
        .mint_registry_token(subject, access, TOKEN_TTL);
    let issued_at = time::OffsetDateTime::from(
        UNIX_EPOCH
            + SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
    )
    .format(&time::format_description::well_known::Rfc3339)
    .unwrap_or_default();
    Ok(Json(json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_TTL.as_secs(),
        "issued_at": issued_at,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scopes;

    fn principal(scope: &str) -> Principal {
        Principal {
            subject: "u".into(),
            scopes: Scopes::parse(scope),
            access: None,
        }
    }

    #[test]
    fn grants_are_what_was_asked_intersected_with_the_scopes() {
        let asked = vec!["repository:team/app:pull,push,delete".to_owned()];
        let reader = grants(Some(&principal("registry:read")), &asked, &[]);
        assert_eq!(reader[0].actions, ["pull"]);
        let writer = grants(Some(&principal("registry:write")), &asked, &[]);
        assert_eq!(writer[0].actions, ["delete", "pull", "push"]);
        assert!(grants(None, &asked, &[])[0].actions.is_empty());
        let public = [RepositoryName::parse("team/app").unwrap()];
        assert_eq!(grants(None, &asked, &public)[0].actions, ["pull"]);
        let star = grants(
            Some(&principal("admin")),
            &["repository:team/app:*".to_owned()],
            &[],
        );
        assert_eq!(star[0].actions, ["delete", "pull", "push"]);
        assert!(
            grants(
                Some(&principal("admin")),
                &["registry:catalog:*".to_owned()],
                &[]
            )
            .is_empty()
        );
    }
}
