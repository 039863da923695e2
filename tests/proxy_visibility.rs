//! Public upstream proxies: anyone may pull through a public Docker or Helm proxy, as through a
//! public registry, and nobody may push; a private one asks who is pulling. Visibility is a
//! recorded change with its actor, on both backends, through the real skopeo and over `/helm`.

mod support;

use serde_json::{Value, json};
use support::app::{Db, TestApp};
use support::clients::{skopeo, skopeo_push};
use support::helm::{StaticRepository, chart};
use support::oci;
use support::upstream::Distribution;

on_both_backends!(a_public_docker_proxy_serves_anyone_and_a_private_one_asks_who,);

async fn anonymous_status(app: &TestApp, method: &str, path: &str) -> u16 {
    let request = app.client.request(method.parse().unwrap(), app.url(path));
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let request = request.header("Accept", accept);
    request.send().await.unwrap().status().as_u16()
}

async fn set_public(app: &TestApp, key: &str, public: bool) -> Value {
    let path = format!("/api/v1/upstream-proxies/{key}");
    let patched = app
        .call("PATCH", &path, Some(json!({ "public": public })))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["public"], public);
    patched.body
}

/// Pushes an image `app:v1` made from `seed` to `distribution` with skopeo, and creates the
/// private proxy `mirror` of it on `app`; returns the image's manifest.
async fn mirror_of(app: &TestApp, distribution: &Distribution, seed: u8) -> oci::Written {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, _) = oci::image(dir.path(), seed, 2, 50_000, "amd64");
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    oci::tag(dir.path(), &manifest, media_type, "v1");
    skopeo_push(dir.path(), "v1", &distribution.host, "app", None);
    let body = json!({"key": "mirror", "package_type": "DOCKER", "source": "CUSTOM",
                      "url": format!("http://{}", distribution.host)});
    let created = app
        .call("POST", "/api/v1/upstream-proxies", Some(body))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["public"], false, "private unless asked");
    manifest
}

async fn a_public_docker_proxy_serves_anyone_and_a_private_one_asks_who(app: TestApp) {
    let distribution = Distribution::start(None).await;
    let manifest = mirror_of(&app, &distribution, 9).await;

    let host = app.base_url.trim_start_matches("http://");
    let through = format!("docker://{host}/mirror/app:v1");
    let copy_anonymously = || {
        let out = tempfile::tempdir().unwrap();
        let target = format!("oci:{}:v1", out.path().display());
        (
            skopeo(&["copy", "--src-tls-verify=false", &through, &target]),
            out,
        )
    };
    let manifest_path = "/v2/mirror/app/manifests/v1";
    assert_eq!(anonymous_status(&app, "GET", manifest_path).await, 401);
    let (refused, _) = copy_anonymously();
    assert!(
        !refused.status.success(),
        "a private proxy served a stranger"
    );

    set_public(&app, "mirror", true).await;
    let (copied, out) = copy_anonymously();
    assert!(copied.status.success(), "{copied:?}");
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], manifest.digest);
    // Public means pulls: pushes and deletes still need credentials.
    let uploads = "/v2/mirror/app/blobs/uploads/";
    assert_eq!(anonymous_status(&app, "POST", uploads).await, 401);
    let delete = format!("/v2/mirror/app/manifests/{}", manifest.digest);
    assert_eq!(anonymous_status(&app, "DELETE", &delete).await, 401);

    let body = set_public(&app, "mirror", false).await;
    assert_eq!(body["version"], 3);
    assert_eq!(anonymous_status(&app, "GET", manifest_path).await, 401);
    let history = app
        .call("GET", "/api/v1/upstream-proxies/mirror/history", None)
        .await;
    let items = history.body["items"].as_array().unwrap();
    let types: Vec<&str> = items
        .iter()
        .map(|i| i["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "UpstreamProxyCreated",
            "UpstreamProxyVisibilityChanged",
            "UpstreamProxyVisibilityChanged"
        ]
    );
    assert_eq!(
        items[1]["changes"],
        json!([{"field": "public", "before": false, "after": true}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_helm_proxy_serves_its_index_and_charts_to_anyone() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let archive = chart("web", "1.0.0", "");
    let digest = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&archive));
    let files: [(&str, &[u8]); 1] = [("charts/web-1.0.0.tgz", &archive)];
    let remote = StaticRepository::start(&files, |_| {
        format!(
            "apiVersion: v1\nentries:\n  web:\n  - {{name: web, version: 1.0.0, apiVersion: v2, digest: {digest}, urls: [charts/web-1.0.0.tgz]}}\n"
        )
    })
    .await;
    let created = app
        .call(
            "POST",
            "/api/v1/upstream-proxies",
            Some(
                json!({"key": "stable", "package_type": "HELM", "url": remote.base,
                        "public": true}),
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["public"], true);
    assert_eq!(created.body["version"], 2, "created, then made public");

    let index = app
        .client
        .get(app.url("/helm/stable/index.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("version: 1.0.0"));
    let file = "/helm/stable/charts/web-1.0.0.tgz";
    let pulled = app.client.get(app.url(file)).send().await.unwrap();
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.bytes().await.unwrap().to_vec(), archive);
    assert_eq!(
        anonymous_status(&app, "POST", "/helm/stable/api/charts").await,
        401
    );

    set_public(&app, "stable", false).await;
    assert_eq!(
        anonymous_status(&app, "GET", "/helm/stable/index.yaml").await,
        401
    );
}

/// Waits until an anonymous `GET` of `path` on `app` answers `status`, and says whether it did
/// within ten seconds.
async fn eventually_status(app: &TestApp, path: &str, status: u16) -> bool {
    for _ in 0..200 {
        if anonymous_status(app, "GET", path).await == status {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_visibility_on_one_instance_holds_on_the_others() {
    let first = TestApp::spawn(Db::Postgres).await;
    let second = first.sibling().await;
    let distribution = Distribution::start(None).await;
    mirror_of(&first, &distribution, 4).await;
    let path = "/v2/mirror/app/manifests/v1";
    // The second instance learns the proxy and keeps it in memory, private.
    assert_eq!(anonymous_status(&second, "GET", path).await, 401);
    set_public(&first, "mirror", true).await;
    assert!(
        eventually_status(&second, path, 200).await,
        "never public there"
    );
    set_public(&first, "mirror", false).await;
    assert!(
        eventually_status(&second, path, 401).await,
        "never private again there"
    );
}
