//! A local S3-compatible server for the media store's S3 tests: `moto`'s server mode (PyPI),
//! installed once into `target/moto-venv` (like the npm packages of the socket tests), one
//! server per test on a free port, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The moto release the tests run (pinned: a run is repeatable).
const MOTO_VERSION: &str = "5.2.5";

fn moto_server() -> PathBuf {
    static INSTALLED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/moto-venv");
    let server = venv.join("bin/moto_server");
    if server.exists() {
        return server;
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 runs (the S3 tests install moto with it)");
    assert!(
        created.success(),
        "python3 -m venv failed (Debian: python3-venv)"
    );
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", &format!("moto[server]=={MOTO_VERSION}")])
        .status()
        .expect("pip runs");
    assert!(installed.success(), "pip install moto[server] failed");
    server
}

/// A running moto S3 server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts a server with the bucket `bucket`, answering within 30 s.
    pub async fn start(bucket: &str) -> Self {
        let server = tokio::task::spawn_blocking(moto_server)
            .await
            .expect("install moto");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs");
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let created = client
                .put(format!("{}/{bucket}", moto.endpoint))
                .send()
                .await;
            if created.is_ok_and(|r| r.status().is_success()) {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The keys in `bucket` under `prefix`.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let listing = reqwest::Client::new()
            .get(format!(
                "{}/{bucket}?list-type=2&prefix={prefix}",
                self.endpoint
            ))
            .send()
            .await
            .expect("list")
            .text()
            .await
            .expect("listing");
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    /// Media settings keeping files in `bucket` under `prefix` on this server.
    pub fn settings(&self, bucket: &str, prefix: &str) -> switchboard::media::S3Settings {
        switchboard::media::S3Settings {
            url: format!("s3://{bucket}/{prefix}"),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".to_owned()),
            access_key_id: Some("testing".to_owned()),
            secret_access_key: Some("testing".to_owned()),
            allow_http: true,
        }
    }
}
