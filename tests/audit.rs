//! Audit and history over real HTTP, on both backends: the event log with its filters, a
//! resource's history through deletes and re-creations, reads as of a time, and the live
//! stream with resumption, also across two instances on one PostgreSQL.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::app::{Db, SseReader, TestApp};

on_both_backends!(
    the_log_is_filtered_by_kind_name_type_actor_time_and_position,
    a_history_reads_through_delete_and_recreate_with_what_changed,
    a_proxy_history_shows_what_its_url_was_and_never_a_secret,
    a_resource_can_be_read_as_it_stood_at_a_time,
    the_live_stream_resumes_after_the_last_event_id,
    audit_needs_the_audit_scope,
);

async fn post(app: &TestApp, token: &str, path: &str, body: Value) {
    let response = app.call_as(token, "POST", path, Some(body), &[]).await;
    assert_eq!(response.status, 201, "{}", response.text);
}

async fn patch(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app.call("PATCH", path, Some(body)).await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.body
}

fn types(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_log_is_filtered_by_kind_name_type_actor_time_and_position(app: TestApp) {
    let alice = app.token("alice", "admin");
    let bob = app.token("bob", "admin");
    post(
        &app,
        &alice,
        "/api/v1/registries",
        json!({"name": "alpha", "package_type": "DOCKER"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    post(
        &app,
        &bob,
        "/api/v1/upstream-proxies",
        json!({"key": "hub", "package_type": "DOCKER", "source": "DOCKER_HUB",
        "auth": {"type": "USERNAME_PASSWORD", "username": "u", "password": "pw-never-shown"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let changed = app
        .call_as(
            &bob,
            "PATCH",
            "/api/v1/registries/alpha",
            Some(json!({"labels": ["x"], "upstreams": ["hub"]})),
            &[("X-Request-Id", "change-1")],
        )
        .await;
    assert_eq!(changed.status, 200);

    let all = app.call("GET", "/api/v1/events", None).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(
        types(&all.body),
        [
            "RegistryCreated",
            "UpstreamProxyCreated",
            "RegistryLabelled",
            "RegistryUpstreamsSet"
        ]
    );
    let first = &all.body["items"][0];
    assert_eq!(first["resource_kind"], "REGISTRY");
    assert_eq!(first["resource_name"], "alpha");
    assert_eq!(first["resource_version"], 1);
    assert_eq!(first["actor"], "alice");
    assert_eq!(first["data"]["name"], "alpha");
    let proxy = &all.body["items"][1];
    assert_eq!(
        proxy["data"]["auth"],
        json!({"type": "USERNAME_PASSWORD", "username": "u", "password_set": true})
    );
    assert!(!all.text.contains("pw-never-shown") && !all.text.contains("secret_id"));
    assert_eq!(all.body["items"][2]["correlation_id"], "change-1");

    let get = |query: &'static str| {
        let app = &app;
        async move {
            app.call("GET", &format!("/api/v1/events?{query}"), None)
                .await
                .body
        }
    };
    assert_eq!(
        types(&get("resource_kind=UPSTREAM_PROXY").await),
        ["UpstreamProxyCreated"]
    );
    assert_eq!(
        types(&get("resource_kind=REGISTRY&resource_name=alpha").await).len(),
        3
    );
    assert_eq!(
        types(&get("type=RegistryLabelled&type=UpstreamProxyCreated").await),
        ["UpstreamProxyCreated", "RegistryLabelled"]
    );
    assert_eq!(types(&get("actor=alice").await), ["RegistryCreated"]);
    let second_at = all.body["items"][1]["recorded_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let since = app
        .call(
            "GET",
            &format!("/api/v1/events?since={}", urlencode(&second_at)),
            None,
        )
        .await;
    assert_eq!(types(&since.body).len(), 3, "{}", since.text);
    let until = app
        .call(
            "GET",
            &format!("/api/v1/events?until={}", urlencode(&second_at)),
            None,
        )
        .await;
    assert_eq!(
        types(&until.body),
        ["RegistryCreated", "UpstreamProxyCreated"]
    );

    let page = get("limit=2").await;
    assert_eq!(types(&page).len(), 2);
    let token = page["next_page_token"]
        .as_str()
        .expect("a full page has a next token")
        .to_owned();
    let rest = app
        .call(
            "GET",
            &format!("/api/v1/events?limit=2&page_token={token}"),
            None,
        )
        .await;
    assert_eq!(
        types(&rest.body),
        ["RegistryLabelled", "RegistryUpstreamsSet"]
    );
    let position = all.body["items"][2]["position"].as_u64().unwrap();
    let after = app
        .call("GET", &format!("/api/v1/events?after={position}"), None)
        .await;
    assert_eq!(types(&after.body), ["RegistryUpstreamsSet"]);

    for bad in [
        "limit=0",
        "limit=5000",
        "after=minus",
        "since=yesterday",
        "resource_kind=TABLE",
    ] {
        let response = app
            .call("GET", &format!("/api/v1/events?{bad}"), None)
            .await;
        assert_eq!(response.status, 400, "{bad}: {}", response.text);
    }
}

async fn a_history_reads_through_delete_and_recreate_with_what_changed(app: TestApp) {
    let alice = app.admin();
    post(
        &app,
        &alice,
        "/api/v1/registries",
        json!({"name": "team", "package_type": "DOCKER", "description": "first"}),
    )
    .await;
    patch(
        &app,
        "/api/v1/registries/team",
        json!({"description": "second"}),
    )
    .await;
    assert_eq!(
        app.call("DELETE", "/api/v1/registries/team", None)
            .await
            .status,
        204
    );
    let deleted = app
        .call("GET", "/api/v1/registries/team/history", None)
        .await;
    assert_eq!(
        deleted.status, 200,
        "history outlives the resource: {}",
        deleted.text
    );
    post(
        &app,
        &alice,
        "/api/v1/registries",
        json!({"name": "team", "package_type": "HELM"}),
    )
    .await;

    let history = app
        .call("GET", "/api/v1/registries/team/history", None)
        .await;
    let items = history.body["items"].as_array().unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| i["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "RegistryCreated",
            "RegistryDescribed",
            "RegistryDeleted",
            "RegistryCreated"
        ]
    );
    let versions: Vec<u64> = items
        .iter()
        .map(|i| i["event"]["resource_version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    assert_eq!(items[1]["event"]["actor"], "alice");
    assert_eq!(
        items[1]["changes"],
        json!([{"field": "description", "before": "first", "after": "second"}])
    );
    let deletion = items[2]["changes"].as_array().unwrap();
    assert!(
        deletion.iter().all(|c| c["after"].is_null()),
        "{deletion:?}"
    );
    let recreated = items[3]["changes"].as_array().unwrap();
    assert!(
        recreated
            .iter()
            .any(|c| c["field"] == "package_type" && c["after"] == "HELM")
    );

    let first_page = app
        .call("GET", "/api/v1/registries/team/history?limit=3", None)
        .await;
    assert_eq!(first_page.body["items"].as_array().unwrap().len(), 3);
    let token = first_page.body["next_page_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_page = app
        .call(
            "GET",
            &format!("/api/v1/registries/team/history?limit=3&page_token={token}"),
            None,
        )
        .await;
    assert_eq!(second_page.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(second_page.body["next_page_token"], Value::Null);

    let unknown = app
        .call("GET", "/api/v1/registries/never/history", None)
        .await;
    assert_eq!(
        (unknown.status, unknown.body["message"].as_str()),
        (404, Some("registry never has no history"))
    );
}

async fn a_proxy_history_shows_what_its_url_was_and_never_a_secret(app: TestApp) {
    post(
        &app,
        &app.admin(),
        "/api/v1/upstream-proxies",
        json!({"key": "mirror", "package_type": "DOCKER",
        "source": "CUSTOM", "url": "https://old.example.com",
        "auth": {"type": "USERNAME_PASSWORD", "username": "u", "password": "first-secret"}}),
    )
    .await;
    patch(
        &app,
        "/api/v1/upstream-proxies/mirror",
        json!({"url": "https://new.example.com"}),
    )
    .await;
    patch(&app, "/api/v1/upstream-proxies/mirror", json!({"auth": {"type": "USERNAME_PASSWORD", "username": "u", "password": "second-secret"}})).await;
    let history = app
        .call("GET", "/api/v1/upstream-proxies/mirror/history", None)
        .await;
    assert_eq!(history.status, 200);
    let items = history.body["items"].as_array().unwrap();
    assert_eq!(items[1]["event"]["type"], "UpstreamProxyRemoteChanged");
    assert_eq!(
        items[1]["changes"],
        json!([{"field": "remote",
            "before": {"source": "CUSTOM", "url": "https://old.example.com/"},
            "after": {"source": "CUSTOM", "url": "https://new.example.com/"}}])
    );
    assert_eq!(items[2]["event"]["type"], "UpstreamProxyCredentialsRotated");
    for secret in ["first-secret", "second-secret", "secret_id"] {
        assert!(
            !history.text.contains(secret),
            "{secret} in {}",
            history.text
        );
    }
}

async fn a_resource_can_be_read_as_it_stood_at_a_time(app: TestApp) {
    let created = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "team", "package_type": "DOCKER", "labels": ["v1"]})),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let changed = patch(&app, "/api/v1/registries/team", json!({"labels": ["v2"]})).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        app.call("DELETE", "/api/v1/registries/team", None)
            .await
            .status,
        204
    );
    let history = app
        .call("GET", "/api/v1/registries/team/history", None)
        .await;
    let times: Vec<String> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"]["recorded_at"].as_str().unwrap().to_owned())
        .collect();
    let created_at =
        time::OffsetDateTime::parse(&times[0], &time::format_description::well_known::Rfc3339)
            .unwrap();
    let before = (created_at - time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();

    let read = |at: String| {
        let app = &app;
        async move {
            app.call(
                "GET",
                &format!("/api/v1/registries/team?as_of={}", urlencode(&at)),
                None,
            )
            .await
        }
    };
    let too_early = read(before).await;
    assert_eq!(too_early.status, 404, "{}", too_early.text);
    assert!(
        too_early.body["message"]
            .as_str()
            .unwrap()
            .contains("did not exist at")
    );
    let first = read(times[0].clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body, created.body);
    let second = read(times[1].clone()).await;
    assert_eq!(second.body["labels"], json!(["v2"]));
    assert_eq!(second.body, changed);
    assert_eq!(second.header("etag"), Some("\"2\""));
    assert_eq!(read(times[2].clone()).await.status, 404, "deleted by then");
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(read(now).await.status, 404);
    let reader = app.token("r", "registry:read");
    let forbidden = app
        .call_as(
            &reader,
            "GET",
            &format!("/api/v1/registries/team?as_of={}", urlencode(&times[0])),
            None,
            &[],
        )
        .await;
    assert_eq!(forbidden.status, 403, "as_of needs audit:read");
}

async fn open_stream(app: &TestApp, headers: &[(&str, &str)], query: &str) -> SseReader {
    let mut request = app
        .client
        .get(app.url(&format!("/api/v1/events/stream{query}")))
        .bearer_auth(app.admin());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader::new(response)
}

async fn the_live_stream_resumes_after_the_last_event_id(app: TestApp) {
    for name in ["one", "two"] {
        app.call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": name, "package_type": "DOCKER"})),
        )
        .await;
    }
    let mut stream = open_stream(&app, &[], "?after=0").await;
    let first = stream
        .next(Duration::from_secs(10))
        .await
        .expect("the first event");
    assert_eq!(
        (first.event.as_str(), first.data["resource_name"].as_str()),
        ("RegistryCreated", Some("one"))
    );
    assert_eq!(first.id, first.data["position"].to_string());
    drop(stream);

    // Changes while disconnected are not lost on resumption, and nothing comes twice.
    app.call(
        "POST",
        "/api/v1/registries",
        Some(json!({"name": "three", "package_type": "DOCKER"})),
    )
    .await;
    let mut resumed = open_stream(&app, &[("Last-Event-ID", &first.id)], "").await;
    let mut names = Vec::new();
    for _ in 0..2 {
        let event = resumed
            .next(Duration::from_secs(10))
            .await
            .expect("a resumed event");
        names.push(event.data["resource_name"].as_str().unwrap().to_owned());
    }
    assert_eq!(names, ["two", "three"]);
    // A live change arrives while connected.
    app.call(
        "PATCH",
        "/api/v1/registries/three",
        Some(json!({"labels": ["live"]})),
    )
    .await;
    let live = resumed
        .next(Duration::from_secs(10))
        .await
        .expect("a live event");
    assert_eq!(live.event, "RegistryLabelled");
    assert!(
        resumed.next(Duration::from_millis(300)).await.is_none(),
        "nothing more"
    );

    // Without a position, the stream starts at now.
    let mut fresh = open_stream(&app, &[], "?resource_kind=REGISTRY").await;
    assert!(fresh.next(Duration::from_millis(300)).await.is_none());
    app.call("DELETE", "/api/v1/registries/one", None).await;
    let deleted = fresh
        .next(Duration::from_secs(10))
        .await
        .expect("the delete");
    assert_eq!(deleted.event, "RegistryDeleted");
}

async fn audit_needs_the_audit_scope(app: TestApp) {
    let reader = app.token("r", "registry:read registry:write");
    for path in [
        "/api/v1/events",
        "/api/v1/events/stream",
        "/api/v1/registries/x/history",
        "/api/v1/upstream-proxies/x/history",
    ] {
        let response = app.call_as(&reader, "GET", path, None, &[]).await;
        assert_eq!(response.status, 403, "{path}");
    }
    let auditor = app.token("a", "audit:read");
    assert_eq!(
        app.call_as(&auditor, "GET", "/api/v1/events", None, &[])
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_instance_appears_on_a_stream_of_another() {
    let first = TestApp::spawn(Db::Postgres).await;
    let second = first.sibling().await;
    let mut stream = open_stream(&second, &[], "").await;
    // Give the stream a moment to subscribe before the change.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let created = first
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "shared", "package_type": "DOCKER"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let started = std::time::Instant::now();
    let event = stream
        .next(Duration::from_secs(10))
        .await
        .expect("the change reached the other instance");
    assert_eq!(event.data["resource_name"], "shared");
    // Woken by NOTIFY, not by the periodic re-read.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

fn urlencode(text: &str) -> String {
    text.replace(':', "%3A").replace('+', "%2B")
}
