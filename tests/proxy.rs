//! Pull-through over real HTTP: a real CNCF Distribution as the upstream (anonymous and behind
//! htpasswd), another Berth as a token-auth upstream, and skopeo pulling through Berth. A
//! forwarder in front of each upstream counts what reaches it, takes it down and cuts
//! transfers short.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::app::{Db, TestApp};
use support::clients::{skopeo, skopeo_ok, skopeo_push};
use support::oci;
use support::upstream::{Distribution, Forwarder};

on_both_backends!(
    skopeo_pulls_images_and_indexes_through_a_custom_upstream_once,
    a_cached_pull_survives_the_upstream_going_down_and_a_cold_one_fails_fast,
);

fn host(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_owned()
}

/// Pushes a three-layer image as `<repository>:<tag>` to a registry at `host`, and returns its
/// manifest digest.
fn push_image(host: &str, repository: &str, tag: &str, seed: u8, creds: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = oci::image(dir.path(), seed, 3, 150_000, "amd64");
    oci::tag(
        dir.path(),
        &manifest,
        "application/vnd.oci.image.manifest.v1+json",
        tag,
    );
    skopeo_push(dir.path(), tag, host, repository, creds);
    manifest.digest
}

/// Pulls `reference` from Berth into a fresh OCI layout and returns the manifest digest.
fn pull(app: &TestApp, reference: &str, all: bool) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let creds = format!("alice:{}", app.admin());
    let source = format!("docker://{}/{reference}", host(app));
    let target = format!("oci:{}:pulled", dir.path().display());
    let mut args = vec!["copy", "--src-tls-verify=false", "--src-creds", &creds];
    if all {
        args.push("--all");
    }
    args.extend([source.as_str(), target.as_str()]);
    let output = skopeo(&args);
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    Ok(index["manifests"][0]["digest"].as_str().unwrap().to_owned())
}

/// Sends `method path` to Berth with an admin token; returns the status and the first error's
/// code and message.
async fn v2_error(app: &TestApp, method: &str, path: &str) -> (u16, String, String) {
    let response = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    let error = &body["errors"][0];
    (
        status,
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn create_proxy(app: &TestApp, body: Value) {
    let response = app
        .call("POST", "/api/v1/upstream-proxies", Some(body))
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
}

async fn custom_proxy(app: &TestApp, key: &str, host: &str, ttl: u32) {
    create_proxy(
        app,
        json!({"key": key, "package_type": "DOCKER", "source": "CUSTOM",
               "url": format!("http://{host}"), "cache": {"tag_ttl_seconds": ttl}}),
    )
    .await;
}

async fn registry(app: &TestApp, name: &str, upstreams: &[&str]) {
    let response = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": name, "package_type": "DOCKER", "upstreams": upstreams})),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
}

async fn skopeo_pulls_images_and_indexes_through_a_custom_upstream_once(app: TestApp) {
    let distribution = Distribution::start(None).await;
    let upstream = Forwarder::start(&distribution.host).await;
    let digest = push_image(&distribution.host, "app", "v1", 7, None);
    let dir = tempfile::tempdir().unwrap();
    let index = oci::multi_arch(dir.path());
    oci::tag(
        dir.path(),
        &index,
        "application/vnd.oci.image.index.v1+json",
        "v1",
    );
    skopeo_ok(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", dir.path().display()),
        &format!("docker://{}/multi:v1", distribution.host),
    ]);

    custom_proxy(&app, "mirror", &upstream.host, 300).await;
    registry(&app, "team", &["mirror"]).await;

    // Through the proxy directly, then through a registry that lists it.
    assert_eq!(pull(&app, "mirror/app:v1", false).unwrap(), digest);
    let blob_gets = upstream.requests("/blobs/").len();
    assert_eq!(blob_gets, 4, "config and three layers, once each");
    assert_eq!(pull(&app, "team/app:v1", false).unwrap(), digest);
    assert_eq!(pull(&app, "mirror/app:v1", false).unwrap(), digest);
    assert_eq!(
        upstream.requests("/blobs/").len(),
        blob_gets,
        "cached pulls fetch no blob again"
    );
    // By digest too, and the index whole, with its digest.
    assert_eq!(
        pull(&app, &format!("team/app@{digest}"), false).unwrap(),
        digest
    );
    assert_eq!(pull(&app, "team/multi:v1", true).unwrap(), index.digest);

    // Nothing can be pushed to a proxy.
    let (status, code, message) = v2_error(&app, "POST", "/v2/mirror/app/blobs/uploads/").await;
    assert_eq!((status, code.as_str()), (403, "DENIED"));
    assert!(message.contains("mirror is an upstream proxy"), "{message}");

    // The proxy's counts: fetched once, then served from the cache.
    let stats = app
        .call("GET", "/api/v1/upstream-proxies/mirror/stats", None)
        .await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert!(
        stats.body["cache_misses"].as_u64().unwrap() >= 5,
        "{}",
        stats.text
    );
    assert!(
        stats.body["cache_hits"].as_u64().unwrap() >= 5,
        "{}",
        stats.text
    );
    assert!(stats.body["bytes_from_upstream"].as_u64().unwrap() > 0);
    assert_eq!(stats.body["upstream_errors"], 0);
    let unknown = app
        .call("GET", "/api/v1/upstream-proxies/nope/stats", None)
        .await;
    assert_eq!(unknown.status, 404);

    // What was cached is in the log, recorded by the proxy.
    let events = app
        .call(
            "GET",
            "/api/v1/events?resource_kind=REPOSITORY&resource_name=mirror/app",
            None,
        )
        .await;
    let items = events.body["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{}", events.text);
    assert!(items.iter().all(|e| e["actor"] == "proxy:mirror"));

    // A cache holds manifests whose blobs are fetched on demand; fsck knows it.
    let (code, report) = app.fsck(&[]);
    assert_eq!(code, 0, "{report:#}");
}

async fn a_cached_pull_survives_the_upstream_going_down_and_a_cold_one_fails_fast(app: TestApp) {
    let distribution = Distribution::start(None).await;
    let upstream = Forwarder::start(&distribution.host).await;
    let digest = push_image(&distribution.host, "app", "v1", 3, None);
    push_image(&distribution.host, "cold", "v1", 4, None);
    custom_proxy(&app, "mirror", &upstream.host, 1).await;
    assert_eq!(pull(&app, "mirror/app:v1", false).unwrap(), digest);

    upstream.set_down(true);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The tag's TTL has passed: the revalidation fails, and the cached answer stands in.
    let head = app
        .client
        .head(app.url("/v2/mirror/app/manifests/v1"))
        .bearer_auth(app.admin())
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let warning = head.headers()["warning"].to_str().unwrap().to_owned();
    assert!(warning.contains("mirror is unreachable"), "{warning}");
    assert_eq!(pull(&app, "mirror/app:v1", false).unwrap(), digest);
    assert_eq!(
        pull(&app, &format!("mirror/app@{digest}"), false).unwrap(),
        digest
    );

    let started = std::time::Instant::now();
    let (status, code, message) = v2_error(&app, "GET", "/v2/mirror/cold/manifests/v1").await;
    assert_eq!((status, code.as_str()), (502, "UNAVAILABLE"));
    assert!(
        message.contains("upstream proxy mirror is unreachable"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a cold pull fails fast"
    );
    let stats = app
        .call("GET", "/api/v1/upstream-proxies/mirror/stats", None)
        .await;
    let count = |name: &str| stats.body[name].as_u64().unwrap();
    assert!(count("upstream_errors") >= 2, "{}", stats.text);
    assert!(count("stale_served") >= 1, "{}", stats.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_upstream_tag_is_seen_after_the_ttl_and_not_before() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let distribution = Distribution::start(None).await;
    let first = push_image(&distribution.host, "app", "latest", 1, None);
    // Room for a push and a pull by real clients within the TTL on a loaded machine.
    let ttl = Duration::from_secs(6);
    custom_proxy(&app, "mirror", &distribution.host, ttl.as_secs() as u32).await;
    assert_eq!(pull(&app, "mirror/app:latest", false).unwrap(), first);
    let confirmed = std::time::Instant::now();
    let second = push_image(&distribution.host, "app", "latest", 2, None);
    assert_ne!(first, second);
    assert_eq!(pull(&app, "mirror/app:latest", false).unwrap(), first);
    let expired = confirmed + ttl + Duration::from_millis(100);
    tokio::time::sleep(expired.saturating_duration_since(std::time::Instant::now())).await;
    assert_eq!(pull(&app, "mirror/app:latest", false).unwrap(), second);
    // The old content stays pullable by digest.
    assert_eq!(
        pull(&app, &format!("mirror/app@{first}"), false).unwrap(),
        first
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_auth_upstream_is_pulled_with_the_proxy_credentials() {
    let app = TestApp::spawn(Db::Postgres).await;
    let distribution = Distribution::start(Some(("puller", "s3cret"))).await;
    let digest = push_image(&distribution.host, "app", "v1", 5, Some("puller:s3cret"));
    let url = format!("http://{}", distribution.host);
    create_proxy(
        &app,
        json!({"key": "private", "package_type": "DOCKER", "source": "CUSTOM", "url": url,
               "auth": {"type": "USERNAME_PASSWORD", "username": "puller", "password": "s3cret"}}),
    )
    .await;
    create_proxy(
        &app,
        json!({"key": "wrong", "package_type": "DOCKER", "source": "CUSTOM", "url": url,
               "auth": {"type": "USERNAME_PASSWORD", "username": "puller", "password": "nope"}}),
    )
    .await;
    assert_eq!(pull(&app, "private/app:v1", false).unwrap(), digest);
    let (status, _, message) = v2_error(&app, "GET", "/v2/wrong/app/manifests/v1").await;
    assert_eq!(status, 502);
    assert!(
        message.contains("upstream proxy wrong answered 401"),
        "{message}"
    );
}

/// Bytes that do not compress: each block is the hash of the one before.
fn noise(len: usize) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut bytes = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest(b"berth").to_vec();
    while bytes.len() < len {
        block = Sha256::digest(&block).to_vec();
        bytes.extend_from_slice(&block);
    }
    bytes.truncate(len);
    bytes
}

/// Uploads `bytes` as a blob of `repository` to Distribution, and returns its digest.
async fn push_blob(host: &str, repository: &str, bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = format!("sha256:{:x}", Sha256::digest(bytes));
    let client = reqwest::Client::new();
    let started = client
        .post(format!("http://{host}/v2/{repository}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = if location.starts_with("http") {
        location.clone()
    } else {
        format!("http://{host}{location}")
    };
    let done = client
        .put(format!("{url}{separator}digest={digest}"))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201);
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_cut_short_is_discarded_and_the_next_pull_succeeds() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let distribution = Distribution::start(None).await;
    let upstream = Forwarder::start(&distribution.host).await;
    let bytes = noise(2 * 1024 * 1024);
    let digest = push_blob(&distribution.host, "app", &bytes).await;
    custom_proxy(&app, "mirror", &upstream.host, 300).await;
    let blob_url = app.url(&format!("/v2/mirror/app/blobs/{digest}"));
    let stored = app
        .data_dir
        .path()
        .join("blobs/sha256")
        .join(&digest[7..9])
        .join(&digest[7..]);

    // The upstream connection breaks off after 500 KB.
    upstream.cut_after(500_000);
    let broken = app
        .client
        .get(&blob_url)
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 200);
    let body = broken.bytes().await;
    assert!(
        body.as_ref().map_or(true, |b| b.len() < bytes.len()),
        "a broken transfer never looks complete"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stored.exists(), "nothing of a broken transfer is kept");
    let leftovers: Vec<_> = std::fs::read_dir(app.data_dir.path().join("uploads"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left");

    upstream.cut_after(0);
    let whole = app
        .client
        .get(&blob_url)
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), bytes.as_slice());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(std::fs::read(&stored).unwrap(), bytes);
    // From now on it is served from storage.
    upstream.set_down(true);
    let cached = app
        .client
        .get(&blob_url)
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(cached.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_pulls_of_one_uncached_blob_make_one_upstream_fetch() {
    use sha2::{Digest, Sha256};
    let app = TestApp::spawn(Db::Postgres).await;
    let distribution = Distribution::start(None).await;
    let upstream = Forwarder::start(&distribution.host).await;
    let bytes = noise(64 * 1024 * 1024);
    let digest = push_blob(&distribution.host, "big", &bytes).await;
    drop(bytes);
    custom_proxy(&app, "mirror", &upstream.host, 300).await;
    let url = app.url(&format!("/v2/mirror/big/blobs/{digest}"));
    let pulls = (0..16).map(|_| {
        let (client, url, token) = (app.client.clone(), url.clone(), app.admin());
        tokio::spawn(async move {
            let mut response = client.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let mut hasher = Sha256::new();
            let mut len = 0;
            while let Some(chunk) = response.chunk().await.unwrap() {
                len += chunk.len();
                hasher.update(&chunk);
            }
            (len, format!("sha256:{:x}", hasher.finalize()))
        })
    });
    for pull in futures_util::future::join_all(pulls).await {
        let (len, hash) = pull.unwrap();
        assert_eq!((len, hash.as_str()), (64 * 1024 * 1024, digest.as_str()));
    }
    assert_eq!(
        upstream
            .requests(&format!("GET /v2/big/blobs/{digest}"))
            .len(),
        1,
        "one upstream fetch for sixteen clients"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_auth_upstream_as_docker_hub_maps_library_and_reuses_its_token() {
    // Another Berth plays Docker Hub: its /v2 challenges with a token realm.
    let hub = TestApp::spawn(Db::Sqlite).await;
    let created = hub
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "library", "package_type": "DOCKER"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let hub_creds = format!("ci:{}", hub.admin());
    let first = push_image(&host(&hub), "library/nginx", "1", 11, Some(&hub_creds));
    let second = push_image(&host(&hub), "library/nginx", "2", 12, Some(&hub_creds));
    let front = Forwarder::start(&host(&hub)).await;

    let app = TestApp::spawn_with_docker_hub(Db::Postgres, &format!("http://{}", front.host)).await;
    let puller = hub.token("puller", "registry:read");
    create_proxy(
        &app,
        json!({"key": "hub", "package_type": "DOCKER", "source": "DOCKER_HUB",
               "auth": {"type": "USERNAME_PASSWORD", "username": "puller", "password": puller}}),
    )
    .await;

    // `hub/nginx` is `library/nginx` upstream.
    assert_eq!(pull(&app, "hub/nginx:1", false).unwrap(), first);
    assert_eq!(pull(&app, "hub/nginx:2", false).unwrap(), second);
    assert!(
        !front
            .requests("GET /v2/library/nginx/manifests/1")
            .is_empty()
    );
    assert_eq!(
        front.requests("/v2/token").len(),
        1,
        "one token serves every request on the repository: {:?}",
        front.requests("")
    );
    // The token was asked for with the proxy's credentials and the challenge's scope.
    let token_request = &front.requests("/v2/token")[0];
    assert!(
        token_request.contains("scope=repository%3Alibrary%2Fnginx%3Apull"),
        "{token_request}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_makes_the_next_pull_ask_the_upstream_again() {
    let app = TestApp::spawn(Db::Postgres).await;
    let distribution = Distribution::start(None).await;
    let first = push_image(&distribution.host, "app", "latest", 21, None);
    custom_proxy(&app, "mirror", &distribution.host, 300).await;
    assert_eq!(pull(&app, "mirror/app:latest", false).unwrap(), first);
    let second = push_image(&distribution.host, "app", "latest", 22, None);
    assert_eq!(pull(&app, "mirror/app:latest", false).unwrap(), first);
    let purged = app
        .call("POST", "/api/v1/upstream-proxies/mirror/purge", None)
        .await;
    assert_eq!(purged.status, 200, "{}", purged.text);
    assert_eq!(purged.body["purged_tags"], 1);
    assert_eq!(pull(&app, "mirror/app:latest", false).unwrap(), second);
    let reader = app.token("rita", "registry:read");
    let refused = app
        .call_as(
            &reader,
            "POST",
            "/api/v1/upstream-proxies/mirror/purge",
            None,
            &[],
        )
        .await;
    assert_eq!(refused.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_moved_to_another_remote_or_created_again_asks_it_anew() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let (one, two) = (
        Distribution::start(None).await,
        Distribution::start(None).await,
    );
    let first = push_image(&one.host, "app", "latest", 41, None);
    let second = push_image(&two.host, "app", "latest", 42, None);
    custom_proxy(&app, "mirror", &one.host, 300).await;
    assert_eq!(pull(&app, "mirror/app:latest", false).unwrap(), first);

    // Within the tag's TTL, yet asked of the remote the proxy now names.
    let moved = app
        .call(
            "PATCH",
            "/api/v1/upstream-proxies/mirror",
            Some(json!({"url": format!("http://{}", two.host)})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(pull(&app, "mirror/app:latest", false).unwrap(), second);

    let deleted = app
        .call("DELETE", "/api/v1/upstream-proxies/mirror", None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    custom_proxy(&app, "mirror", &one.host, 300).await;
    let stats = app
        .call("GET", "/api/v1/upstream-proxies/mirror/stats", None)
        .await;
    assert_eq!(
        stats.body["cache_misses"], 0,
        "a new proxy counts anew: {}",
        stats.text
    );
    // The cache went with the proxy: what only the other remote has is not served.
    let (status, code, _) =
        v2_error(&app, "GET", &format!("/v2/mirror/app/manifests/{second}")).await;
    assert_eq!((status, code.as_str()), (404, "MANIFEST_UNKNOWN"));
    assert_eq!(pull(&app, "mirror/app:latest", false).unwrap(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_answers_unprefixed_repositories_as_a_docker_daemon_asks() {
    let app = TestApp::spawn_with_mirror(Db::Sqlite, "hub").await;
    let distribution = Distribution::start(None).await;
    let digest = push_image(&distribution.host, "library/nginx", "1.27", 31, None);
    custom_proxy(&app, "hub", &distribution.host, 300).await;
    registry(&app, "team", &[]).await;

    // What `registry-mirrors` sends: the Docker Hub name, without any Berth prefix.
    assert_eq!(pull(&app, "library/nginx:1.27", false).unwrap(), digest);
    // Kept in the mirror proxy's cache repository.
    let tags = app
        .client
        .get(app.url("/v2/hub/library/nginx/tags/list"))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    let tags: Value = tags.json().await.unwrap();
    assert_eq!(tags["tags"], json!(["1.27"]));
    // Registries keep their names, and the mirror takes no pushes.
    let (status, code, _) = v2_error(&app, "GET", "/v2/team/nginx/manifests/1.27").await;
    assert_eq!((status, code.as_str()), (404, "MANIFEST_UNKNOWN"));
    let (status, code, _) = v2_error(&app, "POST", "/v2/library/nginx/blobs/uploads/").await;
    assert_eq!((status, code.as_str()), (403, "DENIED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_pulls_of_one_uncached_manifest_make_one_upstream_fetch() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let distribution = Distribution::start(None).await;
    let upstream = Forwarder::start(&distribution.host).await;
    let digest = push_image(&distribution.host, "app", "v1", 41, None);
    custom_proxy(&app, "mirror", &upstream.host, 300).await;
    let url = app.url("/v2/mirror/app/manifests/v1");
    let pulls = (0..16).map(|_| {
        let (client, url, token) = (app.client.clone(), url.clone(), app.admin());
        tokio::spawn(async move {
            let response = client
                .get(url)
                .bearer_auth(token)
                .header("Accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.headers()["docker-content-digest"]
                .to_str()
                .unwrap()
                .to_owned()
        })
    });
    for pull in futures_util::future::join_all(pulls).await {
        assert_eq!(pull.unwrap(), digest);
    }
    assert_eq!(
        upstream.requests("/v2/app/manifests/v1").len(),
        1,
        "one upstream request for sixteen clients: {:?}",
        upstream.requests("/manifests/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log_even_at_debug_level() {
    use base64::Engine;
    let distribution = Distribution::start(Some(("puller", "first-upstream-pw-7f3a"))).await;
    push_image(
        &distribution.host,
        "app",
        "v1",
        51,
        Some("puller:first-upstream-pw-7f3a"),
    );
    let jwt_secret = "jwt-secret-kept-out-of-logs-0123456789";
    let data = tempfile::tempdir().unwrap();
    let server = support::server::TestServer::start(
        &["--data-dir", data.path().to_str().unwrap()],
        &[("BERTH_LOG", "debug"), ("BERTH_JWT_SECRET", jwt_secret)],
    );
    let token = support::app::sign_with(
        json!({"sub": "alice", "scope": "admin", "exp": support::app::now() + 600}),
        jwt_secret.as_bytes(),
    );
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base_url);
    let created = client
        .post(url("/api/v1/upstream-proxies"))
        .bearer_auth(&token)
        .json(
            &json!({"key": "private", "package_type": "DOCKER", "source": "CUSTOM",
                      "url": format!("http://{}", distribution.host),
                      "auth": {"type": "USERNAME_PASSWORD", "username": "puller",
                               "password": "second-upstream-pw-9c1d"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Rotate to the password that works, then pull through it.
    let rotated = client
        .patch(url("/api/v1/upstream-proxies/private"))
        .bearer_auth(&token)
        .json(
            &json!({"auth": {"type": "USERNAME_PASSWORD", "username": "puller",
                               "password": "first-upstream-pw-7f3a"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    let pulled = client
        .get(url("/v2/private/app/manifests/v1"))
        .bearer_auth(&token)
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let log = server.log();
    assert!(log.contains("DEBUG"), "the log runs at debug level");
    assert!(log.contains("fetched a manifest"), "the pull went through");
    let basic = base64::engine::general_purpose::STANDARD.encode("puller:first-upstream-pw-7f3a");
    for secret in [
        "first-upstream-pw-7f3a",
        "second-upstream-pw-9c1d",
        jwt_secret,
        basic.as_str(),
        token.as_str(),
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}
