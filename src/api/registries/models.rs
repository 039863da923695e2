//! The request and response bodies of `/api/v1/registries`, as the OpenAPI document names them.

use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object};
use time::OffsetDateTime;

use crate::api::common::PackageTypeDto;
use crate::api::schema::{Description, Label, Name};
use crate::domain::registry::Registry;
use crate::projections::resources::Stored;

/// An artifact registry.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none, rename = "Registry")]
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
    /// Whether a push may replace an existing version (Helm chart versions are immutable
    /// otherwise).
    pub allow_overwrite: bool,
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
            allow_overwrite: registry.allow_overwrite,
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
    pub name: Name,
    /// `DOCKER` or `HELM`.
    pub package_type: PackageTypeDto,
    /// What it is for (at most 1024 characters).
    #[oai(nullable)]
    pub description: Option<Description>,
    /// Free-form labels (at most 50, each at most 128 characters).
    #[oai(default, nullable)]
    pub labels: Vec<Label>,
    /// Upstream proxy keys of the same package type, in the order to try them.
    #[oai(default, nullable)]
    pub upstreams: Vec<Name>,
    /// Whether anyone may pull without credentials (default false).
    #[oai(default, nullable)]
    pub public: bool,
    /// Whether a push may replace an existing version, such as a Helm chart version (default
    /// false).
    #[oai(default, nullable)]
    pub allow_overwrite: bool,
}

/// Changes to a registry: only the fields sent change; `description: null` clears it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct UpdateRegistryRequest {
    /// New description, or null to clear it.
    #[oai(nullable)]
    pub description: MaybeUndefined<Description>,
    /// New labels (replaces the list).
    #[oai(nullable)]
    pub labels: Option<Vec<Label>>,
    /// New upstream list, in order (replaces the list).
    #[oai(nullable)]
    pub upstreams: Option<Vec<Name>>,
    /// Make it public (anyone may pull) or private.
    #[oai(nullable)]
    pub public: Option<bool>,
    /// Allow or forbid pushes that replace an existing version.
    #[oai(nullable)]
    pub allow_overwrite: Option<bool>,
}

/// A page of registries.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
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

impl poem_openapi::types::Example for CreateRegistryRequest {
    fn example() -> Self {
        Self {
            name: "team-images".into(),
            package_type: PackageTypeDto::Docker,
            description: Some("Images built by the platform team".into()),
            labels: vec!["prod".into(), "team-platform".into()],
            upstreams: vec!["dockerhub".into()],
            public: false,
            allow_overwrite: false,
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
            allow_overwrite: None,
        }
    }
}
