//! The OCI Distribution API under `/v2`, over real HTTP on both backends: the real skopeo
//! client pushing and pulling images and indexes, and the spec's endpoints and error codes one
//! by one.

mod support;

use std::process::Command;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::app::{Db, TestApp};
use support::clients::skopeo_ok as skopeo;
use support::oci;

on_both_backends!(
    skopeo_pushes_and_pulls_a_multi_layer_image_with_its_digests,
    skopeo_copies_a_multi_arch_index_whole,
    clients_are_challenged_and_tokens_grant_only_what_scopes_allow,
    the_token_endpoint_takes_oauth2_forms_with_refresh_tokens,
    registry_tokens_cannot_be_stretched_forged_or_used_early,
    blob_uploads_follow_the_spec,
    an_upload_resumes_after_a_restart,
    blobs_are_read_by_range_mounted_and_deleted,
    manifests_are_checked_served_as_pushed_and_deleted,
    tags_catalog_and_referrers_page_and_filter,
    eight_concurrent_pushes_of_one_blob_leave_one_correct_copy,
    a_public_registry_allows_anonymous_pulls_and_nothing_else,
    oras_pushes_pulls_and_attaches_a_referrer,
    the_control_plane_lists_artifacts_and_tells_where_a_tag_pointed,
    a_registry_deleted_and_created_again_starts_empty,
    an_upload_cancelled_elsewhere_is_unknown_here,
);

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

async fn registry(app: &TestApp, name: &str) {
    let response = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": name, "package_type": "DOCKER"})),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
}

fn host(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_owned()
}

fn layout_digest(dir: &std::path::Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

async fn skopeo_pushes_and_pulls_a_multi_layer_image_with_its_digests(app: TestApp) {
    registry(&app, "team").await;
    let source = tempfile::tempdir().unwrap();
    let (manifest, manifest_bytes) = oci::image(source.path(), 7, 3, 200_000, "amd64");
    oci::tag(
        source.path(),
        &manifest,
        "application/vnd.oci.image.manifest.v1+json",
        "v1",
    );
    let creds = format!("alice:{}", app.admin());
    let target = format!("docker://{}/team/app:v1", host(&app));
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:v1", source.path().display()),
        &target,
    ]);

    let out = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &target,
        &format!("oci:{}:v1", out.path().display()),
    ]);
    assert_eq!(
        layout_digest(out.path()),
        manifest.digest,
        "the digest survives the round trip"
    );
    let pulled: Vec<String> = std::fs::read_dir(out.path().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for blob in &pulled {
        let original = std::fs::read(source.path().join("blobs/sha256").join(blob)).unwrap();
        let copy = std::fs::read(out.path().join("blobs/sha256").join(blob)).unwrap();
        assert_eq!(original, copy, "blob {blob}");
    }
    assert_eq!(pulled.len(), 5, "config, three layers and the manifest");

    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &target,
    ]);
    assert_eq!(raw.stdout, manifest_bytes, "served byte for byte as pushed");
    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{}/team/app", host(&app)),
    ]);
    let tags: Value = serde_json::from_slice(&tags.stdout).unwrap();
    assert_eq!(tags["Tags"], json!(["v1"]));
    let inspect = skopeo(&["inspect", "--tls-verify=false", "--creds", &creds, &target]);
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect["Digest"], manifest.digest);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);

    // The push is in the log, attributed to the token's subject.
    let events = app
        .call(
            "GET",
            "/api/v1/events?type=ManifestPushed&type=TagMoved",
            None,
        )
        .await;
    let pushed: Vec<&Value> = events.body["items"].as_array().unwrap().iter().collect();
    assert!(
        pushed
            .iter()
            .any(|e| e["type"] == "TagMoved" && e["data"]["tag"] == "v1"),
        "{}",
        events.text
    );

    skopeo(&["delete", "--tls-verify=false", "--creds", &creds, &target]);
    let gone = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &creds,
            &target,
        ])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "deleted manifests are gone");
}

async fn skopeo_copies_a_multi_arch_index_whole(app: TestApp) {
    registry(&app, "team").await;
    let source = tempfile::tempdir().unwrap();
    let index = oci::multi_arch(source.path());
    oci::tag(
        source.path(),
        &index,
        "application/vnd.oci.image.index.v1+json",
        "multi",
    );
    let creds = format!("alice:{}", app.admin());
    let target = format!("docker://{}/team/multi:latest", host(&app));
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &format!("oci:{}:multi", source.path().display()),
        &target,
    ]);
    let out = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        &creds,
        &target,
        &format!("oci:{}:multi", out.path().display()),
    ]);
    assert_eq!(layout_digest(out.path()), index.digest);
    let head = app
        .client
        .head(app.url("/v2/team/multi/manifests/latest"))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.headers()["content-type"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        head.headers()["docker-content-digest"].to_str().unwrap(),
        index.digest
    );
    // The index, its children and their blobs are whole: fsck finds nothing.
    let (code, report) = app.fsck(&[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["manifests"], 3, "{report:#}");
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

async fn clients_are_challenged_and_tokens_grant_only_what_scopes_allow(app: TestApp) {
    registry(&app, "alpha").await;
    registry(&app, "beta").await;
    let anonymous = app.client.get(app.url("/v2/")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"{}/v2/token\",service=\"berth\"",
            app.base_url
        )
    );
    assert_eq!(
        anonymous.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let pull = app
        .client
        .get(app.url("/v2/alpha/app/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(pull.status(), 401);
    assert!(
        pull.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .ends_with("scope=\"repository:alpha/app:pull\"")
    );
    let body: Value = pull.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");

    // docker login: any user name, a Berth JWT as the password.
    let reader = app.token("rita", "registry:read");
    let ok = app
        .client
        .get(app.url("/v2/"))
        .header("Authorization", basic("rita", &reader))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let bad = app
        .client
        .get(app.url("/v2/token?service=berth"))
        .header("Authorization", basic("x", "not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    let token_for = |credentials: String, scope: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .get(app.url(&format!("/v2/token?service=berth&scope={scope}")))
                .header("Authorization", credentials)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["token"], body["access_token"]);
            assert_eq!(body["expires_in"], 300);
            assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
            body["token"].as_str().unwrap().to_owned()
        }
    };
    let pull_only = token_for(basic("rita", &reader), "repository:alpha/app:pull,push").await;
    let claims = decode_claims(&pull_only);
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "alpha/app", "actions": ["pull"]}])
    );

    let blob = b"layer".to_vec();
    let digest = sha256(&blob);
    let push = |token: String, repo: &'static str| {
        let app = &app;
        let blob = blob.clone();
        let digest = digest.clone();
        async move {
            app.client
                .post(app.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
                .bearer_auth(token)
                .body(blob)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        push(pull_only.clone(), "alpha/app").await,
        401,
        "a pull token cannot push"
    );
    let insufficient = app
        .client
        .post(app.url("/v2/alpha/app/blobs/uploads/"))
        .bearer_auth(&pull_only)
        .send()
        .await
        .unwrap();
    assert_eq!(
        insufficient.headers()["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer realm=\"{}/v2/token\",service=\"berth\",scope=\"repository:alpha/app:pull,push\",error=\"insufficient_scope\"",
            app.base_url
        ),
        "a registry token without the scope is sent back for a new one"
    );
    let writer = app.token("wes", "registry:write");
    let push_token = token_for(basic("wes", &writer), "repository:alpha/app:pull,push").await;
    assert_eq!(push(push_token.clone(), "alpha/app").await, 201);
    assert_eq!(
        push(push_token.clone(), "beta/app").await,
        401,
        "a token for alpha cannot touch beta"
    );
    let denied = app
        .client
        .post(app.url("/v2/alpha/app/blobs/uploads/"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(
        denied.status(),
        403,
        "a read-only Berth token is denied outright"
    );
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    let anonymous_token = app
        .client
        .get(app.url("/v2/token?service=berth&scope=repository:alpha/app:pull"))
        .send()
        .await
        .unwrap();
    let anonymous_token: Value = anonymous_token.json().await.unwrap();
    assert_eq!(
        decode_claims(anonymous_token["token"].as_str().unwrap())["access"][0]["actions"],
        json!([])
    );
}

async fn the_token_endpoint_takes_oauth2_forms_with_refresh_tokens(app: TestApp) {
    registry(&app, "alpha").await;
    let reader = app.token("rita", "registry:read");
    let post = |form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/v2/token"))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post(vec![
        ("grant_type", "password".into()),
        ("username", "rita".into()),
        ("password", reader.clone()),
        ("service", "berth".into()),
        ("client_id", "helm".into()),
        ("access_type", "offline".into()),
        ("scope", "repository:alpha/app:pull,push".into()),
    ])
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "repository:alpha/app:pull,push");
    assert_eq!(
        decode_claims(body["access_token"].as_str().unwrap())["access"],
        json!([{"type": "repository", "name": "alpha/app", "actions": ["pull"]}])
    );
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = post(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh),
        ("service", "berth".into()),
        ("scope", "repository:alpha/app:pull".into()),
    ])
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    let claims = decode_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "rita");
    assert_eq!(claims["access"][0]["actions"], json!(["pull"]));

    let (status, body) = post(vec![
        ("grant_type", "password".into()),
        ("password", "forged".into()),
    ])
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = post(vec![("grant_type", "client_credentials".into())]).await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("grant_type \"client_credentials\" is not supported")
    );
}

async fn registry_tokens_cannot_be_stretched_forged_or_used_early(app: TestApp) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    registry(&app, "alpha").await;
    registry(&app, "beta").await;
    let writer = app.token("wes", "registry:read registry:write");
    let token_for = |scope: &'static str| {
        let (app, writer) = (&app, writer.clone());
        async move {
            let response = app
                .client
                .get(app.url(&format!("/v2/token?service=berth&scope={scope}")))
                .header("Authorization", basic("wes", &writer))
                .send()
                .await
                .unwrap();
            let body: Value = response.json().await.unwrap();
            body["token"].as_str().unwrap().to_owned()
        }
    };
    let upload = |token: String, repository: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&format!("/v2/{repository}/blobs/uploads/")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let alpha = token_for("repository:alpha/app:pull,push").await;
    assert_eq!(upload(alpha.clone(), "alpha/app").await, 202);
    // A token for one repository is worth nothing on another.
    assert_eq!(upload(alpha.clone(), "beta/app").await, 401);
    assert_eq!(upload(alpha.clone(), "alpha/other").await, 401);
    // Widening its access claim breaks its signature.
    let parts: Vec<&str> = alpha.split('.').collect();
    let mut claims = decode_claims(&alpha);
    claims["access"][0]["name"] = json!("beta/app");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(upload(forged, "beta/app").await, 401);
    // A token whose validity starts later is refused until then.
    let early = support::app::sign(json!({
        "sub": "wes", "scope": "registry:write", "nbf": support::app::now() + 600,
        "exp": support::app::now() + 3600,
    }));
    assert_eq!(upload(early, "alpha/app").await, 401);
}

fn decode_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(app.admin())
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn blob_uploads_follow_the_spec(app: TestApp) {
    registry(&app, "team").await;
    let bytes: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
    let digest = sha256(&bytes);

    // Monolithic.
    let mono = send(
        &app,
        "POST",
        &format!("/v2/team/app/blobs/uploads/?digest={digest}"),
        &[],
        bytes.clone(),
    )
    .await;
    assert_eq!(mono.status(), 201);
    assert_eq!(
        mono.headers()["location"],
        format!("/v2/team/app/blobs/{digest}").as_str()
    );
    assert_eq!(mono.headers()["docker-content-digest"], digest.as_str());

    // POST then PUT.
    let started = send(&app, "POST", "/v2/team/two/blobs/uploads/", &[], vec![]).await;
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(started.headers()["range"], "0-0");
    assert!(started.headers().contains_key("docker-upload-uuid"));
    let put = send(
        &app,
        "PUT",
        &format!("{location}?digest={digest}"),
        &[],
        bytes.clone(),
    )
    .await;
    assert_eq!(put.status(), 201);

    // Chunked, with an out-of-order chunk refused and the status read back.
    let started = send(&app, "POST", "/v2/team/three/blobs/uploads/", &[], vec![]).await;
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let first = send(
        &app,
        "PATCH",
        &location,
        &[("Content-Range", "0-99999")],
        bytes[..100_000].to_vec(),
    )
    .await;
    assert_eq!(first.status(), 202);
    assert_eq!(first.headers()["range"], "0-99999");
    let skipped = send(
        &app,
        "PATCH",
        &location,
        &[("Content-Range", "200000-299999")],
        bytes[200_000..].to_vec(),
    )
    .await;
    assert_eq!(skipped.status(), 416);
    assert_eq!(skipped.headers()["range"], "0-99999");
    let status = send(&app, "GET", &location, &[], vec![]).await;
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-99999");
    let second = send(
        &app,
        "PATCH",
        &location,
        &[("Content-Range", "100000-199999")],
        bytes[100_000..200_000].to_vec(),
    )
    .await;
    assert_eq!(second.status(), 202);
    let last = send(
        &app,
        "PUT",
        &format!("{location}?digest={digest}"),
        &[],
        bytes[200_000..].to_vec(),
    )
    .await;
    assert_eq!(last.status(), 201);
    let head = send(
        &app,
        "HEAD",
        &format!("/v2/team/three/blobs/{digest}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "300000");

    // A digest mismatch leaves nothing behind.
    let wrong = sha256(b"something else");
    let mismatch = send(
        &app,
        "POST",
        &format!("/v2/team/four/blobs/uploads/?digest={wrong}"),
        &[],
        bytes.clone(),
    )
    .await;
    assert_eq!(mismatch.status(), 400);
    assert_eq!(error_code(mismatch).await, "DIGEST_INVALID");
    let absent = send(
        &app,
        "HEAD",
        &format!("/v2/team/four/blobs/{wrong}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(absent.status(), 404);
    assert!(
        std::fs::read_dir(app.data_dir.path().join("uploads"))
            .unwrap()
            .all(|e| e.unwrap().file_name().to_string_lossy().starts_with('.'))
    );

    // Cancel, then the session is unknown.
    let started = send(&app, "POST", "/v2/team/five/blobs/uploads/", &[], vec![]).await;
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        send(&app, "DELETE", &location, &[], vec![]).await.status(),
        204
    );
    let unknown = send(&app, "PATCH", &location, &[], b"x".to_vec()).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(error_code(unknown).await, "BLOB_UPLOAD_UNKNOWN");
    let no_digest = send(
        &app,
        "POST",
        "/v2/team/five/blobs/uploads/?digest=sha256:abc",
        &[],
        vec![],
    )
    .await;
    assert_eq!(error_code(no_digest).await, "DIGEST_INVALID");
    let no_registry = send(&app, "POST", "/v2/nowhere/app/blobs/uploads/", &[], vec![]).await;
    assert_eq!(no_registry.status(), 404);
    assert_eq!(error_code(no_registry).await, "NAME_UNKNOWN");
    let bad_name = send(&app, "POST", "/v2/team/Bad/blobs/uploads/", &[], vec![]).await;
    assert_eq!(bad_name.status(), 400);
    assert_eq!(error_code(bad_name).await, "NAME_INVALID");
    // The client resolves the escaped dots, so the server is asked for `/v2/x/tags/list`: a
    // name outside every registry (raw traversals are refused in hostile_paths_…).
    let traversal = send(&app, "GET", "/v2/team/%2e%2e/x/tags/list", &[], vec![]).await;
    assert_eq!(traversal.status(), 404);
    assert_eq!(error_code(traversal).await, "NAME_UNKNOWN");
}

async fn an_upload_resumes_after_a_restart(app: TestApp) {
    registry(&app, "team").await;
    let bytes: Vec<u8> = (0..500_000u32).map(|n| (n % 253) as u8).collect();
    let digest = sha256(&bytes);
    let started = send(&app, "POST", "/v2/team/app/blobs/uploads/", &[], vec![]).await;
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    send(
        &app,
        "PATCH",
        &location,
        &[("Content-Range", "0-249999")],
        bytes[..250_000].to_vec(),
    )
    .await;
    let app = app.restart().await;
    let status = send(&app, "GET", &location, &[], vec![]).await;
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-249999");
    let rest = send(
        &app,
        "PATCH",
        &location,
        &[("Content-Range", "250000-499999")],
        bytes[250_000..].to_vec(),
    )
    .await;
    assert_eq!(rest.status(), 202);
    assert_eq!(
        send(
            &app,
            "PUT",
            &format!("{location}?digest={digest}"),
            &[],
            vec![]
        )
        .await
        .status(),
        201
    );
    let blob = send(
        &app,
        "GET",
        &format!("/v2/team/app/blobs/{digest}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(blob.bytes().await.unwrap().to_vec(), bytes);
}

async fn blobs_are_read_by_range_mounted_and_deleted(app: TestApp) {
    registry(&app, "team").await;
    registry(&app, "other").await;
    let bytes: Vec<u8> = (0..1000u32).map(|n| n as u8).collect();
    let digest = sha256(&bytes);
    send(
        &app,
        "POST",
        &format!("/v2/team/app/blobs/uploads/?digest={digest}"),
        &[],
        bytes.clone(),
    )
    .await;
    let path = format!("/v2/team/app/blobs/{digest}");
    let full = send(&app, "GET", &path, &[], vec![]).await;
    assert_eq!(full.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(full.bytes().await.unwrap().to_vec(), bytes);
    let part = send(&app, "GET", &path, &[("Range", "bytes=10-19")], vec![]).await;
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(part.bytes().await.unwrap().to_vec(), &bytes[10..20]);
    let beyond = send(&app, "GET", &path, &[("Range", "bytes=5000-")], vec![]).await;
    assert_eq!(beyond.status(), 416);
    let elsewhere = send(
        &app,
        "GET",
        &format!("/v2/team/other-app/blobs/{digest}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(
        elsewhere.status(),
        404,
        "a blob is only in the repositories that link it"
    );
    assert_eq!(error_code(elsewhere).await, "BLOB_UNKNOWN");

    let mounted = send(
        &app,
        "POST",
        &format!("/v2/other/app/blobs/uploads/?mount={digest}&from=team/app"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(mounted.status(), 201);
    assert_eq!(
        send(
            &app,
            "HEAD",
            &format!("/v2/other/app/blobs/{digest}"),
            &[],
            vec![]
        )
        .await
        .status(),
        200
    );
    let same_registry = send(
        &app,
        "POST",
        &format!("/v2/team/copy/blobs/uploads/?mount={digest}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(
        same_registry.status(),
        201,
        "mount without from, within the registry"
    );
    let unknown_mount = send(
        &app,
        "POST",
        &format!(
            "/v2/team/app/blobs/uploads/?mount={}&from=team/app",
            sha256(b"nope")
        ),
        &[],
        vec![],
    )
    .await;
    assert_eq!(
        unknown_mount.status(),
        202,
        "an impossible mount starts an upload instead"
    );

    let deleted = send(&app, "DELETE", &path, &[], vec![]).await;
    assert_eq!(deleted.status(), 202);
    assert_eq!(send(&app, "HEAD", &path, &[], vec![]).await.status(), 404);
    assert_eq!(
        send(
            &app,
            "HEAD",
            &format!("/v2/other/app/blobs/{digest}"),
            &[],
            vec![]
        )
        .await
        .status(),
        200
    );
}

async fn push_blob(app: &TestApp, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let response = send(
        app,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
        &[],
        bytes.to_vec(),
    )
    .await;
    assert_eq!(response.status(), 201);
    digest
}

fn image_manifest(
    config: &str,
    config_size: usize,
    layers: &[(String, usize)],
    subject: Option<(&str, usize)>,
    artifact_type: Option<&str>,
) -> Vec<u8> {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": layers.iter().map(|(d, s)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s})).collect::<Vec<_>>(),
    });
    if let Some((digest, size)) = subject {
        manifest["subject"] = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size});
        manifest["annotations"] = json!({"org.example.kind": "signature"});
    }
    if let Some(artifact_type) = artifact_type {
        manifest["artifactType"] = json!(artifact_type);
    }
    serde_json::to_vec_pretty(&manifest).unwrap()
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

async fn manifests_are_checked_served_as_pushed_and_deleted(app: TestApp) {
    registry(&app, "team").await;
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = push_blob(&app, "team/app", config).await;
    let layer_digest = push_blob(&app, "team/app", b"layer bytes").await;
    let manifest = image_manifest(
        &config_digest,
        config.len(),
        &[(layer_digest.clone(), 11)],
        None,
        None,
    );
    let digest = sha256(&manifest);
    let ct = [("Content-Type", OCI_MANIFEST)];

    let missing = image_manifest(
        &config_digest,
        config.len(),
        &[(sha256(b"absent"), 6)],
        None,
        None,
    );
    let refused = send(&app, "PUT", "/v2/team/app/manifests/v1", &ct, missing).await;
    assert_eq!(refused.status(), 404);
    assert_eq!(error_code(refused).await, "MANIFEST_BLOB_UNKNOWN");
    let invalid = send(
        &app,
        "PUT",
        "/v2/team/app/manifests/v1",
        &ct,
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(
        (
            invalid.status().as_u16(),
            error_code(invalid).await.as_str()
        ),
        (400, "MANIFEST_INVALID")
    );
    let wrong_digest = send(
        &app,
        "PUT",
        &format!("/v2/team/app/manifests/{}", sha256(b"x")),
        &ct,
        manifest.clone(),
    )
    .await;
    assert_eq!(error_code(wrong_digest).await, "DIGEST_INVALID");
    let huge = send(
        &app,
        "PUT",
        "/v2/team/app/manifests/huge",
        &ct,
        vec![b' '; 4 * 1024 * 1024 + 1],
    )
    .await;
    assert_eq!(huge.status(), 413);
    let mismatched = send(
        &app,
        "PUT",
        "/v2/team/app/manifests/v1",
        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
        manifest.clone(),
    )
    .await;
    assert_eq!(error_code(mismatched).await, "MANIFEST_INVALID");

    let pushed = send(
        &app,
        "PUT",
        "/v2/team/app/manifests/v1",
        &ct,
        manifest.clone(),
    )
    .await;
    assert_eq!(pushed.status(), 201);
    assert_eq!(pushed.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(
        pushed.headers()["location"],
        format!("/v2/team/app/manifests/{digest}").as_str()
    );
    for reference in ["v1", digest.as_str()] {
        let got = send(
            &app,
            "GET",
            &format!("/v2/team/app/manifests/{reference}"),
            &[("Accept", OCI_MANIFEST)],
            vec![],
        )
        .await;
        assert_eq!(got.status(), 200);
        assert_eq!(got.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(got.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(
            got.bytes().await.unwrap().to_vec(),
            manifest,
            "exact bytes, pretty-printed as pushed"
        );
    }
    let head = send(&app, "HEAD", "/v2/team/app/manifests/v1", &[], vec![]).await;
    assert_eq!(
        head.headers()["content-length"],
        manifest.len().to_string().as_str()
    );
    let unknown = send(&app, "GET", "/v2/team/app/manifests/v2", &[], vec![]).await;
    assert_eq!(
        (
            unknown.status().as_u16(),
            error_code(unknown).await.as_str()
        ),
        (404, "MANIFEST_UNKNOWN")
    );

    send(
        &app,
        "PUT",
        "/v2/team/app/manifests/latest",
        &ct,
        manifest.clone(),
    )
    .await;
    assert_eq!(
        send(&app, "DELETE", "/v2/team/app/manifests/latest", &[], vec![])
            .await
            .status(),
        202
    );
    assert_eq!(
        send(&app, "GET", "/v2/team/app/manifests/latest", &[], vec![])
            .await
            .status(),
        404
    );
    assert_eq!(
        send(&app, "GET", "/v2/team/app/manifests/v1", &[], vec![])
            .await
            .status(),
        200,
        "other tags stay"
    );
    assert_eq!(
        send(
            &app,
            "DELETE",
            &format!("/v2/team/app/manifests/{digest}"),
            &[],
            vec![]
        )
        .await
        .status(),
        202
    );
    assert_eq!(
        send(&app, "GET", "/v2/team/app/manifests/v1", &[], vec![])
            .await
            .status(),
        404,
        "its tags went with it"
    );
    let again = send(
        &app,
        "DELETE",
        &format!("/v2/team/app/manifests/{digest}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(error_code(again).await, "MANIFEST_UNKNOWN");

    // Docker schema 2 manifests are kept and served with their own media type.
    let docker = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer_digest, "size": 11}]
    }))
    .unwrap();
    let docker_type = "application/vnd.docker.distribution.manifest.v2+json";
    let pushed = send(
        &app,
        "PUT",
        "/v2/team/app/manifests/docker",
        &[("Content-Type", docker_type)],
        docker.clone(),
    )
    .await;
    assert_eq!(pushed.status(), 201);
    let got = send(&app, "GET", "/v2/team/app/manifests/docker", &[], vec![]).await;
    assert_eq!(got.headers()["content-type"], docker_type);
    assert_eq!(got.bytes().await.unwrap().to_vec(), docker);
    let unsupported = send(&app, "POST", "/v2/team/app/manifests/docker", &[], vec![]).await;
    assert_eq!(unsupported.status(), 405);
    assert_eq!(error_code(unsupported).await, "UNSUPPORTED");

    let history = app
        .call("GET", "/api/v1/events?resource_name=team/app", None)
        .await;
    assert_eq!(history.status, 200);
    let types: Vec<&str> = app
        .call(
            "GET",
            "/api/v1/events?type=TagMoved&type=TagDeleted&type=ManifestDeleted&type=ManifestPushed",
            None,
        )
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .iter()
        .map(|s| match s.as_str() {
            "ManifestPushed" => "pushed",
            "TagMoved" => "moved",
            "TagDeleted" => "untagged",
            _ => "deleted",
        })
        .collect();
    assert_eq!(
        types,
        [
            "pushed", "moved", "moved", "untagged", "untagged", "deleted", "pushed", "moved"
        ]
    );
}

async fn tags_catalog_and_referrers_page_and_filter(app: TestApp) {
    registry(&app, "team").await;
    registry(&app, "secret").await;
    let config = b"{}";
    let config_digest = push_blob(&app, "team/app", config).await;
    let manifest = image_manifest(&config_digest, 2, &[], None, None);
    let subject = sha256(&manifest);
    let ct = [("Content-Type", OCI_MANIFEST)];
    for tag in ["a", "b", "c", "d"] {
        assert_eq!(
            send(
                &app,
                "PUT",
                &format!("/v2/team/app/manifests/{tag}"),
                &ct,
                manifest.clone()
            )
            .await
            .status(),
            201
        );
    }
    let page = send(&app, "GET", "/v2/team/app/tags/list?n=2", &[], vec![]).await;
    assert_eq!(
        page.headers()["link"],
        "</v2/team/app/tags/list?n=2&last=b>; rel=\"next\""
    );
    let body: Value = page.json().await.unwrap();
    assert_eq!(body, json!({"name": "team/app", "tags": ["a", "b"]}));
    let rest: Value = send(
        &app,
        "GET",
        "/v2/team/app/tags/list?n=2&last=b",
        &[],
        vec![],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(rest["tags"], json!(["c", "d"]));
    let empty: Value = send(&app, "GET", "/v2/team/none/tags/list", &[], vec![])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["tags"], json!([]));

    // A signature and an SBOM refer to the image.
    let signature = image_manifest(
        &config_digest,
        2,
        &[],
        Some((&subject, manifest.len())),
        Some("application/vnd.example.signature"),
    );
    let sbom = image_manifest(
        &config_digest,
        2,
        &[],
        Some((&subject, manifest.len())),
        Some("application/spdx+json"),
    );
    let pushed = send(
        &app,
        "PUT",
        &format!("/v2/team/app/manifests/{}", sha256(&signature)),
        &ct,
        signature.clone(),
    )
    .await;
    assert_eq!(pushed.headers()["oci-subject"], subject.as_str());
    send(
        &app,
        "PUT",
        &format!("/v2/team/app/manifests/{}", sha256(&sbom)),
        &ct,
        sbom.clone(),
    )
    .await;
    let referrers = send(
        &app,
        "GET",
        &format!("/v2/team/app/referrers/{subject}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(
        referrers.headers()["content-type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let index: Value = referrers.json().await.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    let filtered = send(
        &app,
        "GET",
        &format!("/v2/team/app/referrers/{subject}?artifactType=application/spdx%2Bjson"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(filtered.headers()["oci-filters-applied"], "artifactType");
    let index: Value = filtered.json().await.unwrap();
    assert_eq!(
        index["manifests"],
        json!([{"mediaType": OCI_MANIFEST, "digest": sha256(&sbom), "size": sbom.len(),
        "artifactType": "application/spdx+json", "annotations": {"org.example.kind": "signature"}}])
    );
    let none: Value = send(
        &app,
        "GET",
        &format!("/v2/team/app/referrers/{}", sha256(b"n")),
        &[],
        vec![],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(none["manifests"], json!([]));

    // The catalog pages and shows only what the caller may pull.
    let secret_config = push_blob(&app, "secret/app", config).await;
    send(
        &app,
        "PUT",
        "/v2/secret/app/manifests/v1",
        &ct,
        image_manifest(&secret_config, 2, &[], None, None),
    )
    .await;
    let catalog: Value = send(&app, "GET", "/v2/_catalog", &[], vec![])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(catalog["repositories"], json!(["secret/app", "team/app"]));
    let first = send(&app, "GET", "/v2/_catalog?n=1", &[], vec![]).await;
    assert_eq!(
        first.headers()["link"],
        "</v2/_catalog?n=1&last=secret/app>; rel=\"next\""
    );
    let reader = app.token("rita", "registry:read");
    let scoped = app
        .client
        .get(app.url("/v2/token?service=berth&scope=repository:team/app:pull"))
        .header("Authorization", basic("rita", &reader))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let visible: Value = app
        .client
        .get(app.url("/v2/_catalog"))
        .bearer_auth(scoped["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(visible["repositories"], json!(["team/app"]));
}

async fn eight_concurrent_pushes_of_one_blob_leave_one_correct_copy(app: TestApp) {
    registry(&app, "team").await;
    let bytes: Vec<u8> = (0..2_000_000u32)
        .map(|n| (n.wrapping_mul(7) % 256) as u8)
        .collect();
    let digest = sha256(&bytes);
    let app = std::sync::Arc::new(app);
    let pushes = (0..8).map(|i| {
        let (app, bytes, digest) = (app.clone(), bytes.clone(), digest.clone());
        tokio::spawn(async move {
            send(
                &app,
                "POST",
                &format!("/v2/team/app{i}/blobs/uploads/?digest={digest}"),
                &[],
                bytes,
            )
            .await
            .status()
        })
    });
    for status in futures_util::future::join_all(pushes).await {
        assert_eq!(status.unwrap(), 201);
    }
    let hex = digest.trim_start_matches("sha256:");
    let stored = app
        .data_dir
        .path()
        .join("blobs/sha256")
        .join(&hex[..2])
        .join(hex);
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    let copies = std::fs::read_dir(stored.parent().unwrap()).unwrap().count();
    assert_eq!(copies, 1);
    for i in 0..8 {
        let got = send(
            &app,
            "GET",
            &format!("/v2/team/app{i}/blobs/{digest}"),
            &[],
            vec![],
        )
        .await;
        assert_eq!(got.bytes().await.unwrap().len(), bytes.len());
    }
}

async fn a_public_registry_allows_anonymous_pulls_and_nothing_else(app: TestApp) {
    let public = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "open", "package_type": "DOCKER", "public": true})),
        )
        .await;
    assert_eq!(public.body["public"], true);
    registry(&app, "closed").await;
    let source = tempfile::tempdir().unwrap();
    let (manifest, _) = oci::image(source.path(), 3, 1, 10_000, "amd64");
    oci::tag(source.path(), &manifest, OCI_MANIFEST, "v1");
    let creds = format!("alice:{}", app.admin());
    for registry in ["open", "closed"] {
        skopeo(&[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:v1", source.path().display()),
            &format!("docker://{}/{registry}/app:v1", host(&app)),
        ]);
    }
    // skopeo without credentials follows the challenge to an anonymous token.
    let out = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/open/app:v1", host(&app)),
        &format!("oci:{}:v1", out.path().display()),
    ]);
    assert_eq!(layout_digest(out.path()), manifest.digest);
    let anonymous = |path: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(anonymous("/v2/open/app/manifests/v1".into()).await, 200);
    assert_eq!(anonymous("/v2/closed/app/manifests/v1".into()).await, 401);
    assert_eq!(
        anonymous("/v2/nowhere/app/manifests/v1".into()).await,
        401,
        "no hint that a name exists"
    );
    let push = app
        .client
        .post(app.url(&format!(
            "/v2/open/app/blobs/uploads/?digest={}",
            sha256(b"x")
        )))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 401, "anonymous pushes are never allowed");
    let private = app
        .call(
            "PATCH",
            "/api/v1/registries/open",
            Some(json!({"public": false})),
        )
        .await;
    assert_eq!(private.body["public"], false);
    assert_eq!(anonymous("/v2/open/app/manifests/v1".into()).await, 401);
}

async fn oras_pushes_pulls_and_attaches_a_referrer(app: TestApp) {
    registry(&app, "team").await;
    let work = tempfile::tempdir().unwrap();
    let args = [host(&app), app.admin(), "team/artifact".into()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = support::clients::oras_script("oras_roundtrip.py", &args, work.path());
    assert_eq!(report["push_status"], 201);
    assert_eq!(report["attach_status"], 201);
    assert_eq!(report["pulled"], "hello from oras\n");
    let subject = report["subject"].as_str().unwrap();
    let referrers = send(
        &app,
        "GET",
        &format!("/v2/team/artifact/referrers/{subject}"),
        &[],
        vec![],
    )
    .await;
    let index: Value = referrers.json().await.unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["annotations"]["org.example.kind"], "signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_moved_through_one_instance_is_seen_by_another_that_cached_it() {
    let first = TestApp::spawn(Db::Postgres).await;
    let second = first.sibling().await;
    registry(&first, "team").await;
    let config_digest = push_blob(&first, "team/app", b"{}").await;
    let one = image_manifest(&config_digest, 2, &[], None, Some("application/x-one"));
    let two = image_manifest(&config_digest, 2, &[], None, Some("application/x-two"));
    let ct = [("Content-Type", OCI_MANIFEST)];
    assert_eq!(
        send(
            &first,
            "PUT",
            "/v2/team/app/manifests/prod",
            &ct,
            one.clone()
        )
        .await
        .status(),
        201
    );
    let cached = send(&second, "GET", "/v2/team/app/manifests/prod", &[], vec![]).await;
    assert_eq!(cached.bytes().await.unwrap().to_vec(), one);
    assert_eq!(
        send(
            &first,
            "PUT",
            "/v2/team/app/manifests/prod",
            &ct,
            two.clone()
        )
        .await
        .status(),
        201
    );
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = send(&second, "GET", "/v2/team/app/manifests/prod", &[], vec![])
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec();
        if seen == two {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(seen, two, "the other instance's cache followed the log");
    let own = send(&first, "GET", "/v2/team/app/manifests/prod", &[], vec![]).await;
    assert_eq!(
        own.bytes().await.unwrap().to_vec(),
        two,
        "an instance reads its own writes at once"
    );
}

async fn the_control_plane_lists_artifacts_and_tells_where_a_tag_pointed(app: TestApp) {
    registry(&app, "team").await;
    let config_digest = push_blob(&app, "team/api/server", b"{}").await;
    let one = image_manifest(&config_digest, 2, &[], None, Some("application/x-one"));
    let two = image_manifest(&config_digest, 2, &[], None, Some("application/x-two"));
    let deployer = app.token("deployer", "registry:write registry:read");
    let put = |token: String, tag: &'static str, body: Vec<u8>| {
        let app = &app;
        async move {
            app.client
                .put(app.url(&format!("/v2/team/api/server/manifests/{tag}")))
                .bearer_auth(token)
                .header("Content-Type", OCI_MANIFEST)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(put(deployer.clone(), "prod", one.clone()).await, 201);
    assert_eq!(put(deployer.clone(), "v1", one.clone()).await, 201);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = time::OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        send(
            &app,
            "PUT",
            "/v2/team/api/server/manifests/prod",
            &[
                ("Content-Type", OCI_MANIFEST),
                ("X-Request-Id", "deploy-42")
            ],
            two.clone()
        )
        .await
        .status(),
        201
    );

    let repos = app
        .call("GET", "/api/v1/registries/team/repositories", None)
        .await;
    assert_eq!(repos.status, 200, "{}", repos.text);
    assert_eq!(
        repos.body["items"],
        json!([{"name": "team/api/server", "image": "api/server"}])
    );
    let tags = app
        .call("GET", "/api/v1/registries/team/tags?image=api/server", None)
        .await;
    let listed: Vec<(&str, &str)> = tags.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tag"].as_str().unwrap(), t["digest"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("prod", sha256(&two).as_str()),
            ("v1", sha256(&one).as_str())
        ]
    );
    let manifests = app
        .call(
            "GET",
            "/api/v1/registries/team/manifests?image=api/server",
            None,
        )
        .await;
    let items = manifests.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["digest"], sha256(&two));
    assert_eq!(items[0]["tags"], json!(["prod"]));
    assert_eq!(items[1]["tags"], json!(["v1"]));
    assert_eq!(items[0]["artifact_type"], "application/x-two");

    let history = app
        .call(
            "GET",
            "/api/v1/registries/team/tag-history?image=api/server&tag=prod",
            None,
        )
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    assert_eq!(history.body["digest"], sha256(&two));
    let moves: Vec<(&str, &str)> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["data"]["digest"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            (sha256(&one).as_str(), "deployer"),
            (sha256(&two).as_str(), "alice")
        ]
    );
    let at = between
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .replace(':', "%3A")
        .replace('+', "%2B");
    let then = app
        .call(
            "GET",
            &format!("/api/v1/registries/team/tag-history?image=api/server&tag=prod&as_of={at}"),
            None,
        )
        .await;
    assert_eq!(
        then.body["digest"],
        sha256(&one),
        "prod pointed to the first manifest then"
    );
    assert_eq!(
        history.body["items"][1]["correlation_id"], "deploy-42",
        "the push's request id is its events' correlation id"
    );
    let bad = app
        .call("GET", "/api/v1/registries/team/tags?image=Bad", None)
        .await;
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (400, Some("image"))
    );
}

async fn a_registry_deleted_and_created_again_starts_empty(app: TestApp) {
    registry(&app, "team").await;
    let config = br#"{"os":"linux"}"#;
    let config_digest = push_blob(&app, "team/app", config).await;
    let first = image_manifest(&config_digest, config.len(), &[], None, None);
    let ct = [("Content-Type", OCI_MANIFEST)];
    // Pushes `manifest` as `team/app:<tag>` and pulls it back (so that the cache holds it).
    let push_and_pull = |tag: &'static str, manifest: Vec<u8>| {
        let (app, ct) = (&app, &ct);
        async move {
            let path = format!("/v2/team/app/manifests/{tag}");
            let put = send(app, "PUT", &path, ct, manifest.clone()).await;
            assert_eq!(put.status(), 201);
            let pulled = send(app, "GET", &path, &[], Vec::new()).await;
            assert_eq!(pulled.bytes().await.unwrap(), manifest);
        }
    };
    push_and_pull("prod", first.clone()).await;
    let started = send(&app, "POST", "/v2/team/app/blobs/uploads/", &[], Vec::new()).await;
    assert_eq!(started.status(), 202);
    let session = started.headers()["location"].to_str().unwrap().to_owned();

    let deleted = app.call("DELETE", "/api/v1/registries/team", None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let gone = send(&app, "GET", "/v2/team/app/manifests/prod", &[], Vec::new()).await;
    assert_eq!(error_code(gone).await, "NAME_UNKNOWN");
    // A push that raced the deletion and was appended after it: the log keeps it, and it
    // leaves nothing a registry created again could serve.
    support::append_late_push(&app.backend.store(), "team/app").await;

    registry(&app, "team").await;
    for path in [
        "/v2/team/app/manifests/prod".to_owned(),
        format!("/v2/team/app/manifests/{}", sha256(&first)),
    ] {
        let response = send(&app, "GET", &path, &[], Vec::new()).await;
        assert_eq!(error_code(response).await, "MANIFEST_UNKNOWN", "{path}");
    }
    let blob = send(
        &app,
        "HEAD",
        &format!("/v2/team/app/blobs/{config_digest}"),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(blob.status(), 404, "the old life's blob links went with it");
    let resumed = send(&app, "PATCH", &session, &[], b"late".to_vec()).await;
    assert_eq!(
        error_code(resumed).await,
        "BLOB_UPLOAD_UNKNOWN",
        "its open uploads went too"
    );
    let catalog = send(&app, "GET", "/v2/_catalog", &[], Vec::new()).await;
    let catalog: Value = catalog.json().await.unwrap();
    assert_eq!(catalog["repositories"], json!([]));
    let repos = app
        .call("GET", "/api/v1/registries/team/repositories", None)
        .await;
    assert_eq!(repos.body["items"], json!([]));
    let history_path = "/api/v1/registries/team/tag-history?image=app&tag=prod";
    let history = app.call("GET", history_path, None).await;
    assert_eq!(history.status, 200, "{}", history.text);
    assert_eq!(history.body["digest"], Value::Null, "{}", history.text);
    let story: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(story, ["TagMoved", "RegistryDeleted", "TagMoved"]);

    // The new life takes the same tag, and even the same manifest, from scratch.
    let config_digest = push_blob(&app, "team/app", config).await;
    let second = image_manifest(&config_digest, config.len(), &[], None, Some("x/two"));
    push_and_pull("prod", second.clone()).await;
    let put = send(&app, "PUT", "/v2/team/app/manifests/v1", &ct, first.clone()).await;
    assert_eq!(
        put.status(),
        201,
        "the first life's manifest is pushed anew"
    );
    let history = app.call("GET", history_path, None).await;
    assert_eq!(history.body["digest"], sha256(&second));
    assert_eq!(history.body["items"].as_array().unwrap().len(), 4);
}

async fn an_upload_cancelled_elsewhere_is_unknown_here(app: TestApp) {
    registry(&app, "team").await;
    let started = send(&app, "POST", "/v2/team/app/blobs/uploads/", &[], Vec::new()).await;
    assert_eq!(started.status(), 202);
    let session = started.headers()["location"].to_str().unwrap().to_owned();
    let range = [("Content-Range", "0-3")];
    let patched = send(&app, "PATCH", &session, &range, b"some".to_vec()).await;
    assert_eq!(patched.status(), 202);
    // Another instance on the same storage cancels it while this one holds it in memory.
    let id = session.rsplit('/').next().unwrap();
    std::fs::remove_dir_all(app.data_dir.path().join("uploads").join(id)).unwrap();
    let more = [("Content-Range", "4-7")];
    let patched = send(&app, "PATCH", &session, &more, b"more".to_vec()).await;
    assert_eq!(error_code(patched).await, "BLOB_UPLOAD_UNKNOWN");
    let finished = send(
        &app,
        "PUT",
        &format!("{session}?digest={}", sha256(b"some")),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(error_code(finished).await, "BLOB_UPLOAD_UNKNOWN");
    let status = send(&app, "GET", &session, &[], Vec::new()).await;
    assert_eq!(error_code(status).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_keep_together_under_a_locale_that_ignores_punctuation() {
    // In this database's default collation "team/app" sorts after "team0".
    let app = TestApp::spawn(Db::PostgresIcu("und-u-ka-shifted")).await;
    let ct = [("Content-Type", OCI_MANIFEST)];
    for name in ["team", "team-x"] {
        registry(&app, name).await;
        let repository = format!("{name}/app");
        let config = push_blob(&app, &repository, b"{}").await;
        let manifest = image_manifest(&config, 2, &[], None, None);
        let path = format!("/v2/{repository}/manifests/v1");
        assert_eq!(send(&app, "PUT", &path, &ct, manifest).await.status(), 201);
    }
    let repos = app
        .call("GET", "/api/v1/registries/team/repositories", None)
        .await;
    assert_eq!(repos.body["items"][0]["name"], "team/app", "{}", repos.text);
    let catalog = send(&app, "GET", "/v2/_catalog", &[], Vec::new()).await;
    let catalog: Value = catalog.json().await.unwrap();
    assert_eq!(catalog["repositories"], json!(["team-x/app", "team/app"]));

    let deleted = app.call("DELETE", "/api/v1/registries/team", None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    registry(&app, "team").await;
    let gone = send(&app, "GET", "/v2/team/app/manifests/v1", &[], Vec::new()).await;
    assert_eq!(error_code(gone).await, "MANIFEST_UNKNOWN");
    let kept = send(&app, "GET", "/v2/team-x/app/manifests/v1", &[], Vec::new()).await;
    assert_eq!(kept.status(), 200, "a neighbour's repositories stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_are_refused_and_reach_nothing() {
    let app = TestApp::spawn(Db::Sqlite).await;
    registry(&app, "team").await;
    let long = "a".repeat(300);
    let paths = [
        "/v2/../../etc/passwd/manifests/latest".to_owned(),
        "/v2/team/%2e%2e/%2e%2e/etc/manifests/latest".to_owned(),
        "/v2/team/..%2f..%2fetc/manifests/latest".to_owned(),
        "/v2/team/app%00/manifests/v1".to_owned(),
        "/v2//etc/passwd/manifests/latest".to_owned(),
        format!("/v2/team/{long}/manifests/v1"),
        "/v2/team/app/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd".to_owned(),
        format!("/v2/team/app/blobs/sha256:{}", "../".repeat(21) + "x"),
        "/v2/team/app/manifests/..%2f..%2fetc".to_owned(),
        "/v2/team/app/blobs/uploads/..%2f..%2fetc".to_owned(),
        "/helm/team/charts/..%2f..%2fetc%2fpasswd".to_owned(),
        "/helm/%2e%2e/index.yaml".to_owned(),
        "/helm/team/charts/%00-1.0.0.tgz".to_owned(),
        "/api/v1/registries/..%2f..%2fetc".to_owned(),
        "/api/v1/registries/%00".to_owned(),
        format!("/api/v1/registries/{long}"),
    ];
    for path in paths {
        for method in ["GET", "HEAD", "DELETE", "PUT", "PATCH"] {
            let response = app
                .client
                .request(method.parse().unwrap(), app.url(&path))
                .bearer_auth(app.admin())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{method} {path} answered {status}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_has_a_bounded_number_of_open_uploads() {
    let app = TestApp::spawn(Db::Sqlite).await;
    registry(&app, "team").await;
    let start = |repository: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&format!("/v2/{repository}/blobs/uploads/")))
                .bearer_auth(app.admin())
                .send()
                .await
                .unwrap()
        }
    };
    let mut locations = Vec::new();
    for _ in 0..64 {
        let started = start("team/app").await;
        assert_eq!(started.status(), 202);
        locations.push(started.headers()["location"].to_str().unwrap().to_owned());
    }
    let refused = start("team/app").await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("team/app has 64 uploads open")
    );
    // Other repositories are not affected, and cancelling one makes room.
    assert_eq!(start("team/other").await.status(), 202);
    let cancelled = app
        .client
        .delete(app.url(&locations[0]))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 204);
    assert_eq!(start("team/app").await.status(), 202);
}
