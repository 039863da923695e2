//! The real podman client (4.x, run as root), each instance with its own image storage (`vfs`,
//! which needs no mounts), run and tmp directories, home, login file and configuration, so that
//! no image, login or setting leaks between tests or from the host. Registries are reached over
//! plain HTTP with `--tls-verify=false` on each command that talks to one. Depends on nothing
//! else in the harness.
//!
//! One thing is shared: like skopeo, podman as root keeps its blob-info cache (which blobs it has
//! seen where) in /var/lib/containers/cache, and has no option to move it.

use std::path::PathBuf;
use std::process::{Command, Output};

/// How long one podman command may take before it is killed.
const TIMEOUT_SECONDS: &str = "120";

/// One podman with a home of its own.
pub struct Podman {
    /// Its scratch directory: storage, state, home and login file.
    pub dir: tempfile::TempDir,
}

impl Default for Podman {
    fn default() -> Self {
        Self::new()
    }
}

impl Podman {
    /// A podman with empty storage, no logins, and no registries configured.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["root", "run", "tmp", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        // Podman 4.3 refuses to pull when REGISTRY_AUTH_FILE names a file that does not exist.
        std::fs::write(dir.path().join("auth.json"), "{}").unwrap();
        // No search registries or short-name aliases from /etc/containers: every test names
        // its images in full.
        std::fs::write(
            dir.path().join("registries.conf"),
            "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("containers.conf"), "").unwrap();
        Self { dir }
    }

    /// The login file `podman login` writes.
    pub fn auth_file(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    fn command(&self, args: &[&str]) -> Command {
        let at = |name: &str| self.dir.path().join(name);
        let mut command = Command::new("timeout");
        command
            .args([TIMEOUT_SECONDS, "podman"])
            .arg("--root")
            .arg(at("root"))
            .arg("--runroot")
            .arg(at("run"))
            .arg("--tmpdir")
            .arg(at("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .args(args)
            .env("HOME", at("home"))
            .env("TMPDIR", at("tmp"))
            .env("REGISTRY_AUTH_FILE", self.auth_file())
            .env("CONTAINERS_REGISTRIES_CONF", at("registries.conf"))
            .env("REGISTRIES_CONFIG_PATH", at("registries.conf"))
            .env("CONTAINERS_CONF", at("containers.conf"));
        command
    }

    /// Runs podman, whatever the outcome.
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("podman is needed (make test installs it)")
    }

    /// Runs podman and returns what it printed; fails the test when podman fails.
    pub fn run(&self, args: &[&str]) -> String {
        let output = self.try_run(args);
        assert!(
            output.status.success(),
            "podman {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `podman login` to the plain-HTTP registry at `host`, whatever the outcome.
    pub fn login(&self, host: &str, user: &str, password: &str) -> Output {
        self.try_run(&[
            "login",
            "--tls-verify=false",
            "--username",
            user,
            "--password",
            password,
            host,
        ])
    }

    /// Whether the login file holds credentials for `host`.
    pub fn is_logged_in(&self, host: &str) -> bool {
        let text = std::fs::read_to_string(self.auth_file()).unwrap_or_default();
        let auths: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        auths["auths"].get(host).is_some()
    }

    /// A `podman image inspect` field (a Go template such as `{{.Digest}}`) of `reference`.
    pub fn inspect(&self, reference: &str, format: &str) -> String {
        self.run(&["image", "inspect", "--format", format, reference])
            .trim()
            .to_owned()
    }

    /// `podman push` of `reference` to its plain-HTTP registry; returns the digest of the
    /// manifest podman pushed, as podman reports it.
    pub fn push(&self, reference: &str) -> String {
        let digest_file = self.dir.path().join("pushed.digest");
        let _ = std::fs::remove_file(&digest_file);
        self.run(&[
            "push",
            "--tls-verify=false",
            "--digestfile",
            digest_file.to_str().expect("a UTF-8 temp dir"),
            reference,
        ]);
        std::fs::read_to_string(digest_file)
            .expect("podman wrote the digest file")
            .trim()
            .to_owned()
    }
}
