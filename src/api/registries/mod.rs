//! `/api/v1/registries`: create, list, read, change and delete artifact registries.

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
use crate::app::{App, NewRegistry, RegistryChanges};
use crate::auth::Scope;
use crate::domain::registry::Registry;
use crate::projections::resources::Stored;
use crate::registry::RegistryState;

/// The registries resource.
pub struct RegistriesApi;

fn ok(stored: Stored<Registry>) -> RegistryResponse {
    let tag = etag(stored.version);
    RegistryResponse::Ok(Json(stored.into()), tag)
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Registries")]
impl RegistriesApi {
    /// Create a registry.
    #[oai(
        path = "/registries",
        method = "post",
        operation_id = "create_registry"
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
        body: Json<CreateRegistryRequest>,
    ) -> Result<CreatedRegistry, ApiError> {
        let mut ctx = auth.context(Scope::RegistryWrite, &request_id)?;
        common::idempotency(
            &mut ctx,
            idempotency_key.as_deref(),
            "create_registry",
            &body.0,
        )?;
        let body = body.0;
        let new = NewRegistry {
            name: common::name("name", &body.name)?,
            package_type: body.package_type.into(),
            description: common::description(body.description.as_deref())?,
            labels: common::labels(&body.labels)?,
            upstreams: common::names("upstreams", &body.upstreams)?,
            public: body.public,
            allow_overwrite: body.allow_overwrite,
        };
        let stored = app.create_registry(&ctx, new).await?;
        registry.cache.forget_namespaces();
        let location = format!("/api/v1/registries/{}", stored.doc.name);
        let tag = etag(stored.version);
        Ok(CreatedRegistry::Created(Json(stored.into()), location, tag))
    }

    /// List registries, filtered and paged.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/registries", method = "get", operation_id = "list_registries")]
    async fn list(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// Only this package type.
        package_type: Query<Option<PackageTypeDto>>,
        /// Only registries carrying this label.
        label: Query<Option<String>>,
        /// Only names containing this text.
        search: Query<Option<String>>,
        /// Sort field (default `NAME`).
        sort: Query<Option<SortField>>,
        /// Sort direction (default `ASC`).
        order: Query<Option<SortOrder>>,
        /// Page size, 1 to 500 (default 50).
        page_size: Query<Option<PageSize>>,
        /// The `next_page_token` of the previous page.
        page_token: Query<Option<Position>>,
    ) -> Result<RegistryList, ApiError> {
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
        let page = app.registries(&query).await?;
        Ok(RegistryList::Ok(Json(RegistryPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_offset.map(common::page_token),
        })))
    }

    /// Read one registry.
    #[oai(
        path = "/registries/:name",
        method = "get",
        operation_id = "get_registry"
    )]
    async fn get(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// The registry's name.
        name: Path<Name>,
        /// A version ETag; 304 when the registry is still at it.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
        /// Show it as it stood at this time (RFC 3339), folded from its history; needs the
        /// `audit:read` scope. 404 when it did not exist then.
        as_of: Query<Option<Timestamp>>,
    ) -> Result<RegistryResponse, ApiError> {
        auth.context(Scope::RegistryRead, &request_id)?;
        if let Some(Timestamp(time)) = as_of.0 {
            auth.context(Scope::AuditRead, &request_id)?;
            let name = common::name("name", &name)?;
            return match app.as_of::<Registry>(&name, time).await? {
                Some(stored) => Ok(ok(stored)),
                None => Err(common::not_found(format!(
                    "registry {name} did not exist at {}",
                    common::rfc3339(time)
                ))),
            };
        }
        let stored = app.registry(&common::name("name", &name)?).await?;
        if common::not_modified(if_none_match.as_deref(), stored.version) {
            return Ok(RegistryResponse::NotModified);
        }
        Ok(ok(stored))
    }

    /// Change a registry's description, labels or upstreams.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/registries/:name",
        method = "patch",
        operation_id = "update_registry"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        registry: Data<&Arc<RegistryState>>,
        /// The registry's name.
        name: Path<Name>,
        /// Only change it if it is still at this version (412 otherwise).
        #[oai(name = "If-Match")]
        if_match: Header<Option<VersionTag>>,
        body: Json<UpdateRegistryRequest>,
    ) -> Result<RegistryResponse, ApiError> {
        let ctx = auth.context(Scope::RegistryWrite, &request_id)?;
        let body = body.0;
        let changes = RegistryChanges {
            description: match body.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(text) => Some(common::description(Some(&text))?),
            },
            labels: body.labels.as_deref().map(common::labels).transpose()?,
            upstreams: body
                .upstreams
                .as_deref()
                .map(|u| common::names("upstreams", u))
                .transpose()?,
            public: body.public,
            allow_overwrite: body.allow_overwrite,
        };
        let name = common::name("name", &name)?;
        let if_match = common::if_match(if_match.as_deref())?;
        let stored = app.update_registry(&ctx, &name, changes, if_match).await?;
        registry.cache.forget_namespaces();
        Ok(ok(stored))
    }

    /// Delete a registry and what it holds: its images and charts go with it, and a registry
    /// created again under the name starts empty. Its history stays in the audit log.
    #[oai(
        path = "/registries/:name",
        method = "delete",
        operation_id = "delete_registry"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        registry: Data<&Arc<RegistryState>>,
        /// The registry's name.
        name: Path<Name>,
        /// Only delete it if it is still at this version (412 otherwise).
        #[oai(name = "If-Match")]
        if_match: Header<Option<VersionTag>>,
    ) -> Result<DeletedRegistry, ApiError> {
        let ctx = auth.context(Scope::RegistryWrite, &request_id)?;
        let name = common::name("name", &name)?;
        let if_match = common::if_match(if_match.as_deref())?;
        app.delete_registry(&ctx, &name, if_match).await?;
        registry.forget_holder(&name).await;
        Ok(DeletedRegistry::Deleted)
    }
}
