//! Given/when/then for every repository command path.

use super::*;
use crate::domain::chart::ChartRecord;
use crate::domain::given::Aggregate;

fn repository() -> Aggregate<RepositoryState, RepositoryCommand, RepositoryEvent, RepositoryError> {
    Aggregate { decide, evolve }
}

fn digest(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

fn tag(t: &str) -> Tag {
    Tag::parse(t).unwrap()
}

fn record() -> ManifestRecord {
    ManifestRecord {
        media_type: crate::domain::manifest::OCI_MANIFEST.into(),
        size: 100,
        subject: None,
        artifact_type: None,
        chart: None,
    }
}

fn pushed(c: char) -> RepositoryEvent {
    RepositoryEvent::ManifestPushed {
        digest: digest(c),
        media_type: record().media_type,
        size: 100,
        subject: None,
        artifact_type: None,
        chart: None,
    }
}

fn push(c: char, t: Option<&str>) -> RepositoryCommand {
    push_with(c, t, PushPolicy::default())
}

fn push_with(c: char, t: Option<&str>, policy: PushPolicy) -> RepositoryCommand {
    RepositoryCommand::PushManifest {
        digest: digest(c),
        record: Box::new(record()),
        tag: t.map(tag),
        missing: vec![],
        policy,
    }
}

#[test]
fn pushing_a_manifest_by_tag_stores_it_and_points_the_tag() {
    let state = repository()
        .given([])
        .when(push('a', Some("latest")))
        .then([
            pushed('a'),
            RepositoryEvent::TagMoved {
                tag: tag("latest"),
                digest: digest('a'),
            },
        ]);
    assert_eq!(state.tags[&tag("latest")], digest('a'));
}

#[test]
fn pushing_the_same_manifest_again_records_only_a_tag_move() {
    repository()
        .given([pushed('a')])
        .when(push('a', Some("v1")))
        .then([RepositoryEvent::TagMoved {
            tag: tag("v1"),
            digest: digest('a'),
        }]);
    repository()
        .given([
            pushed('a'),
            RepositoryEvent::TagMoved {
                tag: tag("v1"),
                digest: digest('a'),
            },
        ])
        .when(push('a', Some("v1")))
        .then([]);
}

#[test]
fn moving_a_tag_to_another_manifest_is_recorded() {
    let state = repository()
        .given([
            pushed('a'),
            RepositoryEvent::TagMoved {
                tag: tag("prod"),
                digest: digest('a'),
            },
        ])
        .when(push('b', Some("prod")))
        .then([
            pushed('b'),
            RepositoryEvent::TagMoved {
                tag: tag("prod"),
                digest: digest('b'),
            },
        ]);
    assert_eq!(state.tags[&tag("prod")], digest('b'));
}

#[test]
fn an_immutable_tag_does_not_move_but_the_same_push_is_accepted() {
    let given = [
        pushed('a'),
        RepositoryEvent::TagMoved {
            tag: tag("1.0.0"),
            digest: digest('a'),
        },
    ];
    let immutable = PushPolicy {
        immutable_tags: true,
        charts_only: false,
    };
    repository()
        .given(given.clone())
        .when(push_with('b', Some("1.0.0"), immutable))
        .then_refused(RepositoryError::TagExists(tag("1.0.0")));
    repository()
        .given(given)
        .when(push_with('a', Some("1.0.0"), immutable))
        .then([]);
}

#[test]
fn a_charts_only_registry_refuses_images_but_takes_charts_and_referrers() {
    let charts_only = PushPolicy {
        charts_only: true,
        immutable_tags: false,
    };
    repository()
        .given([])
        .when(push_with('a', None, charts_only))
        .then_refused(RepositoryError::NotAChart);
    let chart = ChartRecord {
        name: "web".into(),
        version: "1.0.0".into(),
        archive: digest('c'),
        provenance: None,
        metadata: serde_json::json!({"name": "web", "version": "1.0.0"}),
    };
    let command = |record: ManifestRecord| RepositoryCommand::PushManifest {
        digest: digest('a'),
        record: Box::new(record),
        tag: None,
        missing: vec![],
        policy: charts_only,
    };
    let mut chart_record = record();
    chart_record.chart = Some(chart);
    assert_eq!(
        decide(&RepositoryState::default(), command(chart_record)).map(|e| e.len()),
        Ok(1)
    );
    let mut signature = record();
    signature.subject = Some(digest('b'));
    assert_eq!(
        decide(&RepositoryState::default(), command(signature)).map(|e| e.len()),
        Ok(1)
    );
}

#[test]
fn a_manifest_with_missing_references_is_refused() {
    repository()
        .given([])
        .when(RepositoryCommand::PushManifest {
            digest: digest('a'),
            record: Box::new(record()),
            tag: None,
            missing: vec![digest('f')],
            policy: PushPolicy::default(),
        })
        .then_refused(RepositoryError::ReferencesMissing(vec![digest('f')]));
}

#[test]
fn deleting_a_manifest_deletes_the_tags_pointing_at_it() {
    let state = repository()
        .given([
            pushed('a'),
            RepositoryEvent::TagMoved {
                tag: tag("v1"),
                digest: digest('a'),
            },
            RepositoryEvent::TagMoved {
                tag: tag("latest"),
                digest: digest('a'),
            },
        ])
        .when(RepositoryCommand::DeleteManifest {
            digest: digest('a'),
        })
        .then([
            RepositoryEvent::TagDeleted { tag: tag("latest") },
            RepositoryEvent::TagDeleted { tag: tag("v1") },
            RepositoryEvent::ManifestDeleted {
                digest: digest('a'),
            },
        ]);
    assert!(state.tags.is_empty() && state.manifests.is_empty());
}

#[test]
fn deleting_unknown_manifests_or_tags_is_refused_and_a_tag_delete_keeps_the_manifest() {
    repository()
        .given([])
        .when(RepositoryCommand::DeleteManifest {
            digest: digest('a'),
        })
        .then_refused(RepositoryError::ManifestUnknown(digest('a')));
    repository()
        .given([pushed('a')])
        .when(RepositoryCommand::DeleteTag { tag: tag("v1") })
        .then_refused(RepositoryError::TagUnknown(tag("v1")));
    let state = repository()
        .given([
            pushed('a'),
            RepositoryEvent::TagMoved {
                tag: tag("v1"),
                digest: digest('a'),
            },
        ])
        .when(RepositoryCommand::DeleteTag { tag: tag("v1") })
        .then([RepositoryEvent::TagDeleted { tag: tag("v1") }]);
    assert!(state.manifests.contains_key(&digest('a')));
}
