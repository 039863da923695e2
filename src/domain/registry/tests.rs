//! Given/when/then for every registry command path.

use super::*;
use crate::domain::given::Aggregate;
use crate::domain::{Labels, PackageType, ResourceKind};

fn registries() -> Aggregate<RegistryState, RegistryCommand, RegistryEvent, RegistryError> {
    Aggregate { decide, evolve }
}

fn name(s: &str) -> ResourceName {
    ResourceName::parse(s).unwrap()
}

fn catalog() -> UpstreamCatalog {
    [
        (name("hub"), PackageType::Docker),
        (name("quay"), PackageType::Docker),
        (name("charts"), PackageType::Helm),
    ]
    .into_iter()
    .collect()
}

fn create(upstreams: &[&str]) -> CreateRegistry {
    CreateRegistry {
        name: name("team"),
        package_type: PackageType::Docker,
        description: Some("team images".into()),
        labels: Labels::parse(&["prod"]).unwrap(),
        upstreams: upstreams.iter().map(|u| name(u)).collect(),
        public: false,
        allow_overwrite: false,
        known_upstreams: catalog(),
        name_taken_by: None,
    }
}

fn created(upstreams: &[&str]) -> RegistryEvent {
    RegistryEvent::Created {
        name: name("team"),
        package_type: PackageType::Docker,
        description: Some("team images".into()),
        labels: Labels::parse(&["prod"]).unwrap(),
        upstreams: upstreams.iter().map(|u| name(u)).collect(),
    }
}

fn update() -> UpdateRegistry {
    UpdateRegistry {
        known_upstreams: catalog(),
        ..Default::default()
    }
}

#[test]
fn creating_a_new_registry_records_it_with_its_upstreams_in_order() {
    let state = registries()
        .given([])
        .when(RegistryCommand::Create(create(&["quay", "hub"])))
        .then([created(&["quay", "hub"])]);
    assert_eq!(state.unwrap().upstreams, [name("quay"), name("hub")]);
}

#[test]
fn creating_a_registry_that_exists_is_refused() {
    registries()
        .given([created(&[])])
        .when(RegistryCommand::Create(create(&[])))
        .then_refused(RegistryError::AlreadyExists(name("team")));
}

#[test]
fn creating_a_registry_under_a_proxy_key_is_refused() {
    let mut command = create(&[]);
    command.name_taken_by = Some(ResourceKind::UpstreamProxy);
    registries()
        .given([])
        .when(RegistryCommand::Create(command))
        .then_refused(RegistryError::NameTaken(
            name("team"),
            ResourceKind::UpstreamProxy,
        ));
}

#[test]
fn a_registry_can_be_created_again_after_it_was_deleted() {
    registries()
        .given([created(&[]), RegistryEvent::Deleted {}])
        .when(RegistryCommand::Create(create(&["hub"])))
        .then([created(&["hub"])]);
}

#[test]
fn an_unknown_upstream_is_refused() {
    registries()
        .given([])
        .when(RegistryCommand::Create(create(&["nowhere"])))
        .then_refused(RegistryError::UnknownUpstream(name("nowhere")));
}

#[test]
fn an_upstream_of_another_package_type_is_refused() {
    registries()
        .given([])
        .when(RegistryCommand::Create(create(&["charts"])))
        .then_refused(RegistryError::UpstreamTypeMismatch {
            key: name("charts"),
            expected: PackageType::Docker,
            actual: PackageType::Helm,
        });
}

#[test]
fn an_upstream_listed_twice_is_refused() {
    registries()
        .given([])
        .when(RegistryCommand::Create(create(&["hub", "hub"])))
        .then_refused(RegistryError::UpstreamListedTwice(name("hub")));
}

#[test]
fn an_update_records_only_what_changed() {
    let command = UpdateRegistry {
        description: Some(Some("team images".into())),
        labels: Some(Labels::parse(&["prod", "eu"]).unwrap()),
        upstreams: Some(vec![name("hub"), name("quay")]),
        ..update()
    };
    registries()
        .given([created(&["quay", "hub"])])
        .when(RegistryCommand::Update(command))
        .then([
            RegistryEvent::Labelled {
                labels: Labels::parse(&["prod", "eu"]).unwrap(),
            },
            RegistryEvent::UpstreamsSet {
                upstreams: vec![name("hub"), name("quay")],
            },
        ]);
}

#[test]
fn clearing_the_description_is_a_change() {
    let state = registries()
        .given([created(&[])])
        .when(RegistryCommand::Update(UpdateRegistry {
            description: Some(None),
            ..update()
        }))
        .then([RegistryEvent::Described { description: None }]);
    assert_eq!(state.unwrap().description, None);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    registries()
        .given([created(&["hub"])])
        .when(RegistryCommand::Update(UpdateRegistry {
            upstreams: Some(vec![name("hub")]),
            ..update()
        }))
        .then([]);
}

#[test]
fn an_update_with_a_bad_upstream_is_refused() {
    registries()
        .given([created(&[])])
        .when(RegistryCommand::Update(UpdateRegistry {
            upstreams: Some(vec![name("charts")]),
            ..update()
        }))
        .then_refused(RegistryError::UpstreamTypeMismatch {
            key: name("charts"),
            expected: PackageType::Docker,
            actual: PackageType::Helm,
        });
}

#[test]
fn updating_or_deleting_a_missing_registry_is_refused() {
    registries()
        .given([])
        .when(RegistryCommand::Update(update()))
        .then_refused(RegistryError::NotFound);
    registries()
        .given([created(&[]), RegistryEvent::Deleted {}])
        .when(RegistryCommand::Delete)
        .then_refused(RegistryError::NotFound);
}

#[test]
fn deleting_a_registry_ends_its_life() {
    let state = registries()
        .given([created(&[])])
        .when(RegistryCommand::Delete)
        .then([RegistryEvent::Deleted {}]);
    assert_eq!(state, None);
}

#[test]
fn events_keep_their_stored_names_and_shapes() {
    use crate::domain::stored::{from_stored, to_stored};
    let (event_type, payload) = to_stored(&created(&["hub"]));
    assert_eq!(event_type, "RegistryCreated");
    assert_eq!(
        payload,
        serde_json::json!({
            "name": "team", "package_type": "DOCKER", "description": "team images",
            "labels": ["prod"], "upstreams": ["hub"]
        })
    );
    let back: RegistryEvent = from_stored(&event_type, 1, &payload).unwrap();
    assert_eq!(back, created(&["hub"]));
    let (deleted, payload) = to_stored(&RegistryEvent::Deleted {});
    assert_eq!(
        (deleted.as_str(), payload),
        ("RegistryDeleted", serde_json::json!({}))
    );
    assert!(from_stored::<RegistryEvent>("RegistryCreated", 2, &serde_json::json!({})).is_err());
}

#[test]
fn a_public_registry_records_its_visibility_and_can_be_made_private() {
    let state = registries()
        .given([])
        .when(RegistryCommand::Create(CreateRegistry {
            public: true,
            ..create(&[])
        }))
        .then([
            created(&[]),
            RegistryEvent::VisibilityChanged { public: true },
        ]);
    assert!(state.as_ref().unwrap().public);
    let state = registries()
        .given([
            created(&[]),
            RegistryEvent::VisibilityChanged { public: true },
        ])
        .when(RegistryCommand::Update(UpdateRegistry {
            public: Some(false),
            ..update()
        }))
        .then([RegistryEvent::VisibilityChanged { public: false }]);
    assert!(!state.unwrap().public);
    registries()
        .given([created(&[])])
        .when(RegistryCommand::Update(UpdateRegistry {
            public: Some(false),
            ..update()
        }))
        .then([]);
}

#[test]
fn a_registry_may_allow_overwriting_from_creation_or_later() {
    let state = registries()
        .given([])
        .when(RegistryCommand::Create(CreateRegistry {
            allow_overwrite: true,
            ..create(&[])
        }))
        .then([
            created(&[]),
            RegistryEvent::OverwritePolicySet {
                allow_overwrite: true,
            },
        ]);
    assert!(state.unwrap().allow_overwrite);
    let state = registries()
        .given([created(&[])])
        .when(RegistryCommand::Update(UpdateRegistry {
            allow_overwrite: Some(true),
            ..update()
        }))
        .then([RegistryEvent::OverwritePolicySet {
            allow_overwrite: true,
        }]);
    assert!(state.unwrap().allow_overwrite);
    registries()
        .given([created(&[])])
        .when(RegistryCommand::Update(UpdateRegistry {
            allow_overwrite: Some(false),
            ..update()
        }))
        .then([]);
}
