//! Upstreams for pull-through tests: a real CNCF Distribution (`docker-registry`) on a free
//! port, optionally behind htpasswd Basic auth, and a TCP forwarder that sits in front of any
//! server, records the request lines it passes, and can cut responses short or refuse
//! connections (an upstream that is down).

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Distribution.
pub struct Distribution {
    /// `127.0.0.1:PORT`.
    pub host: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Distribution {
    /// Starts Distribution with filesystem storage; with `credentials`, behind htpasswd.
    pub async fn start(credentials: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = credentials {
            let output = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd is needed (make test installs apache2-utils)");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, output.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: upstream\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new("docker-registry")
            .args(["serve", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is needed (make test installs it)");
        let host = format!("127.0.0.1:{port}");
        for _ in 0..400 {
            if TcpStream::connect(&host).await.is_ok() {
                return Self {
                    host,
                    child,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("docker-registry did not start");
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A forwarder in front of `target`.
#[derive(Clone)]
pub struct Forwarder {
    /// `127.0.0.1:PORT`: point clients here.
    pub host: String,
    requests: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
    /// Forward at most this many response bytes per connection (0: no limit).
    cut_after: Arc<AtomicU64>,
    /// Hold each response stream once it has passed this many bytes, until released (0: never).
    hold_after: Arc<AtomicU64>,
}

impl Forwarder {
    /// Starts forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let forwarder = Self {
            host: listener.local_addr().unwrap().to_string(),
            requests: Arc::default(),
            down: Arc::default(),
            cut_after: Arc::default(),
            hold_after: Arc::default(),
        };
        let target = target.to_owned();
        let shared = forwarder.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                tokio::spawn(shared.clone().pipe(client, server));
            }
        });
        forwarder
    }

    async fn pipe(self, client: TcpStream, server: TcpStream) {
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let requests = self.requests.clone();
        let upstream = tokio::spawn(async move {
            let mut buffer = vec![0u8; 64 * 1024];
            let mut pending = String::new();
            loop {
                let n = match client_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // Pulls send no bodies: every request is a head ending in an empty line.
                pending.push_str(&String::from_utf8_lossy(&buffer[..n]));
                while let Some(end) = pending.find("\r\n\r\n") {
                    let head: String = pending.drain(..end + 4).collect();
                    if let Some(line) = head.lines().next() {
                        requests.lock().unwrap().push(line.to_owned());
                    }
                }
                if server_write.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        });
        let (cut_after, hold_after) = (self.cut_after.clone(), self.hold_after.clone());
        let downstream = tokio::spawn(async move {
            let mut sent = 0u64;
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = match server_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let limit = cut_after.load(Ordering::SeqCst);
                let n = if limit > 0 {
                    (limit.saturating_sub(sent) as usize).min(n)
                } else {
                    n
                };
                if n == 0 {
                    break;
                }
                let mut from = 0;
                let hold = hold_after.load(Ordering::SeqCst);
                if hold > 0 && sent < hold && sent + n as u64 > hold {
                    from = (hold - sent) as usize;
                    if client_write.write_all(&buffer[..from]).await.is_err() {
                        break;
                    }
                    while hold_after.load(Ordering::SeqCst) > 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                if client_write.write_all(&buffer[from..n]).await.is_err() {
                    break;
                }
                sent += n as u64;
            }
        });
        // Going down closes the connections already open too.
        while !downstream.is_finished() {
            if self.down.load(Ordering::SeqCst) {
                downstream.abort();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        upstream.abort();
    }

    /// The request lines passed so far that contain `needle`.
    pub fn requests(&self, needle: &str) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    /// Refuses (`true`) or passes (`false`) new connections.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Holds each connection's response stream once it has passed `bytes` in all, until
    /// [`Self::release`].
    pub fn hold_after(&self, bytes: u64) {
        self.hold_after.store(bytes, Ordering::SeqCst);
    }

    /// Lets held response streams go on.
    pub fn release(&self) {
        self.hold_after.store(0, Ordering::SeqCst);
    }

    /// Cuts each connection's response stream once it has passed `bytes` in all (0: never).
    pub fn cut_after(&self, bytes: u64) {
        self.cut_after.store(bytes, Ordering::SeqCst);
    }
}
