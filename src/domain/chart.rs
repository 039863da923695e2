//! Helm charts: reading a `.tgz` just far enough to know what it is, and recognising a chart
//! stored as an OCI artifact. The archive must be gzip and tar, hold `<name>/Chart.yaml` at its
//! top, name a chart whose directory matches, and carry a SemVer 2 version. Nothing else of the
//! archive is read.
//!
//! Berth keeps every chart version as an OCI manifest in the repository `<registry>/<chart>`,
//! tagged with its version, exactly as `helm push` writes it: a config blob (the chart's
//! metadata as JSON), the archive as a layer and optionally its provenance file as another.

use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::manifest::{Manifest, OCI_MANIFEST};
use super::oci::Digest;

/// The media type of a chart's OCI config: its metadata as JSON.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// The media type of the chart archive layer.
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The media type of the provenance layer.
pub const PROVENANCE_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";

/// The largest `Chart.yaml` read.
const MAX_CHART_YAML: u64 = 1024 * 1024;

/// Why a chart archive was refused; the message says which rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    /// Not a gzip-compressed tar archive.
    #[error("the chart is not a gzip-compressed tar archive: {0}")]
    NotAnArchive(String),
    /// No `Chart.yaml` under the archive's top directory.
    #[error("the archive has no Chart.yaml in its top directory")]
    MissingChartYaml,
    /// `Chart.yaml` is not valid YAML of the expected shape.
    #[error("Chart.yaml is invalid: {0}")]
    InvalidChartYaml(String),
    /// A required field is missing or empty.
    #[error("Chart.yaml needs a {0}")]
    MissingField(&'static str),
    /// The chart name breaks Helm's rules.
    #[error(
        "chart name {0:?} may contain only lowercase letters, digits, '-' and '_', starting with a letter"
    )]
    InvalidName(String),
    /// The version is not SemVer 2.
    #[error("chart version {version:?} is not SemVer 2: {reason}")]
    InvalidVersion {
        /// The version given.
        version: String,
        /// What is wrong.
        reason: String,
    },
    /// An OCI chart manifest lacks its chart layer.
    #[error("a Helm chart manifest needs exactly one layer of media type {CHART_LAYER_MEDIA_TYPE}")]
    MissingChartLayer,
    /// The top directory is named differently from the chart.
    #[error("the archive's top directory {directory:?} does not match the chart name {name:?}")]
    DirectoryMismatch {
        /// The top directory.
        directory: String,
        /// The chart's name.
        name: String,
    },
}

/// The parts of `Chart.yaml` that name a chart version; every field is kept in `fields`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartMetadata {
    /// The chart's name.
    pub name: String,
    /// Its SemVer 2 version.
    pub version: String,
    /// Every field of `Chart.yaml`, as JSON (this is what OCI chart configs carry too).
    pub fields: Value,
}

/// What a repository records of a chart version stored as an OCI manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartRecord {
    /// The chart's name.
    pub name: String,
    /// Its SemVer 2 version.
    pub version: String,
    /// The digest of the chart archive (the `.tgz`).
    pub archive: Digest,
    /// The digest of its provenance file, if one was pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Digest>,
    /// Every field of its `Chart.yaml`.
    pub metadata: Value,
}

impl ChartRecord {
    /// The chart version's OCI tag.
    pub fn tag(&self) -> String {
        oci_tag(&self.version)
    }

    /// The archive's file name in a classic chart repository: `<name>-<version>.tgz`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name, self.version)
    }
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The `Chart.yaml` fields Helm reads as strings. YAML reads `appVersion: 1.10` as the number
/// 1.1; reading these fields as strings keeps the text as written, as Helm does.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StringFields {
    api_version: Option<String>,
    name: Option<String>,
    version: Option<String>,
    app_version: Option<String>,
    kube_version: Option<String>,
    description: Option<String>,
    home: Option<String>,
    icon: Option<String>,
    #[serde(rename = "type")]
    chart_type: Option<String>,
}

/// Parses a chart's `Chart.yaml` text.
pub fn parse_chart_yaml(text: &str) -> Result<ChartMetadata, ChartError> {
    let invalid = |e: serde_yaml_ng::Error| ChartError::InvalidChartYaml(e.to_string());
    let mut fields: Value = serde_yaml_ng::from_str(text).map_err(invalid)?;
    if let Value::Object(map) = &mut fields {
        let strings: StringFields = serde_yaml_ng::from_str(text).map_err(invalid)?;
        for (key, value) in [
            ("apiVersion", strings.api_version),
            ("name", strings.name),
            ("version", strings.version),
            ("appVersion", strings.app_version),
            ("kubeVersion", strings.kube_version),
            ("description", strings.description),
            ("home", strings.home),
            ("icon", strings.icon),
            ("type", strings.chart_type),
        ] {
            if let Some(value) = value {
                map.insert(key.to_owned(), Value::String(value));
            }
        }
    }
    metadata_from_fields(fields)
}

/// Checks a chart's metadata fields (from `Chart.yaml` or an OCI config).
pub fn metadata_from_fields(fields: Value) -> Result<ChartMetadata, ChartError> {
    if !fields.is_object() {
        return Err(ChartError::InvalidChartYaml("expected a mapping".into()));
    }
    // YAML reads `version: 1.0` as a number; say what is wrong with it as a version.
    let text_of = |key: &str| match &fields[key] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let name = text_of("name").ok_or(ChartError::MissingField("name"))?;
    if !valid_name(&name) {
        return Err(ChartError::InvalidName(name));
    }
    let version = text_of("version").ok_or(ChartError::MissingField("version"))?;
    semver::Version::parse(&version).map_err(|e| ChartError::InvalidVersion {
        version: version.clone(),
        reason: e.to_string(),
    })?;
    Ok(ChartMetadata {
        name,
        version,
        fields,
    })
}

/// Reads a chart archive and returns its metadata.
pub fn parse_archive(bytes: &[u8]) -> Result<ChartMetadata, ChartError> {
    let not_archive = |e: std::io::Error| ChartError::NotAnArchive(e.to_string());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().map_err(not_archive)? {
        let entry = entry.map_err(not_archive)?;
        let path = entry.path().map_err(not_archive)?.into_owned();
        let parts: Vec<String> = path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.len() != 2 || parts[1] != "Chart.yaml" {
            continue;
        }
        let mut text = String::new();
        entry
            .take(MAX_CHART_YAML)
            .read_to_string(&mut text)
            .map_err(|e| ChartError::InvalidChartYaml(e.to_string()))?;
        let metadata = parse_chart_yaml(&text)?;
        if parts[0] != metadata.name {
            return Err(ChartError::DirectoryMismatch {
                directory: parts[0].clone(),
                name: metadata.name,
            });
        }
        return Ok(metadata);
    }
    Err(ChartError::MissingChartYaml)
}

/// The config blob of `manifest` when it is a Helm chart manifest (its config is a Helm config).
pub fn chart_config(manifest: &Manifest) -> Option<&Digest> {
    let config = manifest.blobs.first()?;
    (!manifest.is_index() && config.media_type == CONFIG_MEDIA_TYPE).then_some(&config.digest)
}

/// Reads a chart manifest (see [`chart_config`]) with its config blob's bytes.
pub fn record_from_manifest(manifest: &Manifest, config: &[u8]) -> Result<ChartRecord, ChartError> {
    let fields: Value = serde_json::from_slice(config)
        .map_err(|e| ChartError::InvalidChartYaml(format!("the chart config: {e}")))?;
    let metadata = metadata_from_fields(fields)?;
    let of_type = |media_type: &str| {
        manifest
            .blobs
            .iter()
            .skip(1)
            .filter(|l| l.media_type == media_type)
            .map(|l| l.digest.clone())
            .collect::<Vec<_>>()
    };
    let [archive] = <[Digest; 1]>::try_from(of_type(CHART_LAYER_MEDIA_TYPE))
        .map_err(|_| ChartError::MissingChartLayer)?;
    Ok(ChartRecord {
        name: metadata.name,
        version: metadata.version,
        archive,
        provenance: of_type(PROVENANCE_LAYER_MEDIA_TYPE).into_iter().next(),
        metadata: metadata.fields,
    })
}

/// The ways a classic repository file name `<name>-<version>.tgz` (or `.tgz.prov`) splits into
/// a valid chart name and a SemVer version; both may hold `-`, so there can be several.
pub fn split_file_name(stem: &str) -> Vec<(String, String)> {
    stem.match_indices('-')
        .map(|(i, _)| (&stem[..i], &stem[i + 1..]))
        .filter(|(name, version)| valid_name(name) && semver::Version::parse(version).is_ok())
        .map(|(name, version)| (name.to_owned(), version.to_owned()))
        .collect()
}

/// The manifest `helm push` writes for a chart: its metadata as the config, the archive (and
/// provenance) as layers.
pub fn oci_manifest(metadata: &ChartMetadata, config: Value, layers: Vec<Value>) -> Vec<u8> {
    let mut annotations = json!({
        "org.opencontainers.image.title": metadata.name,
        "org.opencontainers.image.version": metadata.version,
    });
    if let Some(description) = metadata.fields["description"].as_str() {
        annotations["org.opencontainers.image.description"] = json!(description);
    }
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
        "annotations": annotations,
    })
    .to_string()
    .into_bytes()
}

/// The OCI tag a chart version is stored under: SemVer's `+` is not allowed in tags, so Helm
/// writes it as `_`.
pub fn oci_tag(version: &str) -> String {
    version.replace('+', "_")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn archive(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, path, text.as_bytes())
                .unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.2.3-rc.1+build.5\nappVersion: 1.10\nkeywords: [http]\n";

    #[test]
    fn a_chart_archive_yields_its_metadata() {
        let bytes = archive(&[
            ("web/Chart.yaml", CHART),
            ("web/values.yaml", "replicas: 1\n"),
        ]);
        let chart = parse_archive(&bytes).unwrap();
        assert_eq!(
            (chart.name.as_str(), chart.version.as_str()),
            ("web", "1.2.3-rc.1+build.5")
        );
        assert_eq!(chart.fields["appVersion"], "1.10");
        assert_eq!(chart.fields["keywords"][0], "http");
        assert_eq!(oci_tag(&chart.version), "1.2.3-rc.1_build.5");
    }

    #[test]
    fn file_names_split_into_name_and_version() {
        assert_eq!(
            split_file_name("my-app-1.2.3-rc.1"),
            vec![("my-app".to_owned(), "1.2.3-rc.1".to_owned())]
        );
        assert!(split_file_name("web").is_empty());
        assert!(split_file_name("-1.0.0").is_empty());
    }

    fn chart_manifest(config_type: &str, layers: &[&str]) -> Manifest {
        let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let layers: Vec<_> = layers
            .iter()
            .zip(['b', 'c', 'd'])
            .map(|(t, c)| serde_json::json!({"mediaType": t, "digest": digest(c), "size": 1}))
            .collect();
        let body = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": config_type, "digest": digest('a'), "size": 1},
            "layers": layers,
        });
        crate::domain::manifest::parse(body.to_string().as_bytes(), None).unwrap()
    }

    #[test]
    fn a_chart_manifest_yields_its_record() {
        let config = br#"{"name":"web","version":"1.0.0","appVersion":"2"}"#;
        let manifest = chart_manifest(
            CONFIG_MEDIA_TYPE,
            &[CHART_LAYER_MEDIA_TYPE, PROVENANCE_LAYER_MEDIA_TYPE],
        );
        assert!(chart_config(&manifest).is_some());
        let record = record_from_manifest(&manifest, config).unwrap();
        assert_eq!(
            (record.name.as_str(), record.version.as_str()),
            ("web", "1.0.0")
        );
        assert!(record.archive.as_str().ends_with('b'));
        assert!(record.provenance.unwrap().as_str().ends_with('c'));
        assert_eq!(record.metadata["appVersion"], "2");

        let image = chart_manifest("application/vnd.oci.image.config.v1+json", &["x"]);
        assert!(chart_config(&image).is_none());
        let no_layer = chart_manifest(CONFIG_MEDIA_TYPE, &[]);
        assert_eq!(
            record_from_manifest(&no_layer, config),
            Err(ChartError::MissingChartLayer)
        );
        assert_eq!(
            record_from_manifest(&manifest, br#"{"name":"web"}"#),
            Err(ChartError::MissingField("version"))
        );
    }

    #[test]
    fn each_broken_chart_is_refused_with_its_reason() {
        assert!(matches!(
            parse_archive(b"not gzip"),
            Err(ChartError::NotAnArchive(_))
        ));
        assert_eq!(
            parse_archive(&archive(&[("web/values.yaml", "a: 1\n")])),
            Err(ChartError::MissingChartYaml)
        );
        assert!(matches!(
            parse_archive(&archive(&[("web/Chart.yaml", "name: [unclosed")])),
            Err(ChartError::InvalidChartYaml(_))
        ));
        assert_eq!(
            parse_archive(&archive(&[("web/Chart.yaml", "name: web\n")])),
            Err(ChartError::MissingField("version"))
        );
        assert!(matches!(
            parse_archive(&archive(&[("web/Chart.yaml", "name: web\nversion: v1\n")])),
            Err(ChartError::InvalidVersion { .. })
        ));
        assert!(matches!(
            parse_archive(&archive(&[("web/Chart.yaml", "name: web\nversion: 1.0\n")])),
            Err(ChartError::InvalidVersion { .. })
        ));
        assert_eq!(
            parse_archive(&archive(&[("other/Chart.yaml", CHART)])),
            Err(ChartError::DirectoryMismatch {
                directory: "other".into(),
                name: "web".into()
            })
        );
        assert_eq!(
            parse_archive(&archive(&[(
                "Web/Chart.yaml",
                "name: Web\nversion: 1.0.0\n"
            )])),
            Err(ChartError::InvalidName("Web".into()))
        );
    }
}
