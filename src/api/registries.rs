//! `/api/v1/registries`: create, list, read, change and delete artifact registries.

use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use time::OffsetDateTime;

use super::ApiTags;
use super::common::{self, ListParams, PackageTypeDto, SortField, SortOrder, etag};
use super::error::ApiError;
use super::security::{BearerAuth, RequestId};
use super::timestamp::Timestamp;
use crate::app::{App, NewRegistry, RegistryChanges};
use crate::auth::Scope;
use crate::domain::registry::Registry;
use crate::projections::resources::Stored;

/// An artifact registry.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Registry")]
pub struct RegistryBody {
    /// Its name: the first path component of everything in it (`host/<name>/<image>:<tag>`).
    pub name: String,
    /// What it holds.
    pub package_type: PackageTypeDto,
    /// What it is for.
    pub description: Option<String>,
    /// Free-form labels.
    pub labels: Vec<String>,
    /// Upstream proxy keys, tried in this order when an artifact is not found locally.
    pub upstreams: Vec<String>,
    /// Whether anyone may pull from it without credentials.
    pub public: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Its version; also its `ETag`.
    pub version: u64,
}

impl From<Stored<Registry>> for RegistryBody {
    fn from(stored: Stored<Registry>) -> Self {
        let registry = stored.doc;
        Self {
            name: registry.name.to_string(),
            package_type: registry.package_type.into(),
            description: registry.description,
            labels: registry.labels.as_slice().to_vec(),
            upstreams: registry.upstreams.iter().map(ToString::to_string).collect(),
            public: registry.public,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            version: stored.version,
        }
    }
}

/// A registry to create.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct CreateRegistryRequest {
    /// Starts with a lowercase letter; lowercase letters, digits, `_`, `.` and `-`; at most 255.
    #[oai(validator(max_length = 255))]
    pub name: String,
    /// `DOCKER` or `HELM`.
    pub package_type: PackageTypeDto,
    /// What it is for (at most 1024 characters).
    pub description: Option<String>,
    /// Free-form labels (at most 50, each at most 128 characters).
    #[oai(default)]
    pub labels: Vec<String>,
    /// Upstream proxy keys of the same package type, in the order to try them.
    #[oai(default)]
    pub upstreams: Vec<String>,
    /// Whether anyone may pull without credentials (default false).
    #[oai(default)]
    pub public: bool,
}

/// Changes to a registry: only the fields sent change; `description: null` clears it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct UpdateRegistryRequest {
    /// New description, or null to clear it.
    pub description: MaybeUndefined<String>,
    /// New labels (replaces the list).
    pub labels: Option<Vec<String>>,
    /// New upstream list, in order (replaces the list).
    pub upstreams: Option<Vec<String>>,
    /// Make it public (anyone may pull) or private.
    pub public: Option<bool>,
}

/// A page of registries.
#[derive(Debug, Clone, Object)]
pub struct RegistryPage {
    /// The registries.
    pub items: Vec<RegistryBody>,
    /// Pass as `page_token` to get the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// Response to `create_registry`.
#[derive(ApiResponse)]
pub enum CreatedRegistry {
    /// Created.
    #[oai(status = 201)]
    Created(
        Json<RegistryBody>,
        #[oai(header = "Location")] String,
        #[oai(header = "ETag")] String,
    ),
}

/// Response to reads and updates of one registry.
#[derive(ApiResponse)]
pub enum RegistryResponse {
    /// The registry.
    #[oai(status = 200)]
    Ok(Json<RegistryBody>, #[oai(header = "ETag")] String),
    /// It has not changed since the `If-None-Match` version.
    #[oai(status = 304)]
    NotModified,
}

/// Response to `list_registries`.
#[derive(ApiResponse)]
pub enum RegistryList {
    /// One page.
    #[oai(status = 200)]
    Ok(Json<RegistryPage>),
}

/// Response to `delete_registry`.
#[derive(ApiResponse)]
pub enum DeletedRegistry {
    /// Deleted.
    #[oai(status = 204)]
    Deleted,
}

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
        /// Makes a retry safe: a request repeated with the same key and body returns the first
        /// response and creates nothing; the same key with another body is refused with 422.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
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
        };
        let stored = app.create_registry(&ctx, new).await?;
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
        page_size: Query<Option<u32>>,
        /// The `next_page_token` of the previous page.
        page_token: Query<Option<String>>,
    ) -> Result<RegistryList, ApiError> {
        auth.context(Scope::RegistryRead, &request_id)?;
        let query = ListParams {
            package_type: package_type.0,
            label: label.0,
            search: search.0,
            sort: sort.0,
            order: order.0,
            page_size: page_size.0,
            page_token: page_token.0,
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
        name: Path<String>,
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
        /// The registry's name.
        name: Path<String>,
        /// Only change it if it is still at this version (412 otherwise).
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
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
        };
        let name = common::name("name", &name)?;
        let if_match = common::if_match(if_match.as_deref())?;
        Ok(ok(app
            .update_registry(&ctx, &name, changes, if_match)
            .await?))
    }

    /// Delete a registry.
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
        /// The registry's name.
        name: Path<String>,
        /// Only delete it if it is still at this version (412 otherwise).
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<DeletedRegistry, ApiError> {
        let ctx = auth.context(Scope::RegistryWrite, &request_id)?;
        let name = common::name("name", &name)?;
        let if_match = common::if_match(if_match.as_deref())?;
        app.delete_registry(&ctx, &name, if_match).await?;
        Ok(DeletedRegistry::Deleted)
    }
}

impl poem_openapi::types::Example for CreateRegistryRequest {
    fn example() -> Self {
        Self {
            name: "team-images".into(),
            package_type: PackageTypeDto::Docker,
            description: Some("Images built by the platform team".into()),
            labels: vec!["prod".into(), "team-platform".into()],
            upstreams: vec!["dockerhub".into()],
            public: false,
        }
    }
}

impl poem_openapi::types::Example for UpdateRegistryRequest {
    fn example() -> Self {
        Self {
            description: MaybeUndefined::Value("Images of the platform team".into()),
            labels: None,
            upstreams: Some(vec!["quay".into(), "dockerhub".into()]),
            public: None,
        }
    }
}
