//! `stream`: the NATS JetStream publisher. Two figures, each beside a baseline of the same run:
//! - **publish throughput**: a log filled with synthetic conversations is published by the
//!   server's publisher; the baseline publishes the same envelopes straight to JetStream
//!   (pipelined as the publisher does, no log reading, no cursor or lease writes);
//! - **end-to-end latency** at a steady rate of customers' messages: from the event's commit
//!   (the moment a reader polling the log every millisecond first sees it) to a JetStream
//!   consumer receiving it; also from its `recorded_at` (the insert, inside the writing
//!   transaction, so this adds how long that transaction ran on); the baseline is JetStream's
//!   own round trip (publish, acknowledgement, delivery to a consumer) measured just before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use switchboard::realtime::Envelope;
use switchboard::startup::connect_store;
use switchboard::stream::publisher::Publisher;
use switchboard::stream::{StreamSettings, StreamStatus};
use switchboard::whatsapp::signature::sign;
use switchboard_store::{EventRepository, LogCursor};
use tokio::sync::watch;

use crate::server::{settings, BenchDatabase, RunningServer, SECRET};
use crate::stats::{ms, summarize};

/// Options of `stream`.
#[derive(clap::Args)]
pub struct StreamArgs {
    /// The NATS server (JetStream enabled).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Events in the log the throughput is measured over.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Customers' messages per second in the latency run (two events each).
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
}

fn id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn wait_for_messages(
    context: &jetstream::Context,
    name: &str,
    count: u64,
) -> anyhow::Result<()> {
    loop {
        // The publisher creates the stream when it starts.
        if let Ok(mut stream) = context.get_stream(name).await {
            if stream.info().await?.state.messages >= count {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every event of the log, in log order.
async fn whole_log(log: &EventRepository) -> anyhow::Result<Vec<switchboard_store::RecordedEvent>> {
    let mut all = Vec::new();
    let mut cursor = LogCursor::START;
    loop {
        let batch = log.read_all(cursor, 5_000).await?;
        let Some(last) = batch.last() else {
            return Ok(all);
        };
        cursor = last.cursor;
        all.extend(batch);
    }
}

/// The same envelopes published straight to JetStream, 500 at a time; events/s.
async fn baseline(
    context: &jetstream::Context,
    events: &[switchboard_store::RecordedEvent],
) -> anyhow::Result<f64> {
    let run = id();
    context
        .create_stream(stream::Config {
            name: format!("BENCH_BASE_{run}"),
            subjects: vec![format!("benchbase{run}.>")],
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    for chunk in events.chunks(500) {
        let mut acks = Vec::with_capacity(chunk.len());
        for event in chunk {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                event.position.to_string().as_str(),
            );
            let body = serde_json::to_vec(&Envelope::from(event.clone()))?;
            let subject = format!(
                "benchbase{run}.{}.{}",
                event.aggregate_type, event.event_type
            );
            acks.push(
                context
                    .publish_with_headers(subject, headers, body.into())
                    .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
    }
    let rate = events.len() as f64 / started.elapsed().as_secs_f64();
    context.delete_stream(format!("BENCH_BASE_{run}")).await?;
    Ok(rate)
}

pub async fn run(args: StreamArgs) -> anyhow::Result<()> {
    let picked = BenchDatabase::pick().await?;
    let backend = format!("{:?}", picked.config.backend());
    let (database, log, _) =
        connect_store(&picked.config, &crate::server::bench_master_keys()).await?;
    crate::rebuild::fill(&log, args.events, 10_000).await?;
    let events = whole_log(&log).await?;
    let client = async_nats::connect(&args.nats).await?;
    let context = jetstream::new(client);
    let base_rate = baseline(&context, &events).await?;

    let run = id();
    let stream_settings = StreamSettings {
        url: Some(args.nats.clone()),
        stream: format!("BENCH_{run}"),
        subject_prefix: format!("bench{run}.events"),
        ..StreamSettings::default()
    };
    let status = Arc::new(StreamStatus::new(true));
    let publisher = Publisher::new(log.clone(), stream_settings.clone(), Arc::clone(&status));
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let running = tokio::spawn(publisher.run(stopped));
    wait_for_messages(&context, &stream_settings.stream, events.len() as u64).await?;
    let publish_rate = events.len() as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    running.await?;
    context.delete_stream(&stream_settings.stream).await?;
    database.close().await;

    println!("stream publisher, {backend}, {} events", events.len());
    println!("{:<40} {:>12}", "measure", "events/s");
    println!(
        "{:<40} {:>12.0}",
        "baseline: JetStream alone, pipelined", base_rate
    );
    println!(
        "{:<40} {:>12.0}",
        "publisher (log → JetStream)", publish_rate
    );
    println!("{:<40} {:>12.2}", "ratio", publish_rate / base_rate);

    picked.clean_up().await?;
    // A database of its own: the latency run starts from an empty log.
    let fresh = BenchDatabase::pick().await?;
    latency(&args, &fresh).await?;
    fresh.clean_up().await?;
    Ok(())
}

/// JetStream's own round trip: publish, await the acknowledgement, receive it on a consumer.
async fn round_trip(context: &jetstream::Context) -> anyhow::Result<crate::stats::Summary> {
    let run = id();
    let stream = context
        .create_stream(stream::Config {
            name: format!("BENCH_RT_{run}"),
            subjects: vec![format!("benchrt{run}.>")],
            ..Default::default()
        })
        .await?;
    let consumer = stream
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: context.client().new_inbox(),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut samples = Vec::new();
    for n in 0..200 {
        let started = Instant::now();
        context
            .publish(format!("benchrt{run}.x"), format!("{n}").into())
            .await?
            .await?;
        let _ = messages.next().await;
        samples.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    context.delete_stream(format!("BENCH_RT_{run}")).await?;
    Ok(summarize(samples))
}

/// Customers write at `rate` for `seconds` to a server publishing to JetStream; a consumer
/// measures commit → delivery.
async fn latency(args: &StreamArgs, picked: &BenchDatabase) -> anyhow::Result<()> {
    let run = id();
    let mut config = settings(picked.config.clone());
    config.stream = StreamSettings {
        url: Some(args.nats.clone()),
        stream: format!("BENCH_LAT_{run}"),
        subject_prefix: format!("benchlat{run}.events"),
        ..StreamSettings::default()
    };
    let server = RunningServer::start(config).await?;
    let client = async_nats::connect(&args.nats).await?;
    let context = jetstream::new(client);
    let base = round_trip(&context).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        if let Ok(stream) = context.get_stream(format!("BENCH_LAT_{run}")).await {
            break stream;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the publisher never created the stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let consumer = stream
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: context.client().new_inbox(),
            deliver_policy: consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let seen = watch_commits(EventRepository::new(
        server.database.clone(),
        crate::server::bench_master_keys(),
    ));
    let http = reqwest::Client::new();
    let url = format!("{}/webhooks/whatsapp", server.base);
    let total = args.rate * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        for n in 0..total {
            tick.tick().await;
            let body = crate::load::webhook(&run, n, 1000);
            let signature = sign(SECRET, body.as_bytes());
            let _ = http
                .post(url.as_str())
                .header("content-type", "application/json")
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await;
        }
    });
    let mut latencies = Vec::new();
    let mut arrivals = Vec::new();
    let end = Instant::now() + Duration::from_secs(args.seconds + 10);
    while Instant::now() < end {
        let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(2), messages.next()).await
        else {
            if sender.is_finished() {
                break;
            }
            continue;
        };
        let envelope: serde_json::Value = serde_json::from_slice(&message.payload)?;
        let Some(at) = envelope["at"]
            .as_str()
            .and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok())
        else {
            continue;
        };
        let now = chrono::Utc::now();
        let waited = (now - at.with_timezone(&chrono::Utc))
            .to_std()
            .unwrap_or_default();
        latencies.push(waited);
        if let Some(position) = envelope["position"].as_i64() {
            arrivals.push((position, Instant::now()));
        }
    }
    sender.await?;
    seen.stop.send_replace(true);
    let visible = seen.task.await?;
    let from_commit = arrivals
        .iter()
        .filter_map(|(position, at)| {
            visible
                .get(position)
                .map(|seen| at.saturating_duration_since(*seen))
        })
        .collect();
    let summary = summarize(from_commit);
    let from_insert = summarize(latencies);
    println!(
        "end-to-end at {} messages/s ({} events/s) for {} s: commit (first seen in the log) → consumer",
        args.rate,
        args.rate * 2,
        args.seconds
    );
    println!(
        "{:<12} {:>8} {:>10} {:>10} {:>10}",
        "", "count", "p50 ms", "p99 ms", "max ms"
    );
    for (name, s) in [
        ("baseline", &base),
        ("events", &summary),
        ("from insert", &from_insert),
    ] {
        println!(
            "{:<12} {:>8} {:>10} {:>10} {:>10}",
            name,
            s.count,
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        );
    }
    server.stop().await?;
    Ok(())
}

/// A reader polling the log: when each position was first seen (committed and readable).
struct CommitWatch {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::collections::HashMap<i64, Instant>>,
}

fn watch_commits(log: EventRepository) -> CommitWatch {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut seen = std::collections::HashMap::new();
        let mut cursor = log.frontier().await.unwrap_or(LogCursor::START);
        while !*stopped.borrow() {
            match log.read_all(cursor, 1_000).await {
                Ok(batch) if !batch.is_empty() => {
                    let now = Instant::now();
                    for event in &batch {
                        seen.insert(event.position, now);
                    }
                    if let Some(last) = batch.last() {
                        cursor = last.cursor;
                    }
                }
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        seen
    });
    CommitWatch { stop, task }
}
