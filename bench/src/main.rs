//! `switchboard-bench`: measures a running Switchboard over real HTTP and prints figures.
//!
//! Each command starts the real server in-process (embedded SQLite in a temporary directory, or
//! PostgreSQL with `DATABASE_URL`) so that a figure always comes with the exact command that
//! produced it. Build with `--release`.

mod inbox;
mod load;
mod locks;
mod logins;
mod rebuild;
mod server;
mod sockets;
mod stats;
mod stream;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmarks for Switchboard")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lock acquisition latency when many agents race for the same conversation.
    Locks(locks::LockArgs),
    /// Signed webhooks at a fixed rate or as fast as possible, against the database's own limit.
    Load(load::LoadArgs),
    /// Rebuild throughput of every read model over a large synthetic log.
    Rebuild(rebuild::RebuildArgs),
    /// Webhook-to-socket latency at a given rate, and memory per idle connected socket.
    Sockets(sockets::SocketArgs),
    /// The NATS JetStream publisher: throughput over a filled log, end-to-end latency.
    Stream(stream::StreamArgs),
    /// Latency of filtered inbox views and of search over a large read model.
    Inbox(inbox::InboxArgs),
    /// Floods of concurrent failed logins from many addresses: server memory and health latency.
    Logins(logins::LoginArgs),
    /// The server half of `logins` (started by it as a child process).
    #[command(hide = true)]
    LoginServer,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Locks(args) => locks::run(args).await,
        Command::Load(args) => load::run(args).await,
        Command::Rebuild(args) => rebuild::run(args).await,
        Command::Sockets(args) => sockets::run(args).await,
        Command::Logins(args) => logins::run(args).await,
        Command::Inbox(args) => inbox::run(args).await,
        Command::Stream(args) => stream::run(args).await,
        Command::LoginServer => logins::serve().await,
    }
}
