//! A real `berth serve` process on a free port, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `berth` binary the servers run: this build's, or the one `BERTH_BIN` names, so that a
/// benchmark can compare two builds in one run on one machine.
pub fn binary() -> String {
    std::env::var("BERTH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").to_owned())
}

/// A running `berth serve`.
pub struct TestServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    log: Arc<Mutex<String>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    /// Starts `berth serve --listen 127.0.0.1:0` with these extra arguments and environment, and
    /// waits until it prints where it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("DATABASE_URL")
            .env("BERTH_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start berth serve");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let printed = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&printed);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Berth listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
                lines.lock().expect("stdout lock").push(line);
            }
        });
        let base_url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "berth serve did not start; its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Self {
            child,
            base_url,
            log,
            stdout: printed,
        }
    }

    /// The first `count` lines the server printed on standard output, waiting for them.
    pub fn printed(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.stdout.lock().expect("stdout lock").clone();
            if lines.len() >= count || Instant::now() > deadline {
                return lines.into_iter().take(count).collect();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits until the log contains `needle`, or fails after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < timeout,
                "log never said {needle:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.success();
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl TestServer {
    /// Kills the process with SIGKILL, as a crash or an OOM kill would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `berth fsck` with these arguments (and `DATABASE_URL` when given) and returns its exit
/// code and its JSON report (null when it printed none), failing with its stderr when it could
/// not run.
pub fn fsck(data_dir: &str, database_url: Option<&str>, args: &[&str]) -> (i32, serde_json::Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .args(["fsck", "--data-dir", data_dir, "--format", "json"])
        .args(args)
        .env_remove("DATABASE_URL")
        .env("BERTH_LOG", "warn");
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    let output = command.output().expect("berth fsck");
    let code = output.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "berth fsck failed ({code}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (code, report)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token that `berth token` mints for the server keys in `data_dir`.
pub fn mint_token(data_dir: &str, subject: &str, scope: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "token",
            "--data-dir",
            data_dir,
            "--sub",
            subject,
            "--scope",
            scope,
            "--ttl",
            "1d",
        ])
        .env_remove("BERTH_JWT_SECRET")
        .output()
        .expect("berth token");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
