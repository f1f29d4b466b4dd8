//! Outgrowing one machine (issue #25): a SQLite install with every fixture, agents, a lock and
//! messages sent through Meta moves to PostgreSQL by `export`, `import`, `rebuild --all` and
//! `verify`, and the API answers exactly as before.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use switchboard::replay::moving;

use crate::helpers::{fixture, Backend, FreshDatabase, TestApp};

/// What an agent sees, as answers of the API: everything the move must keep.
async fn answers(app: &TestApp, conversations: &[String]) -> Vec<(String, Value)> {
    let mut paths = vec![
        "/api/conversations".to_owned(),
        "/api/conversations?status=open".to_owned(),
        "/api/agents".to_owned(),
        "/api/groups".to_owned(),
        "/api/templates".to_owned(),
        "/api/account/notifications".to_owned(),
        "/api/search?q=order".to_owned(),
    ];
    for id in conversations {
        paths.push(format!("/api/conversations/{id}"));
        paths.push(format!("/api/conversations/{id}/messages"));
    }
    let mut answered = Vec::new();
    for path in paths {
        let response = app.get(&path).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        answered.push((path, json!({"status": status, "body": body})));
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_install_moves_to_postgresql_with_identical_answers() {
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let (_simulator, app, conversation) =
        crate::outbound::wired_sending(Backend::Sqlite, true).await;
    for name in [
        "inbound_image.json",
        "inbound_audio_voice.json",
        "inbound_document.json",
        "inbound_location.json",
        "inbound_reaction.json",
        "inbound_sticker.json",
        "inbound_interactive_button_reply.json",
        "inbound_interactive_list_reply.json",
        "inbound_button_quick_reply.json",
        "inbound_forwarded.json",
        "inbound_text_reply_context.json",
        "unsupported_type.json",
        "status_failed_131047.json",
        "template_status_update.json",
    ] {
        assert_eq!(
            app.post_webhook(&fixture(&format!("meta/{name}")))
                .await
                .status(),
            200,
            "{name}"
        );
    }
    // Peers' samples too (every one must be accepted).
    let peers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/third-party");
    let mut samples = 0;
    for dir in std::fs::read_dir(&peers)
        .expect("third-party fixtures")
        .flatten()
    {
        for file in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if file.path().extension().is_some_and(|e| e == "json") {
                let body = std::fs::read(file.path()).expect("fixture");
                assert_eq!(
                    app.post_webhook(&body).await.status(),
                    200,
                    "{:?}",
                    file.path()
                );
                samples += 1;
            }
        }
    }
    assert!(samples > 5, "{samples} peers' samples");
    app.create_agent(
        json!({"email": "ana@example.com", "name": "Ana", "role": "agent",
        "password": "a long enough password"}),
    )
    .await;
    app.create_agent(
        json!({"email": "sam@example.com", "name": "Sam", "role": "supervisor",
        "password": "a long enough password"}),
    )
    .await;
    let sent = crate::outbound::send_text(&app, &conversation, "move-1").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.settle().await;
        if app.get_json(&format!("/api/messages/{sent}")).await["status"] == "read" {
            break;
        }
        assert!(Instant::now() < deadline, "the reply was never read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let locked = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/conversations/{conversation}/lock"),
            None,
        )
        .await;
    assert_eq!(locked.status(), 200);
    app.settle().await;
    let conversations: Vec<String> = app
        .conversations()
        .await
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    assert!(conversations.len() >= 3, "{conversations:?}");
    let before = answers(&app, &conversations).await;
    let refused: Vec<(&String, &Value)> = before
        .iter()
        .filter(|(_, a)| a["status"] != 200)
        .map(|(path, a)| (path, &a["status"]))
        .collect();
    assert!(refused.is_empty(), "every path answers 200: {refused:?}");

    // The move: export → import into PostgreSQL, passwords and secrets → rebuild --all →
    // verify (`switchboard-replay move --to`).
    let source = app.log();
    let total = u64::try_from(source.count().await.expect("count")).expect("count");
    let fresh = FreshDatabase::new(Backend::Postgres).await;
    let (_, target, _) =
        switchboard::startup::connect_store(&fresh.config, &crate::helpers::test_master_keys())
            .await
            .expect("target");
    let moved = moving::move_store(&source, &target).await.expect("move");
    assert_eq!(moved.events, total);
    assert_eq!(moved.credentials, 3, "the admin and two agents");
    assert!(
        moved.verification.ok(),
        "verify after the move: {:?}",
        moved.verification
    );
    target.database().close().await;

    // The same API on PostgreSQL (a fresh login: sessions are not part of the log).
    let moved = TestApp::spawn_on(fresh, app.admin.clone()).await;
    moved.settle().await;
    let after = answers(&moved, &conversations).await;
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(was, is, "GET {path} answers differently after the move");
    }
}
