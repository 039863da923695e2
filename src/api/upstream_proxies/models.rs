//! The request and response bodies of `/api/v1/upstream-proxies`, as the OpenAPI document
//! names them.

use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object};
use time::OffsetDateTime;

use crate::api::common::PackageTypeDto;
use crate::api::schema::{Count, Description, Label, Name, RemoteUrlText, SecretText, Username};
use crate::domain::upstream_proxy::CacheSettings;
use crate::domain::upstream_proxy::{DockerSource, ProxyAuth, UpstreamProxy};
use crate::projections::resources::Stored;

/// Where a Docker proxy fetches from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "DockerSource", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DockerSourceDto {
    /// Docker Hub.
    DockerHub,
    /// Another registry, at `url`.
    Custom,
}

impl From<DockerSourceDto> for DockerSource {
    fn from(value: DockerSourceDto) -> Self {
        match value {
            DockerSourceDto::DockerHub => Self::DockerHub,
            DockerSourceDto::Custom => Self::Custom,
        }
    }
}

impl From<DockerSource> for DockerSourceDto {
    fn from(value: DockerSource) -> Self {
        match value {
            DockerSource::DockerHub => Self::DockerHub,
            DockerSource::Custom => Self::Custom,
        }
    }
}

/// How a proxy authenticates to its remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthType {
    /// No credentials.
    Anonymous,
    /// A user name and password.
    UsernamePassword,
}

/// Credentials as given: the password is write-only.
#[derive(Debug, Clone, Object)]
#[oai(rename = "UpstreamAuthInput")]
pub struct AuthRequest {
    /// `ANONYMOUS` or `USERNAME_PASSWORD`.
    #[oai(rename = "type")]
    pub auth_type: AuthType,
    /// The user name (USERNAME_PASSWORD).
    #[oai(nullable)]
    pub username: Option<Username>,
    /// The password (USERNAME_PASSWORD); never returned. On update, omit it to keep the stored one.
    #[oai(write_only, nullable)]
    pub password: Option<SecretText>,
}

/// Credentials as shown.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none, rename = "UpstreamAuth")]
pub struct AuthView {
    /// `ANONYMOUS` or `USERNAME_PASSWORD`.
    #[oai(rename = "type")]
    pub auth_type: AuthType,
    /// The user name, for USERNAME_PASSWORD.
    pub username: Option<String>,
    /// Whether a password is stored.
    pub password_set: bool,
}

/// Seconds a tag's resolution is cached, whose bounds the spec states and the domain checks.
pub type TagTtl = Count<0, { CacheSettings::MAX_TAG_TTL_SECONDS }>;

/// Cache freshness.
#[derive(Debug, Clone, Object)]
#[oai(rename = "CacheSettings")]
pub struct CacheBody {
    /// Seconds a tag's resolution is served without asking the remote (default 300, at most 2592000).
    pub tag_ttl_seconds: TagTtl,
}

/// An upstream proxy.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none, rename = "UpstreamProxy")]
pub struct UpstreamProxyBody {
    /// Its key, addressed like a registry name.
    pub key: String,
    /// What it proxies.
    pub package_type: PackageTypeDto,
    /// `DOCKER_HUB` or `CUSTOM` (DOCKER proxies only).
    pub source: Option<DockerSourceDto>,
    /// The remote URL (CUSTOM Docker and HELM proxies).
    pub url: Option<String>,
    /// Credentials, without the password.
    pub auth: AuthView,
    /// What it is for.
    pub description: Option<String>,
    /// Free-form labels.
    pub labels: Vec<String>,
    /// Cache freshness.
    pub cache: CacheBody,
    /// Whether anyone may pull through it without credentials (as a registry mirror is pulled
    /// from by Docker daemons and containerd).
    pub public: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Its version; also its `ETag`.
    pub version: u64,
}

impl From<Stored<UpstreamProxy>> for UpstreamProxyBody {
    fn from(stored: Stored<UpstreamProxy>) -> Self {
        let proxy = stored.doc;
        let auth = match proxy.auth {
            ProxyAuth::Anonymous => AuthView {
                auth_type: AuthType::Anonymous,
                username: None,
                password_set: false,
            },
            ProxyAuth::UsernamePassword { username, .. } => AuthView {
                auth_type: AuthType::UsernamePassword,
                username: Some(username),
                password_set: true,
            },
        };
        Self {
            key: proxy.key.to_string(),
            package_type: proxy.package_type.into(),
            source: proxy.remote.source.map(Into::into),
            url: proxy.remote.url.map(String::from),
            auth,
            description: proxy.description,
            labels: proxy.labels.as_slice().to_vec(),
            cache: CacheBody {
                tag_ttl_seconds: Count(proxy.cache.tag_ttl_seconds),
            },
            public: proxy.public,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            version: stored.version,
        }
    }
}

/// An upstream proxy to create.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct CreateUpstreamProxyRequest {
    /// Same rule as registry names; registries and proxies share one namespace.
    pub key: Name,
    /// `DOCKER` or `HELM`.
    pub package_type: PackageTypeDto,
    /// DOCKER only: `DOCKER_HUB` or `CUSTOM`.
    #[oai(nullable)]
    pub source: Option<DockerSourceDto>,
    /// CUSTOM Docker and HELM: the remote's absolute http(s) URL.
    #[oai(nullable)]
    pub url: Option<RemoteUrlText>,
    /// Credentials (default ANONYMOUS).
    #[oai(nullable)]
    pub auth: Option<AuthRequest>,
    /// What it is for (at most 1024 characters).
    #[oai(nullable)]
    pub description: Option<Description>,
    /// Free-form labels (at most 50, each at most 128 characters).
    #[oai(default, nullable)]
    pub labels: Vec<Label>,
    /// Cache freshness (default 300 s for tags).
    #[oai(nullable)]
    pub cache: Option<CacheBody>,
    /// Whether anyone may pull through it without credentials (default false). A proxy that
    /// serves as the registry mirror (`BERTH_MIRROR`) must be public for Docker daemons and
    /// containerd, which pull from a mirror anonymously.
    #[oai(default, nullable)]
    pub public: bool,
}

/// Changes to a proxy: only the fields sent change.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct UpdateUpstreamProxyRequest {
    /// New source (DOCKER only); moving to DOCKER_HUB drops the URL.
    #[oai(nullable)]
    pub source: Option<DockerSourceDto>,
    /// New remote URL.
    #[oai(nullable)]
    pub url: Option<RemoteUrlText>,
    /// New credentials.
    #[oai(nullable)]
    pub auth: Option<AuthRequest>,
    /// New description, or null to clear it.
    #[oai(nullable)]
    pub description: MaybeUndefined<Description>,
    /// New labels (replaces the list).
    #[oai(nullable)]
    pub labels: Option<Vec<Label>>,
    /// New cache settings.
    #[oai(nullable)]
    pub cache: Option<CacheBody>,
    /// Make it public (anyone may pull through it) or private.
    #[oai(nullable)]
    pub public: Option<bool>,
}

/// A page of upstream proxies.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UpstreamProxyPage {
    /// The proxies.
    pub items: Vec<UpstreamProxyBody>,
    /// Pass as `page_token` to get the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// Response to `create_upstream_proxy`.
#[derive(ApiResponse)]
pub enum CreatedUpstreamProxy {
    /// Created.
    #[oai(status = 201)]
    Created(
        Json<UpstreamProxyBody>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
    ),
}

/// Response to reads and updates of one proxy.
#[derive(ApiResponse)]
pub enum UpstreamProxyResponse {
    /// The proxy.
    #[oai(status = 200)]
    Ok(Json<UpstreamProxyBody>, #[oai(header = "ETag")] String),
    /// It has not changed since the `If-None-Match` version.
    #[oai(status = 304)]
    NotModified,
}

/// Response to `list_upstream_proxies`.
#[derive(ApiResponse)]
pub enum UpstreamProxyList {
    /// One page.
    #[oai(status = 200)]
    Ok(Json<UpstreamProxyPage>),
}

/// Response to `delete_upstream_proxy`.
#[derive(ApiResponse)]
pub enum DeletedUpstreamProxy {
    /// Deleted.
    #[oai(status = 204)]
    Deleted,
}

impl poem_openapi::types::Example for CreateUpstreamProxyRequest {
    fn example() -> Self {
        Self {
            key: "dockerhub".into(),
            package_type: PackageTypeDto::Docker,
            source: Some(DockerSourceDto::DockerHub),
            url: None,
            auth: Some(AuthRequest {
                auth_type: AuthType::UsernamePassword,
                username: Some("ci-bot".into()),
                password: Some("a-docker-hub-access-token".into()),
            }),
            description: Some("Docker Hub, pulled through with the CI account".into()),
            labels: vec!["public".into()],
            cache: Some(CacheBody {
                tag_ttl_seconds: Count(300),
            }),
            public: false,
        }
    }
}

impl poem_openapi::types::Example for UpdateUpstreamProxyRequest {
    fn example() -> Self {
        Self {
            source: Some(DockerSourceDto::Custom),
            url: Some("https://registry.example.com".into()),
            auth: None,
            description: MaybeUndefined::Undefined,
            labels: None,
            cache: None,
            public: None,
        }
    }
}

/// What an upstream proxy did since this instance started.
#[derive(Debug, Clone, Object)]
pub struct UpstreamProxyStats {
    /// The proxy's key.
    pub key: String,
    /// Pulls served from its cache.
    pub cache_hits: u64,
    /// Fetches from its remote.
    pub cache_misses: u64,
    /// Bytes received from its remote.
    pub bytes_from_upstream: u64,
    /// Remote failures (unreachable, refusing, erroring or sending bad content).
    pub upstream_errors: u64,
    /// Cached answers served while the remote failed.
    pub stale_served: u64,
}

/// Response to `get_upstream_proxy_stats`.
#[derive(ApiResponse)]
pub enum StatsResponse {
    /// The counts.
    #[oai(status = 200)]
    Ok(Json<UpstreamProxyStats>),
}

/// What a purge did.
#[derive(Debug, Clone, Object)]
pub struct PurgeResult {
    /// Cached tags that will be asked of the remote again (a Helm proxy's index is dropped
    /// besides).
    pub purged_tags: u64,
}

/// Response to `purge_upstream_proxy_tags`.
#[derive(ApiResponse)]
pub enum PurgeResponse {
    /// Purged.
    #[oai(status = 200)]
    Ok(Json<PurgeResult>),
}
