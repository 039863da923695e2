//! `/v2/token`: the Docker registry token endpoint. The caller proves who it is with a Berth JWT
//! and receives a short-lived token whose `access` claim lists the repository actions it asked
//! for that its scopes allow. `GET` takes the JWT as the Basic password (as `docker login`
//! sends it) or as a bearer token; `POST` is the OAuth2 form (`grant_type=password` with the
//! JWT as the password, or `grant_type=refresh_token`), which containerd-based clients such as
//! helm use. Asked for an offline token, the endpoint returns the caller's JWT as the refresh
//! token: it is the credential that proves who the caller is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use poem::http::Method;
use poem::web::Json;
use poem::{Body, IntoResponse, Request, Response};
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

/// What a token request asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// The credential presented (a Berth JWT), if any.
    pub credential: Option<String>,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// Whether a refresh token is wanted.
    pub offline: bool,
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl TokenRequest {
    /// Reads a token request from its query string, the OAuth2 form of a `POST` (`None` for a
    /// `GET`) and the credential of its `Authorization` header.
    pub fn parse(
        query: &[u8],
        post_form: Option<&[u8]>,
        presented: Option<String>,
    ) -> RegistryResult<Self> {
        let mut asked = Self {
            credential: presented,
            ..Default::default()
        };
        for (key, value) in form(query) {
            match key.as_str() {
                "scope" => asked.scopes.push(value),
                "offline_token" => asked.offline = value == "true",
                _ => {}
            }
        }
        let Some(post_form) = post_form else {
            return Ok(asked);
        };
        let fields = form(post_form);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let credential = match field("grant_type").as_deref() {
            Some("password") => field("password"),
            Some("refresh_token") => field("refresh_token"),
            other => {
                let given =
                    other.map_or("no grant_type".to_owned(), |g| format!("grant_type {g:?}"));
                return Err(RegistryError::new(
                    ErrorCode::TokenRequestInvalid,
                    format!("{given} is not supported: use password or refresh_token"),
                ));
            }
        };
        asked.credential = credential.or(asked.credential);
        asked.scopes.extend(field("scope"));
        asked.offline |= field("access_type").as_deref() == Some("offline");
        Ok(asked)
    }
}

/// Reads the query (`GET`) or the OAuth2 form (`POST`) of a token request.
async fn read_request(request: &Request, body: Body) -> RegistryResult<TokenRequest> {
    let query = request.uri().query().unwrap_or_default().as_bytes();
    let presented = access::presented_token(request);
    if request.method() != Method::POST {
        return TokenRequest::parse(query, None, presented);
    }
    let bytes = crate::body::read_limited(body, 64 * 1024)
        .await
        .ok_or_else(|| {
            RegistryError::new(
                ErrorCode::TooLarge,
                "a token request form may be at most 64 KiB",
            )
        })?;
    TokenRequest::parse(query, Some(&bytes), presented)
}

/// Answers a token request.
pub async fn issue(
    state: &RegistryState,
    request: &Request,
    body: Body,
) -> RegistryResult<Response> {
    let asked = read_request(request, body).await?;
    let principal = match &asked.credential {
        None => None,
        Some(credential) => match state.authenticator.verify(credential) {
            Ok(principal) => Some(principal),
            Err(e) => {
                return Err(RegistryError::new(ErrorCode::Unauthorized, e.to_string())
                    .header("WWW-Authenticate", "Basic realm=\"berth\""));
            }
        },
    };
    let scopes = asked.scopes;
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
    let mut answer = json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_TTL.as_secs(),
        "issued_at": issued_at,
    });
    if !scopes.is_empty() {
        answer["scope"] = json!(scopes.join(" "));
    }
    if asked.offline
        && principal.is_some()
        && let Some(credential) = asked.credential
    {
        answer["refresh_token"] = json!(credential);
    }
    Ok(Json(answer).into_response())
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

    #[test]
    fn a_token_request_reads_its_query_form_and_header() {
        let get = TokenRequest::parse(
            b"scope=repository:a/b:pull&offline_token=true",
            None,
            Some("jwt".into()),
        )
        .unwrap();
        assert_eq!(get.credential.as_deref(), Some("jwt"));
        assert_eq!(get.scopes, ["repository:a/b:pull"]);
        assert!(get.offline);
        let post = TokenRequest::parse(
            b"scope=repository:a/b:pull",
            Some(b"grant_type=password&password=form-jwt&scope=repository%3Aa%2Fc%3Apush"),
            Some("header-jwt".into()),
        )
        .unwrap();
        assert_eq!(post.credential.as_deref(), Some("form-jwt"));
        assert_eq!(post.scopes, ["repository:a/b:pull", "repository:a/c:push"]);
        assert!(TokenRequest::parse(b"", Some(b"grant_type=client_credentials"), None).is_err());
    }
}
