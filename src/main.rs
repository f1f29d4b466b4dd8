//! The `switchboard` binary: `serve` runs the server.

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use switchboard::auth::accounts::{self, NewAgent};
use switchboard::clock::{Clock, SystemClock};
use switchboard::config::{DatabaseArgs, ServeArgs};
use switchboard::startup::{connect_store, Application};
use switchboard::telemetry::{self, LogFormat};
use switchboard_domain::agent::{Email, Role};

/// Switchboard: a shared WhatsApp inbox backend.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Parsed once at startup: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server and its workers.
    Serve(ServeArgs),
    /// Manage agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Create an agent. The password is read from standard input, never from the command line.
    Create(CreateAgentArgs),
}

#[derive(Debug, clap::Args)]
struct CreateAgentArgs {
    /// Login email.
    #[arg(long)]
    email: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Role: admin, supervisor or agent.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// Read the password from standard input (its first line).
    #[arg(long, required = true)]
    password_stdin: bool,
    /// The database.
    #[command(flatten)]
    database: DatabaseArgs,
}

fn parse_role(text: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(text.to_lowercase()))
        .map_err(|_| format!("{text:?} is not a role (admin, supervisor, agent)"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Agent {
            command: AgentCommand::Create(args),
        } => create_agent(args).await,
    }
}

async fn create_agent(args: CreateAgentArgs) -> anyhow::Result<()> {
    telemetry::init(LogFormat::Text, "warn");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned());
    let email = Email::parse(&args.email).map_err(anyhow::Error::msg)?;
    let config = args.database.config().context("invalid DATABASE_URL")?;
    let (database, _log, frameworks) = connect_store(&config).await.context("opening the store")?;
    let agent = NewAgent {
        email: email.clone(),
        name: args.name,
        role: args.role,
        groups: vec![],
        permissions: None,
        working_hours: None,
        password,
    };
    let id = accounts::register(&frameworks, &database, agent, None, SystemClock.now())
        .await
        .context("creating the agent")?;
    database.close().await;
    println!("created agent {id} ({email})");
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format, "info,sqlx=warn");
    let settings = args.settings().context("invalid configuration")?;
    if settings.whatsapp.app_secrets.is_empty() {
        tracing::warn!(
            "WHATSAPP_APP_SECRET is not set: webhooks will be refused with 503 until it is"
        );
    }
    let mut app = Application::build(settings, Arc::new(SystemClock))
        .await
        .context("startup failed")?;
    if let Some(admin) = app.take_first_admin() {
        use secrecy::ExposeSecret;
        // Printed once, to the terminal only (never to the log): the only copy of it.
        println!(
            "\nFirst start: created the admin {}\n  one-time password: {}\n  log in with POST /api/auth/login and change it with PATCH /api/agents/{{id}}.\n",
            admin.email,
            admin.password.expose_secret()
        );
    }
    tracing::info!(port = app.port(), "listening");
    app.run_until_stopped(shutdown_signal())
        .await
        .context("server failed")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
