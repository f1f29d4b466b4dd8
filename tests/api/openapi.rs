//! The OpenAPI description covers the whole HTTP API: every route the router serves is in the
//! served description, and everything the description lists is served.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// `(METHOD, path)` of every `#[utoipa::path(method, path = "…")]` in the server's source, and
/// the number of raw axum routes (`.route(`), which would bypass the description.
fn declared_in_source() -> (BTreeSet<(String, String)>, Vec<String>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut declared = BTreeSet::new();
    let mut raw_routes = Vec::new();
    let mut folders = vec![root];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("src readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source readable");
            for (at, _) in text.match_indices("#[utoipa::path(") {
                let rest = &text[at + "#[utoipa::path(".len()..];
                let method = rest
                    .split(',')
                    .next()
                    .expect("method")
                    .trim()
                    .to_uppercase();
                let path_at = rest.find("path = \"").expect("path =") + "path = \"".len();
                let route = rest[path_at..].split('"').next().expect("path").to_owned();
                declared.insert((method, route));
            }
            // The simulator is a separate server with its own routes; the console's routes
            // serve its files (the page and its modules), which are not API operations.
            let name = path.to_string_lossy();
            if !name.contains("simulator") && !name.ends_with("http/console.rs") {
                for (line_number, line) in text.lines().enumerate() {
                    if line.contains(".route(") && !line.trim_start().starts_with("//") {
                        raw_routes.push(format!("{}:{}", path.display(), line_number + 1));
                    }
                }
            }
        }
    }
    (declared, raw_routes)
}

async fn the_description_lists_every_route_and_every_listed_route_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let spec: Value = response.json().await.expect("JSON");
    assert!(spec["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.")));
    let mut documented = BTreeSet::new();
    let mut operation_ids: Vec<String> = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                let responses = operation["responses"].as_object();
                assert!(
                    responses.is_some_and(|r| !r.is_empty()),
                    "{method} {path} documents its responses"
                );
                for (status, response) in responses.into_iter().flatten() {
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty())
                            || response.get("$ref").is_some(),
                        "{method} {path} {status} has a description"
                    );
                }
                let id = operation["operationId"].as_str().unwrap_or_default();
                assert!(
                    id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        && id.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{method} {path}: operationId {id:?} reads as a method name"
                );
                operation_ids.push(id.to_owned());
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let mut unique = operation_ids.clone();
    unique.sort();
    unique.dedup();
    operation_ids.sort();
    assert_eq!(operation_ids, unique, "operationIds are unique");
    assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));

    // Router ⊆ description: every handler is registered through the call that documents it,
    // and no route is added around it.
    let (declared, raw_routes) = declared_in_source();
    assert!(
        raw_routes.is_empty(),
        "routes added without documentation: {raw_routes:?}"
    );
    assert_eq!(
        declared, documented,
        "every documented handler is served, and only those"
    );
    for expected in [
        ("POST", "/webhooks/whatsapp"),
        ("POST", "/api/auth/login"),
        ("GET", "/api/conversations"),
        ("POST", "/api/conversations/{id}/lock"),
        ("POST", "/api/conversations/{id}/messages"),
        ("GET", "/api/webhooks/dead-letters"),
        ("GET", "/api/events/stream"),
        ("GET", "/api/health/ready"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/docs"),
    ] {
        assert!(
            documented.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} is documented"
        );
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());

    // Description ⊆ router: each listed operation reaches a handler (not the fallback, not 405).
    for (method, path) in &documented {
        if path == "/api/events/stream" {
            continue; // an endless stream; the SSE tests cover it
        }
        let concrete = path.replace("{id}", "probe").replace("{tag}", "probe");
        let response = app
            .send_as(
                &app.admin_token,
                Method::from_bytes(method.as_bytes()).expect("method"),
                &concrete,
                None,
            )
            .await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path} is served");
        assert!(
            !body.contains("route not found"),
            "{method} {path} is served, got {status}: {body}"
        );
    }

    let docs = app.get("/api/docs").await;
    assert_eq!(docs.status(), 200);
    let page = docs.text().await.expect("HTML");
    assert!(page.contains("/api/openapi.json"));
    assert!(
        !page.contains("https://"),
        "the docs page loads nothing from elsewhere (works offline)"
    );
}

on_both_backends!(the_description_lists_every_route_and_every_listed_route_is_served);

/// No two types share a schema name (utoipa would silently keep one of them). Proven able to
/// fail: with the lock answer named `LockView` again, as the conversation's lock is, it lists
/// `LockView`.
#[test]
fn every_schema_name_belongs_to_one_type() {
    assert_eq!(
        switchboard::http::schema_name_clashes(),
        Vec::<String>::new()
    );
}

/// The served description equals the committed snapshot (`tests/api/openapi.snapshot.json`),
/// so that every change to the contract is a reviewed diff; after an intended change, rerun
/// with `UPDATE_OPENAPI_SNAPSHOT=1` and commit the new snapshot, naming breaking changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_description_matches_its_committed_snapshot() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let served: Value = app
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("JSON");
    let pretty = serde_json::to_string_pretty(&served).expect("JSON") + "\n";
    let snapshot =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/openapi.snapshot.json");
    if std::env::var_os("UPDATE_OPENAPI_SNAPSHOT").is_some() {
        std::fs::write(&snapshot, &pretty).expect("snapshot written");
    }
    let committed = std::fs::read_to_string(&snapshot).unwrap_or_default();
    assert!(
        committed == pretty,
        "the API description changed: review the difference, then run with \
         UPDATE_OPENAPI_SNAPSHOT=1 and commit tests/api/openapi.snapshot.json"
    );
}
