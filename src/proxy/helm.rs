//! Helm upstreams: a remote chart repository's `index.yaml`, kept for the proxy's TTL (and
//! served stale when the remote fails), with every chart URL (absolute or relative in the
//! remote index) rewritten to Berth's `charts/<name>-<version>.tgz`; and chart archives,
//! fetched on first request, checked against the index's digest and kept as chart manifests in
//! the proxy's cache repositories, so they are served from storage afterwards.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::{Count, ProxyError, PullThrough, Upstream};
use crate::app::ManifestPush;
use crate::domain::chart::{self, CHART_LAYER_MEDIA_TYPE, CONFIG_MEDIA_TYPE};
use crate::domain::manifest::OCI_MANIFEST;
use crate::domain::oci::{Digest, RepositoryName};
use crate::domain::repository::ManifestRecord;
use crate::storage::BlobStore;

/// The largest remote index and chart archive read.
const MAX_BYTES: usize = 64 * 1024 * 1024;

/// A remote repository's index as Berth serves it.
#[derive(Debug)]
pub struct RemoteIndex {
    /// Entries by chart name, as the remote lists them, with Berth's URLs.
    pub entries: BTreeMap<String, Vec<Value>>,
    /// Where each version's archive is on the remote, with its sha256 when the index gives it.
    sources: HashMap<(String, String), (String, Option<String>)>,
    /// The remote it came from: a proxy whose URL changed does not serve it.
    base: String,
    fetched: Instant,
    /// The remote index's size, which weighs it in the cache.
    pub size: usize,
}

/// An index to serve: fresh, or stale with the `Warning` that says why.
#[derive(Debug, Clone)]
pub struct IndexAnswer {
    /// The index.
    pub index: Arc<RemoteIndex>,
    /// Set when the remote failed and a cached index stands in.
    pub warning: Option<String>,
}

/// Reads a remote `index.yaml`: resolves each version's URL against `base` and points it at
/// Berth instead.
fn read_index(bytes: &[u8], remote: &str) -> Result<RemoteIndex, String> {
    let parsed: Value = serde_yaml_ng::from_slice(bytes).map_err(|e| e.to_string())?;
    let base = url::Url::parse(&format!("{}/", remote.trim_end_matches('/')))
        .map_err(|e| e.to_string())?;
    let mut entries = BTreeMap::new();
    let mut sources = HashMap::new();
    let Some(listed) = parsed["entries"].as_object() else {
        return Err("it has no entries".into());
    };
    for (name, versions) in listed {
        let mut kept = Vec::new();
        for version in versions.as_array().into_iter().flatten() {
            let (Some(number), Some(url)) = (
                version["version"].as_str(),
                version["urls"].get(0).and_then(Value::as_str),
            ) else {
                continue;
            };
            let Ok(source) = base.join(url) else {
                continue;
            };
            let digest = version["digest"].as_str().map(str::to_owned);
            sources.insert(
                (name.clone(), number.to_owned()),
                (source.to_string(), digest),
            );
            let mut entry = version.clone();
            entry["urls"] = json!([format!("charts/{name}-{number}.tgz")]);
            kept.push(entry);
        }
        entries.insert(name.clone(), kept);
    }
    Ok(RemoteIndex {
        entries,
        sources,
        base: remote.to_owned(),
        fetched: Instant::now(),
        size: bytes.len(),
    })
}

impl PullThrough {
    /// The index of Helm proxy `upstream`: cached within its TTL, else fetched; the cached one
    /// with a warning when the remote fails.
    pub async fn helm_index(&self, upstream: &Upstream) -> Result<IndexAnswer, ProxyError> {
        let key = upstream.key.to_string();
        let cached = (self.helm_indexes.get(&key).await)
            .filter(|index| index.base == upstream.endpoint.base);
        if let Some(index) = &cached
            && index.fetched.elapsed() < upstream.tag_ttl
        {
            self.stats.count(&key, Count::Hit);
            return Ok(IndexAnswer {
                index: index.clone(),
                warning: None,
            });
        }
        match self.fetch_index(upstream).await {
            Ok(index) => {
                let index = Arc::new(index);
                self.helm_indexes.insert(key, index.clone()).await;
                Ok(IndexAnswer {
                    index,
                    warning: None,
                })
            }
            Err(e) if e.remote_failed() && cached.is_some() => {
                tracing::warn!(proxy = %key, error = %e, "serving a cached Helm index");
                self.stats.count(&key, Count::Error);
                self.stats.count(&key, Count::Stale);
                Ok(IndexAnswer {
                    index: cached.expect("checked above"),
                    warning: Some(format!("110 - \"response is stale: {e}\"")),
                })
            }
            Err(e) => {
                self.stats.count(&key, Count::Error);
                Err(e)
            }
        }
    }

    async fn fetch_index(&self, upstream: &Upstream) -> Result<RemoteIndex, ProxyError> {
        let invalid = |reason: String| ProxyError::Invalid {
            proxy: upstream.key.to_string(),
            reason,
        };
        let response = self
            .fetch(upstream, Method::GET, "/index.yaml", None)
            .await?
            .ok_or_else(|| ProxyError::Status {
                proxy: upstream.key.to_string(),
                status: 404,
                what: "/index.yaml".into(),
            })?;
        let bytes = super::read_limited(response, MAX_BYTES)
            .await
            .map_err(|e| invalid(format!("reading index.yaml: {e}")))?;
        self.stats.count(upstream.key.as_str(), Count::Miss);
        self.stats
            .count(upstream.key.as_str(), Count::Bytes(bytes.len() as u64));
        read_index(&bytes, &upstream.endpoint.base)
            .map_err(|e| invalid(format!("index.yaml is not a Helm repository index: {e}")))
    }

    /// Fetches version `version` of chart `name` from Helm proxy `upstream` into its cache
    /// repository; `false` when the remote's index does not list it.
    pub async fn helm_chart(
        &self,
        upstream: &Upstream,
        name: &str,
        version: &str,
    ) -> Result<bool, ProxyError> {
        let answer = self.helm_index(upstream).await?;
        let Some((url, expected)) = answer
            .index
            .sources
            .get(&(name.to_owned(), version.to_owned()))
            .cloned()
        else {
            return Ok(false);
        };
        let invalid = |reason: String| ProxyError::Invalid {
            proxy: upstream.key.to_string(),
            reason,
        };
        let response = self
            .client
            .send_url(&upstream.endpoint, Method::GET, &url, None)
            .await?;
        if !response.status().is_success() {
            self.stats.count(upstream.key.as_str(), Count::Error);
            return Err(ProxyError::Status {
                proxy: upstream.key.to_string(),
                status: response.status().as_u16(),
                what: url,
            });
        }
        let bytes = super::read_limited(response, MAX_BYTES)
            .await
            .map_err(|e| invalid(format!("reading {url}: {e}")))?;
        self.stats.count(upstream.key.as_str(), Count::Miss);
        self.stats
            .count(upstream.key.as_str(), Count::Bytes(bytes.len() as u64));
        let archive = Digest::from_sha256(&sha2::Sha256::digest(&bytes));
        if let Some(expected) = expected
            && expected != archive.hex()
        {
            return Err(invalid(format!(
                "{url} hashes to {archive}, not sha256:{expected} as its index says"
            )));
        }
        let metadata = chart::parse_archive(&bytes).map_err(|e| invalid(format!("{url}: {e}")))?;
        if metadata.name != name || metadata.version != version {
            return Err(invalid(format!(
                "{url} holds {} {}, not {name} {version}",
                metadata.name, metadata.version
            )));
        }
        self.store_chart(upstream, metadata, &bytes, archive)
            .await?;
        tracing::info!(proxy = %upstream.key, chart = name, version, "fetched a chart");
        Ok(true)
    }

    /// Keeps a fetched chart as `helm push` would have stored it, in `<proxy>/<chart>`.
    async fn store_chart(
        &self,
        upstream: &Upstream,
        metadata: chart::ChartMetadata,
        bytes: &[u8],
        archive: Digest,
    ) -> Result<(), ProxyError> {
        let invalid = |reason: String| ProxyError::Invalid {
            proxy: upstream.key.to_string(),
            reason,
        };
        let repository = RepositoryName::parse(&format!("{}/{}", upstream.key, metadata.name))
            .map_err(|e| invalid(e.to_string()))?;
        let tag = crate::domain::oci::Tag::parse(&chart::oci_tag(&metadata.version))
            .map_err(|e| invalid(e.to_string()))?;
        let config = serde_json::to_vec(&metadata.fields).unwrap_or_default();
        let config_digest = Digest::from_sha256(&sha2::Sha256::digest(&config));
        for (digest, content) in [(&config_digest, config.as_slice()), (&archive, bytes)] {
            self.blobs.put(digest, content).await?;
            self.blobs.link(&repository, digest).await?;
        }
        let manifest = chart::oci_manifest(
            &metadata,
            json!({"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest.as_str(), "size": config.len()}),
            vec![
                json!({"mediaType": CHART_LAYER_MEDIA_TYPE, "digest": archive.as_str(), "size": bytes.len()}),
            ],
        );
        let digest = Digest::from_sha256(&sha2::Sha256::digest(&manifest));
        self.blobs.put(&digest, &manifest).await?;
        let push = ManifestPush {
            digest,
            record: ManifestRecord {
                media_type: OCI_MANIFEST.into(),
                size: manifest.len() as u64,
                subject: None,
                artifact_type: Some(CONFIG_MEDIA_TYPE.into()),
                chart: Some(chart::ChartRecord {
                    name: metadata.name,
                    version: metadata.version,
                    archive,
                    provenance: None,
                    metadata: metadata.fields,
                }),
            },
            tag: Some(tag),
            missing: Vec::new(),
        };
        self.app
            .record_cached_manifest(&Self::context(upstream), &repository, push)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_urls_resolve_against_the_remote_and_point_at_berth() {
        let index = br#"
apiVersion: v1
entries:
  web:
    - name: web
      version: 1.0.0
      digest: abc
      urls: [charts/web-1.0.0.tgz]
    - name: web
      version: 0.9.0
      urls: ["https://cdn.example.org/web-0.9.0.tgz"]
"#;
        let read = read_index(index, "http://charts.example.org/stable").unwrap();
        assert_eq!(
            read.sources[&("web".to_owned(), "1.0.0".to_owned())],
            (
                "http://charts.example.org/stable/charts/web-1.0.0.tgz".to_owned(),
                Some("abc".to_owned())
            )
        );
        assert_eq!(
            read.sources[&("web".to_owned(), "0.9.0".to_owned())].0,
            "https://cdn.example.org/web-0.9.0.tgz"
        );
        assert_eq!(
            read.entries["web"][1]["urls"],
            json!(["charts/web-0.9.0.tgz"])
        );
        assert!(read_index(b"apiVersion: v1\n", "http://x").is_err());
    }
}
