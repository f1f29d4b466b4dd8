//! What operators run against the server: the shipped alert rules and Grafana dashboard name
//! only series the server exports, and a real Prometheus (Debian's `prometheus`) scrapes it
//! and loads the rules. (`promtool check rules` and `promtool test rules` run in `.ci/run`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard::simulator::Fault;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::outbound::{send_text, wait_for_status, wired_sending};

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// Every `switchboard_…` series name in a file.
fn names_in(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).expect("deploy file");
    text.match_indices("switchboard_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| name.len() > "switchboard_".len())
        .collect()
}

/// Exercises what the rules and the dashboard watch: webhooks (one refused), a send retried
/// once, a failed sign-in, a lock conflict, a socket.
async fn traffic(app: &TestApp, simulator: &switchboard::simulator::Simulator, conversation: &str) {
    let refused = app
        .post_webhook_with_signature(b"{}", Some("sha256=00"))
        .await;
    assert_eq!(refused.status(), 401);
    simulator.fail_next(
        Fault {
            status: 503,
            code: 2,
            ..Fault::default()
        },
        1,
    );
    let id = send_text(app, conversation, "watched").await;
    wait_for_status(app, &id, "read").await;
    let wrong = app
        .post_public(
            "/api/auth/login",
            json!({"email": "nobody@example.com", "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let locked = app
        .send_as(
            &app.admin_token,
            reqwest::Method::POST,
            &format!("/api/conversations/{conversation}/lock"),
            Some(json!({})),
        )
        .await;
    assert_eq!(locked.status(), 200);
    app.create_agent(
        json!({"email": "rival@example.com", "name": "Rival", "role": "supervisor",
        "password": "a long enough password"}),
    )
    .await;
    let rival = app
        .login("rival@example.com", "a long enough password")
        .await;
    let conflict = app
        .send_as(
            &rival,
            reqwest::Method::POST,
            &format!("/api/conversations/{conversation}/lock"),
            Some(json!({})),
        )
        .await;
    assert_eq!(conflict.status(), 409);
}

async fn the_rules_and_the_dashboard_name_only_exported_series(backend: Backend) {
    let (simulator, app, conversation) = wired_sending(backend, true).await;
    traffic(&app, &simulator, &conversation).await;
    let socket = crate::socket_client::SocketClient::connect(
        &app.address,
        json!({"token": app.admin_token}),
    )
    .await
    .expect("socket");
    let exported: BTreeSet<String> = app
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    // The detailed health tells the sender's backlog and that Meta answered just now.
    let health = app.get_json("/api/health/detailed").await;
    let sender = &health["sender"];
    assert_eq!(sender["sending"], true, "{health}");
    assert!(sender["queued"].is_i64(), "{health}");
    assert!(sender["dead_lettered"].is_i64(), "{health}");
    assert_eq!(sender["graph_answered_recently"], true, "{health}");
    assert!(sender["graph_last_answered_at"].is_string(), "{health}");
    assert_eq!(health["sockets"]["connected"], 1, "{health}");
    socket.close().await;
    for file in [
        "prometheus/alerts.yml",
        "grafana/dashboards/switchboard.json",
    ] {
        let used = names_in(&deploy(file));
        assert!(used.len() >= 5, "{file} names series");
        let missing: Vec<&String> = used.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} names series the server does not export: {missing:?}"
        );
    }
}

/// A Prometheus server on a free port, killed when dropped.
struct Prometheus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: switchboard\n    static_configs:\n      - targets: [\"{target}\"]\n",
            deploy("prometheus/alerts.yml").display()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("config");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (Debian package `prometheus`; .ci/run installs it)");
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// Polls `path` until `check` holds for its JSON `data` (30 s at most).
    async fn until(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(format!("{}{path}", self.address)).send().await {
                if let Ok(body) = response.json::<Value>().await {
                    if check(&body["data"]) {
                        return body["data"].clone();
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never answered {path} as expected"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn a_real_prometheus_scrapes_the_server_and_loads_the_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = crate::helpers::fixture("meta/inbound_text.json");
    assert_eq!(app.post_webhook(&body).await.status(), 200);
    let prometheus = Prometheus::start(app.address.trim_start_matches("http://"));
    let found = prometheus
        .until(
            "/api/v1/query?query=switchboard_webhooks_received_total",
            |data| data["result"].as_array().is_some_and(|r| !r.is_empty()),
        )
        .await;
    assert_eq!(found["result"][0]["metric"]["job"], "switchboard");
    let up = prometheus
        .until("/api/v1/query?query=up", |data| {
            data["result"][0]["value"][1] == "1"
        })
        .await;
    assert_eq!(up["result"][0]["metric"]["job"], "switchboard");
    let rules = prometheus
        .until("/api/v1/rules", |data| {
            data["groups"].as_array().is_some_and(|g| !g.is_empty())
        })
        .await;
    let loaded = rules["groups"][0]["rules"].as_array().map_or(0, Vec::len);
    assert_eq!(loaded, names_of_alerts().len(), "every alert rule loaded");
}

fn names_of_alerts() -> Vec<String> {
    std::fs::read_to_string(deploy("prometheus/alerts.yml"))
        .expect("rules")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: ").map(str::to_owned))
        .collect()
}

on_both_backends!(
    the_rules_and_the_dashboard_name_only_exported_series,
    a_real_prometheus_scrapes_the_server_and_loads_the_rules,
);
