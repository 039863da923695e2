//! `GET /helm/<registry>/index.yaml`: the repository index, rendered from the listed chart
//! versions and cached until an event changes the registry. Its entity tag hashes the body, so
//! every instance on one database answers `If-None-Match` alike.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::{Request, Response};
use serde_json::{Value, json};
use sha2::Digest as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::HelmNamespace;
use super::HelmResult;
use crate::domain::ResourceName;
use crate::projections::charts::{self, ChartRow, Fields};
use crate::proxy::Upstream;
use crate::registry::access::Action;
use crate::registry::{CachedDocument, ReadCache, RegistryState, upstream_error};

/// Newest version first; versions that are not SemVer (none are stored) sort last.
fn by_version_descending(a: &ChartRow, b: &ChartRow) -> Ordering {
    let parse = |row: &ChartRow| semver::Version::parse(&row.chart.version).ok();
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => b.cmp(&a),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => b.chart.version.cmp(&a.chart.version),
    }
}

fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// One chart version as an index (and ChartMuseum API) entry: its `Chart.yaml` fields, the
/// archive's URL relative to the repository, its sha256 and when it was pushed.
pub fn entry(row: &ChartRow) -> Value {
    let mut entry = match &row.chart.metadata {
        Value::Object(fields) => Value::Object(fields.clone()),
        _ => json!({}),
    };
    entry["name"] = json!(row.chart.name);
    entry["version"] = json!(row.chart.version);
    entry["urls"] = json!([format!("charts/{}", row.chart.file_name())]);
    entry["digest"] = json!(row.chart.archive.hex());
    entry["created"] = json!(timestamp(row.created));
    entry
}

/// Chart versions grouped by chart name, each group newest first.
pub fn grouped(rows: Vec<ChartRow>) -> BTreeMap<String, Vec<ChartRow>> {
    grouped_by(rows, |row| row)
}

fn grouped_by<T>(items: Vec<T>, row: impl Fn(&T) -> &ChartRow) -> BTreeMap<String, Vec<T>> {
    let mut groups: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for item in items {
        groups
            .entry(row(&item).chart.name.clone())
            .or_default()
            .push(item);
    }
    for versions in groups.values_mut() {
        versions.sort_by(|a, b| by_version_descending(row(a), row(b)));
    }
    groups
}

/// A listed version with its rendered index entry, when one was cached.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The version (its `Chart.yaml` fields are read only when `entry` is `None`).
    pub row: ChartRow,
    /// Its rendered entry.
    pub entry: Option<Arc<str>>,
}

/// One chart version as a YAML sequence item under its chart's key, indented for the index.
/// A version's entry never changes (its manifest and push time fix it), so it is rendered
/// once and then kept in the cache.
async fn rendered_entry(row: &ChartRow, cache: &ReadCache) -> Arc<str> {
    let yaml = serde_yaml_ng::to_string(&entry(row)).unwrap_or_default();
    let mut text = String::with_capacity(yaml.len() + 64);
    for (i, line) in yaml.lines().enumerate() {
        text.push_str(if i == 0 { "  - " } else { "    " });
        text.push_str(line);
        text.push('\n');
    }
    let text: Arc<str> = text.into();
    cache.put_index_entry(entry_key(row), text.clone()).await;
    text
}

/// What fixes a version's entry: its manifest and when its tag was set.
fn entry_key(row: &ChartRow) -> (crate::domain::oci::Digest, i128) {
    (row.manifest.clone(), row.created.unix_timestamp_nanos())
}

/// A scalar as YAML writes it (quoted when it would read as something else).
fn scalar(value: &str) -> String {
    serde_yaml_ng::to_string(value)
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

/// Renders an index of `listed`, rendering (and caching in `cache`) the entries it lacks.
/// `generated` is the newest version's time, so the same charts always render the same bytes.
pub async fn render(listed: Vec<Listed>, cache: &ReadCache) -> CachedDocument {
    let generated = listed
        .iter()
        .map(|l| l.row.created)
        .max()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let groups = grouped_by(listed, |l| &l.row);
    let mut body = String::from("apiVersion: v1\n");
    if groups.is_empty() {
        body.push_str("entries: {}\n");
    } else {
        body.push_str("entries:\n");
    }
    for (name, versions) in &groups {
        body.push_str("  ");
        body.push_str(&scalar(name));
        body.push_str(":\n");
        for version in versions {
            match &version.entry {
                Some(text) => body.push_str(text),
                None => body.push_str(&rendered_entry(&version.row, cache).await),
            }
        }
    }
    body.push_str("generated: ");
    body.push_str(&scalar(&timestamp(generated)));
    body.push('\n');
    let etag = format!("\"{}\"", hex(&sha2::Sha256::digest(body.as_bytes())[..16]));
    CachedDocument {
        body: body.into(),
        etag,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Above this many versions whose entries are not rendered yet, the listing reads every
/// version's fields at once rather than one by one.
const FIELDS_ONE_BY_ONE: usize = 64;

/// The versions `registry` lists with their cached entries; the `Chart.yaml` fields (most of a
/// row's bytes) are read only for versions without one (after an upload, just the new one).
async fn listed(state: &RegistryState, registry: &ResourceName) -> HelmResult<Vec<Listed>> {
    let backend = state.app.backend();
    let rows = charts::charts(backend, registry.as_str(), None, Fields::Skip).await?;
    let mut listed = Vec::with_capacity(rows.len());
    for row in rows {
        let entry = state.cache.index_entry(&entry_key(&row)).await;
        listed.push(Listed { row, entry });
    }
    let unrendered = listed.iter().filter(|l| l.entry.is_none()).count();
    if unrendered > FIELDS_ONE_BY_ONE {
        let rows = charts::charts(backend, registry.as_str(), None, Fields::Load).await?;
        return Ok(rows
            .into_iter()
            .map(|row| Listed { row, entry: None })
            .collect());
    }
    for version in listed.iter_mut().filter(|l| l.entry.is_none()) {
        let row = &mut version.row;
        row.chart.metadata = charts::metadata(backend, &row.repository, &row.manifest)
            .await?
            .unwrap_or_default();
    }
    Ok(listed)
}

/// The index of `registry`, from the cache or freshly rendered (and then cached).
async fn current(
    state: &RegistryState,
    registry: &ResourceName,
) -> HelmResult<Arc<CachedDocument>> {
    if let Some(index) = state.cache.index(registry.as_str()).await {
        return Ok(index);
    }
    let ticket = state.cache.ticket();
    let rows = listed(state, registry).await?;
    let index = Arc::new(render(rows, &state.cache).await);
    if let Some(ticket) = ticket {
        state
            .cache
            .put_index(registry.as_str(), index.clone(), ticket)
            .await;
    }
    Ok(index)
}

/// The index of a proxy, or of a registry with Helm upstreams: the registry's own versions
/// first, then each upstream's versions it does not list, in the upstreams' order. Remote
/// indexes come from the proxies' caches; a stale one brings its `Warning`.
async fn merged(
    state: &RegistryState,
    name: &ResourceName,
    namespace: &HelmNamespace,
    upstreams: &[Upstream],
) -> HelmResult<(Arc<CachedDocument>, Option<String>)> {
    let mut entries: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    if let HelmNamespace::Registry(_) = namespace {
        let rows = charts::charts(state.app.backend(), name.as_str(), None, Fields::Load).await?;
        for (chart, versions) in grouped(rows) {
            entries.insert(chart, versions.iter().map(entry).collect());
        }
    }
    let (mut warning, mut failure) = (None, None);
    for upstream in upstreams {
        match state.proxy.helm_index(upstream).await {
            Ok(answer) => {
                warning = warning.or(answer.warning);
                for (chart, versions) in &answer.index.entries {
                    let listed = entries.entry(chart.clone()).or_default();
                    for version in versions {
                        if !listed.iter().any(|e| e["version"] == version["version"]) {
                            listed.push(version.clone());
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(proxy = %upstream.key, error = %e, "a Helm upstream failed");
                failure = Some(e);
            }
        }
    }
    if let (HelmNamespace::Proxy(_), Some(e)) = (namespace, failure) {
        return Err(upstream_error(e).into());
    }
    let body = serde_yaml_ng::to_string(&json!({ "apiVersion": "v1", "entries": entries }))
        .unwrap_or_default();
    let etag = format!("\"{}\"", hex(&sha2::Sha256::digest(body.as_bytes())[..16]));
    Ok((
        Arc::new(CachedDocument {
            body: body.into(),
            etag,
        }),
        warning,
    ))
}

/// `GET` or `HEAD` of `index.yaml`, with `If-None-Match`.
pub async fn serve(
    state: &RegistryState,
    request: &Request,
    registry: &ResourceName,
) -> HelmResult<Response> {
    let (namespace, _) = super::admit(state, request, registry, None, Action::Pull).await?;
    let upstreams = namespace.upstreams(state).await?;
    let (index, warning) = match &namespace {
        HelmNamespace::Registry(_) if upstreams.is_empty() => {
            (current(state, registry).await?, None)
        }
        _ => merged(state, registry, &namespace, &upstreams).await?,
    };
    let unchanged = request
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == index.etag || t.trim() == "*")
        });
    let mut builder = Response::builder().header("ETag", index.etag.as_str());
    if let Some(warning) = warning {
        builder = builder.header("Warning", warning);
    }
    if unchanged {
        return Ok(builder.status(StatusCode::NOT_MODIFIED).finish());
    }
    let builder = builder
        .content_type("application/x-yaml")
        .header("Content-Length", index.body.len().to_string());
    if request.method() == Method::HEAD {
        return Ok(builder.finish());
    }
    Ok(builder.body(index.body.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chart::ChartRecord;
    use crate::domain::oci::Digest;

    fn row(name: &str, version: &str, metadata: Value, seconds: i64) -> ChartRow {
        let digest = |s: &str| Digest::from_sha256(&sha2::Sha256::digest(s.as_bytes()));
        ChartRow {
            repository: format!("charts/{name}"),
            manifest: digest(&format!("{name}{version}")),
            chart: ChartRecord {
                name: name.into(),
                version: version.into(),
                archive: digest(version),
                provenance: None,
                metadata,
            },
            created: OffsetDateTime::from_unix_timestamp(seconds).unwrap(),
        }
    }

    #[tokio::test]
    async fn the_assembled_index_reads_back_as_the_entries_it_was_made_of() {
        let cache = ReadCache::new(1 << 20);
        let listed = |rows: &[ChartRow]| {
            rows.iter()
                .map(|row| Listed {
                    row: row.clone(),
                    entry: None,
                })
                .collect::<Vec<_>>()
        };
        let empty = render(vec![], &cache).await;
        let parsed: Value = serde_yaml_ng::from_slice(&empty.body).unwrap();
        assert_eq!(
            parsed,
            json!({"apiVersion": "v1", "entries": {}, "generated": "1970-01-01T00:00:00Z"})
        );

        let tricky = json!({
            "apiVersion": "v2", "description": "line one\nline two: with 'quotes' and \"more\"",
            "keywords": ["a", "b"], "annotations": {"x/y": "1.0"}, "deprecated": true,
        });
        let rows = vec![
            row("web", "1.0.0", tricky.clone(), 10),
            row("web", "1.10.0", tricky.clone(), 30),
            row("true", "0.1.0", json!({"apiVersion": "v2"}), 20),
        ];
        let first = render(listed(&rows), &cache).await;
        let parsed: Value = serde_yaml_ng::from_slice(&first.body).unwrap();
        assert_eq!(parsed["generated"], "1970-01-01T00:00:30Z");
        let web = &parsed["entries"]["web"];
        assert_eq!(web[0], entry(&rows[1]));
        assert_eq!(web[1], entry(&rows[0]));
        assert_eq!(parsed["entries"]["true"][0]["version"], "0.1.0");
        // Rendering again, from cached entries, gives the same bytes and tag.
        let mut cached = listed(&rows);
        for version in &mut cached {
            version.entry = cache.index_entry(&entry_key(&version.row)).await;
            assert!(version.entry.is_some());
            version.row.chart.metadata = Value::Null;
        }
        let again = render(cached, &cache).await;
        assert_eq!((again.body, again.etag), (first.body, first.etag));
    }
}
