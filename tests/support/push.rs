//! A client of a `berth serve` process that pushes the way registry clients do (chunked and
//! monolithic blob uploads, manifests by tag) and creates registries, answering `None` when a
//! write was not acknowledged, so that tests which kill the server can tell what was.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::app::{JWT_SECRET, now, sign};
use super::postgres::TestDatabase;
use super::server::TestServer;

/// The media type of the manifests pushed here.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// `len` bytes that differ with `seed`.
pub fn bytes_for(seed: &str, len: usize) -> Vec<u8> {
    let salt = Sha256::digest(seed.as_bytes());
    (0..len).map(|n| salt[n % 32] ^ (n / 32) as u8).collect()
}

/// Where a test server keeps its data: a directory, and a PostgreSQL database when not on
/// SQLite.
pub struct Store {
    /// The data directory.
    pub dir: tempfile::TempDir,
    /// The database, when on PostgreSQL.
    pub database: Option<TestDatabase>,
}

impl Store {
    /// A fresh data directory, with a fresh PostgreSQL database when `postgres`.
    pub async fn new(postgres: bool) -> Self {
        let database = if postgres {
            Some(TestDatabase::create().await)
        } else {
            None
        };
        let dir = tempfile::tempdir().expect("temp dir");
        Self { dir, database }
    }

    /// The data directory as text.
    pub fn data_dir(&self) -> &str {
        self.dir.path().to_str().expect("a UTF-8 temp dir")
    }

    /// The database URL, when on PostgreSQL.
    pub fn url(&self) -> Option<&str> {
        self.database.as_ref().map(|d| d.url.as_str())
    }

    /// Starts `berth serve` on this store and waits until it is ready.
    pub async fn serve(&self) -> (TestServer, Pusher) {
        self.serve_with(&[], &[]).await
    }

    /// Starts `berth serve` on this store with more arguments and environment, and waits until
    /// it is ready.
    pub async fn serve_with(&self, args: &[&str], env: &[(&str, &str)]) -> (TestServer, Pusher) {
        let mut env = [&[("BERTH_JWT_SECRET", JWT_SECRET)], env].concat();
        if let Some(url) = self.url() {
            env.push(("DATABASE_URL", url));
        }
        let mut all = vec!["--data-dir", self.data_dir()];
        all.extend_from_slice(args);
        let server = TestServer::start(&all, &env);
        let pusher = Pusher::new(&server.base_url);
        for _ in 0..200 {
            if let Ok(r) = pusher.send("GET", "/readyz", &[], Vec::new()).await
                && r.status() == 200
            {
                return (server, pusher);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("berth serve never became ready; log:\n{}", server.log());
    }
}

/// An admin client of one server.
#[derive(Clone)]
pub struct Pusher {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Pusher {
    /// A client of the server at `base`.
    pub fn new(base: &str) -> Self {
        let token =
            sign(json!({"sub": "crash", "scope": "admin", "exp": now() + 3600, "iat": now()}));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self {
            http,
            base: base.to_owned(),
            token,
        }
    }

    /// Sends a request with the admin token.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Result<reqwest::Response> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.token)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await
    }

    /// Sends a request and answers its status and its `Location` header, if it was answered.
    async fn status(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Option<(u16, Option<String>)> {
        let response = self.send(method, path, headers, body).await.ok()?;
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Some((response.status().as_u16(), location))
    }

    /// Creates a registry of `package_type` (`DOCKER` or `HELM`); `Some` once acknowledged.
    pub async fn create_registry(&self, name: &str, package_type: &str) -> Option<()> {
        let body = json!({"name": name, "package_type": package_type}).to_string();
        let headers = [("Content-Type", "application/json")];
        let (status, _) = self
            .status("POST", "/api/v1/registries", &headers, body.into_bytes())
            .await?;
        (status == 201).then_some(())
    }

    /// Starts an upload; its location once acknowledged.
    pub async fn start_upload(&self, repository: &str) -> Option<String> {
        let path = format!("/v2/{repository}/blobs/uploads/");
        match self.status("POST", &path, &[], Vec::new()).await? {
            (202, location) => location,
            _ => None,
        }
    }

    /// Appends `chunk` at `offset` to the upload at `location`; `Some` once acknowledged.
    pub async fn patch(&self, location: &str, offset: usize, chunk: &[u8]) -> Option<()> {
        let range = format!("{offset}-{}", offset + chunk.len() - 1);
        let headers = [("Content-Range", range.as_str())];
        let (status, _) = self
            .status("PATCH", location, &headers, chunk.to_vec())
            .await?;
        (status == 202).then_some(())
    }

    /// Uploads `bytes` in two chunks (POST, PATCH, PATCH, PUT); the digest once acknowledged.
    pub async fn chunked_upload(&self, repository: &str, bytes: &[u8]) -> Option<String> {
        let location = self.start_upload(repository).await?;
        let half = bytes.len() / 2;
        self.patch(&location, 0, &bytes[..half]).await?;
        self.patch(&location, half, &bytes[half..]).await?;
        let digest = sha256(bytes);
        let put = format!("{location}?digest={digest}");
        let (status, _) = self.status("PUT", &put, &[], Vec::new()).await?;
        (status == 201).then_some(digest)
    }

    /// Uploads `bytes` in one request; the digest once acknowledged.
    pub async fn monolithic_upload(&self, repository: &str, bytes: &[u8]) -> Option<String> {
        let digest = sha256(bytes);
        let path = format!("/v2/{repository}/blobs/uploads/?digest={digest}");
        let (status, _) = self.status("POST", &path, &[], bytes.to_vec()).await?;
        (status == 201).then_some(digest)
    }

    /// Pushes an image (a config and one layer of `layer_size` bytes) as `tag`; the
    /// manifest's digest and bytes once every step was acknowledged.
    pub async fn push_image(
        &self,
        repository: &str,
        tag: &str,
        layer_size: usize,
    ) -> Option<(String, Vec<u8>)> {
        let seed = format!("{repository}:{tag}");
        let layer = bytes_for(&seed, layer_size);
        let layer_digest = self.chunked_upload(repository, &layer).await?;
        let config = json!({"architecture": "amd64", "os": "linux", "seed": seed}).to_string();
        let config_digest = self
            .monolithic_upload(repository, config.as_bytes())
            .await?;
        let manifest = image_manifest((&config_digest, config.len()), (&layer_digest, layer.len()));
        let path = format!("/v2/{repository}/manifests/{tag}");
        let headers = [("Content-Type", OCI_MANIFEST)];
        let (status, _) = self
            .status("PUT", &path, &headers, manifest.clone())
            .await?;
        (status == 201).then(|| (sha256(&manifest), manifest))
    }

    /// Pushes an OCI index of `children` (digest and size of image manifests) as `tag`; its
    /// digest once acknowledged.
    pub async fn push_index(
        &self,
        repository: &str,
        tag: &str,
        children: &[(&str, usize)],
    ) -> Option<String> {
        const INDEX: &str = "application/vnd.oci.image.index.v1+json";
        let manifests: Vec<Value> = children
            .iter()
            .map(
                |(digest, size)| json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size}),
            )
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
        let bytes = index.to_string().into_bytes();
        let path = format!("/v2/{repository}/manifests/{tag}");
        let (status, _) = self
            .status("PUT", &path, &[("Content-Type", INDEX)], bytes.clone())
            .await?;
        (status == 201).then(|| sha256(&bytes))
    }

    /// Uploads a chart archive to a Helm registry, as `helm cm-push` does; `Some` once
    /// acknowledged.
    pub async fn upload_chart(&self, registry: &str, archive: Vec<u8>) -> Option<()> {
        let path = format!("/helm/{registry}/api/charts");
        let headers = [("Content-Type", "application/gzip")];
        let (status, _) = self.status("POST", &path, &headers, archive).await?;
        (status == 201).then_some(())
    }

    /// The body of a GET and its `Docker-Content-Digest`, when it answers 200.
    pub async fn get(&self, path: &str) -> Option<(Vec<u8>, Option<String>)> {
        let response = self.send("GET", path, &[], Vec::new()).await.ok()?;
        if response.status() != 200 {
            return None;
        }
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Some((response.bytes().await.ok()?.to_vec(), digest))
    }

    /// The JSON body of a GET, when it answers 200.
    pub async fn get_json(&self, path: &str) -> Option<Value> {
        let (body, _) = self.get(path).await?;
        serde_json::from_slice(&body).ok()
    }
}

/// An OCI image manifest naming a config and one layer.
pub fn image_manifest(config: (&str, usize), layer: (&str, usize)) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.0, "size": layer.1}],
    })
    .to_string()
    .into_bytes()
}
