//! `locks`: N agents race for the lock of one conversation, round after round. After each
//! round the same clients send `GET /api/health` at the same moment: the `floor` row, what
//! HTTP alone costs on this machine at that concurrency.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::future::join_all;
use serde_json::{json, Value};
use switchboard::auth::accounts::{self, NewAgent};
use switchboard::clock::{Clock, SystemClock};
use switchboard::startup::connect_store;
use switchboard::whatsapp::signature::sign;
use switchboard_domain::agent::{ChatScope, Email, Permissions, Role};

use crate::server::{settings, BenchDatabase, RunningServer, SECRET};
use crate::stats::{ms, summarize};

/// Options of `locks`.
#[derive(clap::Args)]
pub struct LockArgs {
    /// Agents racing in each round.
    #[arg(long, default_value_t = 50)]
    agents: usize,
    /// Rounds (one fresh conversation each).
    #[arg(long, default_value_t = 40)]
    rounds: usize,
}

const PASSWORD: &str = "bench password 123";

pub async fn run(args: LockArgs) -> anyhow::Result<()> {
    let picked = BenchDatabase::pick().await?;
    let backend = format!("{:?}", picked.config.backend());
    // Agents first, so that the server creates no first admin and every racer can write anywhere.
    let (db, _log, frameworks) =
        connect_store(&picked.config, &crate::server::bench_master_keys()).await?;
    let run_id = std::process::id();
    let mut emails = Vec::with_capacity(args.agents);
    for i in 0..args.agents {
        let email = format!("racer{i}.{run_id}@bench.local");
        let permissions = Permissions {
            can_read_chats: ChatScope::All,
            can_write_to_chats: ChatScope::All,
            ..Permissions::for_role(Role::Agent)
        };
        let agent = NewAgent {
            email: Email::parse(&email).map_err(anyhow::Error::msg)?,
            name: format!("Racer {i}"),
            role: Role::Agent,
            groups: vec![],
            permissions: Some(permissions),
            working_hours: None,
            password: PASSWORD.into(),
            one_time_password: false,
        };
        accounts::register(&frameworks, &db, agent, None, SystemClock.now()).await?;
        emails.push(email);
    }
    db.close().await;

    let server = RunningServer::start(settings(picked.config.clone())).await?;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.agents)
        .build()?;

    let mut tokens = Vec::with_capacity(args.agents);
    for email in &emails {
        let response: Value = client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(
            response["access_token"]
                .as_str()
                .context("login")?
                .to_owned(),
        );
    }

    let mut winners = Vec::new();
    let mut losers = Vec::new();
    let mut floor = Vec::new();
    for round in 0..args.rounds {
        let conversation = start_conversation(&client, &base, &tokens[0], run_id, round).await?;
        let url = format!("{base}/api/conversations/{conversation}/lock");
        let attempts = tokens.iter().map(|token| {
            let request = client
                .post(&url)
                .bearer_auth(token)
                .json(&json!({"ttl_seconds": 60}));
            async move {
                let started = Instant::now();
                let status = request.send().await.map(|r| r.status().as_u16());
                (status, started.elapsed())
            }
        });
        let mut won = 0;
        for (status, latency) in join_all(attempts).await {
            match status? {
                200 => {
                    won += 1;
                    winners.push(latency);
                }
                409 => losers.push(latency),
                other => bail!("round {round}: unexpected status {other}"),
            }
        }
        if won != 1 {
            bail!("round {round}: {won} winners");
        }
        // The floor: as many requests at the same moment on the same connections, to a route
        // with no authentication and no database.
        let probes = tokens.iter().map(|_| {
            let request = client.get(format!("{base}/api/health"));
            async move {
                let started = Instant::now();
                let status = request.send().await.map(|r| r.status().as_u16());
                (status, started.elapsed())
            }
        });
        for (status, latency) in join_all(probes).await {
            if status? != 200 {
                bail!("round {round}: health check failed");
            }
            floor.push(latency);
        }
    }
    server.stop().await?;
    picked.clean_up().await?;

    let all: Vec<Duration> = winners.iter().chain(&losers).copied().collect();
    println!(
        "lock acquisition under {}-way contention, {} rounds, {backend}",
        args.agents, args.rounds
    );
    println!(
        "{:<10} {:>8} {:>10} {:>10} {:>10}",
        "outcome", "count", "p50 ms", "p99 ms", "max ms"
    );
    let rows = [
        ("200 won", winners),
        ("409 lost", losers),
        ("all", all),
        ("floor", floor),
    ];
    for (name, samples) in rows {
        let s = summarize(samples);
        println!(
            "{:<10} {:>8} {:>10} {:>10} {:>10}",
            name,
            s.count,
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        );
    }
    Ok(())
}

/// Delivers a customer message for a new customer and waits until the inbox shows it.
async fn start_conversation(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    run_id: u32,
    round: usize,
) -> anyhow::Result<String> {
    let wa_id = format!("49{run_id:08}{round:04}");
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": wa_id, "profile": {"name": "Bench"}}],
        "messages": [{"from": wa_id, "id": format!("wamid.bench.{wa_id}"), "timestamp": "1780000000",
                      "type": "text", "text": {"body": "hello"}}]}}]}]})
    .to_string();
    let status = client
        .post(format!("{base}/webhooks/whatsapp"))
        .header("x-hub-signature-256", sign(SECRET, body.as_bytes()))
        .body(body)
        .send()
        .await?
        .status();
    if status != 200 {
        bail!("webhook answered {status}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page: Value = client
            .get(format!("{base}/api/conversations?limit=200"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        let found = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["customer"]["wa_id"] == wa_id.as_str());
        if let Some(id) = found.and_then(|c| c["id"].as_str()) {
            return Ok(id.to_owned());
        }
        if Instant::now() > deadline {
            bail!("conversation never appeared");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
