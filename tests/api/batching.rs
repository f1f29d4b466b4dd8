//! Batching projection writes is an optimisation, not a new semantics: the same log applied in
//! batches of thousands of events and one event at a time builds identical read models.

use reqwest::Method;
use serde_json::{json, Value};
use switchboard::replay::export;
use switchboard_projections::{all_projections, ProjectionRunner};
use switchboard_store::coalesce::coalesce;
use switchboard_store::{with_pool, Database, SqlValue, Statement};

use crate::helpers::{fixture, Backend, FreshDatabase, TestApp};
use crate::locks::agent;
use crate::on_both_backends;
use crate::replay::export_all;

/// A webhook with `count` text messages from `wa_id`.
fn texts(wa_id: &str, first: usize, count: usize) -> Vec<u8> {
    let messages: Vec<Value> = (first..first + count)
        .map(|i| {
            json!({"from": wa_id, "id": format!("wamid.batch-{wa_id}-{i}"),
            "timestamp": (1_780_000_000 + i).to_string(), "type": "text",
            "text": {"body": format!("message {i} from {wa_id} — it's \"quoted\" \\ and ünïcode")}})
        })
        .collect();
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000001", "phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": wa_id, "profile": {"name": format!("Customer {wa_id}")}}],
        "messages": messages}}]}]})
    .to_string()
    .into_bytes()
}

/// Every kind of event: Meta's fixtures and peers' samples, many customers' messages, and
/// agents assigning, tagging, locking, replying and resolving.
async fn busy_log(app: &TestApp) {
    let mut bodies: Vec<Vec<u8>> = crate::third_party::samples()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    for name in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/meta"))
        .expect("fixtures")
        .filter_map(Result::ok)
    {
        bodies.push(fixture(&format!(
            "meta/{}",
            name.file_name().to_string_lossy()
        )));
    }
    for customer in 0..70 {
        bodies.push(texts(&format!("49301{customer:05}"), 0, 12));
    }
    for body in &bodies {
        assert_eq!(app.post_webhook(body).await.status(), 200);
    }
    app.settle().await;
    let group: Value = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/groups",
            Some(json!({"name": "Batch"})),
        )
        .await
        .json()
        .await
        .expect("JSON");
    let (_, token) = agent(app, "batcher", "supervisor").await;
    app.approve_template("hello_world", "en_US").await;
    // Availability, a policy, and (for the customers writing last) auto-assignments.
    let online = json!({"availability": "online"});
    let path = "/api/agents/me/availability";
    assert!(app
        .send_as(&token, Method::PUT, path, Some(online))
        .await
        .status()
        .is_success());
    let saved = json!({"shortcode": "/hi", "title": "Hi", "text": "Hi {{customer.name}}"});
    let path = "/api/quick-replies";
    assert!(app
        .send_as(&token, Method::POST, path, Some(saved))
        .await
        .status()
        .is_success());
    let saved = json!({"shortcode": "/bye", "title": "Bye", "text": "Bye", "visibility": "everyone",
            "media": {"kind": "image", "link": "https://example.com/bye.png"}});
    let created: Value = app
        .send_as(&token, Method::POST, path, Some(saved))
        .await
        .json()
        .await
        .expect("JSON");
    let path = format!("/api/quick-replies/{}", created["id"].as_str().expect("id"));
    let change = json!({"text": "Goodbye"});
    assert!(app
        .send_as(&token, Method::PATCH, &path, Some(change))
        .await
        .status()
        .is_success());
    let policy = json!({"mode": "least_busy", "capacity": 1000});
    let path = "/api/assignment/policies/default";
    assert!(app
        .send_as(&token, Method::PUT, path, Some(policy))
        .await
        .status()
        .is_success());
    let conversations: Vec<String> = app
        .conversations()
        .await
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    for (i, conversation) in conversations.iter().enumerate() {
        let path = |p: &str| format!("/api/conversations/{conversation}{p}");
        let steps: Vec<(Method, String, Option<Value>)> = vec![
            (
                Method::PUT,
                path("/assignment"),
                Some(json!({"group_id": group["id"]})),
            ),
            (
                Method::POST,
                path("/tags"),
                Some(json!({"tag": format!("t{}", i % 3)})),
            ),
            (Method::POST, path("/lock"), None),
            (
                Method::POST,
                path("/notes"),
                Some(json!({"text": format!("note {i} — ünïcode"), "mentions": []})),
            ),
            (
                Method::POST,
                path("/messages"),
                Some(json!({"client_id": format!("c{i}"), "type": "template",
                "name": "hello_world", "language": "en_US"})),
            ),
            (Method::DELETE, path("/lock"), None),
            (Method::POST, path("/takeover"), None),
            (
                Method::PUT,
                path("/status"),
                Some(json!({"status": if i % 2 == 0 { "resolved" } else { "pending" }})),
            ),
        ];
        for (method, path, body) in steps {
            let status = app
                .send_as(&token, method.clone(), &path, body)
                .await
                .status();
            assert!(status.is_success(), "{method} {path}: {status}");
        }
    }
    for customer in 0..10 {
        assert_eq!(
            app.post_webhook(&texts(&format!("49301{customer:05}"), 12, 3))
                .await
                .status(),
            200
        );
    }
    template_lifecycles(app).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        app.settle().await;
        // Until the assigner has nothing left to assign.
        let waiting: i64 = with_pool!(&app.database, pool => sqlx::query_scalar(
            "select count(*) from conversations where status = 'open'
             and assigned_agent_id is null and owner_agent_id is null")
            .fetch_one(pool).await.expect("count"));
        if waiting == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} still waiting"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Templates synced, submitted, edited, reported on and deleted (through the command side:
/// this app has no Graph API to call).
async fn template_lifecycles(app: &TestApp) {
    use switchboard_domain::agent::{Permissions, Role};
    use switchboard_domain::ids::WabaId;
    use switchboard_domain::template::{ParameterFormat, TemplateCommand, TemplateDefinition};
    let frameworks = switchboard::cqrs::framework(&app.log());
    let admin = switchboard_domain::Actor {
        agent_id: switchboard_domain::AgentId::parse("00000000-0000-4000-8000-000000000077")
            .expect("uuid"),
        role: Role::Admin,
        groups: vec![],
        permissions: Permissions::for_role(Role::Admin),
        on_duty: true,
        bot: false,
    };
    let at = switchboard::clock::Clock::now(&app.clock);
    let metadata = switchboard::auth::accounts::actor_metadata(Some(admin.agent_id), at);
    for i in 0..30 {
        let definition = TemplateDefinition {
            waba_id: WabaId::new("110000000000001"),
            name: format!("batch_{i}"),
            language: if i % 2 == 0 { "es" } else { "en_US" }.to_owned(),
            category: "UTILITY".to_owned(),
            status: "APPROVED".to_owned(),
            reason: None,
            quality: Some("GREEN".to_owned()),
            parameter_format: ParameterFormat::Positional,
            components: vec![
                json!({"type": "BODY", "text": format!("Hola {{{{1}}}} — {i} 'q' \\")}),
            ],
        };
        let id = format!("77{i:05}");
        let command = if i % 3 == 0 {
            TemplateCommand::Submit {
                definition,
                by: admin.clone(),
                at,
            }
        } else {
            TemplateCommand::Sync { definition, at }
        };
        let mut commands = vec![command];
        if i % 4 == 0 {
            commands.push(TemplateCommand::Edit {
                components: Some(vec![json!({"type": "BODY", "text": "Edited {{1}}"})]),
                category: Some("MARKETING".to_owned()),
                by: admin.clone(),
                at,
            });
        }
        if i % 5 == 0 {
            commands.push(TemplateCommand::Delete {
                by: Some(admin.clone()),
                at,
            });
        }
        for command in commands {
            switchboard::cqrs::execute(&frameworks.templates, &id, command, &metadata)
                .await
                .expect("template command");
        }
    }
}

/// Every row of every read model, as text, in a stable order.
async fn read_models(database: &Database) -> Vec<(String, Vec<String>)> {
    let mut tables: Vec<&str> = all_projections()
        .iter()
        .flat_map(|p| p.tables().to_vec())
        .collect();
    tables.sort_unstable();
    let mut dump = Vec::new();
    for table in tables {
        let mut rows: Vec<String> = match database {
            Database::Postgres(pool) => {
                sqlx::query_scalar(&format!("select t::text from {table} t"))
                    .fetch_all(pool)
                    .await
                    .expect("rows")
            }
            Database::Sqlite(pool) => {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("select name from pragma_table_info('{table}')"))
                        .fetch_all(pool)
                        .await
                        .expect("columns");
                let row = columns
                    .iter()
                    .map(|c| format!("coalesce(quote({c}), 'NULL')"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                sqlx::query_scalar(&format!("select {row} from {table}"))
                    .fetch_all(pool)
                    .await
                    .expect("rows")
            }
        };
        rows.sort();
        dump.push((table.to_owned(), rows));
    }
    dump
}

/// The log imported into a fresh database and projected in batches of `size` events.
async fn projected(
    backend: Backend,
    exported: &[u8],
    size: u32,
) -> (Vec<(String, Vec<String>)>, FreshDatabase) {
    let fresh = FreshDatabase::new(backend).await;
    let (_, log, _) =
        switchboard::startup::connect_store(&fresh.config, &crate::helpers::test_master_keys())
            .await
            .expect("store");
    export::import(&log, exported).await.expect("import");
    let runner = ProjectionRunner::new(log.clone(), all_projections()).with_batch_size(size);
    let applied = runner.catch_up().await.expect("catch up");
    assert!(applied > 0);
    let models = read_models(log.database()).await;
    log.database().close().await;
    (models, fresh)
}

async fn thousands_of_events_in_one_batch_build_what_one_at_a_time_builds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    busy_log(&app).await;
    let source = app.log();
    let (events, exported) = export_all(&source).await;
    assert!(events > 2_000, "thousands of events: {events}");
    let types: i64 = with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(distinct event_type) from events").fetch_one(pool).await.expect("types"));
    assert!(types >= 20, "events of every kind: {types} types");

    let (one_by_one, _a) = projected(backend, &exported, 1).await;
    let (batched, _b) = projected(backend, &exported, 10_000).await;
    assert!(one_by_one.iter().map(|(_, rows)| rows.len()).sum::<usize>() > 1_000);
    for ((table, single), (_, many)) in one_by_one.iter().zip(&batched) {
        assert_eq!(single, many, "{table}: batched differs from one at a time");
    }
    assert_eq!(
        read_models(&app.database).await,
        batched,
        "the live read models are the same too"
    );
}

/// A small deterministic generator (xorshift), so a failure names its seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// Statements of every shape the folding distinguishes over `rows` rows (`keyed_only`: only
/// statements naming their row by key, and plain inserts), so that runs over different rows,
/// repeated rows, other key columns, ranges and subqueries all meet.
fn random_statements(dice: &mut Dice, count: usize, rows: u64, keyed_only: bool) -> Vec<Statement> {
    const TEXTS: [&str; 5] = ["a", "it's", "ünï \\ \"q\"", "b", "three"];
    fn text(dice: &mut Dice) -> String {
        TEXTS[dice.roll(5) as usize].to_owned()
    }
    (0..count)
        .map(|_| {
            let id = SqlValue::from(format!("r{}", dice.roll(rows)));
            let n = SqlValue::from(dice.roll(5) as i64 - 1);
            let kind = match dice.roll(10) {
                3 | 4 | 6 | 8 if keyed_only => 1,
                kind => kind,
            };
            match kind {
                0 => Statement::new(
                    "insert into cz_t (id, n, s) values ($1, $2, 'x')
                     on conflict (id) do update set n = (cz_t.n + excluded.n) % 1000",
                    vec![id, n],
                ),
                1 | 2 => Statement::new(
                    "update cz_t set n = (coalesce(n, $1) * 2 + 1) % 1000,
                     s = case when $1 = 3 then 'three' else s end where id = $2",
                    vec![n, id],
                ),
                3 => Statement::new(
                    "update cz_t set n = n + $1 where s = $2",
                    vec![n, text(dice).into()],
                ),
                4 => Statement::new("delete from cz_t where id = $1", vec![id]),
                5 => Statement::new(
                    "insert into cz_p (x, y) values ($1, $2)",
                    vec![text(dice).into(), SqlValue::Int(None)],
                ),
                6 => Statement::new(
                    "update cz_t set s = $1 where n > $2",
                    vec![text(dice).into(), n],
                ),
                7 => Statement::new(
                    "insert into cz_u (k, a) values ($1, $2)
                     on conflict (k) do update set a = cz_u.a || excluded.a",
                    vec![n, text(dice).into()],
                ),
                8 => Statement::new(
                    "insert into cz_p (x, y) select id, n from cz_t where id = $1",
                    vec![id],
                ),
                _ => Statement::new(
                    "update cz_t set s = $1 where id = $2",
                    vec![SqlValue::Text(None), id],
                ),
            }
        })
        .collect()
}

async fn dump_cz(database: &Database) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "select id || ':' || coalesce(cast(n as text), '-') || ':' || coalesce(s, '-') from cz_t order by id",
        "select x || ':' || coalesce(cast(y as text), '-') from cz_p order by x, y",
        "select cast(k as text) || ':' || a from cz_u order by k",
    ] {
        let found: Vec<String> =
            with_pool!(database, pool => sqlx::query_scalar(sql).fetch_all(pool).await.expect(sql));
        rows.extend(found);
        rows.push("--".to_owned());
    }
    rows
}

/// Folding a batch into multi-row statements gives what running it one statement at a time
/// gives, over random batches mixing every shape of statement.
async fn folded_batches_write_what_their_statements_write_one_by_one(backend: Backend) {
    let (one_fresh, folded_fresh) = (
        FreshDatabase::new(backend).await,
        FreshDatabase::new(backend).await,
    );
    let one = Database::connect(&one_fresh.config)
        .await
        .expect("database");
    let folded_db = Database::connect(&folded_fresh.config)
        .await
        .expect("database");
    let schema = [
        "create table cz_t (id text primary key, n bigint, s text)",
        "create table cz_p (x text not null, y bigint)",
        "create table cz_u (k bigint primary key, a text not null)",
    ];
    for database in [&one, &folded_db] {
        let statements: Vec<Statement> = schema
            .iter()
            .map(|sql| Statement::new(sql, Vec::new()))
            .collect();
        database
            .execute_atomically(&statements)
            .await
            .expect("schema");
    }
    let mut dice = Dice(0x5eed_f01d);
    for round in 0..30 {
        // Adversarial rounds (few rows, every shape) and everyday ones (many rows, by key).
        let everyday = round % 2 == 1;
        let batch = if everyday {
            random_statements(&mut dice, 400, 300, true)
        } else {
            random_statements(&mut dice, 400, 6, false)
        };
        one.execute_atomically(&batch).await.expect("one by one");
        let coalesced = coalesce(batch.clone());
        assert!(folded_db
            .execute_guarded(&[], &coalesced)
            .await
            .expect("folded"));
        if everyday {
            assert!(
                coalesced.len() * 4 < batch.len(),
                "round {round}: {} statements sent as {}",
                batch.len(),
                coalesced.len()
            );
        }
        assert_eq!(
            dump_cz(&one).await,
            dump_cz(&folded_db).await,
            "round {round} differs"
        );
    }
    one.close().await;
    folded_db.close().await;
}

/// The webhook processor keeps the conversations it wrote in memory; one it goes on holding is
/// snapshotted every `SNAPSHOT_EVERY` events, not again by every later batch (it was: the held
/// state never learnt its snapshot had been taken, so each batch rewrote it).
async fn a_conversation_the_processor_holds_is_snapshotted_every_so_many_events_not_every_batch(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let every = usize::try_from(switchboard_store::SNAPSHOT_EVERY).expect("small");
    for i in 0..every + 8 {
        assert_eq!(
            app.post_webhook(&texts("4930200000", i, 1)).await.status(),
            200
        );
        app.settle().await;
    }
    let (events, snapshot): (i64, i64) = with_pool!(&app.database, pool => sqlx::query_as(
        "select (select count(*) from events where aggregate_type = 'Conversation'),
                (select last_sequence from snapshots where aggregate_type = 'Conversation')")
        .fetch_one(pool).await.expect("counts"));
    assert!(
        events >= switchboard_store::SNAPSHOT_EVERY + 8,
        "{events} events"
    );
    assert!(
        (switchboard_store::SNAPSHOT_EVERY..switchboard_store::SNAPSHOT_EVERY + 2)
            .contains(&snapshot),
        "snapshot at sequence {snapshot} of {events}: taken once when due, not rewritten since"
    );
}

/// An append given two snapshots of one aggregate keeps the later one (one multi-row upsert may
/// not touch a row twice on PostgreSQL).
async fn an_append_with_two_snapshots_of_one_aggregate_keeps_the_later(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let event = |sequence: i64| switchboard_store::NewEvent {
        aggregate_type: "Template",
        aggregate_id: "twice".to_owned(),
        sequence,
        event_type: "TemplateNoted".to_owned(),
        event_version: "1.0".to_owned(),
        payload: json!({"Noted": {"n": sequence}}),
        metadata: json!({}),
    };
    let snapshot = |sequence: i64| switchboard_store::Snapshot {
        aggregate_type: "Template",
        aggregate_id: "twice".to_owned(),
        last_sequence: sequence,
        payload: json!({"n": sequence}),
    };
    app.log()
        .append(&[event(1), event(2)], &[snapshot(2), snapshot(1)], &[])
        .await
        .expect("appended");
    let kept: i64 = with_pool!(&app.database, pool => sqlx::query_scalar(
        "select last_sequence from snapshots where aggregate_id = 'twice'")
        .fetch_one(pool).await.expect("snapshot"));
    assert_eq!(kept, 2);
}

on_both_backends!(
    an_append_with_two_snapshots_of_one_aggregate_keeps_the_later,
    a_conversation_the_processor_holds_is_snapshotted_every_so_many_events_not_every_batch,
    thousands_of_events_in_one_batch_build_what_one_at_a_time_builds,
    folded_batches_write_what_their_statements_write_one_by_one
);
