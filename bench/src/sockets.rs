//! `sockets`: webhook-to-socket latency at a fixed webhook rate, and the server's memory per
//! idle connected socket. The sockets are the official socket.io-client under Node.js
//! (`tests/socketio/driver.mjs`), so the figures include a real client's protocol handling.
//!
//! One run, one server and database: a warm-up (one webhook per customer, so that every
//! conversation exists), a baseline phase with only the watching socket, then the idle
//! sockets connect and the same phase runs again. The difference between the two phases is
//! what the idle sockets cost, measured on the same (shared, noisy) machine minutes apart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use switchboard::auth::accounts::{self, NewAgent};
use switchboard::clock::{Clock, SystemClock};
use switchboard::startup::connect_store;
use switchboard::whatsapp::signature::sign;
use switchboard_domain::agent::{ChatScope, Email, Permissions, Role};
use switchboard_domain::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::load::{rss_megabytes, webhook};
use crate::server::{settings, BenchDatabase, RunningServer, SECRET};
use crate::stats::{ms, summarize, Summary};

/// Options of `sockets`.
#[derive(clap::Args)]
pub struct SocketArgs {
    /// Webhooks per second while latency is measured.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// How long each measured phase sends, in seconds.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Idle sockets connected for the second phase (an agent who may read no conversation: no
    /// event concerns them).
    #[arg(long, default_value_t = 1000)]
    idle: u32,
    /// The socket.io-client driver (run `npm ci` in its folder first).
    #[arg(long, default_value_os_t = default_driver())]
    driver: PathBuf,
    /// The server's Socket.IO ping interval, in milliseconds (default: the server's, 5000):
    /// every socket, idle or not, is pinged this often.
    #[arg(long)]
    ping_interval_ms: Option<u64>,
    /// Skip the baseline phase (the same webhooks before the idle sockets connect).
    #[arg(long)]
    skip_baseline: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn default_driver() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/socketio/driver.mjs")
}

const PASSWORD: &str = "bench password 123";
/// Distinct customers the webhooks come from (each one conversation).
const CUSTOMERS: u32 = 1000;

#[derive(Serialize)]
struct Report {
    backend: String,
    idle_sockets: u32,
    idle_connected: u64,
    rss_before_megabytes: f64,
    rss_with_idle_megabytes: f64,
    kilobytes_per_idle_socket: f64,
    rate: u32,
    webhooks_sent: u64,
    messages_seen_on_socket: usize,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
    log_to_socket_p50_ms: f64,
    log_to_socket_p99_ms: f64,
    baseline_latency_p50_ms: Option<f64>,
    baseline_latency_p99_ms: Option<f64>,
    baseline_latency_max_ms: Option<f64>,
    baseline_log_to_socket_p50_ms: Option<f64>,
    baseline_log_to_socket_p99_ms: Option<f64>,
    events_to_idle_sockets: u64,
}

/// The Node.js driver process.
struct Driver {
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    _child: tokio::process::Child,
}

impl Driver {
    fn start(path: &PathBuf) -> anyhow::Result<Self> {
        let mut child = Command::new("node")
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("node runs the socket.io-client driver")?;
        let stdin = child.stdin.take().context("driver stdin")?;
        let stdout = child.stdout.take().context("driver stdout")?;
        Ok(Self {
            stdin,
            lines: BufReader::new(stdout).lines(),
            _child: child,
        })
    }

    async fn send(&mut self, command: Value) -> anyhow::Result<()> {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        Ok(self.stdin.flush().await?)
    }

    async fn report(&mut self, within: Duration) -> anyhow::Result<Option<Value>> {
        match tokio::time::timeout(within, self.lines.next_line()).await {
            Ok(line) => Ok(line?.map(|l| serde_json::from_str(&l)).transpose()?),
            Err(_) => Ok(None),
        }
    }

    /// The next report of `kind` for socket `id`, skipping others.
    async fn expect(&mut self, id: &str, kind: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(report) = self.report(Duration::from_secs(1)).await? {
                if report["id"] == id && report["kind"] == kind {
                    return Ok(report);
                }
                if report["id"] == id && report["kind"] == "connect_error" {
                    bail!("socket refused: {}", report["message"]);
                }
            }
        }
        bail!("no {kind} for {id} within 120 s")
    }
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

pub async fn run(args: SocketArgs) -> anyhow::Result<()> {
    let picked = BenchDatabase::pick().await?;
    let backend = format!("{:?}", picked.config.backend());
    let email = format!("watcher.{}@bench.local", std::process::id());
    let idle_email = format!("idle.{}@bench.local", std::process::id());
    let (db, _log, frameworks) =
        connect_store(&picked.config, &crate::server::bench_master_keys()).await?;
    for (address, role, permissions) in [
        (&email, Role::Admin, None),
        (
            &idle_email,
            Role::Agent,
            Some(Permissions {
                can_read_chats: ChatScope::None,
                can_write_to_chats: ChatScope::None,
                ..Permissions::for_role(Role::Agent)
            }),
        ),
    ] {
        let agent = NewAgent {
            email: Email::parse(address).map_err(anyhow::Error::msg)?,
            name: address.clone(),
            role,
            groups: vec![],
            permissions,
            working_hours: None,
            password: PASSWORD.into(),
            one_time_password: false,
        };
        accounts::register(&frameworks, &db, agent, None, SystemClock.now()).await?;
    }
    db.close().await;

    let mut server_settings = settings(picked.config.clone());
    if let Some(interval) = args.ping_interval_ms {
        server_settings.realtime.ping_interval = Duration::from_millis(interval);
    }
    let server = RunningServer::start(server_settings).await?;
    let client = reqwest::Client::new();
    let token = login(&client, &server.base, &email).await?;
    let idle_token = login(&client, &server.base, &idle_email).await?;
    // Two Node.js processes, so that the crowd's traffic does not delay the watcher's clock.
    let mut crowd = Driver::start(&args.driver)?;
    let mut driver = Driver::start(&args.driver)?;
    driver
        .send(json!({"op": "connect", "id": "watch", "url": server.base, "auth": {"token": token}}))
        .await?;
    driver.expect("watch", "connect").await?;
    let mut webhooks = Webhooks {
        client: client.clone(),
        url: format!("{}/webhooks/whatsapp", server.base),
        run_id: format!("s{}", std::process::id()),
        sent: 0,
    };

    // Every customer's conversation exists before anything is measured.
    let rate = args.rate.max(1);
    webhooks
        .phase(&mut driver, rate, u64::from(CUSTOMERS))
        .await?;
    // The baseline: the same server and database, before the idle sockets connect.
    let total = u64::from(rate) * args.duration;
    let baseline = if args.idle > 0 && !args.skip_baseline {
        Some(Phase::of(webhooks.phase(&mut driver, rate, total).await?))
    } else {
        None
    };

    // Memory: the server's resident set before and after the idle sockets connect.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_megabytes();
    crowd
        .send(
            json!({"op": "connect_many", "id": "idle", "url": server.base,
            "auth": {"token": idle_token}, "count": args.idle}),
        )
        .await?;
    let connected = crowd.expect("idle", "connected_many").await?;
    let idle_connected = connected["connected"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_with_idle = rss_megabytes();

    let measured = Phase::of(webhooks.phase(&mut driver, rate, total).await?);
    let summary = &measured.total;
    crowd.send(json!({"op": "count", "id": "idle"})).await?;
    let counted = crowd.expect("idle", "count").await?;
    let report = Report {
        backend,
        idle_sockets: args.idle,
        idle_connected,
        rss_before_megabytes: rss_before,
        rss_with_idle_megabytes: rss_with_idle,
        kilobytes_per_idle_socket: if idle_connected == 0 {
            0.0
        } else {
            (rss_with_idle - rss_before) * 1024.0 / idle_connected as f64
        },
        rate,
        webhooks_sent: total,
        messages_seen_on_socket: summary.count,
        latency_p50_ms: millis(summary.p50),
        latency_p99_ms: millis(summary.p99),
        latency_max_ms: millis(summary.max),
        log_to_socket_p50_ms: millis(measured.from_log.p50),
        log_to_socket_p99_ms: millis(measured.from_log.p99),
        baseline_latency_p50_ms: baseline.as_ref().map(|b| millis(b.total.p50)),
        baseline_latency_p99_ms: baseline.as_ref().map(|b| millis(b.total.p99)),
        baseline_latency_max_ms: baseline.as_ref().map(|b| millis(b.total.max)),
        baseline_log_to_socket_p50_ms: baseline.as_ref().map(|b| millis(b.from_log.p50)),
        baseline_log_to_socket_p99_ms: baseline.as_ref().map(|b| millis(b.from_log.p99)),
        events_to_idle_sockets: counted["events"].as_u64().unwrap_or(0),
    };
    drop(driver);
    drop(crowd);
    server.stop().await?;
    picked.clean_up().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "sockets: {} backend, {} webhooks at {}/s, {} idle sockets connected",
        report.backend, report.webhooks_sent, report.rate, report.idle_connected
    );
    if let Some(baseline) = &baseline {
        baseline.print("baseline (no idle socket)");
    }
    measured.print("with the idle sockets");
    println!(
        "{:<46} {:>12}",
        "messages seen / sent",
        format!(
            "{} / {}",
            report.messages_seen_on_socket, report.webhooks_sent
        )
    );
    println!(
        "{:<46} {:>12.1}",
        "process RSS MB before the idle sockets", report.rss_before_megabytes
    );
    println!(
        "{:<46} {:>12.1}",
        "process RSS MB with the idle sockets", report.rss_with_idle_megabytes
    );
    println!(
        "{:<46} {:>12.1}",
        "KB per idle socket", report.kilobytes_per_idle_socket
    );
    println!(
        "{:<46} {:>12}",
        "events pushed to the idle sockets", report.events_to_idle_sockets
    );
    Ok(())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Signed webhooks, each one customer message, numbered across phases.
struct Webhooks {
    client: reqwest::Client,
    url: String,
    run_id: String,
    sent: u64,
}

impl Webhooks {
    /// Posts `count` webhooks at `rate` per second and returns the latency of each, from just
    /// before it is posted to the watching socket's client seeing its message.
    async fn phase(
        &mut self,
        driver: &mut Driver,
        rate: u32,
        count: u64,
    ) -> anyhow::Result<Vec<Sample>> {
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
        let mut sent_at: HashMap<String, f64> = HashMap::with_capacity(count as usize);
        let mut latencies: Vec<Sample> = Vec::with_capacity(count as usize);
        let mut ticker = tokio::time::interval(interval);
        let mut posts = tokio::task::JoinSet::new();
        for _ in 0..count {
            ticker.tick().await;
            let n = self.sent;
            self.sent += 1;
            let body = webhook(&self.run_id, n, CUSTOMERS);
            sent_at.insert(format!("wamid.load.{}.{n:012}", self.run_id), epoch_ms());
            let request = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sign(SECRET, body.as_bytes()))
                .body(body);
            posts.spawn(async move { matches!(request.send().await, Ok(r) if r.status() == 200) });
            // Read what has arrived meanwhile, without waiting.
            while let Some(report) = driver.report(Duration::ZERO).await? {
                record(&report, &sent_at, &mut latencies);
            }
        }
        let mut failed = 0;
        while let Some(done) = posts.join_next().await {
            if !matches!(done, Ok(true)) {
                failed += 1;
            }
        }
        if failed > 0 {
            bail!("{failed} webhooks were not acknowledged");
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while latencies.len() < sent_at.len() && Instant::now() < deadline {
            if let Some(report) = driver.report(Duration::from_millis(200)).await? {
                record(&report, &sent_at, &mut latencies);
            }
        }
        Ok(latencies)
    }
}

/// An access token for `email`.
async fn login(client: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
    let response: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    Ok(response["access_token"]
        .as_str()
        .context("login")?
        .to_owned())
}

/// One message seen by the watching socket.
struct Sample {
    /// From just before its webhook was posted.
    total: Duration,
    /// From the moment its event was recorded in the log (the append transaction's start on
    /// PostgreSQL): the fan-out's share, with the gapless reader's wait for older transactions.
    from_log: Duration,
}

/// Percentiles of one phase.
struct Phase {
    total: Summary,
    from_log: Summary,
}

impl Phase {
    fn of(samples: Vec<Sample>) -> Self {
        let (total, from_log) = samples.into_iter().map(|s| (s.total, s.from_log)).unzip();
        Self {
            total: summarize(total),
            from_log: summarize(from_log),
        }
    }

    fn print(&self, label: &str) {
        let rows = [
            ("webhook-to-socket p50 ms", self.total.p50),
            ("webhook-to-socket p99 ms", self.total.p99),
            ("webhook-to-socket max ms", self.total.max),
            ("  of which log-to-socket p50 ms", self.from_log.p50),
            ("  of which log-to-socket p99 ms", self.from_log.p99),
        ];
        println!("{label}:");
        for (name, value) in rows {
            println!("  {name:<44} {:>12}", ms(value));
        }
    }
}

fn since(from_ms: f64, to_ms: f64) -> Duration {
    Duration::from_secs_f64(((to_ms - from_ms) / 1000.0).max(0.0))
}

/// Adds the latency of a message envelope seen by the watching socket.
fn record(report: &Value, sent_at: &HashMap<String, f64>, latencies: &mut Vec<Sample>) {
    if report["id"] != "watch" || report["kind"] != "event" || report["name"] != "event" {
        return;
    }
    let envelope = &report["args"][0];
    if envelope["type"] != "MessageInboundReceived" {
        return;
    }
    let (Some(wamid), Some(seen)) = (envelope["aggregate_id"].as_str(), report["t"].as_f64())
    else {
        return;
    };
    let Ok(recorded) = serde_json::from_value::<Timestamp>(envelope["at"].clone()) else {
        return;
    };
    if let Some(sent) = sent_at.get(wamid) {
        latencies.push(Sample {
            total: since(*sent, seen),
            from_log: since(recorded.unix_millis() as f64, seen),
        });
    }
}
