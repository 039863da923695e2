//! Talking to an upstream registry: bounded timeouts, retries with backoff for idempotent
//! requests, and the authentication the upstream asks for in its `WWW-Authenticate` challenge:
//! Basic with the proxy's credentials, or the Docker token dance (a token from the challenge's
//! realm for its service and scope, fetched anonymously or with the credentials). Tokens are
//! kept until shortly before they expire, never fetched per request.

use std::time::{Duration, Instant};

use moka::future::Cache;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};

use super::ProxyError;

/// How long connecting to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an upstream may stay silent in the middle of a response.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts for an idempotent request that fails to connect or gets a 5xx.
const ATTEMPTS: u32 = 3;
/// A token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
/// The lifetime assumed for a token that does not say (the token specification's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// One upstream, as a request needs it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The proxy's key (names the upstream in errors and token cache keys).
    pub key: String,
    /// The registry's base URL, without a trailing slash.
    pub base: String,
    /// User name and password, when the proxy has them.
    pub credentials: Option<(String, String)>,
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// The HTTP client for all upstreams, with their tokens.
#[derive(Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    /// Tokens by proxy key and scope.
    tokens: Cache<(String, String), Token>,
    /// The scope last granted for a repository URL, by proxy key and that URL.
    scopes: Cache<(String, String), String>,
}

/// A challenge from `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let (mut service, mut scope) = (None, None);
    // Values are quoted and may hold commas (a scope listing actions), so walk the string.
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = Some(value.to_owned()),
            "scope" => scope = Some(value.to_owned()),
            _ => {}
        }
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
        scope,
    })
}

impl UpstreamClient {
    /// A client with Berth's timeouts.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with static settings");
        Self {
            http,
            tokens: Cache::builder().max_capacity(10_000).build(),
            scopes: Cache::builder().max_capacity(10_000).build(),
        }
    }

    /// Sends `method path` to `endpoint`, answering its authentication challenge once, and
    /// retrying connection failures and 5xx answers with backoff.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        method: Method,
        path: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, ProxyError> {
        let url = format!("{}{path}", endpoint.base);
        self.send_url(endpoint, method, &url, accept).await
    }

    /// Like [`Self::send`], to an absolute URL (a Helm index may point anywhere).
    pub async fn send_url(
        &self,
        endpoint: &Endpoint,
        method: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, ProxyError> {
        let url = url.to_owned();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(endpoint, &method, &url, accept).await;
            let retry = match &result {
                Err(ProxyError::Unreachable { .. }) => true,
                Ok(response) => response.status().is_server_error(),
                Err(_) => false,
            };
            if !retry || attempt >= ATTEMPTS {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(100 * 3u64.pow(attempt - 1))).await;
        }
    }

    async fn send_once(
        &self,
        endpoint: &Endpoint,
        method: &Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, ProxyError> {
        let unreachable = |e: reqwest::Error| ProxyError::Unreachable {
            proxy: endpoint.key.clone(),
            reason: crate::event_store::error_chain(&e),
        };
        let build = |authorization: Option<String>| {
            let mut request = self.http.request(method.clone(), url);
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(authorization) = authorization {
                request = request.header(AUTHORIZATION, authorization);
            }
            request
        };
        // A token already held for this upstream's last scope saves the first round trip.
        let remembered = self.remembered(endpoint, url).await;
        let response = build(remembered.clone())
            .send()
            .await
            .map_err(unreachable)?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(challenge) = challenge(response.headers()) else {
            return Ok(response);
        };
        let authorization = match challenge {
            Challenge::Basic => match &endpoint.credentials {
                Some((user, password)) => Some(basic(user, password)),
                None => return Ok(response),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let token = self
                    .token(endpoint, &realm, service.as_deref(), scope.as_deref())
                    .await?;
                self.remember_scope(endpoint, url, scope.as_deref().unwrap_or_default())
                    .await;
                Some(format!("Bearer {token}"))
            }
        };
        if authorization == remembered {
            return Ok(response);
        }
        build(authorization).send().await.map_err(unreachable)
    }

    /// The bearer token held for the scope last asked for on this URL's repository.
    async fn remembered(&self, endpoint: &Endpoint, url: &str) -> Option<String> {
        let scope = self
            .scopes
            .get(&(endpoint.key.clone(), repository_url(url)))
            .await?;
        let token = self.tokens.get(&(endpoint.key.clone(), scope)).await?;
        (token.expires > Instant::now()).then(|| format!("Bearer {}", token.value))
    }

    async fn remember_scope(&self, endpoint: &Endpoint, url: &str, scope: &str) {
        self.scopes
            .insert(
                (endpoint.key.clone(), repository_url(url)),
                scope.to_owned(),
            )
            .await;
    }

    /// A token for `scope` from `realm`: the held one while it is valid, else a new one.
    async fn token(
        &self,
        endpoint: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String, ProxyError> {
        let key = (endpoint.key.clone(), scope.unwrap_or_default().to_owned());
        if let Some(token) = self.tokens.get(&key).await
            && token.expires > Instant::now()
        {
            return Ok(token.value);
        }
        let failed = |reason: String| ProxyError::Auth {
            proxy: endpoint.key.clone(),
            reason,
        };
        let mut request = self.http.get(realm);
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(("service", service));
        }
        if let Some(scope) = scope {
            query.push(("scope", scope));
        }
        request = request.query(&query);
        if let Some((user, password)) = &endpoint.credentials {
            request = request.header(AUTHORIZATION, basic(user, password));
        }
        let response = request
            .send()
            .await
            .map_err(|e| failed(format!("the token service {realm} is unreachable: {e}")))?;
        if !response.status().is_success() {
            return Err(failed(format!(
                "the token service {realm} answered {}",
                response.status()
            )));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| failed(format!("the token service {realm} sent no JSON: {e}")))?;
        let value = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .ok_or_else(|| failed(format!("the token service {realm} sent no token")))?
            .to_owned();
        let lifetime = body["expires_in"]
            .as_u64()
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        // Count the lifetime from when the token was issued, when the service says.
        let age = body["issued_at"]
            .as_str()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|issued| {
                let age = time::OffsetDateTime::now_utc() - issued;
                Duration::try_from(age).unwrap_or_default()
            })
            .unwrap_or_default();
        let expires = Instant::now() + lifetime.saturating_sub(age).saturating_sub(TOKEN_MARGIN);
        self.tokens
            .insert(
                key,
                Token {
                    value: value.clone(),
                    expires,
                },
            )
            .await;
        Ok(value)
    }
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self::new()
    }
}

/// Requests on one repository share a scope: the URL up to the repository names it.
fn repository_url(url: &str) -> String {
    let cut = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|marker| url.find(marker))
        .min()
        .unwrap_or(url.len());
    url[..cut].to_owned()
}

fn challenge(headers: &HeaderMap) -> Option<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_challenge)
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_with_quoted_commas() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/nginx:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
    }

    #[test]
    fn requests_on_one_repository_share_a_repository_url() {
        assert_eq!(
            repository_url("http://h/v2/library/nginx/manifests/latest"),
            repository_url("http://h/v2/library/nginx/blobs/sha256:ab")
        );
        assert_ne!(
            repository_url("http://h/v2/a/manifests/x"),
            repository_url("http://h/v2/b/manifests/x")
        );
    }
}
