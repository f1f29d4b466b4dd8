//! `rebuild`: fills a fresh store with synthetic conversations (the same events webhooks
//! produce), then times a full rebuild of every read model.

use std::time::Instant;

use cqrs_es::DomainEvent;
use serde_json::json;
use switchboard::replay;
use switchboard::startup::connect_store;
use switchboard_domain::conversation::ConversationEvent;
use switchboard_domain::message::{MessageContent, MessageEvent};
use switchboard_domain::{ConversationId, Customer, PhoneNumberId, Timestamp, WaMessageId};
use switchboard_store::{EventRepository, NewEvent};

use crate::server::BenchDatabase;

/// Options of `rebuild`.
#[derive(clap::Args)]
pub struct RebuildArgs {
    /// Events in the log (roughly: two per message, one per conversation start).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Distinct customers.
    #[arg(long, default_value_t = 10_000)]
    customers: u64,
    /// Rebuild only these read models (default: every one), to see what each costs.
    #[arg(long, value_delimiter = ',')]
    projections: Vec<String>,
}

/// One fill and rebuild: the messages written, events appended per second, events rebuilt,
/// and the rebuild's seconds.
struct Measured {
    messages: u64,
    appended_per_second: f64,
    replayed: u64,
    seconds: f64,
}

/// Fills a fresh store and rebuilds it twice over: personal data sealed (as served), and, as
/// the same run's baseline, written in clear — the cost of crypto-shredding on ingest (the
/// append) and on rebuild (opening every sealed event).
pub async fn run(args: RebuildArgs) -> anyhow::Result<()> {
    let mut backend = String::new();
    let mut measured = Vec::new();
    for sealed in [false, true] {
        let picked = BenchDatabase::pick().await?;
        backend = format!("{:?}", picked.config.backend());
        let keys = if sealed {
            crate::server::bench_master_keys()
        } else {
            crate::server::bench_master_keys_in_clear()
        };
        let (database, log, _) = connect_store(&picked.config, &keys).await?;
        let filled = Instant::now();
        let messages = fill(&log, args.events, args.customers).await?;
        let fill_seconds = filled.elapsed().as_secs_f64();
        let rebuild_started = Instant::now();
        let replayed = replay::rebuild(&log, &args.projections).await?;
        let seconds = rebuild_started.elapsed().as_secs_f64();
        measured.push(Measured {
            messages,
            appended_per_second: args.events as f64 / fill_seconds,
            replayed,
            seconds,
        });
        database.close().await;
        picked.clean_up().await?;
    }
    let [clear, sealed] = &measured[..] else {
        unreachable!("two runs")
    };
    println!(
        "rebuild of every read model, {backend}, {} messages from {} customers",
        sealed.messages, args.customers
    );
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "", "in clear", "sealed", "ratio"
    );
    let row = |name: &str, clear: f64, sealed: f64| {
        println!(
            "{name:<28} {clear:>14.0} {sealed:>14.0} {:>8.2}",
            sealed / clear
        );
    };
    row(
        "events appended/s",
        clear.appended_per_second,
        sealed.appended_per_second,
    );
    row(
        "events replayed",
        clear.replayed as f64,
        sealed.replayed as f64,
    );
    row(
        "rebuild events/s",
        clear.replayed as f64 / clear.seconds,
        sealed.replayed as f64 / sealed.seconds,
    );
    Ok(())
}

/// Appends about `events` events to `log`: customers' messages spread over `customers`
/// conversations (a start, then per message a conversation and a message event). Answers how
/// many messages.
///
/// # Errors
/// Storage failures.
pub async fn fill(log: &EventRepository, events: u64, customers: u64) -> anyhow::Result<u64> {
    let args = RebuildArgs {
        events,
        customers,
        projections: vec![],
    };
    let phone = PhoneNumberId::new("120000000000001");
    let metadata = json!({"actor": "meta"});
    let started = Instant::now();
    let mut sequences = vec![0i64; usize::try_from(args.customers).unwrap_or(0)];
    let mut chunk = Vec::with_capacity(10_000);
    let mut written = 0u64;
    let mut n = 0u64;
    while written < args.events {
        let customer_index = usize::try_from(n % args.customers).unwrap_or(0);
        let customer = Customer::new(
            Some(format!("{}", 4_915_000_000_000u64 + n % args.customers)),
            None,
        )
        .ok_or_else(|| anyhow::anyhow!("customer"))?;
        let conversation_id = ConversationId::for_customer(&phone, &customer);
        let at = Timestamp::from_unix_seconds(1_780_000_000 + i64::try_from(n).unwrap_or(0))
            .ok_or_else(|| anyhow::anyhow!("time"))?;
        let wamid = WaMessageId::new(format!("wamid.rebuild.{n:012}"));
        let mut conversation_events = Vec::new();
        if sequences[customer_index] == 0 {
            conversation_events.push(ConversationEvent::Started {
                phone_number_id: phone.clone(),
                customer: customer.clone(),
                started_at: at,
            });
        }
        conversation_events.push(ConversationEvent::CustomerMessageReceived {
            wamid: wamid.clone(),
            sent_at: at,
            window_closes_at: Some(at.plus_seconds(86_400)),
        });
        for event in conversation_events {
            sequences[customer_index] += 1;
            chunk.push(NewEvent {
                aggregate_type: "Conversation",
                aggregate_id: conversation_id.to_string(),
                sequence: sequences[customer_index],
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(&event)?,
                metadata: metadata.clone(),
            });
        }
        let message = MessageEvent::InboundReceived {
            conversation_id,
            phone_number_id: phone.clone(),
            customer,
            profile_name: Some("Bench".to_owned()),
            sent_at: at,
            content: MessageContent::Text {
                body: format!("synthetic message {n}"),
            },
            context: None,
            referral: None,
            errors: vec![],
        };
        chunk.push(NewEvent {
            aggregate_type: "Message",
            aggregate_id: wamid.to_string(),
            sequence: 1,
            event_type: message.event_type(),
            event_version: message.event_version(),
            payload: serde_json::to_value(&message)?,
            metadata: metadata.clone(),
        });
        n += 1;
        if chunk.len() >= 10_000 {
            written += chunk.len() as u64;
            log.append(&chunk, &[], &[]).await?;
            chunk.clear();
            eprint!("\rwriting events: {written}");
        }
    }
    written += chunk.len() as u64;
    log.append(&chunk, &[], &[]).await?;
    eprintln!(
        "\rwrote {written} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(n)
}
