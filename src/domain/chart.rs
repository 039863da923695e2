//! Helm chart archives: reading a `.tgz` just far enough to know what it is. The archive must
//! be gzip and tar, hold `<name>/Chart.yaml` at its top, name a chart whose directory matches,
//! and carry a SemVer 2 version. Nothing else of the archive is read.

use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Parses a chart's `Chart.yaml` text.
pub fn parse_chart_yaml(text: &str) -> Result<ChartMetadata, ChartError> {
    let fields: Value =
        serde_yaml_ng::from_str(text).map_err(|e| ChartError::InvalidChartYaml(e.to_string()))?;
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

    const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.2.3-rc.1+build.5\nappVersion: \"2.0\"\nkeywords: [http]\n";

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
        assert_eq!(chart.fields["appVersion"], "2.0");
        assert_eq!(chart.fields["keywords"][0], "http");
        assert_eq!(oci_tag(&chart.version), "1.2.3-rc.1_build.5");
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
