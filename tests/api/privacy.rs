//! Data-protection requests (issue #26): everything held about one customer, exported for an
//! agent with `can_export_data`, recorded with who asked.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use switchboard::simulator::Simulator;

use crate::helpers::{fixture, Backend, TestApp};
use crate::on_both_backends;

const CUSTOMER: &str = "15550002222";
const OTHER: &str = "15550009999";

/// How many exports the log records for `agent`.
async fn exports_recorded(app: &TestApp, agent: &str) -> i64 {
    switchboard_store::with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from events where event_type = 'AgentCustomerDataExported' and aggregate_id = $1")
        .bind(agent).fetch_one(pool).await.expect("count"))
}

/// The bytes of the customer's document.
fn scan() -> Vec<u8> {
    crate::media::bytes(b"%PDF-1.7 scan of Sheena's passport", 50_000, 9)
}

/// A customer with a history — text, an image, a private note, a reply that went sent → read —
/// and another customer beside them: the simulator, the app, the conversation, the reply.
async fn a_customer_with_history(backend: Backend) -> (Simulator, TestApp, String, String) {
    let (simulator, app, conversation) =
        crate::outbound::wired_sending_with(backend, true, |_| {}).await;
    // A document kept from Meta, its name and bytes theirs.
    let scan = scan();
    let scan_id = crate::media::add(&simulator, "application/pdf", &scan, json!({}));
    let document = crate::media::webhook(&[(
        "wamid.SCAN",
        "document",
        json!({"id": scan_id, "mime_type": "application/pdf", "filename": "passport-sheena.pdf"}),
    )]);
    assert_eq!(app.post_webhook(&document).await.status(), 200);
    app.settle().await;
    let kept = crate::media::until_settled(&app, "wamid.SCAN", Duration::from_secs(10)).await;
    assert_eq!(kept.status(), 200);
    // Text (the wiring's), an image, a private note, and a reply that went sent → read.
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_image.json"))
            .await
            .status(),
        200
    );
    let note = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/conversations/{conversation}/notes"),
            Some(json!({"text": "Wants the refund by Friday"})),
        )
        .await;
    assert_eq!(note.status(), 201);
    let reply = crate::outbound::send_text(&app, &conversation, "export-reply").await;
    crate::outbound::wait_for_status(&app, &reply, "read").await;
    // Another customer, who must not appear.
    let other = crate::integrations::texts("120000000000001", OTHER, 0, 2);
    assert_eq!(app.post_webhook(&other).await.status(), 200);
    app.settle().await;
    (simulator, app, conversation, reply)
}

async fn a_customer_export_holds_everything_the_api_shows_and_nothing_else(backend: Backend) {
    let (_simulator, app, conversation, reply) = a_customer_with_history(backend).await;

    let response = app.get(&format!("/api/customers/+{CUSTOMER}/export")).await;
    assert_eq!(response.status(), 200);
    let export: Value = response.json().await.expect("JSON");
    assert_eq!(export["customer"], CUSTOMER);
    let conversations = export["conversations"].as_array().expect("conversations");
    assert_eq!(conversations.len(), 1, "{export}");
    let exported = &conversations[0];
    assert_eq!(exported["id"], conversation.as_str());

    // The conversation as the API shows it, field for field.
    let detail = app
        .get_json(&format!("/api/conversations/{conversation}"))
        .await;
    for (key, value) in detail.as_object().expect("object") {
        if key != "sla" {
            assert_eq!(&exported[key], value, "conversation field {key}");
        }
    }
    // Its whole timeline as the API shows it: texts, the image, the note, the reply's statuses.
    let timeline = app
        .get_json(&format!(
            "/api/conversations/{conversation}/messages?limit=500"
        ))
        .await;
    assert_eq!(exported["messages"], timeline["items"]);
    let messages = exported["messages"].as_array().expect("messages");
    let kinds: Vec<&str> = messages.iter().filter_map(|m| m["type"].as_str()).collect();
    for kind in ["text", "image", "note"] {
        assert!(kinds.contains(&kind), "a {kind} in {kinds:?}");
    }
    let sent = messages
        .iter()
        .find(|m| m["id"] == reply.as_str())
        .expect("the reply");
    for status in ["sent", "delivered", "read"] {
        assert!(sent["statuses"][status].is_string(), "{status}: {sent}");
    }
    let files: Vec<String> = messages
        .iter()
        .filter(|m| m["type"] == "image" || m["type"] == "document")
        .map(|m| format!("/api/media/{}", m["id"].as_str().expect("id")))
        .collect();
    assert_eq!(files.len(), 2, "the image and the document");
    assert_eq!(exported["files"], json!(files));

    // The same as a zip, with the files themselves.
    let zipped = app
        .get(&format!("/api/customers/+{CUSTOMER}/export.zip"))
        .await;
    assert_eq!(zipped.status(), 200);
    assert_eq!(zipped.headers()["content-type"], "application/zip");
    let bytes = zipped.bytes().await.expect("body");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    names.sort();
    let scan_id = messages
        .iter()
        .find(|m| m["type"] == "document")
        .and_then(|m| m["id"].as_str())
        .expect("the document");
    let scan_name = format!("files/{scan_id}-passport-sheena.pdf");
    assert!(names.contains(&scan_name), "{names:?}");
    let mut kept = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name(&scan_name).expect("file"), &mut kept)
        .expect("read");
    assert_eq!(kept, scan());
    let mut json = Vec::new();
    std::io::Read::read_to_end(
        &mut archive.by_name("customer.json").expect("json"),
        &mut json,
    )
    .expect("read");
    let json: Value = serde_json::from_slice(&json).expect("JSON");
    assert_eq!(json["conversations"], export["conversations"]);
    let asked = app
        .get(&format!("/api/customers/+{CUSTOMER}/export?format=zip"))
        .await;
    assert_eq!(asked.headers()["content-type"], "application/zip");

    // Nothing of the other customer.
    let text = export.to_string();
    assert!(!text.contains(OTHER), "the other customer leaked: {text}");
    assert!(!text.contains("from 15550009999"));

    // Recorded, with who asked.
    let agents = app.get_json("/api/agents").await;
    let admin = agents["items"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(agents.as_array().into_iter().flatten())
        .find(|a| a["email"] == app.admin.0.as_str())
        .and_then(|a| a["id"].as_str())
        .expect("the admin")
        .to_owned();
    assert_eq!(export["exported_by"], admin.as_str());
    // Every download recorded.
    assert_eq!(exports_recorded(&app, &admin).await, 3);
}

async fn an_export_needs_can_export_data_and_a_known_customer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_text.json"))
            .await
            .status(),
        200
    );
    app.settle().await;
    let supervisor = app
        .create_agent(
            json!({"email": "sup@example.com", "name": "Sup", "role": "supervisor",
                             "password": "a long enough password"}),
        )
        .await;
    let token = app.login("sup@example.com", "a long enough password").await;
    let refused = app
        .get_as(&token, &format!("/api/customers/{CUSTOMER}/export"))
        .await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    assert_eq!(exports_recorded(&app, &supervisor).await, 0);

    let unknown = app.get(&format!("/api/customers/{OTHER}/export")).await;
    assert_eq!(unknown.status(), 404);

    // An API key, even one allowed to export the event log, does not take an export: it is
    // recorded on an agent's record, with who asked.
    let created = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/api-keys",
            Some(json!({"name": "Analytics", "permissions":
                {"can_read_chats": "all", "can_export_data": true}})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let key: Value = created.json().await.expect("key");
    let secret = key["secret"].as_str().expect("secret");
    let by_key = app
        .get_as(secret, &format!("/api/customers/{CUSTOMER}/export"))
        .await;
    assert_eq!(by_key.status(), 403);
}

/// Raw webhook bodies (the customer's data, already in the log once processed) are deleted
/// once processed longer ago than the retention; newer ones and dead letters stay, and what
/// the API shows is unchanged.
async fn processed_raw_webhooks_are_deleted_after_their_retention(backend: Backend) {
    // The app's own worker is off: the pass below is the test's.
    let app = TestApp::spawn_with(backend, |s| s.workers.raw_webhook_retention = None).await;
    let kept = |app: &TestApp| {
        let database = app.database.clone();
        async move {
            let rows: Vec<(String, Vec<u8>)> = switchboard_store::with_pool!(&database, pool =>
                sqlx::query_as("select status, body from raw_webhooks order by id")
                    .fetch_all(pool).await.expect("rows"));
            rows.into_iter()
                .map(|(status, body)| (status, String::from_utf8_lossy(&body).into_owned()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_text.json"))
            .await
            .status(),
        200
    );
    let unreadable = json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
        "changes": [{"field": "brand_new_field", "value": {"detail": 42}}]}]})
    .to_string();
    assert_eq!(app.post_webhook(unreadable.as_bytes()).await.status(), 200);
    app.settle().await;
    let before = app
        .get_json(&format!("/api/customers/{CUSTOMER}/export"))
        .await;

    // Eight days on, a newer webhook arrives; then a retention pass of seven days.
    app.clock.advance_seconds(8 * 86_400);
    let newer = crate::integrations::texts("120000000000001", CUSTOMER, 1, 1);
    assert_eq!(app.post_webhook(&newer).await.status(), 200);
    app.settle().await;
    let retention = switchboard::webhooks::retention::RawWebhookRetention::new(
        app.database.clone(),
        std::sync::Arc::new(app.clock.clone()),
        std::time::Duration::from_secs(7 * 86_400),
    );
    assert_eq!(retention.run_once().await.expect("pass"), 1);
    let rows = kept(&app).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0],
        ("failed".to_owned(), unreadable),
        "the dead letter stays"
    );
    assert_eq!(rows[1].0, "processed", "the newer webhook stays");
    assert!(
        rows.iter().all(|(_, body)| !body.contains("wamid.HBgL")),
        "the old body is gone"
    );
    let attempts: i64 = switchboard_store::with_pool!(&app.database, pool =>
        sqlx::query_scalar("select count(*) from webhook_attempts where webhook_id not in (select id from raw_webhooks)")
            .fetch_one(pool).await.expect("count"));
    assert_eq!(attempts, 0, "no attempts left without their webhook");

    // What the API shows of the old message is untouched.
    let after = app
        .get_json(&format!("/api/customers/{CUSTOMER}/export"))
        .await;
    let first = |export: &Value| export["conversations"][0]["messages"][0].clone();
    assert_eq!(first(&after), first(&before));
    assert_eq!(
        retention.run_once().await.expect("pass"),
        0,
        "nothing more is due"
    );
}

/// Polls (the embedded database's log is checkpointed once the read models applied the
/// erasure) until no file of the data and media directories holds any of `secrets`.
async fn files_come_clean(app: &TestApp, secrets: &[&str]) {
    let mut directories = vec![app.settings.media.dir.clone()];
    if let switchboard_store::DatabaseConfig::Sqlite { path, .. } = &app.settings.database {
        directories.extend(path.parent().map(std::path::Path::to_path_buf));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut found = Vec::new();
        for directory in &directories {
            for file in files_under(directory) {
                let bytes = std::fs::read(&file).unwrap_or_default();
                for secret in secrets {
                    if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                        found.push((file.display().to_string(), *secret));
                    }
                }
            }
        }
        if found.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left in files after erasure: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn files_under(directory: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Every table's rows as text, by table (PostgreSQL: `row::text`; SQLite: each column quoted).
async fn every_table(app: &TestApp) -> Vec<(String, String)> {
    use switchboard_store::Database;
    let mut all = Vec::new();
    match &app.database {
        Database::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "select tablename::text from pg_tables where schemaname = current_schema()",
            )
            .fetch_all(pool)
            .await
            .expect("tables");
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("select t::text from \"{table}\" t"))
                        .fetch_all(pool)
                        .await
                        .expect("rows");
                all.extend(rows.into_iter().map(|row| (table.clone(), row)));
            }
        }
        Database::Sqlite(pool) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "select name from sqlite_master where type = 'table' and sql not like '%VIRTUAL%'",
            )
            .fetch_all(pool)
            .await
            .expect("tables");
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("select name from pragma_table_info('{table}')"))
                        .fetch_all(pool)
                        .await
                        .expect("columns");
                let quoted: Vec<String> = columns
                    .iter()
                    .map(|c| format!("coalesce(cast(\"{c}\" as text), '')"))
                    .collect();
                let sql = format!(
                    "select cast({} as blob) from \"{table}\"",
                    quoted.join(" || '|' || ")
                );
                let rows: Vec<Vec<u8>> = sqlx::query_scalar(&sql)
                    .fetch_all(pool)
                    .await
                    .expect("rows");
                all.extend(
                    rows.into_iter()
                        .map(|row| (table.clone(), String::from_utf8_lossy(&row).into_owned())),
                );
            }
        }
    }
    all
}

async fn an_erased_customer_reads_erased_everywhere_and_others_are_untouched(backend: Backend) {
    let (_simulator, app, conversation, _) = a_customer_with_history(backend).await;
    let others_before = app
        .get_json(&format!("/api/customers/{OTHER}/export"))
        .await;

    // Only admins erase, and only with a reason.
    let supervisor_token = {
        app.create_agent(
            json!({"email": "sup@example.com", "name": "Sup", "role": "supervisor",
                                "password": "a long enough password"}),
        )
        .await;
        app.login("sup@example.com", "a long enough password").await
    };
    let path = format!("/api/customers/{CUSTOMER}");
    let refused = app
        .send_as(
            &supervisor_token,
            Method::DELETE,
            &path,
            Some(json!({"reason": "GDPR-17"})),
        )
        .await;
    assert_eq!(refused.status(), 403);
    let no_reason = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            &path,
            Some(json!({"reason": " "})),
        )
        .await;
    assert_eq!(no_reason.status(), 422);
    let erased = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            &path,
            Some(json!({"reason": "GDPR-17"})),
        )
        .await;
    assert_eq!(erased.status(), 200);
    let erased: Value = erased.json().await.expect("JSON");
    assert_eq!(erased["conversations"], json!([conversation]));
    app.settle().await;

    // The API shows `[erased]` in place of content, name and number.
    let detail = app
        .get_json(&format!("/api/conversations/{conversation}"))
        .await;
    assert_eq!(detail["customer"]["profile_name"], "[erased]", "{detail}");
    assert_eq!(detail["customer"]["wa_id"], "[erased]", "{detail}");
    let timeline = app
        .get_json(&format!(
            "/api/conversations/{conversation}/messages?limit=500"
        ))
        .await;
    let messages = timeline["items"].as_array().expect("items");
    assert!(messages.len() >= 4, "{timeline}");
    for message in messages {
        assert_eq!(message["content"], json!({"body": "[erased]"}), "{message}");
    }
    let found = app.get_json("/api/search?q=jacket").await;
    assert!(
        !found.to_string().contains(&conversation),
        "search: {found}"
    );

    // The file is gone.
    let file = app.get("/api/media/wamid.SCAN").await;
    assert_eq!(file.status(), 409);
    let file: Value = file.json().await.expect("JSON");
    assert_eq!(file["error"]["code"], "media_unavailable", "{file}");

    // Nothing of it is left in any table, the event log included (its key is destroyed), nor
    // in any file of the data directory and the media directory, and the other customer is
    // untouched.
    let secrets = [
        "jacket come in blue",
        "damaged box",
        "Sheena",
        CUSTOMER,
        "refund by Friday",
        "passport-sheena",
        "scan of Sheena",
    ];
    let leaks: Vec<(String, &str)> = every_table(&app)
        .await
        .into_iter()
        .flat_map(|(table, row)| {
            secrets
                .iter()
                .filter(|s| row.contains(**s))
                .map(|s| (table.clone(), *s))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(leaks.is_empty(), "left after erasure: {leaks:?}");
    files_come_clean(&app, &secrets).await;
    // What replays the log reads `[erased]`: the event stream from the start, the export.
    let events = app
        .get_json("/api/events?after=0&limit=1000")
        .await
        .to_string();
    for secret in secrets {
        assert!(!events.contains(secret), "{secret} replayed");
    }
    assert!(events.contains("[erased]"));
    // A socket resuming from the start of the log.
    let mut socket = crate::socket_client::SocketClient::connect(
        &app.address,
        json!({"token": app.admin_token, "last_position": 0}),
    )
    .await
    .expect("socket");
    let replayed: Vec<String> = socket
        .envelopes_until_quiet(Duration::from_millis(1500))
        .await
        .iter()
        .map(Value::to_string)
        .collect();
    socket.close().await;
    assert!(
        replayed.iter().any(|e| e.contains("[erased]")),
        "{replayed:?}"
    );
    for secret in secrets {
        assert!(
            !replayed.iter().any(|e| e.contains(secret)),
            "{secret} on a socket"
        );
    }
    let mut exported = Vec::new();
    switchboard::replay::export::export(&app.log(), &Default::default(), &mut exported)
        .await
        .expect("export");
    let exported = String::from_utf8(exported).expect("UTF-8");
    for secret in secrets {
        assert!(!exported.contains(secret), "{secret} exported");
    }
    let others_after = app
        .get_json(&format!("/api/customers/{OTHER}/export"))
        .await;
    assert_eq!(
        others_after["conversations"], others_before["conversations"],
        "another customer changed"
    );

    // A rebuild from the log gives the same: replay equals live.
    let log = app.log();
    switchboard::replay::rebuild(&log, &[])
        .await
        .expect("rebuild");
    let rebuilt = app
        .get_json(&format!(
            "/api/conversations/{conversation}/messages?limit=500"
        ))
        .await;
    assert_eq!(rebuilt, timeline);
    let verification = switchboard::replay::verify::verify(&log)
        .await
        .expect("verify");
    assert!(verification.ok(), "{verification:?}");
}

/// An erasure whose clean-up failed midway (here: a pending send left behind) is made again:
/// the customer, whose number the read models no longer hold, is still found, and what was
/// left is cleaned up; a customer never seen is still not found.
async fn an_erasure_made_again_cleans_up_what_a_failed_one_left(backend: Backend) {
    let (_simulator, app, conversation, _) = a_customer_with_history(backend).await;
    let path = format!("/api/customers/{CUSTOMER}");
    let erase = || {
        app.send_as(
            &app.admin_token,
            Method::DELETE,
            &path,
            Some(json!({"reason": "GDPR-18"})),
        )
    };
    assert_eq!(erase().await.status(), 200);
    app.settle().await;
    let left = "insert into outbound_queue (message_id, conversation_id, phone_number_id, wa_id,
        priority_rank, available_at, content) values ('wamid.left', $1, 'p', $2, 1, 4102444800000, 'left behind')";
    switchboard_store::with_pool!(&app.database, pool => sqlx::query(left)
        .bind(&conversation).bind(CUSTOMER).execute(pool).await.map(|_| ()).expect("insert"));

    let again = erase().await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(again["conversations"], json!([conversation]));
    let pending: i64 = switchboard_store::with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from outbound_queue where conversation_id = $1")
        .bind(&conversation).fetch_one(pool).await.expect("count"));
    assert_eq!(pending, 0, "the pending send left behind is deleted");
    let unknown = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            "/api/customers/15550001234",
            Some(json!({"reason": "GDPR-19"})),
        )
        .await;
    assert_eq!(unknown.status(), 404);
}

on_both_backends!(
    an_erasure_made_again_cleans_up_what_a_failed_one_left,
    an_erased_customer_reads_erased_everywhere_and_others_are_untouched,
    a_customer_export_holds_everything_the_api_shows_and_nothing_else,
    an_export_needs_can_export_data_and_a_known_customer,
    processed_raw_webhooks_are_deleted_after_their_retention,
);
