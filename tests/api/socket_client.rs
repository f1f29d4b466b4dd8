//! A real Socket.IO client for the tests: the official socket.io-client 4 under Node.js,
//! driven over stdin/stdout by `tests/socketio/driver.mjs` (`npm ci` in `tests/socketio`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// The folder of the Node.js driver.
pub fn driver_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/socketio")
}

/// Installs the driver's locked dependencies once per test run if they are missing, so that
/// `cargo test` alone works on a fresh checkout (Node.js and npm must be installed).
fn install_driver(dir: &std::path::Path) {
    crate::helpers::install_node_packages(dir, "socket.io-client");
}

/// One socket.io-client socket in its own Node.js process.
pub struct SocketClient {
    _child: Child,
    stdin: ChildStdin,
    reports: mpsc::UnboundedReceiver<Value>,
    /// Reports that arrived while an acknowledgement was awaited.
    pending: std::collections::VecDeque<Value>,
    acks: u64,
}

/// What the client saw happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A server event: its name and first argument.
    Event(String, Value),
    /// The socket was disconnected, with socket.io-client's reason.
    Disconnected(String),
}

impl SocketClient {
    /// Connects to `address` with the handshake `auth`. `Err` carries the `connect_error`
    /// message.
    pub async fn connect(address: &str, auth: Value) -> Result<Self, String> {
        let dir = driver_dir();
        install_driver(&dir);
        let mut child = Command::new("node")
            .arg(dir.join("driver.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, reports) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let report: Value = serde_json::from_str(&line).expect("driver prints JSON");
                if sender.send(report).is_err() {
                    break;
                }
            }
        });
        let mut client = Self {
            _child: child,
            stdin,
            reports,
            pending: std::collections::VecDeque::new(),
            acks: 0,
        };
        client
            .command(json!({"op": "connect", "id": "s", "url": address, "auth": auth}))
            .await;
        let report = client
            .report(Duration::from_secs(15))
            .await
            .expect("a connect report");
        match report["kind"].as_str() {
            Some("connect") => Ok(client),
            Some("connect_error") => Err(report["message"].as_str().unwrap_or_default().to_owned()),
            other => panic!("unexpected report {other:?}: {report}"),
        }
    }

    async fn command(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("driver reads");
        self.stdin.flush().await.expect("driver reads");
    }

    async fn report(&mut self, within: Duration) -> Option<Value> {
        tokio::time::timeout(within, self.reports.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next thing that happens, or `None` when nothing does `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Seen> {
        let report = match self.pending.pop_front() {
            Some(report) => report,
            None => self.report(within).await?,
        };
        match report["kind"].as_str() {
            Some("event") => {
                let name = report["name"].as_str().unwrap_or_default().to_owned();
                Some(Seen::Event(name, report["args"][0].clone()))
            }
            Some("disconnect") => Some(Seen::Disconnected(
                report["reason"].as_str().unwrap_or_default().to_owned(),
            )),
            _ => panic!("unexpected report {report}"),
        }
    }

    /// The next server event called `name`, skipping others; panics after `within`.
    pub async fn expect(&mut self, name: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Seen::Event(seen, data)) if seen == name => return data,
                Some(_) => {}
                None => panic!("no `{name}` within {within:?}"),
            }
        }
    }

    /// Log envelopes (`event`) until `quiet` passes without one; other events are skipped.
    pub async fn envelopes_until_quiet(&mut self, quiet: Duration) -> Vec<Value> {
        let mut envelopes = Vec::new();
        while let Some(seen) = self.next(quiet).await {
            match seen {
                Seen::Event(name, data) if name == "event" => envelopes.push(data),
                Seen::Event(..) => {}
                Seen::Disconnected(reason) => panic!("disconnected: {reason}"),
            }
        }
        envelopes
    }

    /// Emits `event` with `data` and waits for the server's acknowledgement.
    pub async fn emit_with_ack(&mut self, event: &str, data: Value) -> Value {
        self.acks += 1;
        let ack = format!("a{}", self.acks);
        self.command(json!({"op": "emit", "id": "s", "event": event, "data": data, "ack": ack}))
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let report = self.report(left).await.expect("an acknowledgement");
            if report["kind"] == "ack" && report["ack"] == ack.as_str() {
                assert!(report["error"].is_null(), "ack failed: {report}");
                return report["response"].clone();
            }
            self.pending.push_back(report);
        }
    }

    /// Closes the socket from the client side.
    pub async fn close(mut self) {
        self.command(json!({"op": "close", "id": "s"})).await;
        let _ = self.report(Duration::from_secs(5)).await;
    }
}
