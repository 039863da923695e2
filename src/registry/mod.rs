//! The data plane: the OCI Distribution API under `/v2` for docker, podman, skopeo, oras and
//! helm, and the classic Helm chart repository under `/helm` ([`helm`]). Handlers parse the
//! path ([`path`]), authorise ([`access`]), and answer through the one error table
//! ([`errcode`]). Blob bytes go through [`crate::storage`]. The parsers of untrusted headers and
//! token requests ([`ranges`], [`token::TokenRequest`]) do no I/O, so that they can be fuzzed.

pub mod access;
mod blobs;
mod cache;
pub mod errcode;
pub mod helm;
mod manifests;
mod path;
pub mod push;
pub mod ranges;
pub mod token;

use std::sync::Arc;

use poem::http::Method;
use poem::web::Data;
use poem::{Body, EndpointExt, IntoResponse, Request, Response, handler};

use crate::app::{App, AppError, Context};
use crate::auth::{Authenticator, Principal};
use crate::domain::oci::RepositoryName;
use crate::domain::registry::{Registry, RegistryError as RegistryRefusal};
use crate::domain::repository::RepositoryError;
use crate::domain::upstream_proxy::{UpstreamProxy, UpstreamProxyError};
use crate::domain::{PackageType, ResourceName};
use crate::projections::resources::Stored;
use crate::proxy::{ProxyError, PullThrough, Upstream};
use crate::request_id::RequestId;
use crate::storage::{BlobStore, FsBlobStore};
use access::Action;
pub use cache::{CachedDocument, ReadCache};
use errcode::{ErrorCode, RegistryError, RegistryResult};
use path::V2Route;

/// What `/v2` handlers share.
pub struct RegistryState {
    /// The application (registries and their settings).
    pub app: App,
    /// Blob storage.
    pub blobs: FsBlobStore,
    /// Token verification and minting.
    pub authenticator: Arc<Authenticator>,
    /// `BERTH_BASE_URL`: how clients reach this server (for the token realm).
    pub base_url: Option<String>,
    /// The `service` named in challenges and tokens.
    pub service: String,
    /// Manifests and tag resolutions in memory.
    pub cache: ReadCache,
    /// Pull-through from upstream proxies.
    pub proxy: PullThrough,
    /// The Docker upstream proxy that also answers repositories outside every registry and
    /// proxy (`/v2/library/nginx/…`), as a registry mirror for Docker daemons and containerd.
    pub mirror: Option<ResourceName>,
}

impl RegistryState {
    /// Forgets what a deleted registry or upstream proxy held, on this instance and before the
    /// deletion is answered: cached reads, what the proxy remembers of its remote, the links of
    /// its repositories and their open uploads. Its read-model rows went with the deletion's
    /// event, and the log's follower drops the caches of every other instance.
    pub async fn forget_holder(&self, holder: &ResourceName) {
        self.cache.forget_all();
        self.proxy.forget(holder.as_str()).await;
        if let Err(e) = self.blobs.unlink_all(holder).await {
            tracing::warn!(%holder, error = %e, "removing a deleted name's blob links failed");
        }
        if let Err(e) = self.blobs.cancel_uploads_of(holder).await {
            tracing::warn!(%holder, error = %e, "cancelling a deleted name's uploads failed");
        }
    }
}

/// What the first component of a repository name is.
#[derive(Debug, Clone)]
pub enum Namespace {
    /// A registry, with its own content and maybe upstream proxies.
    Registry(Stored<Registry>),
    /// A Docker upstream proxy addressed directly, or the mirror: pulls only.
    Proxy {
        /// The proxy.
        proxy: Stored<UpstreamProxy>,
        /// Whether it answers as the mirror: the whole repository name is the remote's.
        mirror: bool,
    },
}

impl Namespace {
    /// Whether anyone may pull from it without credentials.
    pub fn is_public(&self) -> bool {
        match self {
            Self::Registry(registry) => registry.doc.public,
            Self::Proxy { proxy, .. } => proxy.doc.public,
        }
    }

    /// The part of `repository` that names it within this namespace (and on the remote).
    pub fn path<'a>(&self, repository: &'a RepositoryName) -> &'a str {
        match self {
            Self::Proxy { mirror: true, .. } => repository.as_str(),
            _ => repository.path(),
        }
    }
}

/// A request let in, with where it goes.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Who asks (`None`: anonymous).
    pub principal: Option<Principal>,
    /// The repository's namespace.
    pub namespace: Namespace,
}

impl RegistryState {
    /// Admits a request on `repository` that does `actions`: anonymous pulls of a public
    /// registry or upstream proxy, else whatever the caller's credentials allow. Checks that the namespace exists
    /// and that only pulls go to an upstream proxy.
    pub async fn admit(
        &self,
        request: &Request,
        repository: &RepositoryName,
        actions: &[Action],
    ) -> RegistryResult<Admitted> {
        let pull_only = actions.iter().all(|a| *a == Action::Pull);
        if pull_only && access::credentials(self, request).is_none() {
            // An unknown registry answers with the challenge, so that names do not leak.
            if let Ok(namespace) = self.namespace(repository).await
                && namespace.is_public()
            {
                return Ok(Admitted {
                    principal: None,
                    namespace,
                });
            }
        }
        let principal = access::authorize(self, request, repository, actions)?;
        let namespace = self.namespace(repository).await?;
        if let Namespace::Proxy { proxy, .. } = &namespace
            && !pull_only
        {
            return Err(RegistryError::new(
                ErrorCode::Denied,
                format!(
                    "{} is an upstream proxy: it serves pulls only; push to a registry",
                    proxy.doc.key
                ),
            ));
        }
        Ok(Admitted {
            principal,
            namespace,
        })
    }

    /// Whether the registry or upstream proxy of `repository` is public.
    pub async fn is_public(&self, repository: &RepositoryName) -> bool {
        matches!(self.namespace(repository).await, Ok(namespace) if namespace.is_public())
    }

    /// The registry or Docker upstream proxy a repository lives in, or `NAME_UNKNOWN`: from
    /// memory, kept true by the log, after the first lookup.
    pub async fn namespace(&self, repository: &RepositoryName) -> RegistryResult<Namespace> {
        let name = repository.registry();
        if let Some(namespace) = self.cache.namespace(name.as_str()).await {
            return Ok(namespace);
        }
        let ticket = self.cache.ticket();
        let namespace = self.load_namespace(repository, &name).await?;
        if let Some(ticket) = ticket {
            self.cache
                .put_namespace(name.as_str(), namespace.clone(), ticket)
                .await;
        }
        Ok(namespace)
    }

    async fn load_namespace(
        &self,
        repository: &RepositoryName,
        name: &ResourceName,
    ) -> RegistryResult<Namespace> {
        match self.app.registry(name).await {
            Ok(registry) => return Ok(Namespace::Registry(registry)),
            Err(AppError::Registry(RegistryRefusal::NotFound)) => {}
            Err(other) => return Err(app_error(other)),
        }
        match self.app.upstream_proxy(name).await {
            Ok(proxy) if proxy.doc.package_type == PackageType::Docker => {
                return Ok(Namespace::Proxy {
                    proxy,
                    mirror: false,
                });
            }
            Ok(_) | Err(AppError::UpstreamProxy(UpstreamProxyError::NotFound)) => {}
            Err(other) => return Err(app_error(other)),
        }
        if let Some(mirror) = &self.mirror {
            match self.app.upstream_proxy(mirror).await {
                Ok(proxy) if proxy.doc.package_type == PackageType::Docker => {
                    return Ok(Namespace::Proxy {
                        proxy,
                        mirror: true,
                    });
                }
                Ok(_) | Err(AppError::UpstreamProxy(UpstreamProxyError::NotFound)) => {
                    tracing::warn!(%mirror, "the mirror is not a Docker upstream proxy");
                }
                Err(other) => return Err(app_error(other)),
            }
        }
        Err(RegistryError::new(
            ErrorCode::NameUnknown,
            format!("repository name {repository} is not known: there is no registry {name}"),
        ))
    }

    /// The upstream proxies a pull that misses in `namespace` goes through, in order.
    pub async fn upstreams(&self, namespace: &Namespace) -> RegistryResult<Vec<Upstream>> {
        match namespace {
            // The namespace already holds the proxy: no need to load it again.
            Namespace::Proxy { proxy, .. } => Ok(vec![
                self.proxy.upstream(proxy).await.map_err(upstream_error)?,
            ]),
            Namespace::Registry(registry) => {
                self.upstreams_of(&registry.doc.upstreams, PackageType::Docker)
                    .await
            }
        }
    }

    /// The proxies among `keys` that hold `package_type`, in order, ready to fetch from.
    pub async fn upstreams_of(
        &self,
        keys: &[ResourceName],
        package_type: PackageType,
    ) -> RegistryResult<Vec<Upstream>> {
        let mut upstreams = Vec::with_capacity(keys.len());
        for key in keys {
            match self.app.upstream_proxy(key).await {
                Ok(proxy) if proxy.doc.package_type == package_type => {
                    upstreams.push(self.proxy.upstream(&proxy).await.map_err(upstream_error)?)
                }
                Ok(_) | Err(AppError::UpstreamProxy(UpstreamProxyError::NotFound)) => {}
                Err(other) => return Err(app_error(other)),
            }
        }
        Ok(upstreams)
    }
}

/// The `/v2` answer when pulling through an upstream proxy failed.
pub fn upstream_error(e: ProxyError) -> RegistryError {
    match e {
        ProxyError::App(e) => app_error(e),
        ProxyError::Storage(e) => e.into(),
        other => RegistryError::new(ErrorCode::UpstreamFailed, other.to_string()),
    }
}

/// Who is acting, for the events a request records.
pub fn context(request: &Request, principal: Option<&Principal>) -> Context {
    Context {
        actor: principal.map_or_else(|| "anonymous".to_owned(), |p| p.subject.clone()),
        correlation_id: RequestId::of(request).0,
        idempotency: None,
    }
}

/// The `/v2` answer to a refused or failed use case.
pub fn app_error(e: AppError) -> RegistryError {
    match e {
        AppError::Repository(RepositoryError::ReferencesMissing(missing)) => RegistryError::new(
            ErrorCode::ManifestBlobUnknown,
            RepositoryError::ReferencesMissing(missing.clone()).to_string(),
        )
        .detail(serde_json::json!({
            "missing": missing.iter().map(|d| d.as_str()).collect::<Vec<_>>()
        })),
        AppError::Repository(e @ RepositoryError::ManifestUnknown(_))
        | AppError::Repository(e @ RepositoryError::TagUnknown(_)) => {
            RegistryError::new(ErrorCode::ManifestUnknown, e.to_string())
        }
        AppError::Repository(e @ RepositoryError::TagExists(_)) => {
            RegistryError::new(ErrorCode::TagImmutable, e.to_string())
        }
        AppError::Repository(e @ RepositoryError::NotAChart) => {
            RegistryError::new(ErrorCode::ManifestInvalid, e.to_string())
        }
        AppError::Registry(RegistryRefusal::NotFound) => {
            RegistryError::new(ErrorCode::NameUnknown, "the registry does not exist")
        }
        AppError::Store(e) => e.into(),
        other => RegistryError::internal(&other),
    }
}

/// The `/v2` routes, to mount at `/v2`, `/v2/` and `/v2/*rest`.
pub fn endpoint(state: Arc<RegistryState>) -> poem::endpoint::BoxEndpoint<'static> {
    dispatch
        .data(state)
        .around(crate::request_id::middleware)
        .map_to_response()
        .boxed()
}

#[handler]
async fn dispatch(request: &Request, body: Body, state: Data<&Arc<RegistryState>>) -> Response {
    let mut response = match route(&state, request, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    response.headers_mut().insert(
        "Docker-Distribution-API-Version",
        "registry/2.0".parse().expect("static header"),
    );
    response
}

async fn route(state: &RegistryState, request: &Request, body: Body) -> RegistryResult<Response> {
    let rest = request.uri().path().strip_prefix("/v2").unwrap_or_default();
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest == "token" {
        return token::issue(state, request, body).await;
    }
    let method = request.method().clone();
    match (method, path::parse(rest)?) {
        (Method::GET | Method::HEAD, V2Route::Base) => base(state, request),
        (Method::GET | Method::HEAD | Method::DELETE, V2Route::Blob(repo, digest)) => {
            blobs::blob(state, request, &repo, &digest).await
        }
        (Method::POST, V2Route::Uploads(repo)) => blobs::start(state, request, &repo, body).await,
        (Method::GET | Method::PATCH | Method::PUT | Method::DELETE, V2Route::Upload(repo, id)) => {
            blobs::session(state, request, &repo, &id, body).await
        }
        (
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE,
            V2Route::Manifest(repo, reference),
        ) => manifests::manifest(state, request, &repo, &reference, body).await,
        (Method::GET, V2Route::Tags(repo)) => manifests::tags(state, request, &repo).await,
        (Method::GET, V2Route::Catalog) => manifests::catalog(state, request).await,
        (Method::GET, V2Route::Referrers(repo, digest)) => {
            manifests::referrers(state, request, &repo, &digest).await
        }
        (method, route) => Err(RegistryError::new(
            ErrorCode::Unsupported,
            format!("{method} is not supported on {route:?}"),
        )),
    }
}

/// `GET /v2/`: 200 for a caller with valid credentials, else the challenge.
fn base(state: &RegistryState, request: &Request) -> RegistryResult<Response> {
    match access::credentials(state, request) {
        Some(Ok(_)) => Ok(Response::builder()
            .content_type("application/json")
            .body("{}")),
        _ => Err(access::challenge(state, request, None)),
    }
}
