//! `/api/v1/upstream-proxies`: create, list, read, change and delete upstream proxies.
//! Passwords are accepted on input and never returned: responses say `password_set`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;

mod models;

pub use models::*;

use super::ApiTags;
use super::common::{self, ListParams, PackageTypeDto, PageSize, SortField, SortOrder, etag};
use super::error::ApiError;
use super::schema::{IdempotencyKey, Name, Position, VersionTag};
use super::security::{BearerAuth, RequestId};
use super::timestamp::Timestamp;
use crate::app::{App, AuthInput, NewUpstreamProxy, UpstreamProxyChanges};
use crate::auth::Scope;
use crate::domain::RemoteUrl;
use crate::domain::upstream_proxy::{CacheSettings, UpstreamProxy};
use crate::projections::resources::Stored;
use crate::proxy::PullThrough;
use crate::registry::RegistryState;

fn url(value: Option<&str>) -> Result<Option<RemoteUrl>, ApiError> {
    value
        .map(|v| {
            RemoteUrl::parse(v)
                .map_err(|e| ApiError::invalid("URL_INVALID", "url", format!("url {e}")))
        })
        .transpose()
}

fn auth_input(auth: AuthRequest) -> Result<AuthInput, ApiError> {
    match auth.auth_type {
        AuthType::Anonymous => Ok(AuthInput::Anonymous),
        AuthType::UsernamePassword => {
            let username = auth
                .username
                .map(|u| u.trim().to_owned())
                .unwrap_or_default();
            if username.is_empty() || username.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    "VALIDATION_FAILED",
                    "auth.username",
                    "auth.username is required for USERNAME_PASSWORD and may not hold control characters",
                ));
            }
            if auth.password.as_deref() == Some("") {
                return Err(ApiError::invalid(
                    "VALIDATION_FAILED",
                    "auth.password",
                    "auth.password must not be empty",
                ));
            }
            Ok(AuthInput::UsernamePassword {
                username,
                password: auth.password.map(|p| p.0),
            })
        }
    }
}

fn cache(body: CacheBody) -> CacheSettings {
    CacheSettings {
        tag_ttl_seconds: body.tag_ttl_seconds.0,
    }
}

fn ok(stored: Stored<UpstreamProxy>) -> UpstreamProxyResponse {
    let tag = etag(stored.version);
    UpstreamProxyResponse::Ok(Json(stored.into()), tag)
}

/// The upstream-proxies resource.
pub struct UpstreamProxiesApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::UpstreamProxies")]
impl UpstreamProxiesApi {
    /// Create an upstream proxy.
    #[oai(
        path = "/upstream-proxies",
        method = "post",
        operation_id = "create_upstream_proxy"
    )]
    async fn create(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        registry: Data<&Arc<RegistryState>>,
        /// Makes a retry safe: a request repeated with the same key and body returns the first
        /// response and creates nothing; the same key with another body is refused with 422.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<IdempotencyKey>>,
        body: Json<CreateUpstreamProxyRequest>,
    ) -> Result<CreatedUpstreamProxy, ApiError> {
        let mut ctx = auth.context(Scope::RegistryWrite, &request_id)?;
        let body = body.0;
        // The request digest is kept: it must not be a digest of the password.
        let mut fingerprinted = body.clone();
        if let Some(auth) = &mut fingerprinted.auth {
            auth.password = None;
        }
        common::idempotency(
            &mut ctx,
            idempotency_key.as_deref(),
            "create_upstream_proxy",
            &fingerprinted,
        )?;
        if let Some(AuthRequest {
            auth_type: AuthType::UsernamePassword,
            password: None,
            ..
        }) = &body.auth
        {
            return Err(ApiError::invalid(
                "VALIDATION_FAILED",
                "auth.password",
                "auth.password is required for USERNAME_PASSWORD",
            ));
        }
        let new = NewUpstreamProxy {
            key: common::name("key", &body.key)?,
            package_type: body.package_type.into(),
            source: body.source.map(Into::into),
            url: url(body.url.as_deref())?,
            auth: body
                .auth
                .map(auth_input)
                .transpose()?
                .unwrap_or(AuthInput::Anonymous),
            description: common::description(body.description.as_deref())?,
            labels: common::labels(&body.labels)?,
            cache: body.cache.map(cache).unwrap_or_default(),
            public: body.public,
        };
        let stored = app.create_upstream_proxy(&ctx, new).await?;
        registry.cache.forget_namespaces();
        let location = format!("/api/v1/upstream-proxies/{}", stored.doc.key);
        let tag = etag(stored.version);
        Ok(CreatedUpstreamProxy::Created(
            Json(stored.into()),
            location,
            tag,
        ))
    }

    /// List upstream proxies, filtered and paged.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/upstream-proxies",
        method = "get",
        operation_id = "list_upstream_proxies"
    )]
    async fn list(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// Only this package type.
        package_type: Query<Option<PackageTypeDto>>,
        /// Only proxies carrying this label.
        label: Query<Option<String>>,
        /// Only keys containing this text.
        search: Query<Option<String>>,
        /// Sort field (default `NAME`, the key).
        sort: Query<Option<SortField>>,
        /// Sort direction (default `ASC`).
        order: Query<Option<SortOrder>>,
        /// Page size, 1 to 500 (default 50).
        page_size: Query<Option<PageSize>>,
        /// The `next_page_token` of the previous page.
        page_token: Query<Option<Position>>,
    ) -> Result<UpstreamProxyList, ApiError> {
        auth.context(Scope::RegistryRead, &request_id)?;
        let query = ListParams {
            package_type: package_type.0,
            label: label.0,
            search: search.0,
            sort: sort.0,
            order: order.0,
            page_size: page_size.0.map(|size| size.0),
            page_token: page_token.0.map(|t| t.0),
        }
        .into_query()?;
        let page = app.upstream_proxies(&query).await?;
        Ok(UpstreamProxyList::Ok(Json(UpstreamProxyPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_offset.map(common::page_token),
        })))
    }

    /// Read one upstream proxy.
    #[oai(
        path = "/upstream-proxies/:key",
        method = "get",
        operation_id = "get_upstream_proxy"
    )]
    async fn get(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// The proxy's key.
        key: Path<Name>,
        /// A version ETag; 304 when the proxy is still at it.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
        /// Show it as it stood at this time (RFC 3339), folded from its history; needs the
        /// `audit:read` scope. 404 when it did not exist then.
        as_of: Query<Option<Timestamp>>,
    ) -> Result<UpstreamProxyResponse, ApiError> {
        auth.context(Scope::RegistryRead, &request_id)?;
        if let Some(Timestamp(time)) = as_of.0 {
            auth.context(Scope::AuditRead, &request_id)?;
            let key = common::name("key", &key)?;
            return match app.as_of::<UpstreamProxy>(&key, time).await? {
                Some(stored) => Ok(ok(stored)),
                None => Err(common::not_found(format!(
                    "upstream proxy {key} did not exist at {}",
                    common::rfc3339(time)
                ))),
            };
        }
        let stored = app.upstream_proxy(&common::name("key", &key)?).await?;
        if common::not_modified(if_none_match.as_deref(), stored.version) {
            return Ok(UpstreamProxyResponse::NotModified);
        }
        Ok(ok(stored))
    }

    /// Change an upstream proxy's remote, credentials, description, labels or cache settings.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/upstream-proxies/:key",
        method = "patch",
        operation_id = "update_upstream_proxy"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        registry: Data<&Arc<RegistryState>>,
        /// The proxy's key.
        key: Path<Name>,
        /// Only change it if it is still at this version (412 otherwise).
        #[oai(name = "If-Match")]
        if_match: Header<Option<VersionTag>>,
        body: Json<UpdateUpstreamProxyRequest>,
    ) -> Result<UpstreamProxyResponse, ApiError> {
        let ctx = auth.context(Scope::RegistryWrite, &request_id)?;
        let body = body.0;
        let changes = UpstreamProxyChanges {
            source: body.source.map(Into::into),
            url: url(body.url.as_deref())?,
            auth: body.auth.map(auth_input).transpose()?,
            description: match body.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(text) => Some(common::description(Some(&text))?),
            },
            labels: body.labels.as_deref().map(common::labels).transpose()?,
            cache: body.cache.map(cache),
            public: body.public,
        };
        let key = common::name("key", &key)?;
        let if_match = common::if_match(if_match.as_deref())?;
        let stored = app
            .update_upstream_proxy(&ctx, &key, changes, if_match)
            .await?;
        registry.cache.forget_namespaces();
        Ok(ok(stored))
    }

    /// Delete an upstream proxy (refused while a registry lists it) and its cache: a proxy
    /// created again under the key fetches everything anew. Its history stays in the audit log.
    #[oai(
        path = "/upstream-proxies/:key",
        method = "delete",
        operation_id = "delete_upstream_proxy"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        registry: Data<&Arc<RegistryState>>,
        /// The proxy's key.
        key: Path<Name>,
        /// Only delete it if it is still at this version (412 otherwise).
        #[oai(name = "If-Match")]
        if_match: Header<Option<VersionTag>>,
    ) -> Result<DeletedUpstreamProxy, ApiError> {
        let ctx = auth.context(Scope::RegistryWrite, &request_id)?;
        let key = common::name("key", &key)?;
        let if_match = common::if_match(if_match.as_deref())?;
        app.delete_upstream_proxy(&ctx, &key, if_match).await?;
        registry.forget_holder(&key).await;
        Ok(DeletedUpstreamProxy::Deleted)
    }

    /// What an upstream proxy did since this instance started: pulls served from its cache,
    /// fetches from its remote, bytes received, remote failures and stale answers served.
    #[oai(
        path = "/upstream-proxies/:key/stats",
        method = "get",
        operation_id = "get_upstream_proxy_stats"
    )]
    async fn stats(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        proxy: Data<&PullThrough>,
        /// The proxy's key.
        key: Path<Name>,
    ) -> Result<StatsResponse, ApiError> {
        auth.context(Scope::RegistryRead, &request_id)?;
        let stored = app.upstream_proxy(&common::name("key", &key)?).await?;
        let key = stored.doc.key.to_string();
        let counts = proxy.stats(&key);
        Ok(StatsResponse::Ok(Json(UpstreamProxyStats {
            key,
            cache_hits: counts.cache_hits,
            cache_misses: counts.cache_misses,
            bytes_from_upstream: counts.bytes_from_upstream,
            upstream_errors: counts.upstream_errors,
            stale_served: counts.stale_served,
        })))
    }

    /// Purge an upstream proxy's cached tags (a Helm proxy's cached index): each is asked of
    /// the remote again at its next pull. Content by digest stays cached.
    #[oai(
        path = "/upstream-proxies/:key/purge",
        method = "post",
        operation_id = "purge_upstream_proxy_tags"
    )]
    async fn purge(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        proxy: Data<&PullThrough>,
        /// The proxy's key.
        key: Path<Name>,
    ) -> Result<PurgeResponse, ApiError> {
        auth.context(Scope::RegistryWrite, &request_id)?;
        let stored = app.upstream_proxy(&common::name("key", &key)?).await?;
        let purged_tags = proxy.purge(stored.doc.key.as_str()).await;
        Ok(PurgeResponse::Ok(Json(PurgeResult { purged_tags })))
    }
}
