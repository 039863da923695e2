//! A database restart under load: while PostgreSQL is down Berth answers 503 with
//! `Retry-After`, it recovers by itself when the database is back, and nothing it acknowledged
//! is lost.

mod support;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth::config::{DatabaseConfig, Secret};
use serde_json::{Value, json};
use support::app::TestApp;
use support::cluster::Cluster;
use support::push::sha256 as digest;
use tokio::sync::Mutex;

/// What the load saw: each request's outcome, by kind.
#[derive(Default)]
struct Tally {
    /// Registries whose creation was acknowledged (201).
    created: BTreeSet<String>,
    /// Registries whose creation was attempted at all.
    attempted: BTreeSet<String>,
    /// Tags whose manifest push was acknowledged, with the digest Berth gave.
    tagged: Vec<(String, String)>,
    /// 503 answers, and how many of them lacked `Retry-After`.
    unavailable: usize,
    unavailable_without_retry_after: usize,
    /// Answers that were neither a success nor a 503, and transport errors.
    unexpected: Vec<String>,
    /// Successes after the database came back.
    successes_after: usize,
}

/// Requests sent in a loop by several workers, tallied, until told to stop.
#[derive(Clone)]
struct Load {
    client: reqwest::Client,
    token: String,
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    /// Set once the database is back, to count successes after.
    recovered: Arc<AtomicBool>,
}

impl Load {
    /// Sends `request` with the token and tallies the answer; gives it back when a success.
    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Option<reqwest::Response> {
        let after = self.recovered.load(Ordering::Relaxed);
        let response = request.bearer_auth(&self.token).send().await;
        record(&self.tally, what, response, after).await
    }

    /// Runs `step(load, i)` for i = 1, 2, … until the load stops.
    fn spawn<F, S>(&self, mut step: F) -> tokio::task::JoinHandle<()>
    where
        F: FnMut(Load, u64) -> S + Send + 'static,
        S: Future<Output = ()> + Send,
    {
        let load = self.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while !load.stop.load(Ordering::Relaxed) {
                i += 1;
                step(load.clone(), i).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    }
}

async fn record(
    tally: &Mutex<Tally>,
    what: &str,
    response: Result<reqwest::Response, reqwest::Error>,
    recovered: bool,
) -> Option<reqwest::Response> {
    let mut tally = tally.lock().await;
    match response {
        Ok(r) if r.status().is_success() => {
            if recovered {
                tally.successes_after += 1;
            }
            Some(r)
        }
        Ok(r) if r.status() == 503 => {
            tally.unavailable += 1;
            if r.headers().get("retry-after").is_none() {
                tally.unavailable_without_retry_after += 1;
            }
            None
        }
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            tally.unexpected.push(format!("{what}: {status} {body}"));
            None
        }
        Err(e) => {
            tally.unexpected.push(format!("{what}: {e}"));
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_gets_503s_then_recovers_and_loses_nothing_acknowledged() {
    let cluster = Cluster::start();
    let app = TestApp::on_database(DatabaseConfig::Postgres {
        url: Secret::new(cluster.url()),
        pool_size: 8,
    })
    .await;
    let token = app.admin();
    let created = app
        .call(
            "POST",
            "/api/v1/registries",
            Some(json!({"name": "team", "package_type": "DOCKER"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let layer = b"a layer that every manifest shares".to_vec();
    let layer_digest = digest(&layer);
    let pushed = client
        .post(app.url(&format!(
            "/v2/team/app/blobs/uploads/?digest={layer_digest}"
        )))
        .bearer_auth(&token)
        .body(layer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 201);

    let load = Load {
        client: client.clone(),
        token: token.clone(),
        tally: Arc::default(),
        stop: Arc::default(),
        recovered: Arc::default(),
    };
    let mut workers = Vec::new();
    // Control-plane writers.
    for writer in 0..3 {
        let url = app.url("/api/v1/registries");
        workers.push(load.spawn(move |load, i| {
            let url = url.clone();
            async move {
                let name = format!("w{writer}-{i}");
                load.tally.lock().await.attempted.insert(name.clone());
                let body = json!({"name": name, "package_type": "DOCKER"});
                let request = load.client.post(&url).json(&body);
                if load.send("create", request).await.is_some() {
                    load.tally.lock().await.created.insert(name);
                }
            }
        }));
    }
    // Data-plane writer: each manifest is new (an annotation numbers it) and gets its own tag.
    let base = app.url("/v2/team/app/manifests");
    let size = layer.len();
    workers.push(load.spawn(move |load, i| {
        let (base, layer_digest) = (base.clone(), layer_digest.clone());
        async move {
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.example.note",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": layer_digest, "size": size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": size}],
                "annotations": {"n": i.to_string()},
            }))
            .unwrap();
            let tag = format!("t{i}");
            let request = load
                .client
                .put(format!("{base}/{tag}"))
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest.clone());
            if let Some(r) = load.send("push", request).await {
                let given = r.headers()["docker-content-digest"].to_str().unwrap().to_owned();
                assert_eq!(given, digest(&manifest));
                load.tally.lock().await.tagged.push((tag, given));
            }
        }
    }));
    // Readers: lists, the log, a tag list.
    for path in [
        "/api/v1/registries?page_size=5",
        "/api/v1/events?limit=5",
        "/v2/team/app/tags/list",
    ] {
        let url = app.url(path);
        workers.push(load.spawn(move |load, _| {
            let url = url.clone();
            async move {
                load.send("read", load.client.get(&url)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.stop();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let ready = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    cluster.resume();
    // Berth notices by itself: no restart, no operator.
    let mut back = false;
    for _ in 0..300 {
        if client
            .get(app.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        back,
        "/readyz did not recover within 30 s of the database coming back"
    );
    load.recovered.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    load.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let tally = load.tally.lock().await;
    assert!(
        tally.unexpected.is_empty(),
        "answers other than success or 503: {:#?}",
        &tally.unexpected[..tally.unexpected.len().min(10)]
    );
    assert!(tally.unavailable > 0, "the outage was never seen");
    assert_eq!(
        tally.unavailable_without_retry_after, 0,
        "503s without Retry-After"
    );
    assert!(
        tally.successes_after > 20,
        "only {} successes after recovery",
        tally.successes_after
    );

    // Every acknowledged registry is there, and the log holds exactly one creation per
    // registry: at least every acknowledged one, at most every attempted one.
    let mut listed = BTreeSet::new();
    let mut page_token: Option<String> = None;
    loop {
        let path = match &page_token {
            Some(t) => format!("/api/v1/registries?page_size=500&page_token={t}"),
            None => "/api/v1/registries?page_size=500".to_owned(),
        };
        let page = app.call("GET", &path, None).await;
        assert_eq!(page.status, 200);
        listed.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned()),
        );
        match page.body["next_page_token"].as_str() {
            Some(t) => page_token = Some(t.to_owned()),
            None => break,
        }
    }
    listed.remove("team");
    let lost: Vec<_> = tally.created.difference(&listed).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(
        listed.is_subset(&tally.attempted),
        "registries nobody asked for"
    );
    let mut logged = 0;
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            Some(p) => format!("/api/v1/events?type=RegistryCreated&limit=500&after={p}"),
            None => "/api/v1/events?type=RegistryCreated&limit=500".to_owned(),
        };
        let page = app.call("GET", &path, None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let items: &Vec<Value> = page.body["items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        logged += items.len();
        after = items.last().unwrap()["position"].as_u64();
    }
    assert_eq!(logged, listed.len() + 1, "one RegistryCreated per registry");
    println!(
        "outage: {} creates acknowledged of {} attempted, {} tags pushed, {} answers 503, {} successes after recovery",
        tally.created.len(),
        tally.attempted.len(),
        tally.tagged.len(),
        tally.unavailable,
        tally.successes_after
    );

    // Every acknowledged tag points at the manifest that was acknowledged.
    for (tag, digest) in &tally.tagged {
        let response = client
            .head(app.url(&format!("/v2/team/app/manifests/{tag}")))
            .bearer_auth(&token)
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{tag}");
        assert_eq!(
            response.headers()["docker-content-digest"]
                .to_str()
                .unwrap(),
            digest,
            "{tag}"
        );
    }
}
