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

/// Every row of a query over `table`, each read as text columns.
async fn rows<T>(
    backend: &Backend,
    table: &str,
    sql: &str,
    read: impl Fn(&mut dyn FnMut(usize) -> Result<String, StoreError>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    sql::query(backend, sql, Vec::new())
        .await?
        .iter()
        .map(|row| {
            read(&mut |i| {
                row[i].text().map(str::to_owned).ok_or_else(|| {
                    StoreError::Corrupt(format!("{table}: a NULL where text belongs"))
                })
            })
        })
        .collect()
}

/// Every manifest of every repository.
pub async fn manifests(backend: &Backend) -> Result<Vec<ManifestEntry>, StoreError> {
    let sql = "SELECT repository, digest, media_type FROM repository_manifests \
               ORDER BY repository, digest";
    rows(backend, "repository_manifests", sql, |text| {
        Ok(ManifestEntry {
            repository: text(0)?,
            digest: text(1)?,
            media_type: text(2)?,
        })
    })
    .await
}

/// Every tag of every repository.
pub async fn tags(backend: &Backend) -> Result<Vec<TagEntry>, StoreError> {
    let sql = "SELECT repository, tag, digest FROM repository_tags ORDER BY repository, tag";
    rows(backend, "repository_tags", sql, |text| {
        Ok(TagEntry {
            repository: text(0)?,
            tag: text(1)?,
            digest: text(2)?,
        })
    })
    .await
}

/// Every chart version `helm_charts` holds, as `repository@digest` of its manifest.
pub async fn charts(backend: &Backend) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT repository, digest FROM helm_charts ORDER BY repository, digest";
    rows(backend, "helm_charts", sql, |text| {
        Ok(format!("{}@{}", text(0)?, text(1)?))
    })
    .await
}

/// The name and version of every live resource that `table` holds.
pub async fn resource_versions(
    backend: &Backend,
    table: ResourceTable,
) -> Result<Vec<(String, u64)>, StoreError> {
    let name = table.name();
    // The version comes as text, so that one reader serves every table here.
    let sql = format!("SELECT name, CAST(version AS TEXT) FROM {name} ORDER BY name");
    rows(backend, name, &sql, |text| {
        let version = text(1)?
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("{name}: bad version")))?;
        Ok((text(0)?, version))
    })
    .await
}

/// The read models of resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceTable {
    /// `registries`.
    Registries,
    /// `upstream_proxies`.
    UpstreamProxies,
}

impl ResourceTable {
    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Registries => "registries",
            Self::UpstreamProxies => "upstream_proxies",
        }
    }
}
