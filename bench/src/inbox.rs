//! `inbox`: latency of filtered inbox views and of search over a large read model.
//!
//! The read models are filled directly with SQL (the projections are not what is measured
//! here): `--conversations` conversations on two numbers with mixed statuses, assignees,
//! groups, tags and unread counts, and `--messages` search documents drawn from a small Spanish
//! vocabulary (so common words match many documents and rare ones few). The queries are the
//! ones `GET /api/conversations` and `GET /api/search` run, called in-process (HTTP adds about
//! a third of a millisecond); the baseline is a one-row lookup by id in the same run.

use std::time::{Duration, Instant};

use switchboard::startup::connect_store;
use switchboard_projections::conversations::{self, Assignee, InboxFilter, Sort};
use switchboard_projections::{search, ReadScope};
use switchboard_store::{with_pool, Database};

use crate::server::BenchDatabase;
use crate::stats::{ms, summarize};

/// Options of `inbox`.
#[derive(clap::Args)]
pub struct InboxArgs {
    /// Conversations in the read model.
    #[arg(long, default_value_t = 100_000)]
    conversations: i64,
    /// Message documents in the search index.
    #[arg(long, default_value_t = 1_000_000)]
    messages: i64,
    /// Timed runs of each query.
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Keep the seeded schema (PostgreSQL) for `explain` afterwards.
    #[arg(long)]
    keep: bool,
}

/// Words of the synthetic messages (ASCII, so that their folded form is their lower case).
const WORDS: [&str; 24] = [
    "hola",
    "pedido",
    "reembolso",
    "cancelacion",
    "envio",
    "factura",
    "gracias",
    "ayuda",
    "producto",
    "roto",
    "cambio",
    "talla",
    "direccion",
    "pago",
    "tarjeta",
    "cuenta",
    "precio",
    "oferta",
    "entrega",
    "retraso",
    "garantia",
    "devolucion",
    "numero",
    "urgente",
];

/// A SQL expression picking a word of [`WORDS`] by `index` (0-based, below 24).
fn word(index: &str) -> String {
    let arms: Vec<String> = WORDS
        .iter()
        .enumerate()
        .map(|(k, w)| format!("when {k} then '{w}'"))
        .collect();
    format!("case {index} {} end", arms.join(" "))
}

/// Fills the read models; returns the id of one agent with conversations assigned.
async fn seed(database: &Database, args: &InboxArgs) -> anyhow::Result<String> {
    let count = |n: i64| {
        format!("with recursive n(i) as (select 1 union all select i + 1 from n where i < {n})")
    };
    let conversations = format!(
        "{} insert into conversations (id, phone_number_id, customer_wa_id, profile_name, status,
            started_at, last_activity_at, unread_count, last_customer_message_at, window_closes_at,
            assigned_agent_id, assigned_group_id, waiting_since, tags, version)
         select 'c' || i, case when i % 2 = 0 then 'p1' else 'p2' end, '49' || (1000000 + i),
            'Customer ' || i,
            case i % 4 when 0 then 'open' when 1 then 'pending' when 2 then 'resolved' else 'snoozed' end,
            1780000000000 + i * 1000, 1780000000000 + i * 1000 + (i * 7919) % 86400000, i % 3,
            1780000000000 + i * 1000, 1780086400000 + i * 1000,
            case when i % 5 = 0 then null else 'agent' || (i % 50) end,
            case when i % 3 = 0 then 'group' || (i % 5) else null end,
            case when i % 4 = 0 then 1780000000000 + i * 1000 else null end,
            '[]', 1
         from n",
        count(args.conversations)
    );
    let tags = format!(
        "{} insert into conversation_tags (conversation_id, tag)
         select 'c' || i, case when i % 10 = 0 then 'billing' else 'tag' || (i % 37) end from n",
        count(args.conversations)
    );
    let agents = "with recursive n(i) as (select 0 union all select i + 1 from n where i < 49)
         insert into agent_groups (agent_id, group_id) select 'agent' || i, 'group' || (i % 5) from n";
    let text = [
        word("(i * 7) % 24"),
        word("(i * 13) % 24"),
        word("(i * 17) % 24"),
        word("(i * 31) % 23"),
    ]
    .join(" || ' ' || ");
    let documents = format!(
        "{} insert into search_documents (id, seq, conversation_id, kind, body, folded, at)
         select 'm' || i, i, 'c' || (1 + i % {}), 'message', t, t, 1780000000000 + i
         from (select i, {text} || ' ref' || i as t from n) x",
        count(args.messages),
        args.conversations
    );
    let index = "insert into search_index (rowid, conversation_id, folded)
        select seq, conversation_id, folded from search_documents";
    for (what, sql) in [
        ("conversations", conversations.as_str()),
        ("tags", tags.as_str()),
        ("agent groups", agents),
        ("search documents", documents.as_str()),
        ("search index", index),
    ] {
        let started = Instant::now();
        with_pool!(database, pool => { sqlx::query(sql).execute(pool).await?; });
        eprintln!("seeded {what} in {:.1} s", started.elapsed().as_secs_f64());
    }
    if let Database::Postgres(pool) = database {
        sqlx::query("analyze").execute(pool).await?;
    }
    Ok("agent8".to_owned())
}

/// Times `runs` calls of `query`.
async fn timed<F, Fut>(runs: usize, mut query: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>>,
{
    // Warm-up.
    for _ in 0..5 {
        query().await?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        query().await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

pub async fn run(args: InboxArgs) -> anyhow::Result<()> {
    let picked = BenchDatabase::pick().await?;
    let backend = format!("{:?}", picked.config.backend());
    let (database, _, _) =
        connect_store(&picked.config, &crate::server::bench_master_keys()).await?;
    let agent = seed(&database, &args).await?;
    let now = 1_780_050_000_000;
    let all = ReadScope::All;
    let mine = ReadScope::Assigned(agent.clone());
    let db = &database;
    println!(
        "inbox views and search, {backend}, {} conversations, {} messages, {} runs each",
        args.conversations, args.messages, args.runs
    );
    println!(
        "{:<58} {:>9} {:>9} {:>9}",
        "query", "p50 ms", "p99 ms", "max ms"
    );
    let report = |name: &str, samples: Vec<Duration>| {
        let s = summarize(samples);
        println!(
            "{name:<58} {:>9} {:>9} {:>9}",
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        );
    };
    let baseline = timed(args.runs, || async {
        Ok(conversations::get(db, &all, "c4242")
            .await?
            .map_or(0, |_| 1))
    })
    .await?;
    report("baseline: one conversation by id", baseline);
    let views: Vec<(&str, ReadScope, InboxFilter, Sort)> = vec![
        (
            "all, newest activity first",
            all.clone(),
            InboxFilter::default(),
            Sort::LastActivity,
        ),
        (
            "status=open&assignee=none, waiting longest",
            all.clone(),
            InboxFilter {
                statuses: vec!["open".into()],
                assignee: Some(Assignee::Nobody),
                ..InboxFilter::default()
            },
            Sort::WaitingLongest,
        ),
        (
            "tag=billing&status=open,pending&unread=true",
            all.clone(),
            InboxFilter {
                statuses: vec!["open".into(), "pending".into()],
                tags: vec!["billing".into()],
                unread: Some(true),
                ..InboxFilter::default()
            },
            Sort::LastActivity,
        ),
        (
            "scope assigned: status=open, created",
            mine.clone(),
            InboxFilter {
                statuses: vec!["open".into()],
                ..InboxFilter::default()
            },
            Sort::Created,
        ),
        (
            "q=reembolso urgente&status=open",
            all.clone(),
            InboxFilter {
                statuses: vec!["open".into()],
                text: Some("reembolso urgente".into()),
                ..InboxFilter::default()
            },
            Sort::LastActivity,
        ),
    ];
    for (name, scope, filter, sort) in views {
        let samples = timed(args.runs, || async {
            let page =
                conversations::list(db, &scope, &agent, &filter, sort, now, None, Some(50)).await?;
            Ok(page.items.len())
        })
        .await?;
        report(&format!("list {name}"), samples);
    }
    for (name, scope, q) in [
        ("search common word (pedido)", all.clone(), "pedido"),
        (
            "search phrase (reembolso pedido)",
            all.clone(),
            "reembolso pedido",
        ),
        ("search rare (ref424242)", all.clone(), "ref424242"),
        (
            "search scope assigned (cancelacion)",
            mine.clone(),
            "cancelacion",
        ),
    ] {
        let samples = timed(args.runs, || async {
            Ok(search::search(db, &scope, q, None, Some(20))
                .await?
                .items
                .len())
        })
        .await?;
        report(name, samples);
    }
    let counted = timed(args.runs.min(50), || async {
        let counts = conversations::counts(db, &all, &agent, &InboxFilter::default(), now).await?;
        Ok(usize::try_from(counts.all).unwrap_or(0))
    })
    .await?;
    report("counts (all tabs, one query)", counted);
    database.close().await;
    if !args.keep {
        picked.clean_up().await?;
    }
    Ok(())
}
