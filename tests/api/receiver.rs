//! An integration's endpoint for the outgoing-webhook tests: `tests/webhook-receiver`, a Node.js
//! server that verifies every delivery with the `standardwebhooks` package (an implementation
//! of the specification independent of ours) and records it in a file that outlives restarts.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running receiver.
pub struct Receiver {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    secret: String,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

/// A port free now (the receiver binds it later; the endpoint's URL must name it first).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/webhook-receiver"
    ))
}

impl Receiver {
    /// Starts a receiver on `port` verifying with `secret`.
    pub fn start(port: u16, secret: &str) -> Self {
        crate::helpers::install_node_packages(&dir(), "standardwebhooks");
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut receiver = Self {
            child: None,
            port,
            secret: secret.to_owned(),
            file: tmp.path().join("received.jsonl"),
            _dir: tmp,
        };
        receiver.resume();
        receiver
    }

    /// Starts it again (after [`Self::stop`]) on the same port, with the same record.
    pub fn resume(&mut self) {
        let mut child = Command::new("node")
            .arg(dir().join("receiver.mjs"))
            .arg(self.port.to_string())
            .arg(&self.secret)
            .arg(&self.file)
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs the receiver");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the receiver says it listens");
        assert!(line.contains("port"), "receiver: {line}");
        self.child = Some(child);
    }

    /// Stops it: connections are refused until [`Self::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every request it received, in order: `{path, id, verified, payload}`.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until `done` holds of what it received.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {} received",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}
