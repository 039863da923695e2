//! A real containerd (1.6, run as root) started by hand for one test, driven with `ctr`, and
//! the images it can unpack. Each instance keeps its configuration, content store, state,
//! socket and log in a temporary directory of its own, uses the `native` snapshotter (overlay
//! mounts are not needed, nor always allowed in a sandbox) and has the CRI plugin disabled;
//! dropping it kills the daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The namespace every test pull lands in.
const NAMESPACE: &str = "test";

/// How long one `ctr` command may take before ctr gives up on its own.
const CTR_TIMEOUT: &str = "120s";

/// How `ctr images pull` reaches the registry.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pull<'a> {
    /// `user:password` sent to the registry; anonymous when `None`.
    pub user: Option<&'a str>,
    /// Speak plain HTTP to the registry named in the reference.
    pub plain_http: bool,
    /// A `--hosts-dir` saying where each registry is really reached (see
    /// [`Containerd::docker_hub_mirror`]).
    pub hosts_dir: Option<&'a Path>,
}

/// A running containerd.
pub struct Containerd {
    /// Its gRPC socket.
    pub socket: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    /// Starts containerd with its own configuration and waits until `ctr` reaches it.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let at = |name: &str| dir.path().join(name).display().to_string();
        let socket = dir.path().join("containerd.sock");
        // Every path a plugin would otherwise take under /var/lib, /run or /opt is moved into
        // the temporary directory; the debug and metrics listeners stay off.
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = at("root"),
            state = at("state"),
            socket = socket.display(),
            opt = at("opt"),
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("containerd is needed (make test installs it)");
        let mut this = Self { socket, child, dir };
        this.wait_ready();
        this
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("containerd exited with {status}:\n{}", self.log());
            }
            if self.socket.exists() && self.ctr(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("containerd did not answer on its socket:\n{}", self.log());
    }

    /// What containerd has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Runs `ctr` against this containerd, in the test namespace, whatever the outcome.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", NAMESPACE, "--timeout", CTR_TIMEOUT])
            .args(args)
            .output()
            .expect("ctr is needed (make test installs containerd)")
    }

    /// Runs `ctr` and returns what it printed; fails the test, with containerd's log, when ctr
    /// fails.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let output = self.ctr(args);
        assert!(
            output.status.success(),
            "ctr {args:?} failed:\n{}{}\ncontainerd's log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `ctr images pull` of `reference` into the native snapshotter, unpacked, whatever the
    /// outcome.
    pub fn pull(&self, reference: &str, how: Pull<'_>) -> Output {
        let mut args = vec!["images", "pull", "--snapshotter", "native"];
        if how.plain_http {
            args.push("--plain-http");
        }
        if let Some(user) = how.user {
            args.extend(["--user", user]);
        }
        let hosts_dir = how.hosts_dir.map(|p| p.display().to_string());
        if let Some(dir) = &hosts_dir {
            args.extend(["--hosts-dir", dir]);
        }
        args.push(reference);
        self.ctr(&args)
    }

    /// Pulls like [`Containerd::pull`]; fails the test, with containerd's log, when ctr fails.
    pub fn pull_ok(&self, reference: &str, how: Pull<'_>) {
        let output = self.pull(reference, how);
        assert!(
            output.status.success(),
            "ctr images pull {reference} ({how:?}) failed:\n{}{}\ncontainerd's log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    /// Writes a hosts directory in which Docker Hub (`docker.io`) is pulled and resolved
    /// through the plain-HTTP mirror at `mirror_host` (`127.0.0.1:PORT`), with Docker Hub
    /// itself as the fallback server, as a node set up with Berth as its registry mirror has;
    /// returns the directory, for [`Pull::hosts_dir`].
    pub fn docker_hub_mirror(&self, mirror_host: &str) -> PathBuf {
        let hosts = self.dir.path().join("hosts");
        std::fs::create_dir_all(hosts.join("docker.io")).unwrap();
        let toml = format!(
            "server = \"https://registry-1.docker.io\"\n\n[host.\"http://{mirror_host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
        std::fs::write(hosts.join("docker.io/hosts.toml"), toml).unwrap();
        hosts
    }

    /// The digest of the manifest (or index) containerd recorded for `reference`, when it
    /// holds that image.
    pub fn image_digest(&self, reference: &str) -> Option<String> {
        let table = self.ctr_ok(&["images", "ls"]);
        row(&table, reference).and_then(|columns| columns.get(2).map(|c| (*c).to_owned()))
    }

    /// Whether containerd holds all of `reference`'s content and has unpacked it into the
    /// native snapshotter (`ctr images check` says `complete` and `true`).
    pub fn is_complete_and_unpacked(&self, reference: &str) -> bool {
        let table = self.ctr_ok(&["images", "check", "--snapshotter", "native"]);
        row(&table, reference)
            .is_some_and(|columns| columns.contains(&"complete") && columns.last() == Some(&"true"))
    }
}

/// The columns of the row of a `ctr images` table whose first column is `reference`.
fn row<'t>(table: &'t str, reference: &str) -> Option<Vec<&'t str>> {
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.first() == Some(&reference))
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
