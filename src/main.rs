//! The `switchboard` binary: `serve` runs the server.

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::clock::SystemClock;
use switchboard::config::ServeArgs;
use switchboard::startup::Application;
use switchboard::telemetry;

/// Switchboard: a shared WhatsApp inbox backend.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server and its workers.
    Serve(ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
    }
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
