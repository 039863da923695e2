//! Helm charts and the real helm client (v3 and v4, installed under `.tools/helm` by
//! `make test`), each run with its own configuration, cache and registry login.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A chart archive: `<name>/Chart.yaml` (with `extra` appended), values and one template.
pub fn chart(name: &str, version: &str, extra: &str) -> Vec<u8> {
    let chart_yaml = format!(
        "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"1.0\"\ndescription: The {name} chart\n{extra}"
    );
    archive(&[
        (&format!("{name}/Chart.yaml"), chart_yaml.as_str()),
        (&format!("{name}/values.yaml"), "replicas: 1\n"),
        (
            &format!("{name}/templates/configmap.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
        ),
    ])
}

/// A gzip-compressed tar of `files`.
pub fn archive(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, text.as_bytes())
            .unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// One helm client with a home of its own.
pub struct Helm {
    binary: PathBuf,
    /// Its major version.
    pub major: u32,
    /// A scratch directory (its home, and a place for files).
    pub dir: tempfile::TempDir,
}

impl Helm {
    /// Helm `major` (3 or 4).
    pub fn new(major: u32) -> Self {
        let binary =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(".tools/helm/v{major}/helm"));
        assert!(
            binary.exists(),
            "{} is missing; `make test` installs it",
            binary.display()
        );
        Self {
            binary,
            major,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A path inside the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let home = self.dir.path();
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .current_dir(home)
            .env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_REGISTRY_CONFIG", home.join("registry.json"))
            .env("HELM_REPOSITORY_CONFIG", home.join("repositories.yaml"))
            .env("HELM_REPOSITORY_CACHE", home.join("repository-cache"));
        command
    }

    /// Runs helm and returns what it printed; fails the test when helm fails.
    pub fn run(&self, args: &[&str]) -> String {
        let output = self.try_run(args);
        assert!(
            output.status.success(),
            "helm v{} {args:?} failed:\n{}{}",
            self.major,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs helm, whatever the outcome.
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running helm")
    }
}

/// Writes `bytes` to `path`, making its directory first.
pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A static chart repository served by `python3 -m http.server`.
pub struct StaticRepository {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it serves.
    pub dir: tempfile::TempDir,
}

impl Drop for StaticRepository {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StaticRepository {
    /// Serves `files` (path, bytes) and an index.yaml written by `index(base)`.
    pub async fn start(files: &[(&str, &[u8])], index: impl Fn(&str) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        for (path, bytes) in files {
            write(&dir.path().join(path), bytes);
        }
        write(&dir.path().join("index.yaml"), index(&base).as_bytes());
        let mut child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if reqwest::get(format!("{base}/index.yaml")).await.is_ok() {
                return Self { child, base, dir };
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the static repository did not start");
    }
}
