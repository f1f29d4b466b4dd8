//! Floods leave memory flat (issue #25): every keyed table the server keeps for limits is
//! bounded, so 100,000 logins with distinct random emails from one address are refused with
//! 429 while the server process's resident memory grows by less than 10 MB.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// The process's resident memory, bytes (Linux).
fn resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// `count` logins with distinct emails, 32 at a time; answers how many got each status.
async fn logins(
    app: &TestApp,
    base: &str,
    from: usize,
    count: usize,
) -> std::collections::BTreeMap<u16, usize> {
    let url = format!("{base}/api/auth/login");
    let statuses: Vec<u16> = futures::stream::iter(from..from + count)
        .map(|i| {
            let (client, url) = (app.client.clone(), url.clone());
            async move {
                client
                    .post(url)
                    .json(&json!({"email": format!("{}-{i}@flood.example", uuid::Uuid::new_v4().simple()), "password": "guess"}))
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut counted = std::collections::BTreeMap::new();
    for status in statuses {
        *counted.entry(status).or_insert(0) += 1;
    }
    counted
}

async fn a_flood_of_distinct_logins_leaves_memory_flat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let port = crate::receiver::free_port();
    let mut child = app.serve_process(port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    app.wait_for_server(&base).await;
    // Warm up: connections, buffers and the allocator's arenas settle.
    let warm = logins(&app, &base, 0, 5_000).await;
    assert_eq!(warm.get(&0), None, "requests failed: {warm:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident(child.id());
    let flood = logins(&app, &base, 5_000, 100_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = resident(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(flood.get(&429).copied().unwrap_or(0) > 99_000, "{flood:?}");
    assert_eq!(flood.get(&0), None, "requests failed: {flood:?}");
    let grown = after.saturating_sub(before);
    eprintln!("100,000 logins with distinct emails: {flood:?}, RSS {before} -> {after} bytes");
    assert!(grown < 10 * 1024 * 1024, "RSS grew by {grown} bytes");
}

on_both_backends!(a_flood_of_distinct_logins_leaves_memory_flat);
