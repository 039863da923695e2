//! `repository_manifests` and `repository_tags`: what each repository holds and where its tags
//! point, kept from repository events; and the queries the registry answers from them. The
//! same events keep `helm_charts` (queried in [`super::charts`]).
//!
//! A repository lives in the registry or upstream proxy its first component names, and ends
//! with it: deleting one empties its repositories here, so a registry created again under the
//! name starts empty. The repositories' streams go on, and their history reads through both.

use async_trait::async_trait;

use super::resources::Document;
use super::sql::{self, Value};
use crate::domain::oci::{Digest, RepositoryName, Tag};
use crate::domain::registry::{Registry, RegistryEvent};
use crate::domain::repository::{self, ManifestRecord, RepositoryEvent, RepositoryState};
use crate::domain::stored::from_stored;
use crate::domain::upstream_proxy::{UpstreamProxy, UpstreamProxyEvent};
use crate::event_store::{Backend, Projection, ProjectionError, RecordedEvent, StoreError};

/// The projection that keeps both tables.
pub struct Repositories;

/// One statement of the projection, with its parameters.
struct Change {
    sql: &'static str,
    params: Vec<Value>,
}

/// Where an event begins or ends the life of a registry or upstream proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    /// Created.
    Began,
    /// Deleted.
    Ended,
}

/// The registry or upstream proxy whose creation or deletion `event` records, if it records
/// one, and which of the two.
pub fn holder_life(event: &RecordedEvent) -> Option<(&str, Life)> {
    let category = event.stream.category.as_str();
    let (kind, version, payload) = (&event.event_type, event.schema_version, &event.payload);
    let life = if category == Registry::KIND.category() {
        match from_stored(kind, version, payload) {
            Ok(RegistryEvent::Created { .. }) => Some(Life::Began),
            Ok(RegistryEvent::Deleted {}) => Some(Life::Ended),
            _ => None,
        }
    } else if category == UpstreamProxy::KIND.category() {
        match from_stored(kind, version, payload) {
            Ok(UpstreamProxyEvent::Created { .. }) => Some(Life::Began),
            Ok(UpstreamProxyEvent::Deleted {}) => Some(Life::Ended),
            _ => None,
        }
    } else {
        None
    };
    life.map(|life| (event.stream.name.as_str(), life))
}

/// The registry or upstream proxy whose deletion `event` records, if it records one.
pub fn holder_deleted(event: &RecordedEvent) -> Option<&str> {
    holder_life(event)
        .filter(|(_, life)| *life == Life::Ended)
        .map(|(name, _)| name)
}

/// Empties the repositories of a deleted registry or proxy `holder`: the names under
/// "<holder>/" sort between it and "<holder>0" ('0' follows '/'; PostgreSQL compares these
/// columns byte by byte too), so the primary keys find them.
fn holdings_cleared(holder: &str) -> Vec<Change> {
    let (from, to) = (format!("{holder}/"), format!("{holder}0"));
    let range = |sql| Change {
        sql,
        params: vec![from.as_str().into(), to.as_str().into()],
    };
    vec![
        Change {
            sql: "DELETE FROM helm_charts WHERE registry = $1",
            params: vec![holder.into()],
        },
        range("DELETE FROM repository_tags WHERE repository > $1 AND repository < $2"),
        range("DELETE FROM repository_manifests WHERE repository > $1 AND repository < $2"),
    ]
}

/// What one event changes, and the registry or proxy that must exist for it to change
/// anything.
#[derive(Default)]
struct Changes {
    /// Set for a push or tag move: one appended after its registry or proxy was deleted (a
    /// push that raced the deletion) records nothing, so that a registry created again under
    /// the name never shows it.
    needs_holder: Option<String>,
    statements: Vec<Change>,
}

/// Whether registry or upstream proxy `$1` exists.
const HOLDER_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM registries WHERE name = $1) \
     OR EXISTS (SELECT 1 FROM upstream_proxies WHERE name = $1)";

fn changes(event: &RecordedEvent) -> Result<Changes, ProjectionError> {
    if let Some(holder) = holder_deleted(event) {
        return Ok(Changes {
            needs_holder: None,
            statements: holdings_cleared(holder),
        });
    }
    if event.stream.category != repository::CATEGORY {
        return Ok(Changes::default());
    }
    let holder = event.stream.name.split('/').next().unwrap_or_default();
    let repository = Value::Text(event.stream.name.clone());
    let at = Value::Time(event.recorded_at);
    let domain: RepositoryEvent =
        from_stored(&event.event_type, event.schema_version, &event.payload).map_err(|e| {
            ProjectionError::Payload {
                event_type: e.event_type,
                schema_version: e.schema_version,
                reason: e.reason,
            }
        })?;
    let adds = matches!(
        domain,
        RepositoryEvent::ManifestPushed { .. } | RepositoryEvent::TagMoved { .. }
    );
    let statements = match domain {
        RepositoryEvent::ManifestPushed {
            digest,
            media_type,
            size,
            subject,
            artifact_type,
            chart,
        } => {
            let mut changes = vec![Change {
                sql: "INSERT INTO repository_manifests (repository, digest, media_type, size, \
                      subject, artifact_type, pushed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                      ON CONFLICT (repository, digest) DO NOTHING",
                params: vec![
                    repository.clone(),
                    digest.to_string().into(),
                    media_type.into(),
                    Value::Int(size as i64),
                    subject.map(|s| s.to_string()).into(),
                    artifact_type.into(),
                    at,
                ],
            }];
            if let Some(chart) = chart {
                let registry = event.stream.name.split('/').next().unwrap_or_default();
                let tag = chart.tag();
                changes.push(Change {
                    sql: "INSERT INTO helm_charts (repository, digest, registry, name, version, \
                          tag, archive, provenance, metadata) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                          ON CONFLICT (repository, digest) DO NOTHING",
                    params: vec![
                        repository,
                        digest.to_string().into(),
                        registry.into(),
                        chart.name.into(),
                        chart.version.into(),
                        tag.into(),
                        chart.archive.to_string().into(),
                        chart.provenance.map(|p| p.to_string()).into(),
                        chart.metadata.to_string().into(),
                    ],
                });
            }
            changes
        }
        RepositoryEvent::TagMoved { tag, digest } => vec![Change {
            sql: "INSERT INTO repository_tags (repository, tag, digest, updated_at) \
                  VALUES ($1, $2, $3, $4) ON CONFLICT (repository, tag) DO UPDATE \
                  SET digest = EXCLUDED.digest, updated_at = EXCLUDED.updated_at",
            params: vec![
                repository,
                tag.to_string().into(),
                digest.to_string().into(),
                at,
            ],
        }],
        RepositoryEvent::TagDeleted { tag } => vec![Change {
            sql: "DELETE FROM repository_tags WHERE repository = $1 AND tag = $2",
            params: vec![repository, tag.to_string().into()],
        }],
        RepositoryEvent::ManifestDeleted { digest } => vec![
            Change {
                sql: "DELETE FROM repository_tags WHERE repository = $1 AND digest = $2",
                params: vec![repository.clone(), digest.to_string().into()],
            },
            Change {
                sql: "DELETE FROM helm_charts WHERE repository = $1 AND digest = $2",
                params: vec![repository.clone(), digest.to_string().into()],
            },
            Change {
                sql: "DELETE FROM repository_manifests WHERE repository = $1 AND digest = $2",
                params: vec![repository, digest.to_string().into()],
            },
        ],
    };
    Ok(Changes {
        needs_holder: adds.then(|| holder.to_owned()),
        statements,
    })
}

#[async_trait]
impl Projection for Repositories {
    fn name(&self) -> &'static str {
        "repositories"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["helm_charts", "repository_tags", "repository_manifests"]
    }

    async fn apply_postgres(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let changes = changes(event)?;
        if let Some(holder) = &changes.needs_holder
            && !tx
                .query_one(HOLDER_EXISTS, &[holder])
                .await?
                .get::<_, bool>(0)
        {
            return Ok(());
        }
        for change in changes.statements {
            let boxed = sql::postgres_params(change.params);
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                boxed.iter().map(|b| b.as_ref() as _).collect();
            tx.execute(change.sql, &params).await?;
        }
        Ok(())
    }

    fn apply_sqlite(
        &self,
        tx: &rusqlite::Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let changes = changes(event)?;
        if let Some(holder) = &changes.needs_holder
            && !tx
                .prepare_cached(&HOLDER_EXISTS.replace('$', "?"))?
                .query_row([holder], |row| row.get::<_, bool>(0))?
        {
            return Ok(());
        }
        for change in changes.statements {
            tx.prepare_cached(&change.sql.replace('$', "?"))?.execute(
                rusqlite::params_from_iter(sql::sqlite_params(change.params)),
            )?;
        }
        Ok(())
    }
}

/// A manifest as the read model holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    /// Its digest.
    pub digest: Digest,
    /// Its record.
    pub record: ManifestRecord,
}

const MANIFEST_COLUMNS: &str = "m.digest, m.media_type, m.size, m.subject, m.artifact_type";

fn manifest_row(row: &[Value]) -> Result<ManifestRow, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("repository_manifests: bad {what}"));
    let digest = |v: &Value| v.text().and_then(|t| Digest::parse(t).ok());
    Ok(ManifestRow {
        digest: digest(&row[0]).ok_or_else(|| corrupt("digest"))?,
        record: ManifestRecord {
            media_type: row[1]
                .text()
                .ok_or_else(|| corrupt("media type"))?
                .to_owned(),
            size: row[2].int().ok_or_else(|| corrupt("size"))? as u64,
            subject: digest(&row[3]),
            artifact_type: row[4].text().map(str::to_owned),
            // What a chart manifest holds is read from `helm_charts` when it is needed.
            chart: None,
        },
    })
}

/// The manifest `digest` in `repository`, if it holds it.
pub async fn manifest(
    backend: &Backend,
    repository: &RepositoryName,
    digest: &Digest,
) -> Result<Option<ManifestRow>, StoreError> {
    let rows = sql::query(
        backend,
        &format!(
            "SELECT {MANIFEST_COLUMNS} FROM repository_manifests m \
             WHERE m.repository = $1 AND m.digest = $2"
        ),
        vec![repository.as_str().into(), digest.as_str().into()],
    )
    .await?;
    rows.first().map(|r| manifest_row(r)).transpose()
}

/// The manifest `tag` points to in `repository`, if the tag exists.
pub async fn resolve_tag(
    backend: &Backend,
    repository: &RepositoryName,
    tag: &Tag,
) -> Result<Option<ManifestRow>, StoreError> {
    let rows = sql::query(
        backend,
        &format!(
            "SELECT {MANIFEST_COLUMNS} FROM repository_tags t JOIN repository_manifests m \
             ON m.repository = t.repository AND m.digest = t.digest \
             WHERE t.repository = $1 AND t.tag = $2"
        ),
        vec![repository.as_str().into(), tag.as_str().into()],
    )
    .await?;
    rows.first().map(|r| manifest_row(r)).transpose()
}

/// The part of a repository's state that a command on `digest` and `tag` needs, with the
/// repository's stream version.
pub async fn state_for(
    backend: &Backend,
    repository: &RepositoryName,
    digest: Option<&Digest>,
    tag: Option<&Tag>,
) -> Result<(RepositoryState, u64), StoreError> {
    let mut state = RepositoryState::default();
    if let Some(digest) = digest {
        if let Some(row) = manifest(backend, repository, digest).await? {
            state.manifests.insert(row.digest, row.record);
        }
        let tags = sql::query(
            backend,
            "SELECT tag FROM repository_tags WHERE repository = $1 AND digest = $2",
            vec![repository.as_str().into(), digest.as_str().into()],
        )
        .await?;
        for row in tags {
            if let Some(tag) = row[0].text().and_then(|t| Tag::parse(t).ok()) {
                state.tags.insert(tag, digest.clone());
            }
        }
    }
    if let Some(tag) = tag {
        let rows = sql::query(
            backend,
            "SELECT digest FROM repository_tags WHERE repository = $1 AND tag = $2",
            vec![repository.as_str().into(), tag.as_str().into()],
        )
        .await?;
        if let Some(digest) = rows
            .first()
            .and_then(|r| r[0].text())
            .and_then(|d| Digest::parse(d).ok())
        {
            state.tags.insert(tag.clone(), digest);
        }
    }
    let version = sql::query(
        backend,
        "SELECT version FROM stream_summaries WHERE category = $1 AND stream_name = $2",
        vec![repository::CATEGORY.into(), repository.as_str().into()],
    )
    .await?
    .first()
    .and_then(|r| r[0].int())
    .unwrap_or(0);
    Ok((state, version as u64))
}

/// Up to `n` tags of `repository` after `last`, in order.
pub async fn tags(
    backend: &Backend,
    repository: &RepositoryName,
    last: Option<&str>,
    n: u64,
) -> Result<Vec<String>, StoreError> {
    let rows = sql::query(
        backend,
        "SELECT tag FROM repository_tags WHERE repository = $1 AND tag > $2 ORDER BY tag LIMIT $3",
        vec![
            repository.as_str().into(),
            last.unwrap_or("").into(),
            Value::Int(n as i64),
        ],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r[0].text().map(str::to_owned))
        .collect())
}

/// Repositories that hold at least one manifest, in order, after `last`, at most `n`.
pub async fn repositories(
    backend: &Backend,
    last: Option<&str>,
    n: u64,
) -> Result<Vec<String>, StoreError> {
    let rows = sql::query(
        backend,
        "SELECT DISTINCT repository FROM repository_manifests WHERE repository > $1 \
         ORDER BY repository LIMIT $2",
        vec![last.unwrap_or("").into(), Value::Int(n as i64)],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r[0].text().map(str::to_owned))
        .collect())
}

/// The manifests of `repository` whose subject is `digest`.
pub async fn referrers(
    backend: &Backend,
    repository: &RepositoryName,
    digest: &Digest,
) -> Result<Vec<ManifestRow>, StoreError> {
    let rows = sql::query(
        backend,
        &format!(
            "SELECT {MANIFEST_COLUMNS} FROM repository_manifests m \
             WHERE m.repository = $1 AND m.subject = $2 ORDER BY m.digest"
        ),
        vec![repository.as_str().into(), digest.as_str().into()],
    )
    .await?;
    rows.iter().map(|r| manifest_row(r)).collect()
}

/// A tag and what it points to.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    /// The tag.
    pub tag: String,
    /// The manifest.
    pub manifest: ManifestRow,
    /// When it last moved.
    pub updated_at: time::OffsetDateTime,
}

/// Every tag of `repository` with its manifest, in order.
pub async fn tag_rows(
    backend: &Backend,
    repository: &RepositoryName,
) -> Result<Vec<TagRow>, StoreError> {
    let rows = sql::query(
        backend,
        &format!(
            "SELECT {MANIFEST_COLUMNS}, t.tag, t.updated_at FROM repository_tags t \
             JOIN repository_manifests m ON m.repository = t.repository AND m.digest = t.digest \
             WHERE t.repository = $1 ORDER BY t.tag"
        ),
        vec![repository.as_str().into()],
    )
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TagRow {
                manifest: manifest_row(row)?,
                tag: row[5].text().unwrap_or_default().to_owned(),
                updated_at: row[6]
                    .time()
                    .ok_or_else(|| StoreError::Corrupt("repository_tags: bad time".into()))?,
            })
        })
        .collect()
}

/// Every manifest of `repository` with when it was pushed, newest first.
pub async fn manifest_rows(
    backend: &Backend,
    repository: &RepositoryName,
) -> Result<Vec<(ManifestRow, time::OffsetDateTime)>, StoreError> {
    let rows = sql::query(
        backend,
        &format!(
            "SELECT {MANIFEST_COLUMNS}, m.pushed_at FROM repository_manifests m \
             WHERE m.repository = $1 ORDER BY m.pushed_at DESC, m.digest"
        ),
        vec![repository.as_str().into()],
    )
    .await?;
    rows.iter()
        .map(|row| {
            let pushed = row[5]
                .time()
                .ok_or_else(|| StoreError::Corrupt("repository_manifests: bad time".into()))?;
            Ok((manifest_row(row)?, pushed))
        })
        .collect()
}

/// The repositories of `registry` that hold manifests, in order.
pub async fn repositories_of(backend: &Backend, registry: &str) -> Result<Vec<String>, StoreError> {
    let rows = sql::query(
        backend,
        // Names under "<registry>/" sort between it and "<registry>0" (see holdings_cleared).
        "SELECT DISTINCT repository FROM repository_manifests \
         WHERE repository > $1 AND repository < $2 ORDER BY repository",
        vec![format!("{registry}/").into(), format!("{registry}0").into()],
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r[0].text().map(str::to_owned))
        .collect())
}
