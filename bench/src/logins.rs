//! `logins`: floods of concurrent failed logins from many loopback addresses (issue #15,
//! finding 2), against the real server in a child process so that its memory is measured
//! alone: resident set before, peak during and after each flood, and how fast `/api/health`
//! answers meanwhile.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::future::join_all;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::server::{settings, BenchDatabase, RunningServer};
use crate::stats::{ms, summarize};

/// Options of `logins`.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// Failed logins sent at once in each flood.
    #[arg(long, default_value_t = 1000)]
    concurrency: usize,
    /// Distinct client addresses (127.0.<round>.<n>) they come from.
    #[arg(long, default_value_t = 50)]
    addresses: u8,
    /// Floods, one after the other.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Keep each flood up this long: every one of the `concurrency` senders sends again as
    /// soon as it has an answer (0: each sends once).
    #[arg(long, default_value_t = 0)]
    duration: u64,
    /// Pause after each flood before reading the memory again, in seconds.
    #[arg(long, default_value_t = 5)]
    settle_seconds: u64,
    /// After the last flood, wait this long idle and read the memory once more (the hashing
    /// lanes free their memory after a minute without work).
    #[arg(long, default_value_t = 0)]
    idle_seconds: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Round {
    round: u32,
    sent: usize,
    unauthorized_401: usize,
    rate_limited_429: usize,
    overloaded_503: usize,
    other: usize,
    seconds: f64,
    rss_before_mb: f64,
    rss_peak_mb: f64,
    rss_after_mb: f64,
    health_checks: usize,
    health_p50_ms: f64,
    health_p99_ms: f64,
    health_max_ms: f64,
}

#[derive(Serialize)]
struct Report {
    backend: String,
    rounds: Vec<Round>,
    rss_high_water_mb: f64,
    rss_after_idle_mb: Option<f64>,
}

/// The server half: started by `logins` as a child process, it prints its base URL, serves
/// with production login settings and stops when its standard input closes.
pub async fn serve() -> anyhow::Result<()> {
    let picked = BenchDatabase::pick().await?;
    let mut settings = settings(picked.config.clone());
    let production =
        switchboard::config::AuthSettings::with_secret(settings.auth.jwt_secret.clone());
    settings.auth.login_attempts_per_ip = production.login_attempts_per_ip;
    settings.auth.login_attempts_per_account = production.login_attempts_per_account;
    let server = RunningServer::start(settings).await?;
    println!("{} {:?}", server.base, picked.config.backend());
    tokio::task::spawn_blocking(|| {
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
    })
    .await??;
    server.stop().await?;
    picked.clean_up().await
}

/// VmRSS and VmHWM (peak) of a process, in MB.
fn memory_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn start_server() -> anyhow::Result<(Child, String, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("login-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await?;
    let (base, backend) = line
        .trim()
        .split_once(' ')
        .context("the server did not start")?;
    Ok((child, base.to_owned(), backend.to_owned()))
}

/// Polls `/api/health` every 10 ms until `flooding` ends, on a connection opened before the
/// flood (a new connection during it waits in the listen backlog with the flood's); the
/// latencies.
async fn probe_health(
    base: &str,
    flooding: Arc<AtomicBool>,
) -> anyhow::Result<tokio::task::JoinHandle<Vec<Duration>>> {
    let url = format!("{base}/api/health");
    let client = reqwest::Client::new();
    client.get(&url).send().await?.error_for_status()?;
    Ok(tokio::spawn(async move {
        let mut latencies = Vec::new();
        while flooding.load(Ordering::Relaxed) {
            let started = Instant::now();
            if matches!(client.get(&url).send().await, Ok(r) if r.status() == 200) {
                latencies.push(started.elapsed());
            } else {
                latencies.push(Duration::from_secs(3600)); // a failure counts as the worst
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        latencies
    }))
}

/// Samples the child's resident set every 20 ms while `flooding`; the highest seen.
fn sample_memory(pid: u32, flooding: Arc<AtomicBool>) -> tokio::task::JoinHandle<f64> {
    tokio::spawn(async move {
        let mut peak: f64 = 0.0;
        while flooding.load(Ordering::Relaxed) {
            peak = peak.max(memory_of(pid).0);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    })
}

async fn flood(args: &LoginArgs, base: &str, round: u32, pid: u32) -> anyhow::Result<Round> {
    let clients: Vec<reqwest::Client> = (0..args.addresses.max(1))
        .map(|n| {
            let octet = u8::try_from(round % 250).unwrap_or(0) + 1;
            reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(
                    127,
                    0,
                    octet,
                    n.saturating_add(1),
                )))
                .build()
        })
        .collect::<Result<_, _>>()?;
    let rss_before = memory_of(pid).0;
    let flooding = Arc::new(AtomicBool::new(true));
    let health = probe_health(base, Arc::clone(&flooding)).await?;
    let peak = sample_memory(pid, Arc::clone(&flooding));
    let url = Arc::new(format!("{base}/api/auth/login"));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let senders = (0..args.concurrency).map(|n| {
        let (client, url) = (clients[n % clients.len()].clone(), Arc::clone(&url));
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for attempt in 0.. {
                let email = format!("guess{round}.{n}.{attempt}@example.com");
                let sent = client
                    .post(url.as_str())
                    .json(&serde_json::json!({"email": email, "password": "not the password"}))
                    .send()
                    .await;
                statuses.push(sent.map_or(0, |r| r.status().as_u16()));
                if Instant::now() >= deadline {
                    break;
                }
            }
            statuses
        })
    });
    let mut statuses = Vec::new();
    for sender in join_all(senders).await {
        statuses.extend(sender?);
    }
    let seconds = started.elapsed().as_secs_f64();
    flooding.store(false, Ordering::Relaxed);
    let mut round_report = Round {
        round,
        sent: statuses.len(),
        unauthorized_401: 0,
        rate_limited_429: 0,
        overloaded_503: 0,
        other: 0,
        seconds,
        rss_before_mb: rss_before,
        rss_peak_mb: peak.await?,
        rss_after_mb: 0.0,
        health_checks: 0,
        health_p50_ms: 0.0,
        health_p99_ms: 0.0,
        health_max_ms: 0.0,
    };
    for status in statuses {
        match status {
            401 => round_report.unauthorized_401 += 1,
            429 => round_report.rate_limited_429 += 1,
            503 => round_report.overloaded_503 += 1,
            _ => round_report.other += 1,
        }
    }
    let latencies = summarize(health.await?);
    round_report.health_checks = latencies.count;
    round_report.health_p50_ms = latencies.p50.as_secs_f64() * 1000.0;
    round_report.health_p99_ms = latencies.p99.as_secs_f64() * 1000.0;
    round_report.health_max_ms = latencies.max.as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    round_report.rss_after_mb = memory_of(pid).0;
    Ok(round_report)
}

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let (mut child, base, backend) = start_server().await?;
    let pid = child.id().context("child pid")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut rounds = Vec::new();
    for round in 1..=args.rounds {
        rounds.push(flood(&args, &base, round, pid).await?);
    }
    let rss_after_idle = if args.idle_seconds > 0 {
        tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
        Some(memory_of(pid).0)
    } else {
        None
    };
    let report = Report {
        backend,
        rss_high_water_mb: memory_of(pid).1,
        rounds,
        rss_after_idle_mb: rss_after_idle,
    };
    drop(child.stdin.take()); // the server stops when its input closes
    let stopped = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    if !matches!(stopped, Ok(Ok(status)) if status.success()) {
        bail!("the server did not stop cleanly: {stopped:?}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print(&report);
    Ok(())
}

fn print(report: &Report) {
    println!(
        "logins: {} backend, server in a child process",
        report.backend
    );
    println!("| round | sent | 401 | 429 | 503 | other | seconds | RSS before MB | RSS peak MB | RSS after MB | health p50 ms | health p99 ms | health max ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &report.rounds {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            r.round,
            r.sent,
            r.unauthorized_401,
            r.rate_limited_429,
            r.overloaded_503,
            r.other,
            r.seconds,
            r.rss_before_mb,
            r.rss_peak_mb,
            r.rss_after_mb,
            ms(Duration::from_secs_f64(r.health_p50_ms / 1000.0)),
            ms(Duration::from_secs_f64(r.health_p99_ms / 1000.0)),
            ms(Duration::from_secs_f64(r.health_max_ms / 1000.0)),
        );
    }
    println!(
        "server RSS high-water mark (VmHWM): {:.1} MB",
        report.rss_high_water_mb
    );
    if let Some(idle) = report.rss_after_idle_mb {
        println!("server RSS after the idle wait: {idle:.1} MB");
    }
}
