//! The control-plane REST API over real HTTP, on both backends: the whole flow for registries
//! and upstream proxies, every validation rule, authentication, concurrency and secrecy.

mod support;

use berth::event_store::{EventFilter, StreamId};
use serde_json::{Value, json};
use support::app::{Db, TestApp, now, sign, sign_with};

on_both_backends!(
    registries_can_be_created_read_listed_changed_and_deleted,
    upstream_proxies_can_be_created_read_changed_and_deleted,
    names_and_keys_are_validated_with_a_message_naming_the_rule,
    upstream_proxy_settings_are_validated,
    registries_and_proxies_share_one_namespace,
    lists_filter_sort_and_page,
    each_authentication_failure_is_refused,
    fifty_concurrent_creates_of_one_name_make_exactly_one_registry,
    a_proxy_password_never_leaves_the_server,
    changes_record_the_actor_and_request_id,
    a_create_retried_with_its_idempotency_key_returns_the_first_response,
);

fn docker_hub(key: &str) -> Value {
    json!({
        "key": key, "package_type": "DOCKER", "source": "DOCKER_HUB",
        "auth": {"type": "USERNAME_PASSWORD", "username": "bot", "password": "hunter2"}
    })
}

async fn registries_can_be_created_read_listed_changed_and_deleted(app: TestApp) {
    assert_eq!(
        app.call("POST", "/api/v1/upstream-proxies", Some(docker_hub("hub")))
            .await
            .status,
        201
    );
    let created = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({
                "name": "team-images", "package_type": "DOCKER",
                "description": "Team images", "labels": ["prod"], "upstreams": ["hub"]
            })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.header("location"),
        Some("/api/v1/registries/team-images")
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(created.body["upstreams"], json!(["hub"]));
    assert_eq!(created.body["version"], 1);
    assert!(created.body["created_at"].as_str().unwrap().ends_with('Z'));

    let read = app
        .call("GET", "/api/v1/registries/team-images", None)
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, created.body);
    let cached = app
        .call_as(
            &app.admin(),
            "GET",
            "/api/v1/registries/team-images",
            None,
            &[("If-None-Match", "\"1\"")],
        )
        .await;
    assert_eq!(cached.status, 304);

    let list = app.call("GET", "/api/v1/registries", None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["next_page_token"], Value::Null);

    let changed = app
        .call_as(
            &app.admin(),
            "PATCH",
            "/api/v1/registries/team-images",
            Some(json!({"description": null, "labels": ["prod", "eu"]})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.header("etag"), Some("\"3\""));
    assert_eq!(changed.body["description"], Value::Null);
    assert_eq!(changed.body["labels"], json!(["prod", "eu"]));
    assert_eq!(
        changed.body["upstreams"],
        json!(["hub"]),
        "fields not sent stay"
    );
    assert_eq!(changed.body["created_at"], created.body["created_at"]);

    let stale = app
        .call_as(
            &app.admin(),
            "PATCH",
            "/api/v1/registries/team-images",
            Some(json!({"upstreams": []})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.body["code"], "PRECONDITION_FAILED");
    assert!(
        stale.body["message"]
            .as_str()
            .unwrap()
            .contains("version 3"),
        "{}",
        stale.text
    );

    let unchanged = app
        .call(
            "PATCH",
            "/api/v1/registries/team-images",
            Some(json!({"labels": ["prod", "eu"]})),
        )
        .await;
    assert_eq!(
        unchanged.header("etag"),
        Some("\"3\""),
        "a no-op records nothing"
    );

    let stale_delete = app
        .call_as(
            &app.admin(),
            "DELETE",
            "/api/v1/registries/team-images",
            None,
            &[("If-Match", "\"2\"")],
        )
        .await;
    assert_eq!(stale_delete.status, 412);
    let deleted = app
        .call("DELETE", "/api/v1/registries/team-images", None)
        .await;
    assert_eq!(deleted.status, 204);
    let gone = app
        .call("GET", "/api/v1/registries/team-images", None)
        .await;
    assert_eq!(
        (gone.status, gone.body["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    assert_eq!(
        app.call("DELETE", "/api/v1/registries/team-images", None)
            .await
            .status,
        404
    );
    assert_eq!(
        app.call("PATCH", "/api/v1/registries/team-images", Some(json!({})))
            .await
            .status,
        404
    );

    // The name can be used again, and its history runs on in the same stream.
    let again = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "team-images", "package_type": "HELM"})),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["version"], 5);
}

async fn upstream_proxies_can_be_created_read_changed_and_deleted(app: TestApp) {
    let hub = app
        .call("POST", "/api/v1/upstream-proxies", Some(docker_hub("hub")))
        .await;
    assert_eq!(hub.status, 201, "{}", hub.text);
    assert_eq!(hub.header("location"), Some("/api/v1/upstream-proxies/hub"));
    assert_eq!(
        hub.body["auth"],
        json!({"type": "USERNAME_PASSWORD", "username": "bot", "password_set": true})
    );
    assert_eq!(hub.body["source"], "DOCKER_HUB");
    assert_eq!(hub.body["url"], Value::Null);
    assert_eq!(hub.body["cache"]["tag_ttl_seconds"], 300);

    let charts = app
        .call(
            "POST",
            "/api/v1/upstream-proxies",
            Some(json!({
                "key": "charts", "package_type": "HELM", "url": "https://charts.example.com/stable",
                "labels": ["vendor"], "cache": {"tag_ttl_seconds": 60}
            })),
        )
        .await;
    assert_eq!(charts.status, 201, "{}", charts.text);
    assert_eq!(
        charts.body["auth"],
        json!({"type": "ANONYMOUS", "password_set": false}),
        "a field without a value is left out"
    );
    assert_eq!(charts.body["source"], Value::Null);

    let moved = app
        .call(
            "PATCH",
            "/api/v1/upstream-proxies/hub",
            Some(json!({"source": "CUSTOM", "url": "http://127.0.0.1:5000",
                        "auth": {"type": "USERNAME_PASSWORD", "username": "robot"}})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.body["source"], "CUSTOM");
    assert_eq!(moved.body["url"], "http://127.0.0.1:5000/");
    assert_eq!(moved.body["auth"]["username"], "robot");
    assert_eq!(
        moved.body["auth"]["password_set"], true,
        "the stored password is kept"
    );
    assert_eq!(moved.body["version"], 3);

    let anonymous = app
        .call(
            "PATCH",
            "/api/v1/upstream-proxies/hub",
            Some(json!({"auth": {"type": "ANONYMOUS"}})),
        )
        .await;
    assert_eq!(anonymous.body["auth"]["password_set"], false);
    let needs_password = app
        .call(
            "PATCH",
            "/api/v1/upstream-proxies/hub",
            Some(json!({"auth": {"type": "USERNAME_PASSWORD", "username": "bot"}})),
        )
        .await;
    assert_eq!(needs_password.status, 400);
    assert_eq!(needs_password.body["field"], "auth.password");

    let registry = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "team", "package_type": "HELM", "upstreams": ["charts"]})),
        )
        .await;
    assert_eq!(registry.status, 201, "{}", registry.text);
    let in_use = app
        .call("DELETE", "/api/v1/upstream-proxies/charts", None)
        .await;
    assert_eq!(in_use.status, 409);
    assert_eq!(in_use.body["code"], "IN_USE");
    assert!(
        in_use.body["message"].as_str().unwrap().contains("team"),
        "{}",
        in_use.text
    );

    let detached = app
        .call(
            "PATCH",
            "/api/v1/registries/team",
            Some(json!({"upstreams": []})),
        )
        .await;
    assert_eq!(detached.status, 200);
    assert_eq!(
        app.call("DELETE", "/api/v1/upstream-proxies/charts", None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.call("GET", "/api/v1/upstream-proxies/charts", None)
            .await
            .status,
        404
    );
    let list = app.call("GET", "/api/v1/upstream-proxies", None).await;
    let keys: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["hub"]);
}

async fn names_and_keys_are_validated_with_a_message_naming_the_rule(app: TestApp) {
    let cases = [
        ("", "must not be empty"),
        ("1team", "must start with a lowercase letter"),
        ("Team", "may contain only lowercase letters"),
        ("team/images", "may contain only lowercase letters"),
        ("team-", "must end with a lowercase letter or digit"),
        ("team..images", "must not contain \"..\""),
        ("team._x", "must not contain \"._\""),
    ];
    for (name, rule) in cases {
        let response = app
            .call(
                "POST",
                "/api/v1/registries",
                Some(json!({"name": name, "package_type": "DOCKER"})),
            )
            .await;
        assert_eq!(response.status, 400, "{name:?}: {}", response.text);
        assert_eq!(response.body["code"], "NAME_INVALID", "{name:?}");
        assert_eq!(response.body["field"], "name", "{name:?}");
        let message = response.body["message"].as_str().unwrap();
        assert!(
            message.starts_with("name ") && message.contains(rule),
            "{name:?}: {message}"
        );
    }
    let long = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "a".repeat(256), "package_type": "DOCKER"})),
        )
        .await;
    assert_eq!(long.status, 400);
    let key = app
        .call("POST", "/api/v1/upstream-proxies", Some(docker_hub("Hub")))
        .await;
    assert_eq!((key.status, key.body["field"].as_str()), (400, Some("key")));

    let bad_type = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "ok", "package_type": "NPM"})),
        )
        .await;
    assert_eq!(bad_type.status, 400, "{}", bad_type.text);
    let message = bad_type.body["message"].as_str().unwrap();
    assert!(
        message.contains("PackageType") && message.contains("NPM"),
        "{message}"
    );
    let not_json = app
        .client
        .post(app.url("/api/v1/registries"))
        .bearer_auth(app.admin())
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["code"], "BAD_REQUEST");

    let description = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "ok", "package_type": "DOCKER", "description": "x".repeat(1025)})),
        )
        .await;
    assert_eq!(
        (description.status, description.body["field"].as_str()),
        (400, Some("description"))
    );
    let label = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "ok", "package_type": "DOCKER", "labels": [""]})),
        )
        .await;
    assert_eq!(
        (label.status, label.body["field"].as_str()),
        (400, Some("labels"))
    );

    let unknown = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "ok", "package_type": "DOCKER", "upstreams": ["nowhere"]})),
        )
        .await;
    assert_eq!(unknown.status, 409);
    assert_eq!(unknown.body["code"], "UNKNOWN_UPSTREAM");
    assert_eq!(
        unknown.body["message"],
        "upstream proxy nowhere does not exist"
    );
    app.call(
        "POST",
        "/api/v1/upstream-proxies",
        Some(json!({"key": "charts", "package_type": "HELM", "url": "https://c.example.com"})),
    )
    .await;
    let mismatch = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "ok", "package_type": "DOCKER", "upstreams": ["charts"]})),
        )
        .await;
    assert_eq!(mismatch.status, 409);
    assert_eq!(mismatch.body["code"], "UPSTREAM_TYPE_MISMATCH");
    assert_eq!(mismatch.body["field"], "upstreams");
    assert_eq!(
        app.call("GET", "/api/v1/registries/ok", None).await.status,
        404,
        "nothing was created"
    );

    let page = app
        .call("GET", "/api/v1/registries?page_size=0", None)
        .await;
    assert_eq!(
        (page.status, page.body["field"].as_str()),
        (400, Some("page_size"))
    );
    let token = app
        .call("GET", "/api/v1/registries?page_token=%21%21", None)
        .await;
    assert_eq!(
        (token.status, token.body["field"].as_str()),
        (400, Some("page_token"))
    );
    let if_match = app
        .call_as(
            &app.admin(),
            "PATCH",
            "/api/v1/upstream-proxies/charts",
            Some(json!({})),
            &[("If-Match", "soon")],
        )
        .await;
    assert_eq!(
        (if_match.status, if_match.body["field"].as_str()),
        (400, Some("If-Match"))
    );
}

async fn upstream_proxy_settings_are_validated(app: TestApp) {
    let cases = [
        (
            json!({"key": "p", "package_type": "DOCKER"}),
            "source",
            "needs a source",
        ),
        (
            json!({"key": "p", "package_type": "DOCKER", "source": "CUSTOM"}),
            "url",
            "needs a url",
        ),
        (
            json!({"key": "p", "package_type": "DOCKER", "source": "DOCKER_HUB", "url": "https://x.io"}),
            "url",
            "takes no url",
        ),
        (
            json!({"key": "p", "package_type": "HELM"}),
            "url",
            "needs a url",
        ),
        (
            json!({"key": "p", "package_type": "HELM", "source": "CUSTOM", "url": "https://x.io"}),
            "source",
            "DOCKER upstream proxies only",
        ),
        (
            json!({"key": "p", "package_type": "HELM", "url": "ftp://x.io"}),
            "url",
            "must use http or https",
        ),
        (
            json!({"key": "p", "package_type": "HELM", "url": "charts.example.com"}),
            "url",
            "is not a valid URL",
        ),
        (
            json!({"key": "p", "package_type": "HELM", "url": "https://u:pw@x.io"}),
            "url",
            "must not contain credentials",
        ),
        (
            json!({"key": "p", "package_type": "HELM", "url": "http://"}),
            "url",
            "URL",
        ),
        (
            json!({"key": "p", "package_type": "HELM", "url": "https://x.io", "auth": {"type": "USERNAME_PASSWORD", "password": "x"}}),
            "auth.username",
            "username is required",
        ),
        (
            json!({"key": "p", "package_type": "HELM", "url": "https://x.io", "auth": {"type": "USERNAME_PASSWORD", "username": "u"}}),
            "auth.password",
            "password is required",
        ),
        (
            json!({"key": "p", "package_type": "HELM", "url": "https://x.io", "cache": {"tag_ttl_seconds": 99999999}}),
            "cache.tag_ttl_seconds",
            "at most 2592000",
        ),
    ];
    for (body, field, message) in cases {
        let response = app
            .call("POST", "/api/v1/upstream-proxies", Some(body.clone()))
            .await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        assert_eq!(response.body["field"], field, "{body}: {}", response.text);
        assert!(
            response.body["message"].as_str().unwrap().contains(message),
            "{body}: {}",
            response.text
        );
    }
    assert_eq!(
        app.call("GET", "/api/v1/upstream-proxies/p", None)
            .await
            .status,
        404
    );
    // Credentials are text: a number or a boolean is refused, not turned into a string.
    for auth in [
        json!({"type": "USERNAME_PASSWORD", "username": 42, "password": "x"}),
        json!({"type": "USERNAME_PASSWORD", "username": "u", "password": true}),
    ] {
        let body = json!({"key": "p", "package_type": "HELM", "url": "https://x.io", "auth": auth});
        let response = app
            .call("POST", "/api/v1/upstream-proxies", Some(body))
            .await;
        assert_eq!(response.status, 400, "{auth}: {}", response.text);
    }
}

async fn registries_and_proxies_share_one_namespace(app: TestApp) {
    assert_eq!(
        app.call(
            "POST",
            "/api/v1/upstream-proxies",
            Some(docker_hub("shared"))
        )
        .await
        .status,
        201
    );
    let registry = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "shared", "package_type": "DOCKER"})),
        )
        .await;
    assert_eq!(registry.status, 409);
    assert_eq!(registry.body["code"], "ALREADY_EXISTS");
    assert_eq!(
        registry.body["message"],
        "the name shared is already used by an upstream proxy"
    );
    let twice = app
        .call(
            "POST",
            "/api/v1/upstream-proxies",
            Some(docker_hub("shared")),
        )
        .await;
    assert_eq!(twice.status, 409);
    assert_eq!(
        twice.body["message"],
        "upstream proxy shared already exists"
    );
    assert_eq!(
        app.call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "team", "package_type": "DOCKER"}))
        )
        .await
        .status,
        201
    );
    let proxy = app
        .call("POST", "/api/v1/upstream-proxies", Some(docker_hub("team")))
        .await;
    assert_eq!(proxy.status, 409);
    assert_eq!(
        proxy.body["message"],
        "the name team is already used by a registry"
    );
}

async fn lists_filter_sort_and_page(app: TestApp) {
    for (name, kind, labels) in [
        ("delta", "DOCKER", json!(["prod"])),
        ("alpha", "HELM", json!(["prod", "eu"])),
        ("charlie", "DOCKER", json!([])),
        ("bravo-images", "DOCKER", json!(["eu"])),
    ] {
        let r = app
            .call(
                "POST",
                "/api/v1/registries",
                Some(json!({"name": name, "package_type": kind, "labels": labels})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let names = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = app.call("GET", "/api/v1/registries", None).await;
    assert_eq!(
        names(&all.body),
        ["alpha", "bravo-images", "charlie", "delta"]
    );
    let docker = app
        .call("GET", "/api/v1/registries?package_type=DOCKER", None)
        .await;
    assert_eq!(names(&docker.body), ["bravo-images", "charlie", "delta"]);
    let eu = app.call("GET", "/api/v1/registries?label=eu", None).await;
    assert_eq!(names(&eu.body), ["alpha", "bravo-images"]);
    let search = app
        .call("GET", "/api/v1/registries?search=images", None)
        .await;
    assert_eq!(names(&search.body), ["bravo-images"]);
    let newest = app
        .call("GET", "/api/v1/registries?sort=CREATED_AT&order=DESC", None)
        .await;
    assert_eq!(
        names(&newest.body),
        ["bravo-images", "charlie", "alpha", "delta"]
    );

    let first = app
        .call("GET", "/api/v1/registries?page_size=3", None)
        .await;
    assert_eq!(names(&first.body), ["alpha", "bravo-images", "charlie"]);
    let token = first.body["next_page_token"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = app
        .call(
            "GET",
            &format!("/api/v1/registries?page_size=3&page_token={token}"),
            None,
        )
        .await;
    assert_eq!(names(&second.body), ["delta"]);
    assert_eq!(second.body["next_page_token"], Value::Null);
}

async fn each_authentication_failure_is_refused(app: TestApp) {
    let path = "/api/v1/registries";
    let anonymous = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["code"], "UNAUTHORIZED");

    let claims = |exp: u64| json!({"sub": "mallory", "scope": "admin", "exp": exp});
    let expired = sign(claims(now() - 3600));
    let wrong_key = sign_with(claims(now() + 3600), b"some-other-secret-some-other-secret");
    let header = base64_url(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64_url(&claims(now() + 3600).to_string());
    let alg_none = format!("{header}.{payload}.");
    let no_exp = sign(json!({"sub": "mallory", "scope": "admin"}));
    for (what, token) in [
        ("expired", expired),
        ("wrong signature", wrong_key),
        ("alg none", alg_none),
        ("no exp", no_exp),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let response = app.call_as(&token, "GET", path, None, &[]).await;
        assert_eq!(response.status, 401, "{what}: {}", response.text);
        assert_eq!(response.body["code"], "UNAUTHORIZED", "{what}");
        assert!(response.header("www-authenticate").is_some(), "{what}");
    }

    let reader = app.token("rita", "registry:read");
    assert_eq!(
        app.call_as(&reader, "GET", path, None, &[]).await.status,
        200
    );
    let write = app
        .call_as(
            &reader,
            "POST",
            path,
            Some(json!({"name": "x", "package_type": "DOCKER"})),
            &[],
        )
        .await;
    assert_eq!(write.status, 403);
    assert_eq!(write.body["code"], "FORBIDDEN");
    assert_eq!(
        write.body["message"],
        "the token lacks the registry:write scope"
    );
    let auditor = app.token("ann", "audit:read");
    assert_eq!(
        app.call_as(&auditor, "GET", path, None, &[]).await.status,
        403
    );
    let writer = app.token("wes", "registry:write");
    assert_eq!(
        app.call_as(
            &writer,
            "POST",
            path,
            Some(json!({"name": "x", "package_type": "DOCKER"})),
            &[]
        )
        .await
        .status,
        201
    );
}

async fn fifty_concurrent_creates_of_one_name_make_exactly_one_registry(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let attempts = (0..50).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            app.call(
                "POST",
                "/api/v1/registries",
                Some(json!({"name": "contested", "package_type": "DOCKER"})),
            )
            .await
        })
    });
    let mut statuses: Vec<u16> = Vec::new();
    for response in futures_util::future::join_all(attempts).await {
        let response = response.unwrap();
        if response.status == 409 {
            assert_eq!(
                response.body["message"],
                "registry contested already exists"
            );
        }
        statuses.push(response.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );
    let stream = app
        .backend
        .store()
        .read_stream(&StreamId::new("registry", "contested"), None)
        .await
        .unwrap();
    assert_eq!(stream.len(), 1);
}

async fn a_proxy_password_never_leaves_the_server(app: TestApp) {
    let first = "s3cr3t-pa55-first";
    let second = "s3cr3t-pa55-second";
    let mut body = docker_hub("hub");
    body["auth"]["password"] = json!(first);
    let mut texts = vec![
        app.call("POST", "/api/v1/upstream-proxies", Some(body))
            .await
            .text,
    ];
    texts.push(
        app.call(
            "PATCH",
            "/api/v1/upstream-proxies/hub",
            Some(json!({"auth": {"type": "USERNAME_PASSWORD", "username": "bot", "password": second}})),
        )
        .await
        .text,
    );
    texts.push(
        app.call("GET", "/api/v1/upstream-proxies/hub", None)
            .await
            .text,
    );
    texts.push(app.call("GET", "/api/v1/upstream-proxies", None).await.text);
    for text in &texts {
        assert!(!text.contains(first) && !text.contains(second), "{text}");
        assert!(!text.contains("secret_id"), "{text}");
    }
    let events = app
        .backend
        .store()
        .read_all(0, &EventFilter::default(), 1000)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    for event in events {
        let stored = format!("{} {:?}", event.payload, event.metadata);
        assert!(
            !stored.contains(first) && !stored.contains(second),
            "{stored}"
        );
    }
    // The first password was replaced, so only one sealed secret is left, and it is not plaintext.
    let secret_id = {
        let events = app
            .backend
            .store()
            .read_all(0, &EventFilter::default(), 1000)
            .await
            .unwrap();
        events[1].payload["auth"]["secret_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let sealed = app
        .backend
        .get_secret(secret_id)
        .await
        .unwrap()
        .expect("the current secret");
    assert!(!String::from_utf8_lossy(&sealed.ciphertext).contains(second));
    let first_id = {
        let events = app
            .backend
            .store()
            .read_all(0, &EventFilter::default(), 1000)
            .await
            .unwrap();
        events[0].payload["auth"]["secret_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        app.backend.get_secret(first_id).await.unwrap().is_none(),
        "a rotated secret is forgotten"
    );
    assert_eq!(
        app.call("DELETE", "/api/v1/upstream-proxies/hub", None)
            .await
            .status,
        204
    );
    assert!(
        app.backend.get_secret(secret_id).await.unwrap().is_none(),
        "deleting the proxy deletes its secret"
    );
}

async fn changes_record_the_actor_and_request_id(app: TestApp) {
    let token = app.token("carol", "registry:write registry:read");
    let response = app
        .call_as(
            &token,
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "audited", "package_type": "DOCKER"})),
            &[("X-Request-Id", "req-42")],
        )
        .await;
    assert_eq!(response.status, 201);
    assert_eq!(response.header("x-request-id"), Some("req-42"));
    let generated = app
        .call_as(&token, "GET", "/api/v1/registries", None, &[])
        .await;
    assert!(
        generated
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty())
    );
    let events = app
        .backend
        .store()
        .read_stream(&StreamId::new("registry", "audited"), None)
        .await
        .unwrap();
    assert_eq!(events[0].event_type, "RegistryCreated");
    assert_eq!(events[0].metadata.actor.as_deref(), Some("carol"));
    assert_eq!(events[0].metadata.correlation_id.as_deref(), Some("req-42"));
    assert!(events[0].metadata.command_id.is_some());
}

async fn a_create_retried_with_its_idempotency_key_returns_the_first_response(app: TestApp) {
    let token = app.admin();
    let create = |body: Value, key: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            app.call_as(
                &token,
                "POST",
                "/api/v1/registries",
                Some(body),
                &[("Idempotency-Key", key)],
            )
            .await
        }
    };
    let body = json!({"name": "once", "package_type": "DOCKER", "labels": ["a"]});
    let first = create(body.clone(), "key-1").await;
    assert_eq!(first.status, 201, "{}", first.text);
    // Changed in between: the retry still answers what the first request got.
    app.call(
        "PATCH",
        "/api/v1/registries/once",
        Some(json!({"labels": ["b"]})),
    )
    .await;
    let retry = create(body.clone(), "key-1").await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.header("etag"), Some("\"1\""));
    let other_body = create(json!({"name": "twice", "package_type": "DOCKER"}), "key-1").await;
    assert_eq!(other_body.status, 422, "{}", other_body.text);
    assert_eq!(other_body.body["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        app.call("GET", "/api/v1/registries/twice", None)
            .await
            .status,
        404
    );
    let without_key = app.call("POST", "/api/v1/registries", Some(body)).await;
    assert_eq!(
        without_key.status, 409,
        "without a key a repeat is a conflict"
    );
    let events = app
        .backend
        .store()
        .read_stream(&StreamId::new("registry", "once"), None)
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "one creation, one change");

    // The key belongs to its caller: another subject's identical request is its own command.
    let bob = app.token("bob", "admin");
    let bobs = app
        .call_as(
            &bob,
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "once", "package_type": "DOCKER", "labels": ["a"]})),
            &[("Idempotency-Key", "key-1")],
        )
        .await;
    assert_eq!(bobs.status, 409);

    // Concurrent retries of one proxy creation make one proxy and one stored secret.
    let app = std::sync::Arc::new(app);
    let attempts = (0..8).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            app.call_as(
                &app.admin(),
                "POST",
                "/api/v1/upstream-proxies",
                Some(docker_hub("hub")),
                &[("Idempotency-Key", "proxy-1")],
            )
            .await
        })
    });
    let responses: Vec<_> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        responses.iter().all(|r| r.status == 201),
        "{:?}",
        responses.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert!(responses.iter().all(|r| r.body == responses[0].body));
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn the_committed_openapi_document_is_what_the_code_serves_and_it_validates() {
    let generated = berth::api::spec_yaml();
    let root = env!("CARGO_MANIFEST_DIR");
    let committed = std::fs::read_to_string(format!("{root}/openapi/openapi.yaml")).unwrap();
    assert!(
        generated == committed,
        "openapi/openapi.yaml is out of date; run `make openapi` and commit the result"
    );
    let app = TestApp::spawn(Db::Sqlite).await;
    let served = app
        .client
        .get(app.url("/api/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.text().await.unwrap(), committed);
    let json: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["info"]["title"], "Berth");
    assert_eq!(
        json["components"]["securitySchemes"]["BearerAuth"]["scheme"],
        "bearer"
    );
    let docs = app.client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);

    let validator = format!("{root}/.tools/venv/bin/openapi-spec-validator");
    let output = std::process::Command::new(&validator)
        .arg(format!("{root}/openapi/openapi.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{validator} is needed (run `make test` to install it): {e}"));
    assert!(
        output.status.success(),
        "the OpenAPI document does not validate: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn tokens_of_a_configured_identity_provider_are_accepted_and_confusion_is_not() {
    let fixtures = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let auth = berth::auth::AuthConfig {
        public_keys: vec![
            format!("{fixtures}/rsa-public.pem").into(),
            format!("{fixtures}/ec-public.pem").into(),
        ],
        issuer: Some("https://idp.example.com".into()),
        audience: Some("berth".into()),
        ..Default::default()
    };
    let app = TestApp::spawn_with(Db::Sqlite, auth).await;
    let claims = |iss: &str, aud: &str| json!({"sub": "ext", "scope": "registry:read", "exp": now() + 600, "iss": iss, "aud": aud});
    let signed =
        |algorithm: jsonwebtoken::Algorithm, key: jsonwebtoken::EncodingKey, claims: Value| {
            jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), &claims, &key).unwrap()
        };
    let rsa = || {
        jsonwebtoken::EncodingKey::from_rsa_pem(
            &std::fs::read(format!("{fixtures}/rsa-private.pem")).unwrap(),
        )
        .unwrap()
    };
    let ec = || {
        jsonwebtoken::EncodingKey::from_ec_pem(
            &std::fs::read(format!("{fixtures}/ec-private.pem")).unwrap(),
        )
        .unwrap()
    };
    let good = claims("https://idp.example.com", "berth");
    let path = "/api/v1/registries";
    for (what, token, status) in [
        (
            "RS256",
            signed(jsonwebtoken::Algorithm::RS256, rsa(), good.clone()),
            200,
        ),
        (
            "ES256",
            signed(jsonwebtoken::Algorithm::ES256, ec(), good.clone()),
            200,
        ),
        (
            "wrong issuer",
            signed(
                jsonwebtoken::Algorithm::RS256,
                rsa(),
                claims("https://evil.example.com", "berth"),
            ),
            401,
        ),
        (
            "wrong audience",
            signed(
                jsonwebtoken::Algorithm::ES256,
                ec(),
                claims("https://idp.example.com", "other"),
            ),
            401,
        ),
        (
            "RS256 claimed, EC key",
            {
                let token = signed(jsonwebtoken::Algorithm::ES256, ec(), good.clone());
                let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
                parts[0] = base64_url(r#"{"alg":"RS256","typ":"JWT"}"#);
                parts.join(".")
            },
            401,
        ),
        (
            "HS256 keyed with the public key",
            sign_with(
                good.clone(),
                &std::fs::read(format!("{fixtures}/rsa-public.pem")).unwrap(),
            ),
            401,
        ),
        (
            "server HS256 without issuer",
            sign(json!({"sub": "x", "scope": "admin", "exp": now() + 600})),
            401,
        ),
    ] {
        let response = app.call_as(&token, "GET", path, None, &[]).await;
        assert_eq!(response.status, status, "{what}: {}", response.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_json_bodies_are_refused_before_they_are_read() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let description = "x".repeat(2 * 1024 * 1024);
    // The refused body is drained rather than cut off, so the client reads the 413 every time
    // instead of a broken pipe.
    for _ in 0..5 {
        let response = app
            .call(
                "POST",
                "/api/v1/registries",
                Some(json!({"name": "big", "package_type": "DOCKER", "description": description})),
            )
            .await;
        assert_eq!(response.status, 413, "{}", response.text);
        assert_eq!(response.body["code"], "PAYLOAD_TOO_LARGE");
    }
    // Without a Content-Length (chunked), the limit holds as well.
    for _ in 0..5 {
        let chunks = futures_util::stream::iter(
            (0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])),
        );
        let streamed = app
            .client
            .post(app.url("/api/v1/registries"))
            .bearer_auth(app.admin())
            .header("Content-Type", "application/json")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .expect("the refusal arrives");
        assert_eq!(streamed.status(), 413);
    }
    // A client that waits on `Expect: 100-continue` hears the refusal before it sends a byte.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base_url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/registries HTTP/1.1\r\nHost: berth\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 2000000\r\n\
         Expect: 100-continue\r\n\r\n",
        app.admin()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = [0u8; 32];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read(&mut answer));
    let n = read.await.expect("an answer").unwrap();
    let status_line = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

    let listed = app.call("GET", "/api/v1/registries", None).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_path_does_not_take_gets_405_with_the_allowed_ones() {
    let app = TestApp::spawn(Db::Sqlite).await;
    for (method, path, allowed) in [
        ("PUT", "/api/v1/registries", "GET, POST, HEAD"),
        ("TRACE", "/api/v1/upstream-proxies/hub/stats", "GET, HEAD"),
        ("GET", "/api/v1/upstream-proxies/hub/purge", "POST"),
    ] {
        let response = app.call_as(&app.admin(), method, path, None, &[]).await;
        assert_eq!(response.status, 405, "{method} {path}");
        let allow = response.header("allow").unwrap_or_default();
        let mut got: Vec<&str> = allow.split(", ").collect();
        let mut want: Vec<&str> = allowed.split(", ").collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{method} {path}");
    }
}
