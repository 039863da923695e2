//! The `berth` binary itself: `serve` on each backend, readiness, shutdown, and the
//! `rebuild-projections` command.

mod support;

use std::process::Command;
use std::time::Duration;

use berth::config::DatabaseConfig;
use berth::event_store::{AppendRequest, Backend, ExpectedVersion, Metadata, NewEvent, StreamId};
use berth::projections::{self, streams};
use serde_json::json;
use support::app::{Db, TestApp};
use support::postgres::TestDatabase;
use support::server::TestServer;

async fn get(url: String) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn serve_on_an_empty_data_dir_is_ready_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("fresh");
    let mut server = TestServer::start(&["--data-dir", data_dir.to_str().unwrap()], &[]);
    let (status, body) = get(format!("{}/healthz", server.base_url)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("alive")));
    let (status, body) = get(format!("{}/readyz", server.base_url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "sqlite");
    assert!(data_dir.join("berth.db").exists());
    assert!(server.terminate(), "SIGTERM should end serve cleanly");
}

#[tokio::test]
async fn serve_says_first_where_the_console_is_and_how_to_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&["--data-dir", dir.path().to_str().unwrap()], &[]);
    let printed = server.printed(3);
    assert_eq!(
        printed[0],
        format!("Berth listening on {}", server.base_url)
    );
    let console = printed[1].strip_prefix("  console:   ").expect(&printed[1]);
    let console = console.split_whitespace().next().unwrap();
    assert_eq!(console, format!("{}/", server.base_url));
    let page = reqwest::get(console).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<title>Berth"));
    assert!(printed[2].starts_with("  token:     "), "{printed:?}");
    assert!(printed[2].contains("token --data-dir"), "{printed:?}");
}

#[test]
fn sigterm_as_soon_as_serve_says_it_listens_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    for _ in 0..5 {
        let mut server = TestServer::start(&["--data-dir", data_dir], &[]);
        assert!(server.terminate(), "log:\n{}", server.log());
    }
}

#[tokio::test]
async fn serve_is_ready_on_postgres() {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        &["--data-dir", dir.path().to_str().unwrap()],
        &[("DATABASE_URL", &db.url)],
    );
    // Migrations run in the background; readiness follows within moments.
    let mut last = (0, json!(null));
    for _ in 0..100 {
        last = get(format!("{}/readyz", server.base_url)).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last.0, 200, "{}", last.1);
    assert_eq!(last.1["database"], "postgres");
}

#[tokio::test]
async fn serve_with_an_unreachable_database_is_not_ready_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there, so connections are refused at once.
    let server = TestServer::start(
        &["--data-dir", dir.path().to_str().unwrap()],
        &[("DATABASE_URL", "postgres://berth@127.0.0.1:1/berth")],
    );
    let response = reqwest::get(format!("{}/readyz", server.base_url))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: serde_json::Value = response.json().await.unwrap();
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains("refused"), "{reason}");
    let (status, _) = get(format!("{}/healthz", server.base_url)).await;
    assert_eq!(
        status, 200,
        "the process is alive even without its database"
    );
    server.wait_for_log("database not ready", Duration::from_secs(10));
    assert!(
        server.log().contains("Connection refused"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn rebuild_projections_replays_the_log_and_reports_progress() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatabaseConfig::Sqlite {
        path: dir.path().join("berth.db"),
        pool_size: 2,
    };
    let backend = Backend::open(&config, projections::all()).await.unwrap();
    for n in 0..25 {
        backend
            .store()
            .append(AppendRequest {
                stream: StreamId::new("widget", format!("r{}", n % 5)),
                expected: ExpectedVersion::Any,
                events: vec![NewEvent::new("A", 1, json!({ "n": n }))],
                metadata: Metadata::default(),
                fingerprint: None,
            })
            .await
            .unwrap();
    }
    let before = streams::list(&backend).await.unwrap();
    drop(backend);

    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "rebuild-projections",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("replayed 25/25 events (100%)"), "{stderr}");
    assert!(stderr.contains("from 25 events"), "{stderr}");

    let backend = Backend::open(&config, projections::all()).await.unwrap();
    assert_eq!(streams::list(&backend).await.unwrap(), before);
}

#[test]
fn every_command_explains_itself_with_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["rebuild-projections", "--help"],
        vec!["token", "--help"],
        vec!["openapi", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}");
        assert!(text.contains("Usage: berth"), "{args:?}: {text}");
        if matches!(args[0], "serve" | "rebuild-projections") {
            assert!(text.contains("--data-dir"), "{args:?}: {text}");
            assert!(text.contains("DATABASE_URL"), "{args:?}: {text}");
        }
    }
}

#[test]
fn token_prints_a_token_the_server_accepts_and_refuses_unknown_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "token",
            "--data-dir",
            data_dir,
            "--sub",
            "ops",
            "--scope",
            "registry:read",
            "--ttl",
            "10m",
        ])
        .env_remove("BERTH_JWT_SECRET")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3);
    assert!(dir.path().join("jwt.secret").exists());

    let server = TestServer::start(&["--data-dir", data_dir], &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/api/v1/registries", server.base_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let refused = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "token",
            "--data-dir",
            data_dir,
            "--sub",
            "ops",
            "--scope",
            "root",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("names no known scope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_request_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        &[
            "--data-dir",
            data.path().to_str().unwrap(),
            "--idle-timeout",
            "1s",
        ],
        &[],
    );
    let address = server.base_url.trim_start_matches("http://").to_owned();
    // A prompt client is served.
    let healthy = reqwest::get(format!("{}/healthz", server.base_url))
        .await
        .unwrap();
    assert_eq!(healthy.status(), 200);
    // One byte every two seconds: the connection is closed long before the request ends.
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let started = std::time::Instant::now();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut closed = false;
    for byte in request {
        if socket.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buffer = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => panic!("a trickled request was answered"),
            Err(_) => {}
        }
    }
    assert!(closed, "the connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_console_is_served_at_the_root_with_its_files_and_a_strict_policy() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let client = reqwest::Client::new();
    let page = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"src="/console/app.js""#), "{html}");

    let script = client.get(app.url("/console/app.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let etag = script.headers()["etag"].to_str().unwrap().to_owned();
    let again = client
        .get(app.url("/console/app.js"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let plain = client.get(app.url("/console/app.js")).send().await.unwrap();
    let plain = plain.bytes().await.unwrap();
    let packed = client
        .get(app.url("/console/app.js"))
        .header("Accept-Encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(packed.headers()["content-encoding"], "gzip");
    assert_eq!(packed.headers()["etag"].to_str().unwrap(), etag);
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&packed.bytes().await.unwrap()[..]),
        &mut unpacked,
    )
    .unwrap();
    assert_eq!(unpacked, plain);

    for missing in ["/console/nope.js", "/console/..%2fCargo.toml", "/console/"] {
        let response = client.get(app.url(missing)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{missing}");
    }
    // The API keeps its own answers beside the page.
    let api = client.get(app.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(
        api.json::<serde_json::Value>().await.unwrap()["code"],
        "NOT_FOUND"
    );
}
