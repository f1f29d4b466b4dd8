//! The `switchboard` binary: `serve` runs the server.

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use switchboard::auth::accounts::{self, NewAgent};
use switchboard::clock::{Clock, SystemClock};
use switchboard::config::{DatabaseArgs, ServeArgs};
use switchboard::simulator::{Simulator, SimulatorSettings};
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
    /// Run the WhatsApp Cloud API simulator (Meta's wire format), for demos and tests.
    Simulator(SimulatorArgs),
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

#[derive(Debug, clap::Args)]
struct SimulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: String,
    /// Where to send status webhooks (Switchboard's /webhooks/whatsapp).
    #[arg(long)]
    webhook_url: Option<String>,
    /// The app secret webhooks are signed with.
    #[arg(long, env = "WHATSAPP_APP_SECRET", hide_env_values = true)]
    app_secret: String,
    /// The access token senders must present.
    #[arg(long, env = "WHATSAPP_ACCESS_TOKEN", hide_env_values = true)]
    access_token: String,
    /// Delay before each status webhook, in milliseconds.
    #[arg(long, default_value_t = 500)]
    status_delay_ms: u64,
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
        Command::Simulator(args) => simulator(args).await,
    }
}

async fn simulator(args: SimulatorArgs) -> anyhow::Result<()> {
    telemetry::init(LogFormat::Text, "info");
    let simulator = Simulator::start(
        &args.listen,
        SimulatorSettings {
            access_token: args.access_token,
            app_secret: args.app_secret,
            webhook_url: args.webhook_url,
            status_delay: std::time::Duration::from_millis(args.status_delay_ms),
        },
    )
    .await
    .context("starting the simulator")?;
    tracing::info!(url = %simulator.url(), "simulator listening");
    shutdown_signal().await;
    Ok(())
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
    let keys = args.database.master_keys()?;
    let (database, _log, frameworks) = connect_store(&config, &keys)
        .await
        .context("opening the store")?;
    let agent = NewAgent {
        email: email.clone(),
        name: args.name,
        role: args.role,
        groups: vec![],
        permissions: None,
        working_hours: None,
        password,
        one_time_password: false,
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
    let mut settings = args.settings().context("invalid configuration")?;
    let sandbox = if args.sandbox {
        Some(sandbox(&mut settings).await?)
    } else {
        None
    };
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
            "\nFirst start: created the admin {}\n  one-time password: {}\n  sign in at http://127.0.0.1:{}/ (or POST /api/auth/login) and change it.\n",
            admin.email,
            admin.password.expose_secret(),
            app.port()
        );
    }
    tracing::info!(port = app.port(), "listening");
    if let Some(simulator) = &sandbox {
        simulator.set_webhook_url(format!("http://127.0.0.1:{}/webhooks/whatsapp", app.port()));
        println!(
            "Sandbox: Meta is simulated at {}. Write as a customer with\n  curl -X POST {}/control/customer-message -H 'content-type: application/json' -d '{{\"from\": \"15550002222\", \"text\": \"Hello\"}}'\nand see what customers received at {}/control/received\n",
            simulator.url(),
            simulator.url(),
            simulator.url()
        );
    }
    app.run_until_stopped(shutdown_signal())
        .await
        .context("server failed")?;
    Ok(())
}

/// `serve --sandbox`: the simulator in this process, the sender pointed at it, webhooks signed
/// with the configured app secret (or a sandbox one).
async fn sandbox(settings: &mut switchboard::config::Settings) -> anyhow::Result<Simulator> {
    use secrecy::ExposeSecret;
    if settings.whatsapp.app_secrets.is_empty() {
        settings
            .whatsapp
            .app_secrets
            .push(SecretString::from("sandbox-app-secret".to_owned()));
    }
    let app_secret = settings
        .whatsapp
        .app_secrets
        .first()
        .map(|s| s.expose_secret().to_owned())
        .unwrap_or_default();
    let simulator = Simulator::start(
        "127.0.0.1:0",
        SimulatorSettings {
            access_token: "sandbox-access-token".to_owned(),
            app_secret,
            webhook_url: None,
            status_delay: std::time::Duration::from_millis(500),
        },
    )
    .await
    .context("starting the sandbox simulator")?;
    settings.outbound.send = true;
    settings.outbound.graph.base_url = simulator.url();
    settings.outbound.graph.access_token =
        Some(SecretString::from("sandbox-access-token".to_owned()));
    Ok(simulator)
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
