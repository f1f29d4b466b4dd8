//! `switchboard-replay consume`: reads the event stream from NATS JetStream with a durable
//! consumer and prints each event (the `/api/events` envelope) as one JSON line, acknowledging
//! it, so a user can check the wiring in one command. Run it again with the same `--durable`
//! name and it goes on where it stopped.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

/// Where and how to consume.
pub struct Consume {
    /// NATS server URL.
    pub url: String,
    /// The stream.
    pub stream: String,
    /// The durable consumer's name.
    pub durable: String,
    /// Stop after this many events.
    pub limit: Option<u64>,
    /// Stop when no event came for this long.
    pub idle: Option<Duration>,
}

/// Consumes until the limit, the idle time, or the end of input.
///
/// # Errors
/// NATS failures, or stdout closed.
pub async fn run(options: Consume) -> anyhow::Result<u64> {
    let client = async_nats::connect(&options.url)
        .await
        .with_context(|| format!("connecting to {}", options.url))?;
    let context = jetstream::new(client);
    let stream = context
        .get_stream(&options.stream)
        .await
        .with_context(|| format!("no stream {}", options.stream))?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &options.durable,
            consumer::pull::Config {
                durable_name: Some(options.durable.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .context("creating the durable consumer")?;
    let mut messages = consumer.messages().await.context("pulling messages")?;
    let mut stdout = std::io::stdout().lock();
    let mut consumed = 0;
    while options.limit.is_none_or(|limit| consumed < limit) {
        let next = match options.idle {
            Some(idle) => match tokio::time::timeout(idle, messages.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => messages.next().await,
        };
        let Some(message) = next else {
            break;
        };
        let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
        stdout.write_all(&message.payload)?;
        stdout.write_all(b"\n")?;
        message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        consumed += 1;
    }
    stdout.flush()?;
    Ok(consumed)
}
