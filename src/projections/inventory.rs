//! Whole-table reads of the read models, for `berth fsck` to hold them against storage and
//! against the event log. Rows are ordered so that reports read the same from run to run.

use super::sql;
use crate::event_store::{Backend, StoreError};

/// A manifest row: which repository holds which manifest, of which media type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManifestEntry {
    /// The repository.
    pub repository: String,
    /// The manifest's digest, as stored.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
}

/// A tag row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagEntry {
    /// The repository.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The manifest it points to, as stored.
    pub digest: String,
}

fn text(row: &[sql::Value], i: usize, table: &str) -> Result<String, StoreError> {
    row[i]
        .text()
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Corrupt(format!("{table}: a NULL where text belongs")))
}

/// Every manifest of every repository.
pub async fn manifests(backend: &Backend) -> Result<Vec<ManifestEntry>, StoreError> {
    let sql = "SELECT repository, digest, media_type FROM repository_manifests \
               ORDER BY repository, digest";
    sql::query(backend, sql, Vec::new())
        .await?
        .iter()
        .map(|row| {
            Ok(ManifestEntry {
                repository: text(row, 0, "repository_manifests")?,
                digest: text(row, 1, "repository_manifests")?,
                media_type: text(row, 2, "repository_manifests")?,
            })
        })
        .collect()
}

/// Every tag of every repository.
pub async fn tags(backend: &Backend) -> Result<Vec<TagEntry>, StoreError> {
    let sql = "SELECT repository, tag, digest FROM repository_tags ORDER BY repository, tag";
    sql::query(backend, sql, Vec::new())
        .await?
        .iter()
        .map(|row| {
            Ok(TagEntry {
                repository: text(row, 0, "repository_tags")?,
                tag: text(row, 1, "repository_tags")?,
                digest: text(row, 2, "repository_tags")?,
            })
        })
        .collect()
}

/// Every chart version `helm_charts` holds, as `repository@digest` of its manifest.
pub async fn charts(backend: &Backend) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT repository, digest FROM helm_charts ORDER BY repository, digest";
    sql::query(backend, sql, Vec::new())
        .await?
        .iter()
        .map(|row| {
            let repository = text(row, 0, "helm_charts")?;
            Ok(format!("{repository}@{}", text(row, 1, "helm_charts")?))
        })
        .collect()
}

/// The name and version of every live resource that `table` holds.
pub async fn resource_versions(
    backend: &Backend,
    table: ResourceTable,
) -> Result<Vec<(String, u64)>, StoreError> {
    let sql = match table {
        ResourceTable::Registries => "SELECT name, version FROM registries ORDER BY name",
        ResourceTable::UpstreamProxies => {
            "SELECT name, version FROM upstream_proxies ORDER BY name"
        }
    };
    sql::query(backend, sql, Vec::new())
        .await?
        .iter()
        .map(|row| {
            let version = row[1]
                .int()
                .ok_or_else(|| StoreError::Corrupt("resources: bad version".into()))?;
            Ok((text(row, 0, "resources")?, version as u64))
        })
        .collect()
}

/// The read models of resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceTable {
    /// `registries`.
    Registries,
    /// `upstream_proxies`.
    UpstreamProxies,
}
