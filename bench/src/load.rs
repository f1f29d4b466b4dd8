//! `load`: signed webhooks from many customers, at a fixed rate or as fast as possible, measured
//! against the database's own limit (single-row commits per second at the same concurrency).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use switchboard::whatsapp::signature::sign;
use switchboard_store::{with_pool, Database};
use tokio::sync::Mutex;

use crate::server::{settings, BenchDatabase, RunningServer, SECRET};
use crate::stats::{ms, summarize};

/// Options of `load`.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// Webhooks per second; 0 sends as fast as the server acknowledges.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Distinct customers (each webhook carries one message from one of them).
    #[arg(long, default_value_t = 1000)]
    customers: u32,
    /// Requests in flight at once (and writers in the baseline).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Length of the baseline measurement, in seconds.
    #[arg(long, default_value_t = 10)]
    baseline_seconds: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Seconds between two samples of the inbound backlog and the projection lag.
    #[arg(long, default_value_t = 5)]
    sample_seconds: u64,
    /// Seconds between one customer's messages, as Meta timestamps them (default: a thousand
    /// messages per second, so that a customer's messages share an hour). 3600 gives every
    /// message an hour of its own, the worst case for sealing (a content key each).
    #[arg(long)]
    spacing_seconds: Option<u64>,
    /// Runs with personal data written in clear (the baseline) and sealed as served, and
    /// prints what sealing costs.
    #[arg(long)]
    compare_sealing: bool,
    /// With `--compare-sealing`: rounds of both runs, in alternating order; the best of each
    /// is compared (the machine's noise only ever slows a run down).
    #[arg(long, default_value_t = 2)]
    rounds: u32,
}

/// One run's report and acknowledgement latencies.
struct Measured {
    report: Report,
    summary: crate::stats::Summary,
    p999: Duration,
}

/// The server's backlogs at one moment of the run.
#[derive(Serialize, Clone, Copy)]
struct Sample {
    /// Seconds since the first webhook was sent.
    at_seconds: f64,
    /// Webhooks sent so far.
    sent: u64,
    /// Stored webhooks not yet processed.
    inbound_backlog: i64,
    /// Events not yet applied to the read models.
    projection_lag: i64,
}

#[derive(Serialize)]
struct Report {
    backend: String,
    concurrency: usize,
    target_rate: u32,
    duration_seconds: f64,
    baseline_commits_per_second: f64,
    acknowledged: u64,
    errors: u64,
    acknowledged_per_second: f64,
    acknowledged_vs_baseline: f64,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
    ack_p999_ms: f64,
    processed_messages_per_second: f64,
    processed_vs_baseline: f64,
    rss_megabytes: f64,
    /// Backlog and lag over time, sending and draining.
    timeline: Vec<Sample>,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    if args.compare_sealing {
        let (mut clear, mut sealed) = (Vec::new(), Vec::new());
        for round in 0..args.rounds.max(1) {
            for seals in [round % 2 == 1, round % 2 == 0] {
                let measured = measure(&args, seals).await?.report;
                if seals { &mut sealed } else { &mut clear }.push(measured);
            }
        }
        print_sealing(&best(clear), &best(sealed));
        return Ok(());
    }
    let measured = measure(&args, true).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&measured.report)?);
    } else {
        print_table(&measured.report, &measured.summary, measured.p999);
    }
    Ok(())
}

/// One run against a fresh database and server; `sealed: false` writes personal data in
/// clear.
async fn measure(args: &LoadArgs, sealed: bool) -> anyhow::Result<Measured> {
    let picked = BenchDatabase::pick().await?;
    let backend = format!("{:?}", picked.config.backend());
    let mut settings = settings(picked.config.clone());
    if !sealed {
        settings.master_keys = crate::server::bench_master_keys_in_clear();
    }
    let server = RunningServer::start(settings).await?;
    let baseline = baseline(
        &server.database,
        args.concurrency,
        Duration::from_secs(args.baseline_seconds),
    )
    .await?;

    let run_id = format!(
        "{}{}",
        std::process::id(),
        Instant::now().elapsed().subsec_nanos() % 1000
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let url = Arc::new(format!("{}/webhooks/whatsapp", server.base));
    let sequence = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::with_capacity(1 << 20)));
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let started = Instant::now();

    let progress = ProgressBar::new(args.duration);
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let timeline = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let sampler = {
        let (database, sequence, timeline) = (
            server.database.clone(),
            Arc::clone(&sequence),
            Arc::clone(&timeline),
        );
        let every = Duration::from_secs(args.sample_seconds.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Ok(counts) = switchboard::http::StoredCounts::read(&database).await {
                    timeline.lock().await.push(Sample {
                        at_seconds: started.elapsed().as_secs_f64(),
                        sent: sequence.load(Ordering::Relaxed),
                        inbound_backlog: counts.awaiting,
                        projection_lag: counts.projection_lag,
                    });
                }
            }
        })
    };
    let ticker = {
        let progress = progress.clone();
        let sequence = Arc::clone(&sequence);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress.set_position(
                    started
                        .elapsed()
                        .as_secs()
                        .min(progress.length().unwrap_or(0)),
                );
                progress.set_message(format!("{} sent", sequence.load(Ordering::Relaxed)));
            }
        })
    };

    let send = {
        let client = client.clone();
        let url = Arc::clone(&url);
        let sequence = Arc::clone(&sequence);
        let errors = Arc::clone(&errors);
        let latencies = Arc::clone(&latencies);
        let run_id = run_id.clone();
        let customers = args.customers.max(1);
        let spacing = args.spacing_seconds;
        move || {
            let n = sequence.fetch_add(1, Ordering::Relaxed);
            let body = match spacing {
                None => webhook(&run_id, n, customers),
                Some(spacing) => {
                    let at = 1_780_000_000 + n / u64::from(customers) * spacing;
                    webhook_at(&run_id, n, customers, at)
                }
            };
            let signature = sign(SECRET, body.as_bytes());
            let request = client
                .post(url.as_str())
                .header("content-type", "application/json")
                .header("x-hub-signature-256", signature)
                .body(body);
            let errors = Arc::clone(&errors);
            let latencies = Arc::clone(&latencies);
            async move {
                let sent = Instant::now();
                let ok = matches!(request.send().await, Ok(r) if r.status() == 200);
                let latency = sent.elapsed();
                if ok {
                    latencies.lock().await.push(latency);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    };

    if args.rate == 0 {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..args.concurrency {
            let send = send.clone();
            workers.spawn(async move {
                while Instant::now() < deadline {
                    send().await;
                }
            });
        }
        while workers.join_next().await.is_some() {}
    } else {
        let limit = Arc::new(tokio::sync::Semaphore::new(args.concurrency * 8));
        let mut interval =
            tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut inflight = tokio::task::JoinSet::new();
        while Instant::now() < deadline {
            interval.tick().await;
            let permit = Arc::clone(&limit).acquire_owned().await?;
            let request = send();
            inflight.spawn(async move {
                request.await;
                drop(permit);
            });
        }
        while inflight.join_next().await.is_some() {}
    }
    let sending = started.elapsed();
    ticker.abort();
    progress.finish_and_clear();

    let acknowledged = latencies.lock().await.len() as u64;
    // From the first webhook sent until the read model holds the last one.
    let processed_at =
        started.elapsed() + wait_processed(&server.database, &run_id, acknowledged).await?;
    sampler.abort();
    let rss = rss_megabytes();
    server.stop().await?;
    picked.clean_up().await?;

    let samples = std::mem::take(&mut *latencies.lock().await);
    let summary = summarize(samples.clone());
    let p999 = percentile(samples, 0.999);
    let ack_rate = acknowledged as f64 / sending.as_secs_f64();
    let processed_rate = acknowledged as f64 / processed_at.as_secs_f64();
    let report = Report {
        backend,
        concurrency: args.concurrency,
        target_rate: args.rate,
        duration_seconds: sending.as_secs_f64(),
        baseline_commits_per_second: baseline,
        acknowledged,
        errors: errors.load(Ordering::Relaxed),
        acknowledged_per_second: ack_rate,
        acknowledged_vs_baseline: ack_rate / baseline,
        ack_p50_ms: summary.p50.as_secs_f64() * 1000.0,
        ack_p99_ms: summary.p99.as_secs_f64() * 1000.0,
        ack_p999_ms: p999.as_secs_f64() * 1000.0,
        processed_messages_per_second: processed_rate,
        processed_vs_baseline: processed_rate / baseline,
        rss_megabytes: rss,
        timeline: std::mem::take(&mut *timeline.lock().await),
    };
    Ok(Measured {
        report,
        summary,
        p999,
    })
}

/// The run that processed the most messages per second of its own baseline.
fn best(reports: Vec<Report>) -> Report {
    reports
        .into_iter()
        .max_by(|a, b| a.processed_vs_baseline.total_cmp(&b.processed_vs_baseline))
        .expect("at least one round")
}

/// The cost of sealing: the best runs of each side by side.
fn print_sealing(clear: &Report, sealed: &Report) {
    println!(
        "load, {} backend, {} in flight, personal data in clear vs sealed",
        sealed.backend, sealed.concurrency
    );
    println!(
        "{:<42} {:>12} {:>12} {:>8}",
        "measure", "in clear", "sealed", "ratio"
    );
    let row = |name: &str, clear: f64, sealed: f64| {
        println!(
            "{name:<42} {clear:>12.0} {sealed:>12.0} {:>8.2}",
            sealed / clear
        );
    };
    row(
        "baseline: single-row commits/s",
        clear.baseline_commits_per_second,
        sealed.baseline_commits_per_second,
    );
    row(
        "acknowledged webhooks/s",
        clear.acknowledged_per_second,
        sealed.acknowledged_per_second,
    );
    row(
        "processed messages/s (into read models)",
        clear.processed_messages_per_second,
        sealed.processed_messages_per_second,
    );
    row(
        "processed, each vs its baseline (x1000)",
        clear.processed_vs_baseline * 1000.0,
        sealed.processed_vs_baseline * 1000.0,
    );
}

fn print_table(r: &Report, summary: &crate::stats::Summary, p999: Duration) {
    let rate = if r.target_rate == 0 {
        "max".to_owned()
    } else {
        format!("{}/s", r.target_rate)
    };
    println!(
        "load: {} backend, rate {rate}, {} in flight, {:.1} s",
        r.backend, r.concurrency, r.duration_seconds
    );
    println!("{:<42} {:>14} {:>12}", "measure", "value", "vs baseline");
    println!(
        "{:<42} {:>14.0} {:>12}",
        "baseline: single-row commits/s", r.baseline_commits_per_second, "1.00"
    );
    println!(
        "{:<42} {:>14.0} {:>12.2}",
        "acknowledged webhooks/s", r.acknowledged_per_second, r.acknowledged_vs_baseline
    );
    println!(
        "{:<42} {:>14.0} {:>12.2}",
        "processed messages/s (into read models)",
        r.processed_messages_per_second,
        r.processed_vs_baseline
    );
    println!("{:<42} {:>14}", "acknowledgement p50 ms", ms(summary.p50));
    println!("{:<42} {:>14}", "acknowledgement p99 ms", ms(summary.p99));
    println!("{:<42} {:>14}", "acknowledgement p99.9 ms", ms(p999));
    println!(
        "{:<42} {:>14}",
        "acknowledged / errors",
        format!("{} / {}", r.acknowledged, r.errors)
    );
    println!(
        "{:<42} {:>14.1}",
        "process RSS MB (server + load generator)", r.rss_megabytes
    );
    println!();
    println!(
        "{:>8} {:>10} {:>16} {:>16}",
        "t s", "sent", "inbound backlog", "projection lag"
    );
    for sample in &r.timeline {
        println!(
            "{:>8.0} {:>10} {:>16} {:>16}",
            sample.at_seconds, sample.sent, sample.inbound_backlog, sample.projection_lag
        );
    }
}

fn percentile(mut samples: Vec<Duration>, q: f64) -> Duration {
    samples.sort_unstable();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// One webhook carrying one text message from customer `n % customers`.
pub(crate) fn webhook(run_id: &str, n: u64, customers: u32) -> String {
    webhook_at(run_id, n, customers, 1_780_000_000 + n / 1000)
}

/// [`webhook`], timestamped `timestamp` (Unix seconds).
fn webhook_at(run_id: &str, n: u64, customers: u32, timestamp: u64) -> String {
    let customer = 4_915_000_000_000u64 + n % u64::from(customers);
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"110000000000001","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"120000000000001"}},"contacts":[{{"profile":{{"name":"Load {customer}"}},"wa_id":"{customer}"}}],"messages":[{{"from":"{customer}","id":"wamid.load.{run_id}.{n:012}","timestamp":"{timestamp}","type":"text","text":{{"body":"load test message {n}"}}}}]}}}}]}}]}}"#
    )
}

/// Single-row INSERT commits per second into a scratch table, with `concurrency` writers.
async fn baseline(
    database: &Database,
    concurrency: usize,
    length: Duration,
) -> anyhow::Result<f64> {
    let create = match database {
        Database::Postgres(_) => "create table if not exists bench_baseline (id bigint generated always as identity primary key, body bytea not null)",
        Database::Sqlite(_) => "create table if not exists bench_baseline (id integer primary key autoincrement, body blob not null)",
    };
    with_pool!(database, pool => sqlx::query(create).execute(pool).await.map(|_| ())?);
    let body = vec![b'x'; 1000];
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let database = database.clone();
        let body = body.clone();
        let count = Arc::clone(&count);
        writers.spawn(async move {
            while Instant::now() < deadline {
                let done = with_pool!(&database, pool => sqlx::query("insert into bench_baseline (body) values ($1)")
                    .bind(&body).execute(pool).await.is_ok());
                if done {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while writers.join_next().await.is_some() {}
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    with_pool!(database, pool => sqlx::query("drop table bench_baseline").execute(pool).await.map(|_| ())?);
    Ok(rate)
}

/// Waits until the read model holds every acknowledged message; returns how long that took.
async fn wait_processed(
    database: &Database,
    run_id: &str,
    expected: u64,
) -> anyhow::Result<Duration> {
    let low = format!("wamid.load.{run_id}.");
    let high = format!("wamid.load.{run_id}/");
    let started = Instant::now();
    let sql = "select count(*) from messages where id >= $1 and id < $2";
    loop {
        let count: i64 = with_pool!(database, pool => sqlx::query_scalar(sql).bind(&low).bind(&high).fetch_one(pool).await?);
        if u64::try_from(count).unwrap_or(0) >= expected {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {count} of {expected} messages processed after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident set size of this process, in MB (Linux).
pub(crate) fn rss_megabytes() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
