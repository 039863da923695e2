//! Queries over `helm_charts`: the chart versions a Helm registry lists. A version is listed
//! while its tag points at the manifest that holds it, so a deleted tag or an overwritten
//! version drops out of the index by itself. The table is kept by [`super::repositories`].

use time::OffsetDateTime;

use super::sql::{self, Value};
use crate::domain::chart::ChartRecord;
use crate::domain::oci::Digest;
use crate::event_store::{Backend, StoreError};

/// A listed chart version.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRow {
    /// The repository holding it: `<registry>/<chart name>`.
    pub repository: String,
    /// The manifest that holds it.
    pub manifest: Digest,
    /// The chart version.
    pub chart: ChartRecord,
    /// When its version was (last) pushed.
    pub created: OffsetDateTime,
}

/// Whether a listing reads each version's `Chart.yaml` fields (the bulk of a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// Read them.
    Load,
    /// Leave `metadata` null; [`metadata`] reads it for one version.
    Skip,
}

fn select(fields: Fields) -> String {
    let metadata = match fields {
        Fields::Load => "c.metadata",
        Fields::Skip => "NULL",
    };
    format!(
        "SELECT c.repository, c.digest, c.name, c.version, c.archive, c.provenance, \
         {metadata}, t.updated_at FROM helm_charts c JOIN repository_tags t \
         ON t.repository = c.repository AND t.digest = c.digest AND t.tag = c.tag"
    )
}

fn chart_row(row: &[Value]) -> Result<ChartRow, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("helm_charts: bad {what}"));
    let text = |i: usize, what: &str| row[i].text().ok_or_else(|| corrupt(what));
    let digest = |i: usize, what: &str| {
        text(i, what).and_then(|t| Digest::parse(t).map_err(|_| corrupt(what)))
    };
    Ok(ChartRow {
        repository: text(0, "repository")?.to_owned(),
        manifest: digest(1, "digest")?,
        chart: ChartRecord {
            name: text(2, "name")?.to_owned(),
            version: text(3, "version")?.to_owned(),
            archive: digest(4, "archive")?,
            provenance: row[5].text().and_then(|t| Digest::parse(t).ok()),
            metadata: match row[6].text() {
                Some(text) => serde_json::from_str(text).map_err(|_| corrupt("metadata"))?,
                None => serde_json::Value::Null,
            },
        },
        created: row[7].time().ok_or_else(|| corrupt("time"))?,
    })
}

/// Every listed version in `registry` (of chart `name` only, when given), in no set order.
pub async fn charts(
    backend: &Backend,
    registry: &str,
    name: Option<&str>,
    fields: Fields,
) -> Result<Vec<ChartRow>, StoreError> {
    let select = select(fields);
    let rows = match name {
        None => {
            sql::query(
                backend,
                &format!("{select} WHERE c.registry = $1"),
                vec![registry.into()],
            )
            .await?
        }
        Some(name) => {
            sql::query(
                backend,
                &format!("{select} WHERE c.registry = $1 AND c.name = $2"),
                vec![registry.into(), name.into()],
            )
            .await?
        }
    };
    rows.iter().map(|r| chart_row(r)).collect()
}

/// The `Chart.yaml` fields of the chart in manifest `digest` of `repository`.
pub async fn metadata(
    backend: &Backend,
    repository: &str,
    digest: &Digest,
) -> Result<Option<serde_json::Value>, StoreError> {
    let rows = sql::query(
        backend,
        "SELECT metadata FROM helm_charts WHERE repository = $1 AND digest = $2",
        vec![repository.into(), digest.as_str().into()],
    )
    .await?;
    rows.first()
        .and_then(|r| r[0].text())
        .map(|text| {
            serde_json::from_str(text)
                .map_err(|_| StoreError::Corrupt("helm_charts: bad metadata".into()))
        })
        .transpose()
}

/// The listed version `version` of chart `name` in `registry`.
pub async fn chart(
    backend: &Backend,
    registry: &str,
    name: &str,
    version: &str,
) -> Result<Option<ChartRow>, StoreError> {
    let rows = sql::query(
        backend,
        &format!(
            "{} WHERE c.registry = $1 AND c.name = $2 AND c.version = $3",
            select(Fields::Load)
        ),
        vec![registry.into(), name.into(), version.into()],
    )
    .await?;
    rows.first().map(|r| chart_row(r)).transpose()
}
