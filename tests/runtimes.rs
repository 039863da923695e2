//! Container runtimes against a real Berth: podman logs in with a Berth token, pulls, tags and
//! pushes back; containerd (`ctr`) pulls with a token, both by Berth's own name and as a node
//! whose Docker Hub mirror is Berth. Images are pushed first with skopeo, made of real tar
//! layers that the runtimes unpack, and every check compares digests.

mod support;

use std::io::Read;

use serde_json::{Value, json};
use support::app::{Db, TestApp};
use support::clients::skopeo_push;
use support::containerd::{Containerd, Pull};
use support::oci::{Image, unpackable_image};
use support::podman::Podman;
use support::push::sha256;
use support::upstream::Distribution;

fn host(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_owned()
}

/// Pushes a three-layer image that runtimes can unpack to `<host>/<repository>:<tag>` with
/// skopeo, and returns what was pushed.
fn push_image(host: &str, repository: &str, tag: &str, seed: u8, creds: Option<&str>) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let image = unpackable_image(dir.path(), seed, 3, 100_000, tag);
    skopeo_push(dir.path(), tag, host, repository, creds);
    image
}

async fn create(app: &TestApp, path: &str, body: Value) {
    let response = app.call("POST", path, Some(body)).await;
    assert_eq!(response.status, 201, "{}", response.text);
}

/// Sends `GET /v2/<path>` with an admin token and returns the response, which must be a 200.
async fn v2_get(app: &TestApp, path: &str, accept: &str) -> reqwest::Response {
    let response = app
        .client
        .get(app.url(&format!("/v2/{path}")))
        .bearer_auth(app.admin())
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET /v2/{path}");
    response
}

/// The manifest Berth serves for `repository:reference`, with its `Docker-Content-Digest`,
/// which must be the digest of the bytes served.
async fn manifest(app: &TestApp, repository: &str, reference: &str) -> (String, Value) {
    let accept = "application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.docker.distribution.manifest.v2+json";
    let path = format!("{repository}/manifests/{reference}");
    let response = v2_get(app, &path, accept).await;
    let digest = response.headers()["Docker-Content-Digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(digest, sha256(&bytes), "the digest names the bytes served");
    (digest, serde_json::from_slice(&bytes).unwrap())
}

async fn blob(app: &TestApp, repository: &str, digest: &str) -> Vec<u8> {
    let path = format!("{repository}/blobs/{digest}");
    let response = v2_get(app, &path, "*/*").await;
    response.bytes().await.unwrap().to_vec()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip layer");
    out
}

/// A server with the registry `team`, and an image made from `seed` pushed to `team/app:v1`.
async fn team_with_an_image(seed: u8) -> (TestApp, Image) {
    let app = TestApp::spawn(Db::Sqlite).await;
    let registry = json!({"name": "team", "package_type": "DOCKER"});
    create(&app, "/api/v1/registries", registry).await;
    let creds = format!("alice:{}", app.admin());
    let image = push_image(&host(&app), "team/app", "v1", seed, Some(&creds));
    (app, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_logs_in_with_a_token_pulls_tags_and_pushes_back() {
    let (app, image) = team_with_an_image(1).await;
    let (host, token) = (host(&app), app.admin());
    let podman = Podman::new();

    // A wrong password is refused, and leaves no login behind; the token is the password.
    let refused = podman.login(&host, "anyone", "not-a-token");
    assert!(!refused.status.success(), "a wrong password logged in");
    assert!(!podman.is_logged_in(&host));
    let login = podman.login(&host, "anyone", &token);
    assert!(
        login.status.success(),
        "podman login failed: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert!(podman.is_logged_in(&host));

    // Podman keeps what skopeo pushed: the manifest's digest, the config as the image ID, and
    // the layers it unpacked under their uncompressed digests.
    let source = format!("{host}/team/app:v1");
    podman.run(&["pull", "--tls-verify=false", &source]);
    assert_eq!(
        podman.inspect(&source, "{{.Digest}}"),
        image.manifest.digest
    );
    assert_eq!(
        format!("sha256:{}", podman.inspect(&source, "{{.Id}}")),
        image.config
    );
    let unpacked = podman.inspect(&source, "{{range .RootFS.Layers}}{{.}} {{end}}");
    assert_eq!(
        unpacked.split_whitespace().collect::<Vec<_>>(),
        image.diff_ids,
        "podman unpacked the three layers"
    );

    let copy = format!("{host}/team/copy:v2");
    podman.run(&["tag", &source, &copy]);
    let pushed = podman.push(&copy);

    // Berth serves the manifest podman pushed, under the digest podman computed for it.
    let (digest, manifest) = manifest(&app, "team/copy", "v2").await;
    assert_eq!(digest, pushed);
    // Podman writes a manifest of its own (podman 4.3 keeps skopeo's gzip layers but serializes
    // the manifest anew, so its digest differs) and may re-encode more (the media type, the
    // layers' compression), so the compressed digests are not compared with skopeo's. What it
    // must keep is: the config byte for byte (the same digest, so the same diff_ids), and each
    // layer's uncompressed content, as Berth now serves it, against those diff_ids.
    assert_eq!(manifest["config"]["digest"], image.config.as_str());
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), image.diff_ids.len());
    for (layer, diff_id) in layers.iter().zip(&image.diff_ids) {
        let digest = layer["digest"].as_str().unwrap();
        let bytes = blob(&app, "team/copy", digest).await;
        assert_eq!(sha256(&bytes), digest);
        assert_eq!(&sha256(&gunzip(&bytes)), diff_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctr_pulls_an_image_with_a_token() {
    let (app, image) = team_with_an_image(2).await;
    let (host, token) = (host(&app), app.admin());
    let containerd = Containerd::start();
    let reference = format!("{host}/team/app:v1");

    let wrong = Pull {
        user: Some("anyone:not-a-token"),
        plain_http: true,
        hosts_dir: None,
    };
    assert!(!containerd.pull(&reference, wrong).status.success());
    assert_eq!(containerd.image_digest(&reference), None);

    let creds = format!("anyone:{token}");
    let with_token = Pull {
        user: Some(&creds),
        ..wrong
    };
    containerd.pull_ok(&reference, with_token);
    assert_eq!(
        containerd.image_digest(&reference).as_deref(),
        Some(image.manifest.digest.as_str())
    );
    assert!(containerd.is_complete_and_unpacked(&reference));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_containerd_pulls_docker_hub_names_through_a_public_mirror() {
    let app = TestApp::spawn_with_mirror(Db::Sqlite, "hub").await;
    let distribution = Distribution::start(None).await;
    let image = push_image(&distribution.host, "library/nginx", "1.27", 3, None);
    create(
        &app,
        "/api/v1/upstream-proxies",
        json!({"key": "hub", "package_type": "DOCKER", "source": "CUSTOM",
               "url": format!("http://{}", distribution.host), "cache": {"tag_ttl_seconds": 300}}),
    )
    .await;
    let containerd = Containerd::start();
    let hosts = containerd.docker_hub_mirror(&host(&app));
    let reference = "docker.io/library/nginx:1.27";
    let anonymous = || Pull {
        user: None,
        plain_http: false,
        hosts_dir: Some(&hosts),
    };

    // A node sends no credentials to its mirror: a private proxy refuses it.
    let refused = containerd.pull(reference, anonymous());
    assert!(
        !refused.status.success(),
        "a private mirror served a stranger"
    );
    assert_eq!(containerd.image_digest(reference), None);

    // Made public, the same proxy serves the node.
    let public = app
        .call(
            "PATCH",
            "/api/v1/upstream-proxies/hub",
            Some(json!({"public": true})),
        )
        .await;
    assert_eq!(public.status, 200, "{}", public.text);
    assert_eq!(public.body["public"], true);
    containerd.pull_ok(reference, anonymous());
    assert_eq!(
        containerd.image_digest(reference).as_deref(),
        Some(image.manifest.digest.as_str())
    );
    assert!(containerd.is_complete_and_unpacked(reference));

    // It came through Berth, not from Docker Hub (the fallback server, unreachable here): the
    // mirror proxy cached the tag.
    let tags: Value = v2_get(&app, "hub/library/nginx/tags/list", "application/json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["1.27"]));
    // Public means pulls: the mirror still takes no anonymous pushes.
    let push = app
        .client
        .post(app.url("/v2/library/nginx/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 401);
}
