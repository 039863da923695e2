//! Malformed `/v2` requests sent to Berth and to a real CNCF Distribution side by side: where
//! Berth chose to answer as Distribution does, the statuses must agree; where it keeps its own
//! answer (the reasons are in `registry/errcode.rs`), the test says so and pins both answers.

mod support;

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::app::{Db, TestApp};
use support::upstream::Distribution;

/// What one server answered: the status and the first error code, if the body had one.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    code: Option<String>,
}

struct Peer {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Peer {
    async fn ask(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let code = body["errors"][0]["code"].as_str().map(str::to_owned);
        Answer { status, code }
    }

    /// Pushes `bytes` as a blob of `repository` and returns its digest.
    async fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{:x}", Sha256::digest(bytes));
        let mut start = self
            .client
            .post(format!("{}/v2/{repository}/blobs/uploads/", self.base));
        if let Some(token) = &self.token {
            start = start.bearer_auth(token);
        }
        let started = start.send().await.unwrap();
        assert_eq!(started.status(), 202);
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let mut put = self
            .client
            .put(format!("{location}{separator}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec());
        if let Some(token) = &self.token {
            put = put.bearer_auth(token);
        }
        assert_eq!(put.send().await.unwrap().status(), 201);
        digest
    }

    /// Starts an upload in `repository` and returns its path.
    async fn start_upload(&self, repository: &str) -> String {
        let mut start = self
            .client
            .post(format!("{}/v2/{repository}/blobs/uploads/", self.base));
        if let Some(token) = &self.token {
            start = start.bearer_auth(token);
        }
        let started = start.send().await.unwrap();
        assert_eq!(started.status(), 202);
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        location.trim_start_matches(&self.base).to_owned()
    }
}

/// One malformed request: method, path, headers, and how the two answers stand.
type Case = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    Expect,
);

/// How Berth's answer stands to Distribution's.
enum Expect {
    /// The same status; Berth's code is the one given.
    Same(&'static str),
    /// Berth keeps its own answer; both are pinned.
    Own {
        berth: (u16, &'static str),
        distribution: u16,
    },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_answered_as_distribution_answers_them_or_as_documented() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let created = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(serde_json::json!({"name": "team", "package_type": "DOCKER"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let distribution = Distribution::start(None).await;
    let client = reqwest::Client::new();
    let berth = Peer {
        base: app.base_url.clone(),
        token: Some(app.admin()),
        client: client.clone(),
    };
    let peer = Peer {
        base: format!("http://{}", distribution.host),
        token: None,
        client,
    };
    let blob = vec![5u8; 1000];
    let digest = berth.push_blob("team/app", &blob).await;
    assert_eq!(peer.push_blob("team/app", &blob).await, digest);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 1000},
        "layers": [],
    })
    .to_string();
    let oci = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")];
    for server in [&berth, &peer] {
        let pushed = server.ask(
            "PUT",
            "/v2/team/app/manifests/v1",
            &oci,
            manifest.as_bytes(),
        );
        assert_eq!(pushed.await.status, 201);
    }
    let berth_upload = berth.start_upload("team/app").await;
    let peer_upload = peer.start_upload("team/app").await;

    let unknown_upload = "/v2/team/app/blobs/uploads/3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    let blob_path = format!("/v2/team/app/blobs/{digest}");
    let short = "/v2/team/app/blobs/sha256:00000000000000000000000000000000";
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/v2/team/app/manifests/.INVALID_MANIFEST_NAME".into(),
            vec![],
            Expect::Same("MANIFEST_UNKNOWN"),
        ),
        (
            "HEAD",
            "/v2/team/app/manifests/.INVALID_MANIFEST_NAME".into(),
            vec![],
            Expect::Same("MANIFEST_UNKNOWN"),
        ),
        (
            "DELETE",
            "/v2/team/app/manifests/.INVALID_MANIFEST_NAME".into(),
            vec![],
            Expect::Same("MANIFEST_UNKNOWN"),
        ),
        (
            "PUT",
            "/v2/team/app/manifests/.INVALID_MANIFEST_NAME".into(),
            vec![("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            // Distribution's routes never match it (404); a push must learn it is invalid.
            Expect::Own {
                berth: (400, "TAG_INVALID"),
                distribution: 404,
            },
        ),
        (
            "GET",
            "/v2/team/app/manifests/sha256:abc".into(),
            vec![],
            // Distribution fails looking it up as a tag (500).
            Expect::Own {
                berth: (404, "MANIFEST_UNKNOWN"),
                distribution: 500,
            },
        ),
        (
            "GET",
            "/v2/team/app/blobs/sha256:abc".into(),
            vec![],
            Expect::Same("DIGEST_INVALID"),
        ),
        (
            "DELETE",
            "/v2/team/app/blobs/sha256:abc".into(),
            vec![],
            Expect::Same("DIGEST_INVALID"),
        ),
        (
            "GET",
            "/v2/team/app/blobs/md5:00000000000000000000000000000000".into(),
            vec![],
            Expect::Same("DIGEST_INVALID"),
        ),
        ("GET", short.into(), vec![], Expect::Same("DIGEST_INVALID")),
        (
            "GET",
            "/v2/team/app/blobs/notadigest".into(),
            vec![],
            Expect::Same("BLOB_UNKNOWN"),
        ),
        (
            "GET",
            "/v2/team/Bad/manifests/latest".into(),
            vec![],
            Expect::Own {
                berth: (400, "NAME_INVALID"),
                distribution: 404,
            },
        ),
        (
            "GET",
            "/v2/nowhere/manifests/latest".into(),
            vec![],
            Expect::Same("NAME_UNKNOWN"),
        ),
        (
            "GET",
            unknown_upload.into(),
            vec![],
            Expect::Same("BLOB_UPLOAD_UNKNOWN"),
        ),
        (
            "GET",
            blob_path.clone(),
            vec![("Range", "bytes=2000-3000")],
            Expect::Same("BLOB_UPLOAD_INVALID"),
        ),
        (
            "GET",
            blob_path.clone(),
            vec![("Range", "bytes=zzz")],
            Expect::Same("BLOB_UPLOAD_INVALID"),
        ),
        (
            "GET",
            "/v2/team/app/tags/list?n=abc".into(),
            vec![],
            // Distribution 2.8 ignores a malformed n and lists everything.
            Expect::Own {
                berth: (400, "PAGINATION_NUMBER_INVALID"),
                distribution: 200,
            },
        ),
    ];
    for (method, path, headers, expect) in cases {
        let ours = berth.ask(method, &path, &headers, b"").await;
        let theirs = peer.ask(method, &path, &headers, b"").await;
        match expect {
            Expect::Same(code) => {
                assert_eq!(ours.status, theirs.status, "{method} {path}: {theirs:?}");
                if method != "HEAD" {
                    assert_eq!(ours.code.as_deref(), Some(code), "{method} {path}");
                }
            }
            Expect::Own {
                berth: (status, code),
                distribution,
            } => {
                assert_eq!(
                    (ours.status, ours.code.as_deref()),
                    (status, Some(code)),
                    "{method} {path}"
                );
                assert_eq!(theirs.status, distribution, "{method} {path}: {theirs:?}");
            }
        }
    }

    // A chunk that does not start where the upload is: the specification's 416 in Berth, while
    // Distribution 2.8 takes it.
    let range = [("Content-Range", "5-10")];
    let ours = berth.ask("PATCH", &berth_upload, &range, b"abcdef").await;
    assert_eq!(
        (ours.status, ours.code.as_deref()),
        (416, Some("BLOB_UPLOAD_INVALID"))
    );
    let theirs = peer.ask("PATCH", &peer_upload, &range, b"abcdef").await;
    assert_eq!(theirs.status, 202);
}
