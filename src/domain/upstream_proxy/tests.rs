//! Given/when/then for every upstream-proxy command path.

use uuid::Uuid;

use super::*;
use crate::domain::given::Aggregate;
use crate::domain::{Labels, PackageType, RemoteUrl, ResourceKind};

type Proxies =
    Aggregate<UpstreamProxyState, UpstreamProxyCommand, UpstreamProxyEvent, UpstreamProxyError>;

fn proxies() -> Proxies {
    Aggregate { decide, evolve }
}

fn name(s: &str) -> ResourceName {
    ResourceName::parse(s).unwrap()
}

fn url(s: &str) -> RemoteUrl {
    RemoteUrl::parse(s).unwrap()
}

const SECRET: Uuid = Uuid::from_u128(7);

fn create_docker_hub() -> CreateUpstreamProxy {
    CreateUpstreamProxy {
        key: name("hub"),
        package_type: PackageType::Docker,
        source: Some(DockerSource::DockerHub),
        url: None,
        auth: AuthChange::UsernamePassword {
            username: "bot".into(),
            secret_id: Some(SECRET),
        },
        description: None,
        labels: Labels::default(),
        cache: CacheSettings::default(),
        public: false,
        name_taken_by: None,
    }
}

fn docker_hub_created() -> UpstreamProxyEvent {
    UpstreamProxyEvent::Created {
        key: name("hub"),
        package_type: PackageType::Docker,
        remote: Remote {
            source: Some(DockerSource::DockerHub),
            url: None,
        },
        auth: ProxyAuth::UsernamePassword {
            username: "bot".into(),
            secret_id: SECRET,
        },
        description: None,
        labels: Labels::default(),
        cache: CacheSettings::default(),
    }
}

#[test]
fn creating_a_docker_hub_proxy_records_a_secret_reference_not_a_password() {
    proxies()
        .given([])
        .when(UpstreamProxyCommand::Create(create_docker_hub()))
        .then([docker_hub_created()]);
}

#[test]
fn creating_a_helm_proxy_needs_a_url_and_no_source() {
    let helm = CreateUpstreamProxy {
        key: name("charts"),
        package_type: PackageType::Helm,
        source: None,
        url: Some(url("https://charts.example.com/stable")),
        auth: AuthChange::Anonymous,
        ..create_docker_hub()
    };
    let state = proxies()
        .given([])
        .when(UpstreamProxyCommand::Create(helm.clone()))
        .then([UpstreamProxyEvent::Created {
            key: name("charts"),
            package_type: PackageType::Helm,
            remote: Remote {
                source: None,
                url: Some(url("https://charts.example.com/stable")),
            },
            auth: ProxyAuth::Anonymous,
            description: None,
            labels: Labels::default(),
            cache: CacheSettings::default(),
        }]);
    assert_eq!(state.map(|p| p.auth), Some(ProxyAuth::Anonymous));
    proxies()
        .given([])
        .when(UpstreamProxyCommand::Create(CreateUpstreamProxy {
            url: None,
            ..helm.clone()
        }))
        .then_refused(UpstreamProxyError::UrlRequired(PackageType::Helm));
    proxies()
        .given([])
        .when(UpstreamProxyCommand::Create(CreateUpstreamProxy {
            source: Some(DockerSource::Custom),
            ..helm
        }))
        .then_refused(UpstreamProxyError::SourceNotForHelm);
}

#[test]
fn docker_sources_and_urls_must_agree() {
    let cases = [
        (None, None, UpstreamProxyError::SourceRequired),
        (
            Some(DockerSource::DockerHub),
            Some(url("https://r.example.com")),
            UpstreamProxyError::UrlNotForDockerHub,
        ),
        (
            Some(DockerSource::Custom),
            None,
            UpstreamProxyError::UrlRequired(PackageType::Docker),
        ),
    ];
    for (source, url, refusal) in cases {
        proxies()
            .given([])
            .when(UpstreamProxyCommand::Create(CreateUpstreamProxy {
                source,
                url,
                ..create_docker_hub()
            }))
            .then_refused(refusal);
    }
}

#[test]
fn creating_without_a_password_or_over_an_existing_name_is_refused() {
    proxies()
        .given([])
        .when(UpstreamProxyCommand::Create(CreateUpstreamProxy {
            auth: AuthChange::UsernamePassword {
                username: "bot".into(),
                secret_id: None,
            },
            ..create_docker_hub()
        }))
        .then_refused(UpstreamProxyError::PasswordRequired);
    proxies()
        .given([docker_hub_created()])
        .when(UpstreamProxyCommand::Create(create_docker_hub()))
        .then_refused(UpstreamProxyError::AlreadyExists(name("hub")));
    proxies()
        .given([])
        .when(UpstreamProxyCommand::Create(CreateUpstreamProxy {
            name_taken_by: Some(ResourceKind::Registry),
            ..create_docker_hub()
        }))
        .then_refused(UpstreamProxyError::NameTaken(
            name("hub"),
            ResourceKind::Registry,
        ));
}

#[test]
fn moving_to_a_custom_source_records_the_new_remote() {
    proxies()
        .given([docker_hub_created()])
        .when(UpstreamProxyCommand::Update(UpdateUpstreamProxy {
            source: Some(DockerSource::Custom),
            url: Some(url("http://127.0.0.1:5000")),
            ..Default::default()
        }))
        .then([UpstreamProxyEvent::RemoteChanged {
            remote: Remote {
                source: Some(DockerSource::Custom),
                url: Some(url("http://127.0.0.1:5000")),
            },
        }]);
}

#[test]
fn a_new_username_keeps_the_stored_password_and_a_new_password_rotates_it() {
    let fresh = Uuid::from_u128(8);
    proxies()
        .given([docker_hub_created()])
        .when(UpstreamProxyCommand::Update(UpdateUpstreamProxy {
            auth: Some(AuthChange::UsernamePassword {
                username: "robot".into(),
                secret_id: None,
            }),
            ..Default::default()
        }))
        .then([UpstreamProxyEvent::CredentialsRotated {
            auth: ProxyAuth::UsernamePassword {
                username: "robot".into(),
                secret_id: SECRET,
            },
        }]);
    proxies()
        .given([docker_hub_created()])
        .when(UpstreamProxyCommand::Update(UpdateUpstreamProxy {
            auth: Some(AuthChange::UsernamePassword {
                username: "bot".into(),
                secret_id: Some(fresh),
            }),
            ..Default::default()
        }))
        .then([UpstreamProxyEvent::CredentialsRotated {
            auth: ProxyAuth::UsernamePassword {
                username: "bot".into(),
                secret_id: fresh,
            },
        }]);
}

#[test]
fn switching_from_anonymous_to_a_user_needs_a_password() {
    let anonymous = UpstreamProxyEvent::CredentialsRotated {
        auth: ProxyAuth::Anonymous,
    };
    proxies()
        .given([docker_hub_created(), anonymous])
        .when(UpstreamProxyCommand::Update(UpdateUpstreamProxy {
            auth: Some(AuthChange::UsernamePassword {
                username: "bot".into(),
                secret_id: None,
            }),
            ..Default::default()
        }))
        .then_refused(UpstreamProxyError::PasswordRequired);
}

#[test]
fn a_public_proxy_records_its_visibility_and_can_be_made_private() {
    let state = proxies()
        .given([])
        .when(UpstreamProxyCommand::Create(CreateUpstreamProxy {
            public: true,
            ..create_docker_hub()
        }))
        .then([
            docker_hub_created(),
            UpstreamProxyEvent::VisibilityChanged { public: true },
        ]);
    assert!(state.as_ref().unwrap().public);
    let state = proxies()
        .given([
            docker_hub_created(),
            UpstreamProxyEvent::VisibilityChanged { public: true },
        ])
        .when(UpstreamProxyCommand::Update(UpdateUpstreamProxy {
            public: Some(false),
            ..Default::default()
        }))
        .then([UpstreamProxyEvent::VisibilityChanged { public: false }]);
    assert!(!state.unwrap().public);
    proxies()
        .given([docker_hub_created()])
        .when(UpstreamProxyCommand::Update(UpdateUpstreamProxy {
            public: Some(false),
            ..Default::default()
        }))
        .then([]);
}

#[test]
fn description_labels_and_cache_changes_are_recorded_only_when_different() {
    let cache = CacheSettings {
        tag_ttl_seconds: 60,
    };
    proxies()
        .given([docker_hub_created()])
        .when(UpstreamProxyCommand::Update(UpdateUpstreamProxy {
            description: Some(Some("mirror".into())),
            labels: Some(Labels::default()),
            cache: Some(cache),
            ..Default::default()
        }))
        .then([
            UpstreamProxyEvent::Described {
                description: Some("mirror".into()),
            },
            UpstreamProxyEvent::CacheConfigured { cache },
        ]);
    proxies()
        .given([docker_hub_created()])
        .when(UpstreamProxyCommand::Update(UpdateUpstreamProxy {
            cache: Some(CacheSettings {
                tag_ttl_seconds: u32::MAX,
            }),
            ..Default::default()
        }))
        .then_refused(UpstreamProxyError::TagTtlTooLong(u32::MAX));
}

#[test]
fn a_proxy_in_use_cannot_be_deleted_and_names_its_registries() {
    let refusal = UpstreamProxyError::InUse {
        key: name("hub"),
        registries: vec![name("team"), name("ops")],
    };
    assert_eq!(
        refusal.to_string(),
        "upstream proxy hub is used by registries team, ops; remove it from them first"
    );
    proxies()
        .given([docker_hub_created()])
        .when(UpstreamProxyCommand::Delete {
            used_by: vec![name("team"), name("ops")],
        })
        .then_refused(refusal);
}

#[test]
fn deleting_an_unused_proxy_ends_its_life_and_a_missing_one_is_refused() {
    let state = proxies()
        .given([docker_hub_created()])
        .when(UpstreamProxyCommand::Delete { used_by: vec![] })
        .then([UpstreamProxyEvent::Deleted {}]);
    assert_eq!(state, None);
    proxies()
        .given([])
        .when(UpstreamProxyCommand::Update(UpdateUpstreamProxy::default()))
        .then_refused(UpstreamProxyError::NotFound);
    proxies()
        .given([docker_hub_created(), UpstreamProxyEvent::Deleted {}])
        .when(UpstreamProxyCommand::Delete { used_by: vec![] })
        .then_refused(UpstreamProxyError::NotFound);
}

#[test]
fn stored_events_never_hold_a_password_field() {
    let (event_type, payload) = crate::domain::stored::to_stored(&docker_hub_created());
    assert_eq!(event_type, "UpstreamProxyCreated");
    assert_eq!(
        payload["auth"],
        serde_json::json!({"type": "USERNAME_PASSWORD", "username": "bot",
            "secret_id": "00000000-0000-0000-0000-000000000007"})
    );
    assert!(!payload.to_string().contains("password\""));
}
