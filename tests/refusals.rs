//! Every refusal of a request with a body reaches the client as an answer, never as a broken
//! pipe: 401 for a missing or expired token, 404 for an unknown upload or registry, on blob
//! chunks, blob and manifest puts and chart uploads, sent with a length or chunked. And the
//! real oras client, whose token expires half way through a chunked push, reads the 401 and
//! finishes the push once logged in again.

mod support;

use std::time::Duration;

use serde_json::json;
use support::app::{Db, TestApp, now, sign};
use support::clients::oras_script;

/// Larger than what the kernel takes into its socket buffers at once, so that a server that
/// answers and closes without reading makes the sender see a reset.
const BODY_BYTES: usize = 4 * 1024 * 1024;

async fn registry(app: &TestApp, name: &str, package_type: &str) {
    let response = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": name, "package_type": package_type})),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
}

/// Sends `BODY_BYTES` to `path`, with a `Content-Length` or chunked, and returns the status the
/// client read, or the transport error it saw instead.
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    chunked: bool,
) -> Result<u16, String> {
    let body = if chunked {
        let chunks = futures_util::stream::iter(
            (0..BODY_BYTES / (64 * 1024)).map(|_| Ok::<_, std::io::Error>(vec![7u8; 64 * 1024])),
        );
        reqwest::Body::wrap_stream(chunks)
    } else {
        reqwest::Body::from(vec![7u8; BODY_BYTES])
    };
    let mut request = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .header("Content-Type", "application/octet-stream")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("{e:?}"))?;
    Ok(response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_requests_with_bodies_reach_the_client() {
    let app = TestApp::spawn(Db::Sqlite).await;
    registry(&app, "team", "DOCKER").await;
    registry(&app, "charts", "HELM").await;
    let started = app
        .client
        .post(app.url("/v2/team/app/blobs/uploads/"))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let upload = started.headers()["location"].to_str().unwrap().to_owned();
    let digest = format!("sha256:{}", "0".repeat(64));
    let admin = app.admin();
    let expired = sign(json!({
        "sub": "late", "scope": "registry:write registry:read", "exp": now() - 120,
    }));
    let cases: Vec<(&str, String, Option<&str>, u16)> = vec![
        ("PATCH", upload.clone(), None, 401),
        ("PATCH", upload.clone(), Some(&expired), 401),
        (
            "PUT",
            format!("{upload}?digest={digest}"),
            Some(&expired),
            401,
        ),
        (
            "PATCH",
            "/v2/team/app/blobs/uploads/unknown-upload".into(),
            Some(&admin),
            404,
        ),
        (
            "PUT",
            format!("/v2/team/app/blobs/uploads/unknown-upload?digest={digest}"),
            Some(&admin),
            404,
        ),
        ("PUT", "/v2/team/app/manifests/v1".into(), None, 401),
        (
            "PUT",
            "/v2/nowhere/app/manifests/v1".into(),
            Some(&admin),
            404,
        ),
        ("POST", "/helm/charts/api/charts".into(), None, 401),
    ];
    for chunked in [false, true] {
        for (method, path, token, status) in &cases {
            // Several times each: a race between the answer and the sender shows up as one
            // broken pipe among a few tries.
            for _ in 0..3 {
                let answer = send(&app, method, path, *token, chunked).await;
                assert_eq!(
                    answer,
                    Ok(*status),
                    "{method} {path} (chunked: {chunked}) with token {}",
                    token.is_some()
                );
            }
        }
    }
    // Nothing refused was kept: the upload is still at its start.
    let status = app
        .client
        .get(app.url(&upload))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_waiting_to_continue_is_refused_before_it_sends() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn(Db::Sqlite).await;
    registry(&app, "team", "DOCKER").await;
    let address = app.base_url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "PATCH /v2/team/app/blobs/uploads/unknown HTTP/1.1\r\nHost: berth\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {BODY_BYTES}\r\n\
         Expect: 100-continue\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = [0u8; 32];
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer));
    let n = read.await.expect("an answer").unwrap();
    let status_line = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(status_line.starts_with("HTTP/1.1 401"), "{status_line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_whose_token_expires_mid_push_hears_401_and_finishes_once_logged_in_again() {
    let app = TestApp::spawn(Db::Sqlite).await;
    registry(&app, "team", "DOCKER").await;
    // Berth allows 30 s of leeway for clock skew past `exp`: this token is taken for about ten
    // more seconds, and the script holds its second chunk until that time has passed.
    let expires_at = now() + 10;
    let short = sign(json!({
        "sub": "oras", "scope": "registry:read registry:write", "iat": now(),
        "exp": expires_at - 30,
    }));
    let work = tempfile::tempdir().unwrap();
    let host = app.base_url.trim_start_matches("http://");
    let (admin, expires_at) = (app.admin(), expires_at.to_string());
    let args = [host, &admin, &short, &expires_at, "team/slow"];
    let report = oras_script("oras_expiring_token.py", &args, work.path());
    assert_eq!(report["push_status"], 201, "{report}");
    let chunks: Vec<u64> = report["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    // The token ran out between two chunks, and the SDK read the refusal as one: an
    // authentication error, where a connection closed under the chunk raises ConnectionError.
    assert!(chunks.contains(&401), "no chunk met the expiry: {chunks:?}");
    let first_error = report["first_error"].as_str().unwrap_or_default();
    assert!(
        first_error.starts_with("ValueError") && first_error.contains("Unauthorized"),
        "{first_error}"
    );
    // Logged in again, the push went through whole.
    assert_eq!(chunks.last(), Some(&202), "{chunks:?}");
    assert_eq!(report["layers"], json!([report["digest"]]), "{report}");
    // And Berth holds the blob whole.
    let blob = app
        .client
        .get(app.url(&format!(
            "/v2/team/slow/blobs/{}",
            report["digest"].as_str().unwrap()
        )))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), 200);
    let bytes = blob.bytes().await.unwrap();
    assert_eq!(bytes.len(), 48 * 1024 * 1024);
    use sha2::Digest;
    assert_eq!(
        format!("sha256:{:x}", sha2::Sha256::digest(&bytes)),
        report["digest"]
    );
}
