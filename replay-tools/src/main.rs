//! `switchboard-replay`: the operator's and auditor's tools, all replays of the event log.
//!
//! Works on both backends (`DATABASE_URL`, or the embedded database in `--data-dir`) and on a
//! live system: rebuilds swap fresh tables in while the server keeps serving.

use std::io::{BufReader, Write};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};

mod consume;
use clap::{Parser, Subcommand};
use switchboard::clock::SystemClock;
use switchboard::config::DatabaseArgs;
use switchboard::replay::{self, audit, export, reprocess, verify};
use switchboard::startup::connect_store;
use switchboard_domain::Timestamp;

#[derive(Parser)]
#[command(
    name = "switchboard-replay",
    about = "Replay tools for Switchboard's event log"
)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rebuild read models from the log into fresh tables and swap them in (resumable).
    Rebuild {
        /// A projection to rebuild (repeatable).
        #[arg(long = "projection")]
        projections: Vec<String>,
        /// Rebuild every projection.
        #[arg(long)]
        all: bool,
    },
    /// Every event of a conversation and its messages, and the state as of a time.
    Audit {
        #[command(subcommand)]
        target: AuditTarget,
    },
    /// Write the log as NDJSON (one event a line, with its global position) to stdout.
    Export {
        /// Only events after this position.
        #[arg(long)]
        after: Option<i64>,
        /// Only events recorded up to this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Only events of this aggregate type.
        #[arg(long)]
        aggregate_type: Option<String>,
    },
    /// Read an export (file, or stdin) into an empty store.
    Import {
        /// The export file; stdin when absent.
        file: Option<std::path::PathBuf>,
    },
    /// Move this store into another, empty one (SQLite to PostgreSQL): the log, agents'
    /// passwords and webhook endpoints' secrets; then rebuild every read model there and verify.
    Move {
        /// The target PostgreSQL URL.
        #[arg(long)]
        to: String,
    },
    /// Check sequences, that every event deserializes, and every read model against a replay.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the event stream from NATS JetStream (one JSON envelope a line) with a durable
    /// consumer, acknowledging each event; run again with the same name to go on.
    Consume {
        /// The NATS server.
        #[arg(long, env = "SWITCHBOARD_NATS_URL")]
        nats: String,
        /// The durable consumer's name.
        #[arg(long)]
        durable: String,
        /// The stream.
        #[arg(
            long,
            env = "SWITCHBOARD_NATS_STREAM",
            default_value = "SWITCHBOARD_EVENTS"
        )]
        stream: String,
        /// Stop after this many events.
        #[arg(long)]
        limit: Option<u64>,
        /// Stop once no event came for this many seconds.
        #[arg(long)]
        idle_seconds: Option<u64>,
    },
    /// Run stored raw webhooks through the current parser again (idempotent).
    ReprocessWebhooks {
        /// Only webhooks received since this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only dead-lettered webhooks.
        #[arg(long)]
        failed_only: bool,
        /// Extra webhook fields to accept (as `SWITCHBOARD_EXTRA_WEBHOOK_FIELDS`).
        #[arg(long, env = "SWITCHBOARD_EXTRA_WEBHOOK_FIELDS", value_delimiter = ',')]
        extra_webhook_fields: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AuditTarget {
    /// Audit one conversation.
    Conversation {
        /// The conversation id.
        id: String,
        /// Show the state as of this time (RFC 3339) and only what had happened by then.
        #[arg(long)]
        at: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn time(text: &str) -> anyhow::Result<Timestamp> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{text:?} is not RFC 3339"))?;
    Ok(Timestamp::new(parsed.into()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Consume {
        nats,
        durable,
        stream,
        limit,
        idle_seconds,
    } = cli.command
    {
        let consumed = consume::run(consume::Consume {
            url: nats,
            stream,
            durable,
            limit,
            idle: idle_seconds.map(std::time::Duration::from_secs),
        })
        .await?;
        eprintln!("{consumed} events");
        return Ok(());
    }
    let config = cli.database.config().context("invalid DATABASE_URL")?;
    let keys = cli.database.master_keys()?;
    let (database, log, frameworks) = connect_store(&config, &keys)
        .await
        .context("opening the store")?;
    let started = Instant::now();
    match cli.command {
        Command::Rebuild { projections, all } => {
            if projections.is_empty() && !all {
                bail!("name a projection with --projection, or use --all");
            }
            let total = u64::try_from(log.count().await?).unwrap_or(0);
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} events ({per_sec}, {eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let shown = bar.clone();
            let progress = std::sync::Arc::new(move |events: u64| shown.inc(events));
            let replayed =
                replay::rebuild_with_progress(&log, &projections, Some(progress)).await?;
            bar.finish_and_clear();
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "rebuilt from {replayed} events in {seconds:.1} s ({:.0} events/s)",
                replayed as f64 / seconds.max(1e-9)
            );
        }
        Command::Audit {
            target: AuditTarget::Conversation { id, at, json },
        } => {
            let at = at.as_deref().map(time).transpose()?;
            let report = audit::conversation(&log, &id, at).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("conversation {}", report.conversation_id);
                for e in &report.events {
                    println!(
                        "{:>8}  {}  {:<12} {:<38} {:<36} {:<20} {}",
                        e.position,
                        e.at,
                        e.aggregate_type,
                        e.event_type,
                        e.aggregate_id.chars().take(36).collect::<String>(),
                        e.actor.as_deref().unwrap_or("-"),
                        e.request_id.as_deref().unwrap_or("-")
                    );
                }
                if let Some(state) = &report.state {
                    println!(
                        "\nstate as of {}: {}",
                        state.at,
                        serde_json::to_string_pretty(state)?
                    );
                }
            }
        }
        Command::Export {
            after,
            until,
            aggregate_type,
        } => {
            let filter = export::ExportFilter {
                after,
                until_ms: until
                    .as_deref()
                    .map(time)
                    .transpose()?
                    .map(Timestamp::unix_millis),
                aggregate_type,
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let written = export::export(&log, &filter, &mut out).await?;
            out.flush()?;
            eprintln!("exported {written} events");
        }
        Command::Import { file } => {
            let imported = match file {
                Some(path) => {
                    export::import(&log, BufReader::new(std::fs::File::open(&path)?)).await?
                }
                None => export::import(&log, std::io::stdin().lock()).await?,
            };
            eprintln!("imported {imported} events; run `rebuild --all` to build the read models");
        }
        Command::Move { to } => {
            let target_config = switchboard_store::DatabaseConfig::postgres_url(&to)
                .context("the target URL does not parse")?;
            let (target_db, target, _) = connect_store(&target_config, &keys)
                .await
                .context("cannot reach the target database")?;
            let moved = switchboard::replay::moving::move_store(&log, &target).await?;
            target_db.close().await;
            eprintln!(
                "moved {} events, {} agents' passwords, {} webhook endpoint secrets; read models rebuilt; verify: {}",
                moved.events,
                moved.credentials,
                moved.endpoint_secrets,
                if moved.verification.ok() { "OK" } else { "PROBLEMS FOUND" }
            );
            if !moved.verification.ok() {
                database.close().await;
                bail!("the moved store does not verify: {:?}", moved.verification);
            }
        }
        Command::Verify { json } => {
            let report = verify::verify(&log).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("events checked: {}", report.events);
                println!(
                    "aggregates with broken sequences: {}",
                    report.broken_sequences.len()
                );
                println!("unreadable events: {}", report.unreadable.len());
                for d in &report.differences {
                    println!(
                        "read model {} differs from a replay: {} rows only live, {} only replayed (e.g. {:?})",
                        d.table, d.only_live, d.only_replayed, d.sample_ids
                    );
                }
                println!("{}", if report.ok() { "OK" } else { "PROBLEMS FOUND" });
            }
            if !report.ok() {
                database.close().await;
                std::process::exit(1);
            }
        }
        // Handled before the store is opened: it needs none.
        Command::Consume { .. } => {}
        Command::ReprocessWebhooks {
            since,
            failed_only,
            extra_webhook_fields,
        } => {
            let selection = reprocess::Selection {
                since_ms: since
                    .as_deref()
                    .map(time)
                    .transpose()?
                    .map(Timestamp::unix_millis),
                failed_only,
            };
            let queued = reprocess::reprocess(
                &log,
                frameworks,
                Arc::new(SystemClock),
                &selection,
                extra_webhook_fields,
            )
            .await?;
            eprintln!("reprocessed {queued} stored webhooks");
        }
    }
    database.close().await;
    Ok(())
}
