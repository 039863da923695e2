//! A report as people read it: one line per finding (kind, object, detail, and what the
//! repair did), then a summary of what was looked at and what is left.

use std::fmt::Write;

use super::Report;

/// The report as text.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        let kind = serde_json::to_value(finding.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{kind:<22} {}\n{:<22} {}",
            finding.object, "", finding.detail
        );
        if let Some(how) = &finding.repaired {
            let _ = writeln!(out, "{:<22} repaired: {how}", "");
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "checked {} events, {} blobs ({:.1} MiB), {} manifests, {} tags, {} links, {} upload \
         entries in {:.2}s",
        s.events,
        s.blobs,
        s.blob_bytes as f64 / (1024.0 * 1024.0),
        s.manifests,
        s.tags,
        s.links,
        s.uploads,
        s.seconds
    );
    let left = report.problems_left();
    let repaired = report.repaired();
    let _ = match (left, repaired) {
        (0, 0) => writeln!(out, "clean"),
        (0, n) => writeln!(out, "{n} problems repaired; clean now"),
        (left, 0) => writeln!(out, "{left} problems found"),
        (left, n) => writeln!(out, "{n} problems repaired, {left} left"),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Finding, Kind};
    use super::*;

    #[test]
    fn a_report_names_each_finding_and_what_is_left() {
        let mut report = Report::default();
        report.findings.push(Finding {
            kind: Kind::CorruptBlob,
            object: "sha256:ab".into(),
            detail: "its 3 bytes hash to sha256:cd".into(),
            repaired: Some("moved to quarantine/ab.1".into()),
        });
        report.findings.push(Finding {
            kind: Kind::MissingBlob,
            object: "team/app@sha256:ef".into(),
            detail: "not stored".into(),
            repaired: None,
        });
        let text = render_text(&report);
        assert!(text.contains("corrupt_blob"), "{text}");
        assert!(
            text.contains("repaired: moved to quarantine/ab.1"),
            "{text}"
        );
        assert!(text.contains("missing_blob"), "{text}");
        assert!(text.ends_with("1 problems repaired, 1 left\n"), "{text}");
        assert_eq!(
            render_text(&Report::default()).lines().last(),
            Some("clean")
        );
    }
}
