//! Helm registries over real HTTP: the classic chart repository (index.yaml, archives, the
//! ChartMuseum API) on both backends, and the real helm client, v3 and v4, using it and the
//! OCI API, with charts crossing from one protocol to the other.

mod support;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::app::{Db, Response, TestApp};
use support::helm::{Helm, StaticRepository, archive, chart, write};

on_both_backends!(
    uploads_are_checked_and_each_refusal_says_why,
    a_version_is_immutable_until_deleted_unless_the_registry_allows_overwriting,
    the_index_lists_versions_newest_first_and_honours_etags,
    archives_and_provenance_files_are_served_by_file_name,
    the_chartmuseum_api_lists_and_deletes_versions,
    reads_and_writes_need_the_right_credentials,
    a_helm_registry_holds_only_charts_and_chart_pushes_are_audited,
);

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

async fn registry(app: &TestApp, name: &str, package_type: &str, extra: Value) {
    let mut body = json!({"name": name, "package_type": package_type});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    let response = app.call("POST", "/api/v1/registries", Some(body)).await;
    assert_eq!(response.status, 201, "{}", response.text);
}

async fn helm_registry(app: &TestApp, name: &str) {
    registry(app, name, "HELM", json!({})).await;
}

/// Uploads a raw archive with `token`.
async fn upload_as(app: &TestApp, token: &str, registry: &str, bytes: Vec<u8>) -> Response {
    let response = app
        .client
        .post(app.url(&format!("/helm/{registry}/api/charts")))
        .bearer_auth(token)
        .header("Content-Type", "application/gzip")
        .body(bytes)
        .send()
        .await
        .unwrap();
    Response::from(response).await
}

async fn upload(app: &TestApp, registry: &str, bytes: Vec<u8>) -> Response {
    upload_as(app, &app.admin(), registry, bytes).await
}

/// Uploads a multipart form (`chart` and optionally `prov`), as `helm cm-push` does.
async fn upload_form(
    app: &TestApp,
    registry: &str,
    chart: Vec<u8>,
    prov: Option<&str>,
) -> Response {
    let mut form = reqwest::multipart::Form::new().part(
        "chart",
        reqwest::multipart::Part::bytes(chart).file_name("chart.tgz"),
    );
    if let Some(prov) = prov {
        form = form.part(
            "prov",
            reqwest::multipart::Part::bytes(prov.as_bytes().to_vec()).file_name("chart.tgz.prov"),
        );
    }
    let response = app
        .client
        .post(app.url(&format!("/helm/{registry}/api/charts")))
        .bearer_auth(app.admin())
        .multipart(form)
        .send()
        .await
        .unwrap();
    Response::from(response).await
}

async fn get(app: &TestApp, path: &str) -> Response {
    app.call_as(&app.admin(), "GET", path, None, &[]).await
}

async fn index(app: &TestApp, registry: &str) -> Value {
    let response = get(app, &format!("/helm/{registry}/index.yaml")).await;
    assert_eq!(response.status, 200, "{}", response.text);
    serde_yaml_ng::from_str(&response.text).unwrap()
}

fn versions(index: &Value, chart: &str) -> Vec<String> {
    index["entries"][chart]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["version"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_refused(response: &Response, status: u16, needle: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    let message = response.body["error"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

async fn uploads_are_checked_and_each_refusal_says_why(app: TestApp) {
    helm_registry(&app, "charts").await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"not a gzip stream".to_vec(),
            "not a gzip-compressed tar archive",
        ),
        (
            archive(&[("web/values.yaml", "a: 1\n")]),
            "no Chart.yaml in its top directory",
        ),
        (
            archive(&[("web/Chart.yaml", "name: [unclosed\n")]),
            "Chart.yaml is invalid",
        ),
        (
            archive(&[("web/Chart.yaml", "apiVersion: v2\nname: web\n")]),
            "Chart.yaml needs a version",
        ),
        (
            archive(&[(
                "web/Chart.yaml",
                "apiVersion: v2\nname: web\nversion: v1.0\n",
            )]),
            "chart version \"v1.0\" is not SemVer 2",
        ),
        (
            archive(&[(
                "web/Chart.yaml",
                "apiVersion: v2\nname: web\nversion: 1.0\n",
            )]),
            "chart version \"1.0\" is not SemVer 2",
        ),
        (
            archive(&[(
                "other/Chart.yaml",
                "apiVersion: v2\nname: web\nversion: 1.0.0\n",
            )]),
            "top directory \"other\" does not match the chart name \"web\"",
        ),
        (
            archive(&[(
                "Web/Chart.yaml",
                "apiVersion: v2\nname: Web\nversion: 1.0.0\n",
            )]),
            "chart name \"Web\" may contain only lowercase letters",
        ),
    ];
    for (bytes, needle) in cases {
        assert_refused(&upload(&app, "charts", bytes).await, 400, needle);
    }
    let no_chart_field = app
        .client
        .post(app.url("/helm/charts/api/charts"))
        .bearer_auth(app.admin())
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_refused(
        &Response::from(no_chart_field).await,
        400,
        "no \"chart\" field",
    );
    // Nothing refused was stored.
    assert_eq!(index(&app, "charts").await["entries"], json!({}));

    let response = upload(&app, "charts", chart("web", "1.0.0", "")).await;
    assert_eq!(response.status, 201, "{}", response.text);
    assert_eq!(response.body, json!({"saved": true}));

    registry(&app, "images", "DOCKER", json!({})).await;
    assert_refused(
        &upload(&app, "images", chart("web", "1.0.0", "")).await,
        404,
        "registry images is a Docker registry",
    );
    assert_refused(
        &upload(&app, "nowhere", chart("web", "1.0.0", "")).await,
        404,
        "there is no registry nowhere",
    );
}

async fn a_version_is_immutable_until_deleted_unless_the_registry_allows_overwriting(app: TestApp) {
    helm_registry(&app, "charts").await;
    let first = chart("web", "1.0.0", "");
    let second = chart("web", "1.0.0", "keywords: [changed]\n");
    assert_eq!(upload(&app, "charts", first.clone()).await.status, 201);
    for bytes in [first.clone(), second.clone()] {
        assert_refused(
            &upload(&app, "charts", bytes).await,
            409,
            "chart web version 1.0.0 already exists in registry charts",
        );
    }
    let digest = |index: &Value| index["entries"]["web"][0]["digest"].clone();
    assert_eq!(
        digest(&index(&app, "charts").await),
        json!(sha256_hex(&first))
    );

    let deleted = app
        .call("DELETE", "/helm/charts/api/charts/web/1.0.0", None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body, json!({"deleted": true}));
    assert_eq!(index(&app, "charts").await["entries"], json!({}));
    assert_eq!(upload(&app, "charts", second.clone()).await.status, 201);
    assert_eq!(
        digest(&index(&app, "charts").await),
        json!(sha256_hex(&second))
    );

    // A registry that allows overwriting takes a new archive for an existing version.
    registry(&app, "scratch", "HELM", json!({"allow_overwrite": true})).await;
    assert_eq!(upload(&app, "scratch", first.clone()).await.status, 201);
    assert_eq!(upload(&app, "scratch", second.clone()).await.status, 201);
    let scratch = index(&app, "scratch").await;
    assert_eq!(versions(&scratch, "web"), ["1.0.0"]);
    assert_eq!(digest(&scratch), json!(sha256_hex(&second)));
    // And the policy can be changed later.
    let changed = app
        .call(
            "PATCH",
            "/api/v1/registries/scratch",
            Some(json!({"allow_overwrite": false})),
        )
        .await;
    assert_eq!(
        changed.body["allow_overwrite"],
        json!(false),
        "{}",
        changed.text
    );
    assert_eq!(upload(&app, "scratch", first.clone()).await.status, 409);

    // A registry deleted takes its charts with it: created again, it starts empty.
    let archive_path = "/helm/charts/charts/web-1.0.0.tgz";
    assert_eq!(get(&app, archive_path).await.status, 200);
    let dropped = app.call("DELETE", "/api/v1/registries/charts", None).await;
    assert_eq!(dropped.status, 204, "{}", dropped.text);
    helm_registry(&app, "charts").await;
    assert_eq!(index(&app, "charts").await["entries"], json!({}));
    assert_eq!(get(&app, archive_path).await.status, 404);
    assert_eq!(upload(&app, "charts", first.clone()).await.status, 201);
    assert_eq!(
        digest(&index(&app, "charts").await),
        json!(sha256_hex(&first))
    );
}

async fn the_index_lists_versions_newest_first_and_honours_etags(app: TestApp) {
    helm_registry(&app, "charts").await;
    let empty = get(&app, "/helm/charts/index.yaml").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.header("content-type"), Some("application/x-yaml"));
    let parsed: Value = serde_yaml_ng::from_str(&empty.text).unwrap();
    assert_eq!(parsed["apiVersion"], "v1");
    assert_eq!(parsed["entries"], json!({}));

    let extra = "home: https://example.org\nkeywords: [web, http]\nmaintainers:\n  - name: Ann\n    email: ann@example.org\nsources: [https://example.org/src]\nannotations:\n  team: platform\nkubeVersion: \">=1.25.0\"\ntype: application\ndeprecated: false\nicon: https://example.org/icon.png\ndependencies:\n  - name: db\n    version: 1.x.x\n    repository: https://charts.example.org\n";
    let mut archives = std::collections::BTreeMap::new();
    for version in ["1.0.0", "1.10.0", "1.2.0-rc.1", "1.2.0", "1.9.0+build.7"] {
        let bytes = chart("web", version, extra);
        let response = upload(&app, "charts", bytes.clone()).await;
        assert_eq!(response.status, 201, "{}", response.text);
        archives.insert(version, bytes);
    }
    assert_eq!(
        upload(&app, "charts", chart("api", "0.1.0", ""))
            .await
            .status,
        201
    );

    let response = get(&app, "/helm/charts/index.yaml").await;
    let etag = response.header("etag").unwrap().to_owned();
    let index: Value = serde_yaml_ng::from_str(&response.text).unwrap();
    assert_eq!(
        versions(&index, "web"),
        ["1.10.0", "1.9.0+build.7", "1.2.0", "1.2.0-rc.1", "1.0.0"]
    );
    assert_eq!(versions(&index, "api"), ["0.1.0"]);
    let entry = &index["entries"]["web"][0];
    assert_eq!(entry["name"], "web");
    assert_eq!(entry["apiVersion"], "v2");
    assert_eq!(entry["appVersion"], "1.0");
    assert_eq!(entry["description"], "The web chart");
    assert_eq!(entry["home"], "https://example.org");
    assert_eq!(entry["icon"], "https://example.org/icon.png");
    assert_eq!(entry["keywords"], json!(["web", "http"]));
    assert_eq!(entry["maintainers"][0]["email"], "ann@example.org");
    assert_eq!(entry["sources"], json!(["https://example.org/src"]));
    assert_eq!(entry["annotations"]["team"], "platform");
    assert_eq!(entry["kubeVersion"], ">=1.25.0");
    assert_eq!(entry["type"], "application");
    assert_eq!(entry["deprecated"], false);
    assert_eq!(entry["dependencies"][0]["name"], "db");
    assert_eq!(entry["urls"], json!(["charts/web-1.10.0.tgz"]));
    assert_eq!(entry["digest"], json!(sha256_hex(&archives["1.10.0"])));
    let created = entry["created"].as_str().unwrap();
    time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339).unwrap();

    // The same index answers 304 to its entity tag, on GET and HEAD.
    for method in ["GET", "HEAD"] {
        let unchanged = app
            .call_as(
                &app.admin(),
                method,
                "/helm/charts/index.yaml",
                None,
                &[("If-None-Match", &etag)],
            )
            .await;
        assert_eq!(unchanged.status, 304, "{method}");
        assert!(unchanged.text.is_empty());
    }
    // An upload changes it, and the old tag no longer matches.
    assert_eq!(
        upload(&app, "charts", chart("api", "0.2.0", ""))
            .await
            .status,
        201
    );
    let changed = app
        .call_as(
            &app.admin(),
            "GET",
            "/helm/charts/index.yaml",
            None,
            &[("If-None-Match", &etag)],
        )
        .await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag").unwrap(), etag);
    let index: Value = serde_yaml_ng::from_str(&changed.text).unwrap();
    assert_eq!(versions(&index, "api"), ["0.2.0", "0.1.0"]);
    // A second instance on the same database renders the same bytes and tag.
    let sibling = app.sibling().await;
    let there = get(&sibling, "/helm/charts/index.yaml").await;
    assert_eq!(there.header("etag"), changed.header("etag"));
    assert_eq!(there.text, changed.text);
}

async fn archives_and_provenance_files_are_served_by_file_name(app: TestApp) {
    helm_registry(&app, "charts").await;
    let web = chart("my-app", "2.0.0-beta.1", "");
    let prov = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nname: my-app\n";
    let response = upload_form(&app, "charts", web.clone(), Some(prov)).await;
    assert_eq!(response.status, 201, "{}", response.text);

    let archive = app
        .client
        .get(app.url("/helm/charts/charts/my-app-2.0.0-beta.1.tgz"))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(archive.status(), 200);
    assert_eq!(archive.headers()["content-type"], "application/gzip");
    assert_eq!(archive.bytes().await.unwrap().as_ref(), web.as_slice());
    let signed = get(&app, "/helm/charts/charts/my-app-2.0.0-beta.1.tgz.prov").await;
    assert_eq!(signed.status, 200);
    assert_eq!(signed.text, prov);
    let head = app
        .call_as(
            &app.admin(),
            "HEAD",
            "/helm/charts/charts/my-app-2.0.0-beta.1.tgz",
            None,
            &[],
        )
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(web.len().to_string().as_str())
    );

    for missing in [
        "/helm/charts/charts/my-app-9.9.9.tgz",
        "/helm/charts/charts/my-app.tgz",
        "/helm/charts/charts/my-app-2.0.0-beta.1.zip",
        "/helm/charts/charts/..%2f..%2fetc-1.0.0.tgz",
    ] {
        assert_refused(&get(&app, missing).await, 404, "is not in registry charts");
    }
    // A chart without a provenance file has none to serve.
    assert_eq!(
        upload(&app, "charts", chart("web", "1.0.0", ""))
            .await
            .status,
        201
    );
    assert_refused(
        &get(&app, "/helm/charts/charts/web-1.0.0.tgz.prov").await,
        404,
        "web-1.0.0.tgz.prov is not in registry charts",
    );
}

async fn the_chartmuseum_api_lists_and_deletes_versions(app: TestApp) {
    helm_registry(&app, "charts").await;
    for (name, version) in [("web", "1.0.0"), ("web", "1.1.0"), ("api", "0.1.0")] {
        assert_eq!(
            upload(&app, "charts", chart(name, version, ""))
                .await
                .status,
            201
        );
    }
    let all = get(&app, "/helm/charts/api/charts").await;
    assert_eq!(all.status, 200);
    let names: Vec<&String> = all.body.as_object().unwrap().keys().collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(all.body["web"][0]["version"], "1.1.0");
    let web = get(&app, "/helm/charts/api/charts/web").await;
    assert_eq!(web.body.as_array().unwrap().len(), 2);
    let one = get(&app, "/helm/charts/api/charts/web/1.0.0").await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["version"], "1.0.0");
    assert_eq!(one.body["urls"], json!(["charts/web-1.0.0.tgz"]));
    assert_refused(
        &get(&app, "/helm/charts/api/charts/nope").await,
        404,
        "chart nope is not in registry charts",
    );
    assert_refused(
        &get(&app, "/helm/charts/api/charts/web/9.9.9").await,
        404,
        "chart web version 9.9.9 is not in registry charts",
    );

    let deleted = app
        .call("DELETE", "/helm/charts/api/charts/web/1.0.0", None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(versions(&index(&app, "charts").await, "web"), ["1.1.0"]);
    assert_eq!(
        get(&app, "/helm/charts/charts/web-1.0.0.tgz").await.status,
        404
    );
    assert_refused(
        &app.call("DELETE", "/helm/charts/api/charts/web/1.0.0", None)
            .await,
        404,
        "chart web version 1.0.0 is not in registry charts",
    );
    let wrong_method = app.call("PUT", "/helm/charts/api/charts", None).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(get(&app, "/helm/charts/elsewhere").await.status, 404);
}

async fn reads_and_writes_need_the_right_credentials(app: TestApp) {
    helm_registry(&app, "charts").await;
    assert_eq!(
        upload(&app, "charts", chart("web", "1.0.0", ""))
            .await
            .status,
        201
    );
    let anonymous = app
        .client
        .get(app.url("/helm/charts/index.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"berth\""
    );
    // An unknown registry looks the same to a stranger.
    let unknown = app
        .client
        .get(app.url("/helm/secret/index.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let forged = app
        .call_as("not-a-token", "GET", "/helm/charts/index.yaml", None, &[])
        .await;
    assert_eq!(forged.status, 401);
    // The token as the password of Basic auth, as `helm repo add --password` sends it.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("ci:{}", app.admin()))
    );
    let with_basic = app
        .client
        .get(app.url("/helm/charts/index.yaml"))
        .header("Authorization", basic)
        .send()
        .await
        .unwrap();
    assert_eq!(with_basic.status(), 200);

    let reader = app.token("bob", "registry:read");
    assert_eq!(
        app.call_as(&reader, "GET", "/helm/charts/index.yaml", None, &[])
            .await
            .status,
        200
    );
    assert_refused(
        &upload_as(&app, &reader, "charts", chart("web", "2.0.0", "")).await,
        403,
        "the token does not allow push in registry charts",
    );
    let delete = app
        .call_as(
            &reader,
            "DELETE",
            "/helm/charts/api/charts/web/1.0.0",
            None,
            &[],
        )
        .await;
    assert_eq!(delete.status, 403);

    // A public registry lets anyone read, and still nobody anonymous write.
    registry(&app, "open", "HELM", json!({"public": true})).await;
    assert_eq!(
        upload(&app, "open", chart("web", "1.0.0", "")).await.status,
        201
    );
    for path in [
        "/helm/open/index.yaml",
        "/helm/open/charts/web-1.0.0.tgz",
        "/helm/open/api/charts",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let anonymous_upload = app
        .client
        .post(app.url("/helm/open/api/charts"))
        .body(chart("web", "2.0.0", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous_upload.status(), 401);
}

/// Pushes `bytes` as a blob of `repository` through `/v2` in one request.
async fn push_blob(app: &TestApp, repository: &str, bytes: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256_hex(bytes));
    let response = app
        .client
        .post(app.url(&format!("/v2/{repository}/blobs/uploads/?digest={digest}")))
        .bearer_auth(app.admin())
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    digest
}

async fn a_helm_registry_holds_only_charts_and_chart_pushes_are_audited(app: TestApp) {
    helm_registry(&app, "charts").await;
    let config = push_blob(&app, "charts/image", b"{}").await;
    let layer = push_blob(&app, "charts/image", b"layer").await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5}],
    });
    let refused = app
        .client
        .put(app.url("/v2/charts/image/manifests/v1"))
        .bearer_auth(app.admin())
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("a Helm registry holds only Helm charts")
    );

    // A chart upload is a manifest push and a tag move in the log.
    assert_eq!(
        upload(&app, "charts", chart("web", "1.0.0", ""))
            .await
            .status,
        201
    );
    let history = get(
        &app,
        "/api/v1/registries/charts/tag-history?image=web&tag=1.0.0",
    )
    .await;
    assert_eq!(history.status, 200, "{}", history.text);
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(history.body["items"][0]["actor"], "alice");
    let manifest = history.body["digest"].as_str().unwrap().to_owned();
    let deleted = app
        .call("DELETE", "/helm/charts/api/charts/web/1.0.0", None)
        .await;
    assert_eq!(deleted.status, 200);
    let history = get(
        &app,
        "/api/v1/registries/charts/tag-history?image=web&tag=1.0.0",
    )
    .await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(history.body["digest"], Value::Null);
    let events = get(&app, "/api/v1/events?limit=100").await;
    let pushed = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "ManifestPushed")
        .expect("the push is in the log")
        .clone();
    assert_eq!(pushed["data"]["digest"], json!(manifest));
    assert_eq!(pushed["data"]["chart"]["name"], "web");
    assert_eq!(pushed["data"]["chart"]["version"], "1.0.0");
}

// The real helm client, v3 and v4.

fn host(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_owned()
}

/// `helm repo add` with credentials, `repo update`, `search repo`, `pull`; `registry login`,
/// `push` and `pull oci://`; a chart crossing each way; `dependency update` from Berth.
async fn the_helm_client_uses_both_protocols(major: u32, db: Db) {
    let app = TestApp::spawn(db).await;
    helm_registry(&app, "charts").await;
    let helm = Helm::new(major);
    for dir in ["pulled", "oci-pulled", "classic", "again"] {
        std::fs::create_dir_all(helm.path(dir)).unwrap();
    }
    let token = app.admin();
    let classic = chart("web", "1.0.0", "");
    let newer = chart("web", "1.1.0", "");
    for bytes in [classic.clone(), newer.clone()] {
        assert_eq!(upload(&app, "charts", bytes).await.status, 201);
    }
    let repo_url = app.url("/helm/charts");

    // Without credentials the repository refuses helm.
    let refused = helm.try_run(&["repo", "add", "anon", &repo_url]);
    assert!(!refused.status.success());
    helm.run(&[
        "repo",
        "add",
        "berth",
        &repo_url,
        "--username",
        "alice",
        "--password",
        &token,
    ]);
    helm.run(&["repo", "update"]);
    let found = helm.run(&["search", "repo", "berth/web", "--versions"]);
    assert!(
        found.contains("berth/web") && found.contains("1.1.0") && found.contains("1.0.0"),
        "{found}"
    );
    helm.run(&[
        "pull",
        "berth/web",
        "--version",
        "1.0.0",
        "--destination",
        "pulled",
    ]);
    assert_eq!(
        std::fs::read(helm.path("pulled/web-1.0.0.tgz")).unwrap(),
        classic
    );

    // OCI: a chart uploaded classically is pullable by OCI, byte for byte.
    let registry_host = host(&app);
    // helm v3 has no --plain-http for login; --insecure lets it fall back to HTTP.
    let plain = if major == 3 {
        "--insecure"
    } else {
        "--plain-http"
    };
    helm.run(&[
        "registry",
        "login",
        &registry_host,
        "--username",
        "alice",
        "--password",
        &token,
        plain,
    ]);
    let oci_repo = format!("oci://{registry_host}/charts");
    helm.run(&[
        "pull",
        &format!("{oci_repo}/web"),
        "--version",
        "1.1.0",
        "--plain-http",
        "--destination",
        "oci-pulled",
    ]);
    assert_eq!(
        std::fs::read(helm.path("oci-pulled/web-1.1.0.tgz")).unwrap(),
        newer
    );

    // A chart pushed by OCI appears in index.yaml and is pullable classically.
    let pushed = chart("api", "0.3.0", "");
    write(&helm.path("api-0.3.0.tgz"), &pushed);
    helm.run(&["push", "api-0.3.0.tgz", &oci_repo, "--plain-http"]);
    let index = index(&app, "charts").await;
    assert_eq!(versions(&index, "api"), ["0.3.0"]);
    assert_eq!(
        index["entries"]["api"][0]["digest"],
        json!(sha256_hex(&pushed))
    );
    helm.run(&["repo", "update"]);
    helm.run(&[
        "pull",
        "berth/api",
        "--version",
        "0.3.0",
        "--destination",
        "classic",
    ]);
    assert_eq!(
        std::fs::read(helm.path("classic/api-0.3.0.tgz")).unwrap(),
        pushed
    );
    helm.run(&[
        "pull",
        &format!("{oci_repo}/api"),
        "--version",
        "0.3.0",
        "--plain-http",
        "--destination",
        "again",
    ]);
    assert_eq!(
        std::fs::read(helm.path("again/api-0.3.0.tgz")).unwrap(),
        pushed
    );
    // Pushing the same version again is refused: chart versions are immutable here.
    let changed = chart("api", "0.3.0", "keywords: [changed]\n");
    write(&helm.path("changed/api-0.3.0.tgz"), &changed);
    let again = helm.try_run(&["push", "changed/api-0.3.0.tgz", &oci_repo, "--plain-http"]);
    assert!(!again.status.success(), "an overwrite by OCI was accepted");

    // `helm dependency update` fetches a dependency that lives in Berth.
    let parent = helm.path("parent");
    write(
        &parent.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: \"~1.0.0\"\n    repository: {repo_url}\n"
        )
        .as_bytes(),
    );
    helm.run(&["dependency", "update", "parent"]);
    assert_eq!(
        std::fs::read(parent.join("charts/web-1.0.0.tgz")).unwrap(),
        classic
    );
    let listed = helm.run(&["dependency", "list", "parent"]);
    assert!(listed.contains("ok"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_v3_uses_the_classic_repository_and_oci() {
    the_helm_client_uses_both_protocols(3, Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_v4_uses_the_classic_repository_and_oci() {
    the_helm_client_uses_both_protocols(4, Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_proxy_serves_a_static_repository_and_keeps_working_when_it_goes_down() {
    let app = TestApp::spawn(Db::Postgres).await;
    let web = chart("web", "1.0.0", "");
    let api = chart("api", "0.1.0", "");
    let never = chart("web", "0.9.0", "");
    let forged = chart("web", "0.5.0", "");
    let files: [(&str, &[u8]); 4] = [
        ("charts/web-1.0.0.tgz", &web),
        ("elsewhere/api-0.1.0.tgz", &api),
        ("charts/web-0.9.0.tgz", &never),
        ("charts/web-0.5.0.tgz", &forged),
    ];
    let (web_digest, api_digest, never_digest) =
        (sha256_hex(&web), sha256_hex(&api), sha256_hex(&never));
    let remote = StaticRepository::start(&files, |base| {
        format!(
            "apiVersion: v1\nentries:\n  web:\n  - {{name: web, version: 1.0.0, apiVersion: v2, digest: {web_digest}, urls: [charts/web-1.0.0.tgz]}}\n  - {{name: web, version: 0.9.0, apiVersion: v2, digest: {never_digest}, urls: [charts/web-0.9.0.tgz]}}\n  - {{name: web, version: 0.5.0, apiVersion: v2, digest: {}, urls: [charts/web-0.5.0.tgz]}}\n  api:\n  - {{name: api, version: 0.1.0, apiVersion: v2, digest: {api_digest}, urls: [\"{base}/elsewhere/api-0.1.0.tgz\"]}}\n",
            "0".repeat(64)
        )
    })
    .await;
    let created = app
        .call(
            "POST",
            "/api/v1/upstream-proxies",
            Some(
                json!({"key": "stable", "package_type": "HELM", "url": remote.base,
                        "cache": {"tag_ttl_seconds": 1}}),
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    registry(&app, "charts", "HELM", json!({"upstreams": ["stable"]})).await;
    assert_eq!(
        upload(&app, "charts", chart("local", "1.0.0", ""))
            .await
            .status,
        201
    );

    // The proxy's index points every chart (relative or absolute upstream) at Berth.
    let proxied = index(&app, "stable").await;
    assert_eq!(
        proxied["entries"]["web"][0]["urls"],
        json!(["charts/web-1.0.0.tgz"])
    );
    assert_eq!(
        proxied["entries"]["api"][0]["urls"],
        json!(["charts/api-0.1.0.tgz"])
    );
    // A registry with the proxy lists its own charts and the upstream's.
    let merged = index(&app, "charts").await;
    let names: Vec<&String> = merged["entries"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["api", "local", "web"]);

    let helm = Helm::new(3);
    std::fs::create_dir_all(helm.path("out")).unwrap();
    let token = app.admin();
    for (name, path) in [("stable", "/helm/stable"), ("merged", "/helm/charts")] {
        helm.run(&[
            "repo",
            "add",
            name,
            &app.url(path),
            "--username",
            "alice",
            "--password",
            &token,
        ]);
    }
    helm.run(&[
        "pull",
        "stable/web",
        "--version",
        "1.0.0",
        "--destination",
        "out",
    ]);
    assert_eq!(std::fs::read(helm.path("out/web-1.0.0.tgz")).unwrap(), web);
    helm.run(&[
        "pull",
        "merged/api",
        "--version",
        "0.1.0",
        "--destination",
        "out",
    ]);
    assert_eq!(std::fs::read(helm.path("out/api-0.1.0.tgz")).unwrap(), api);
    // An archive that does not match its index's digest is refused, not served.
    let forged_pull = get(&app, "/helm/stable/charts/web-0.5.0.tgz").await;
    assert_eq!(forged_pull.status, 502, "{}", forged_pull.text);
    assert!(
        forged_pull.body["error"]
            .as_str()
            .unwrap()
            .contains("hashes to")
    );

    // The remote goes away: the cached index and charts still serve.
    drop(remote);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let stale = app
        .call_as(&token, "GET", "/helm/stable/index.yaml", None, &[])
        .await;
    assert_eq!(stale.status, 200);
    assert!(
        stale.header("warning").unwrap().contains("stable"),
        "{:?}",
        stale.headers
    );
    helm.run(&["repo", "update"]);
    std::fs::remove_file(helm.path("out/web-1.0.0.tgz")).unwrap();
    helm.run(&[
        "pull",
        "merged/web",
        "--version",
        "1.0.0",
        "--destination",
        "out",
    ]);
    assert_eq!(std::fs::read(helm.path("out/web-1.0.0.tgz")).unwrap(), web);
    // A chart never fetched cannot be: the error names the proxy.
    let cold = get(&app, "/helm/stable/charts/web-0.9.0.tgz").await;
    assert_eq!(cold.status, 502, "{}", cold.text);
    assert!(
        cold.body["error"]
            .as_str()
            .unwrap()
            .contains("upstream proxy stable")
    );
    // Proxies take no uploads.
    let refused = upload(&app, "stable", chart("web", "2.0.0", "")).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_proxy_purged_moved_or_created_again_asks_its_remote_anew() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let remote = |name: &'static str| async move {
        let archive = chart(name, "1.0.0", "");
        let digest = sha256_hex(&archive);
        let file = format!("charts/{name}-1.0.0.tgz");
        let files: [(&str, &[u8]); 1] = [(&file, &archive)];
        StaticRepository::start(&files, |_| {
            format!(
                "apiVersion: v1\nentries:\n  {name}:\n  - {{name: {name}, version: 1.0.0, apiVersion: v2, digest: {digest}, urls: [{file}]}}\n"
            )
        })
        .await
    };
    let (old, new) = (remote("old").await, remote("new").await);
    let create_proxy = |url: String| {
        let body = json!({"key": "stable", "package_type": "HELM", "url": url,
                          "cache": {"tag_ttl_seconds": 300}});
        let app = &app;
        async move {
            let created = app
                .call("POST", "/api/v1/upstream-proxies", Some(body))
                .await;
            assert_eq!(created.status, 201, "{}", created.text);
        }
    };
    let upstreams = |list: Value| Some(json!({ "upstreams": list }));
    create_proxy(old.base.clone()).await;
    registry(&app, "charts", "HELM", json!({"upstreams": ["stable"]})).await;
    let listed = index(&app, "charts").await;
    assert_eq!(versions(&listed, "old"), ["1.0.0"], "{listed}");
    assert_eq!(
        get(&app, "/helm/charts/charts/old-1.0.0.tgz").await.status,
        200
    );

    // The remote gains a version: within the TTL the cached index stands, until a purge.
    let later = chart("old", "2.0.0", "");
    write(&old.dir.path().join("charts/old-2.0.0.tgz"), &later);
    let listing = std::fs::read_to_string(old.dir.path().join("index.yaml")).unwrap();
    let added = format!(
        "  - {{name: old, version: 2.0.0, apiVersion: v2, digest: {}, urls: [charts/old-2.0.0.tgz]}}\n",
        sha256_hex(&later)
    );
    write(
        &old.dir.path().join("index.yaml"),
        (listing + &added).as_bytes(),
    );
    assert_eq!(versions(&index(&app, "charts").await, "old"), ["1.0.0"]);
    let purged = app
        .call("POST", "/api/v1/upstream-proxies/stable/purge", None)
        .await;
    assert_eq!(purged.status, 200, "{}", purged.text);
    // A remote's versions keep the remote's order.
    let listed = index(&app, "charts").await;
    assert_eq!(versions(&listed, "old"), ["1.0.0", "2.0.0"], "{listed}");

    // Moved to another remote: within the TTL, yet that remote's index.
    let moved = app
        .call(
            "PATCH",
            "/api/v1/upstream-proxies/stable",
            Some(json!({"url": new.base})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let listed = index(&app, "charts").await;
    assert_eq!(versions(&listed, "new"), ["1.0.0"], "{listed}");
    assert!(listed["entries"].get("old").is_none(), "{listed}");
    assert_eq!(
        get(&app, "/helm/charts/charts/new-1.0.0.tgz").await.status,
        200
    );

    // Deleted and created again on the first remote: nothing of the cache is left.
    let detached = app.call("PATCH", "/api/v1/registries/charts", upstreams(json!([])));
    assert_eq!(detached.await.status, 200);
    let deleted = app
        .call("DELETE", "/api/v1/upstream-proxies/stable", None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    create_proxy(old.base.clone()).await;
    let attached = app.call(
        "PATCH",
        "/api/v1/registries/charts",
        upstreams(json!(["stable"])),
    );
    assert_eq!(attached.await.status, 200);
    let listed = index(&app, "charts").await;
    assert_eq!(versions(&listed, "old"), ["1.0.0", "2.0.0"], "{listed}");
    assert!(listed["entries"].get("new").is_none(), "{listed}");
    assert_eq!(
        get(&app, "/helm/charts/charts/new-1.0.0.tgz").await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_in_a_remote_oci_registry_pull_through_a_docker_proxy() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let distribution = support::upstream::Distribution::start(None).await;
    let helm = Helm::new(4);
    let bytes = chart("web", "1.2.0", "");
    write(&helm.path("web-1.2.0.tgz"), &bytes);
    helm.run(&[
        "push",
        "web-1.2.0.tgz",
        &format!("oci://{}/charts", distribution.host),
        "--plain-http",
    ]);
    let created = app
        .call(
            "POST",
            "/api/v1/upstream-proxies",
            Some(
                json!({"key": "ocicharts", "package_type": "DOCKER", "source": "CUSTOM",
                        "url": format!("http://{}", distribution.host)}),
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let berth = host(&app);
    helm.run(&[
        "registry",
        "login",
        &berth,
        "--username",
        "alice",
        "--password",
        &app.admin(),
        "--plain-http",
    ]);
    std::fs::create_dir_all(helm.path("out")).unwrap();
    helm.run(&[
        "pull",
        &format!("oci://{berth}/ocicharts/charts/web"),
        "--version",
        "1.2.0",
        "--plain-http",
        "--destination",
        "out",
    ]);
    assert_eq!(
        std::fs::read(helm.path("out/web-1.2.0.tgz")).unwrap(),
        bytes
    );
}
