//! What a registry holds, in the control plane: its repositories, their tags and manifests,
//! and the history of a tag ("what did `app:prod` point to at time T?").

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use time::OffsetDateTime;

use super::ApiTags;
use super::audit::{EventBody, event_body};
use super::common;
use super::error::ApiError;
use super::schema::{Image, Name, TagText};
use super::security::{BearerAuth, RequestId};
use super::timestamp::Timestamp;
use crate::app::App;
use crate::auth::Scope;
use crate::domain::oci::{MAX_REPOSITORY_LEN, RepositoryName, Tag};
use crate::projections::repositories;

/// A repository of a registry.
#[derive(Debug, Clone, Object)]
pub struct RepositoryItem {
    /// The full repository name, `<registry>/<image>`.
    pub name: String,
    /// The image path within the registry.
    pub image: String,
}

/// A tag and the manifest it points to.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TagItem {
    /// The tag.
    pub tag: String,
    /// The manifest's digest.
    pub digest: String,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's size in bytes.
    pub size: u64,
    /// The manifest's artifact type, if any.
    pub artifact_type: Option<String>,
    /// When the tag last moved.
    pub updated_at: OffsetDateTime,
}

/// A manifest held by a repository.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ManifestItem {
    /// Its digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its artifact type, if any.
    pub artifact_type: Option<String>,
    /// The manifest it refers to, if any.
    pub subject: Option<String>,
    /// The tags pointing at it.
    pub tags: Vec<String>,
    /// When it was pushed.
    pub pushed_at: OffsetDateTime,
}

/// A list of repositories.
#[derive(Debug, Clone, Object)]
pub struct RepositoryList {
    /// The repositories, by name.
    pub items: Vec<RepositoryItem>,
}

/// A list of tags.
#[derive(Debug, Clone, Object)]
pub struct TagList {
    /// The tags, by name.
    pub items: Vec<TagItem>,
}

/// A list of manifests.
#[derive(Debug, Clone, Object)]
pub struct ManifestList {
    /// The manifests, newest first.
    pub items: Vec<ManifestItem>,
}

/// Where a tag pointed over time.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TagHistory {
    /// The repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The digest the tag pointed to at `as_of` (or now); absent when it did not exist then.
    pub digest: Option<String>,
    /// Every move and deletion of the tag up to then, oldest first, with the deletions of the
    /// registry holding it (which ended it).
    pub items: Vec<EventBody>,
}

/// Response to `list_repositories`.
#[derive(ApiResponse)]
pub enum RepositoriesResponse {
    /// The repositories.
    #[oai(status = 200)]
    Ok(Json<RepositoryList>),
}

/// Response to `list_tags`.
#[derive(ApiResponse)]
pub enum TagsResponse {
    /// The tags.
    #[oai(status = 200)]
    Ok(Json<TagList>),
}

/// Response to `list_manifests`.
#[derive(ApiResponse)]
pub enum ManifestsResponse {
    /// The manifests.
    #[oai(status = 200)]
    Ok(Json<ManifestList>),
}

/// Response to `get_tag_history`.
#[derive(ApiResponse)]
pub enum TagHistoryResponse {
    /// The tag's history.
    #[oai(status = 200)]
    Ok(Json<TagHistory>),
}

fn repository(name: &str, image: &str) -> Result<RepositoryName, ApiError> {
    let full = format!("{name}/{image}");
    // Each part may fit its rule while the two together are too long to name a repository:
    // then no such repository can exist.
    if full.len() > MAX_REPOSITORY_LEN {
        return Err(common::not_found(format!(
            "registry {name} has no image {image}: repository names are at most \
             {MAX_REPOSITORY_LEN} characters"
        )));
    }
    RepositoryName::parse(&full)
        .map_err(|e| ApiError::invalid("NAME_INVALID", "image", e.to_string()))
}

/// The artifacts resources.
pub struct ArtifactsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Registries")]
impl ArtifactsApi {
    /// List the repositories (images) a registry holds.
    #[oai(
        path = "/registries/:name/repositories",
        method = "get",
        operation_id = "list_repositories"
    )]
    async fn repositories(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// The registry's name.
        name: Path<Name>,
    ) -> Result<RepositoriesResponse, ApiError> {
        auth.context(Scope::RegistryRead, &request_id)?;
        let registry = app.registry(&common::name("name", &name)?).await?;
        let names = repositories::repositories_of(app.backend(), registry.doc.name.as_str())
            .await
            .map_err(ApiError::from)?;
        let items = names
            .into_iter()
            .filter_map(|full| {
                let image = full.split_once('/')?.1.to_owned();
                Some(RepositoryItem { name: full, image })
            })
            .collect();
        Ok(RepositoriesResponse::Ok(Json(RepositoryList { items })))
    }

    /// List the tags of an image in a registry.
    #[oai(
        path = "/registries/:name/tags",
        method = "get",
        operation_id = "list_tags"
    )]
    async fn tags(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// The registry's name.
        name: Path<Name>,
        /// The image path within the registry, e.g. `api/server`.
        image: Query<Image>,
    ) -> Result<TagsResponse, ApiError> {
        auth.context(Scope::RegistryRead, &request_id)?;
        app.registry(&common::name("name", &name)?).await?;
        let repository = repository(&name, &image)?;
        let rows = repositories::tag_rows(app.backend(), &repository)
            .await
            .map_err(ApiError::from)?;
        let items = rows
            .into_iter()
            .map(|row| TagItem {
                tag: row.tag,
                digest: row.manifest.digest.to_string(),
                media_type: row.manifest.record.media_type,
                size: row.manifest.record.size,
                artifact_type: row.manifest.record.artifact_type,
                updated_at: row.updated_at,
            })
            .collect();
        Ok(TagsResponse::Ok(Json(TagList { items })))
    }

    /// List the manifests of an image in a registry, with the tags pointing at each.
    #[oai(
        path = "/registries/:name/manifests",
        method = "get",
        operation_id = "list_manifests"
    )]
    async fn manifests(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// The registry's name.
        name: Path<Name>,
        /// The image path within the registry, e.g. `api/server`.
        image: Query<Image>,
    ) -> Result<ManifestsResponse, ApiError> {
        auth.context(Scope::RegistryRead, &request_id)?;
        app.registry(&common::name("name", &name)?).await?;
        let repository = repository(&name, &image)?;
        let backend = app.backend();
        let tags = repositories::tag_rows(backend, &repository)
            .await
            .map_err(ApiError::from)?;
        let rows = repositories::manifest_rows(backend, &repository)
            .await
            .map_err(ApiError::from)?;
        let items = rows
            .into_iter()
            .map(|(row, pushed_at)| ManifestItem {
                tags: tags
                    .iter()
                    .filter(|t| t.manifest.digest == row.digest)
                    .map(|t| t.tag.clone())
                    .collect(),
                digest: row.digest.to_string(),
                media_type: row.record.media_type,
                size: row.record.size,
                artifact_type: row.record.artifact_type,
                subject: row.record.subject.map(|s| s.to_string()),
                pushed_at,
            })
            .collect();
        Ok(ManifestsResponse::Ok(Json(ManifestList { items })))
    }

    /// Where a tag pointed over time: every move and deletion with who and when (a deletion
    /// of the registry ends the tag too), and the digest it pointed to at `as_of` (or now).
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/registries/:name/tag-history",
        method = "get",
        operation_id = "get_tag_history"
    )]
    async fn tag_history(
        &self,
        auth: BearerAuth,
        request_id: Data<&RequestId>,
        app: Data<&App>,
        /// The registry's name.
        name: Path<Name>,
        /// The image path within the registry, e.g. `api/server`.
        image: Query<Image>,
        /// The tag.
        tag: Query<TagText>,
        /// Only the history up to this time (RFC 3339).
        as_of: Query<Option<Timestamp>>,
    ) -> Result<TagHistoryResponse, ApiError> {
        auth.context(Scope::AuditRead, &request_id)?;
        let repository = repository(&common::name("name", &name)?.to_string(), &image)?;
        let tag_name =
            Tag::parse(&tag).map_err(|e| ApiError::invalid("TAG_INVALID", "tag", e.to_string()))?;
        let history = app
            .tag_history(&repository, &tag_name, as_of.0.map(|t| t.0))
            .await?;
        Ok(TagHistoryResponse::Ok(Json(TagHistory {
            repository: repository.to_string(),
            tag: tag_name.to_string(),
            digest: history.digest.map(|d| d.to_string()),
            items: history.events.into_iter().filter_map(event_body).collect(),
        })))
    }
}
