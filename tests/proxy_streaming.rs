//! A blob pulled through a proxy streams to every client of its one fetch: a client that joins
//! half way gets the whole blob (its start from the file, the rest as it arrives), and a client
//! slower than the upstream gets every byte right while the server's memory stays bounded.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use support::app::{Db, TestApp};
use support::push::{Store, bytes_for, sha256};
use support::upstream::{Distribution, Forwarder};

/// Uploads `bytes` to repository `app` of the Distribution at `host` and returns the digest.
async fn upload(host: &str, bytes: &[u8]) -> String {
    let client = reqwest::Client::new();
    let started = client
        .post(format!("http://{host}/v2/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let digest = sha256(bytes);
    let put = client
        .put(format!("{location}&digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    digest
}

/// Creates the proxy `mirror` of the registry at `host` on `app`.
async fn proxy_to(app: &TestApp, host: &str) {
    let body = json!({"key": "mirror", "package_type": "DOCKER", "source": "CUSTOM",
                      "url": format!("http://{host}")});
    let created = app
        .call("POST", "/api/v1/upstream-proxies", Some(body))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
}

/// Reads `response` until it has at least `at_least` bytes, and returns them with the rest of
/// the stream.
async fn read_some(
    response: reqwest::Response,
    at_least: usize,
) -> (
    Vec<u8>,
    impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>>,
) {
    let mut stream = Box::pin(response.bytes_stream());
    let mut bytes = Vec::new();
    while bytes.len() < at_least {
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("bytes keep coming")
            .expect("the stream goes on")
            .unwrap();
        bytes.extend_from_slice(&chunk);
    }
    (bytes, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_joining_a_fetch_half_way_gets_the_whole_blob() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let distribution = Distribution::start(None).await;
    let blob = bytes_for("half way", 24 * 1024 * 1024);
    let digest = upload(&distribution.host, &blob).await;
    let upstream = Forwarder::start(&distribution.host).await;
    proxy_to(&app, &upstream.host).await;
    // The upstream stops half way, past what the server keeps in memory, until released.
    upstream.hold_after(14 * 1024 * 1024);
    let url = app.url(&format!("/v2/mirror/app/blobs/{digest}"));
    let get = || app.client.get(&url).bearer_auth(app.admin()).send();

    let first = get().await.unwrap();
    assert_eq!(first.status(), 200);
    let (mut first_bytes, first_rest) = read_some(first, 12 * 1024 * 1024).await;
    let second = get().await.unwrap();
    assert_eq!(second.status(), 200);
    let (mut second_bytes, second_rest) = read_some(second, 1).await;
    upstream.release();

    for (bytes, rest) in [
        (&mut first_bytes, first_rest),
        (&mut second_bytes, second_rest),
    ] {
        let rest: Vec<_> = rest.collect().await;
        for chunk in rest {
            bytes.extend_from_slice(&chunk.unwrap());
        }
    }
    assert_eq!(first_bytes.len(), blob.len());
    assert_eq!(sha256(&first_bytes), digest);
    assert_eq!(second_bytes.len(), blob.len());
    assert_eq!(
        sha256(&second_bytes),
        digest,
        "the late client got the whole blob"
    );
    assert_eq!(
        upstream.requests("/blobs/").len(),
        1,
        "one fetch for both: {:?}",
        upstream.requests("/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slower_than_the_upstream_gets_every_byte_in_bounded_memory() {
    let distribution = Distribution::start(None).await;
    let size = 128 * 1024 * 1024;
    let blob = bytes_for("slow reader", size);
    let digest = upload(&distribution.host, &blob).await;
    drop(blob);
    let store = Store::new(false).await;
    let (server, pusher) = store.serve().await;
    let body = json!({"key": "mirror", "package_type": "DOCKER", "source": "CUSTOM",
                      "url": format!("http://{}", distribution.host)});
    let created = pusher
        .send(
            "POST",
            "/api/v1/upstream-proxies",
            &[("Content-Type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let before = server.peak_rss();

    let response = pusher
        .send(
            "GET",
            &format!("/v2/mirror/app/blobs/{digest}"),
            &[],
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = Box::pin(response.bytes_stream());
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut read = 0usize;
    // Far slower than the upstream: a pause every 4 MiB, about 2.5 s in all.
    let mut next_pause = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        sha2::Digest::update(&mut hasher, &chunk);
        read += chunk.len();
        if read >= next_pause {
            next_pause += 4 * 1024 * 1024;
            tokio::time::sleep(Duration::from_millis(80)).await;
        }
    }
    assert_eq!(read, size);
    let got = format!("sha256:{:x}", sha2::Digest::finalize(hasher));
    assert_eq!(got, digest);
    let grew = server.peak_rss().saturating_sub(before);
    eprintln!(
        "peak RSS {} MiB before, grew by {} MiB",
        before / (1024 * 1024),
        grew / (1024 * 1024)
    );
    assert!(
        grew < 64 * 1024 * 1024,
        "serving a 128 MiB blob to a slow client grew the server by {} MiB",
        grew / (1024 * 1024)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_whose_first_request_was_cut_off_before_it_began_does_not_hold_up_the_next() {
    // A connection silent for a second is cut off, and with it the request it carries.
    let app = TestApp::spawn_with_idle_timeout(Db::Sqlite, Duration::from_secs(1)).await;
    let distribution = Distribution::start(None).await;
    let blob = bytes_for("left early", 1024 * 1024);
    let digest = upload(&distribution.host, &blob).await;
    let upstream = Forwarder::start(&distribution.host).await;
    proxy_to(&app, &upstream.host).await;
    let url = app.url(&format!("/v2/mirror/app/blobs/{digest}"));

    // The remote answers nothing past its first byte, so the first request is cut off while
    // the fetch it started still waits for the remote's answer.
    upstream.hold_after(1);
    let cut_off = app
        .client
        .get(&url)
        .bearer_auth(app.admin())
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    assert!(cut_off.is_err(), "the remote was held: {cut_off:?}");
    upstream.release();

    // The fetch it started went with it: the next client starts its own and gets the blob.
    let next = app
        .client
        .get(&url)
        .bearer_auth(app.admin())
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the next pull is not held up by the abandoned fetch");
    assert_eq!(next.status(), 200);
    let bytes = next.bytes().await.expect("the whole blob");
    assert_eq!(sha256(&bytes), digest);
}
