//! Availability and capacity-aware auto-assignment that drains the backlog.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::{customers_write, ids_by_customer, NUMBERS};
use switchboard_store::with_pool;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "a long enough password";

async fn online_agent(app: &TestApp, name: &str) -> (String, String) {
    let email = format!("{name}@example.com");
    let id = app
        .create_agent(
            json!({"email": email, "name": name, "role": "agent", "password": PASSWORD,
            "permissions": {"can_read_chats": "assigned", "can_write_to_chats": "assigned"}}),
        )
        .await;
    let token = app.login(&email, PASSWORD).await;
    set_availability(app, &token, "me", "online").await;
    (id, token)
}

async fn set_availability(app: &TestApp, token: &str, who: &str, availability: &str) {
    let response = app
        .send_as(
            token,
            Method::PUT,
            &format!("/api/agents/{who}/availability"),
            Some(json!({"availability": availability})),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["availability"], availability);
}

async fn set_policy(app: &TestApp, pool: &str, mode: &str, capacity: u32) {
    let response = app
        .send_as(
            &app.admin_token,
            Method::PUT,
            &format!("/api/assignment/policies/{pool}"),
            Some(json!({"mode": mode, "capacity": capacity})),
        )
        .await;
    assert_eq!(response.status(), 200);
}

/// `count` customers writing one after the other (a second apart), so the oldest is clear.
async fn customers(app: &TestApp, from: usize, count: usize) -> Vec<String> {
    let wa_ids: Vec<String> = (from..from + count)
        .map(|i| format!("4931{i:06}"))
        .collect();
    for (k, wa_id) in wa_ids.iter().enumerate() {
        let row = [(wa_id.clone(), format!("C{k}"), "help".to_owned())];
        let at = 1_780_000_000 + i64::try_from(from + k).expect("small");
        customers_write(app, NUMBERS[0], &row, at).await;
    }
    wa_ids
}

/// Conversation id → assigned agent, as the admin sees them.
async fn assignments(app: &TestApp) -> HashMap<String, Option<String>> {
    super::all_pages(app, &app.admin_token, "/api/conversations", 200)
        .await
        .into_iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_owned(),
                c["assigned_agent_id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

async fn until<T>(what: &str, within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn capacity_caps_assignment_and_freed_capacity_drains_the_oldest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    set_policy(&app, "default", "round_robin", 2).await;
    let agents = [
        online_agent(&app, "ana").await,
        online_agent(&app, "bo").await,
        online_agent(&app, "cy").await,
    ];
    let wa_ids = customers(&app, 0, 10).await;
    app.settle().await;
    let ids = ids_by_customer(&app).await;
    let in_order: Vec<String> = wa_ids.iter().map(|w| ids[w].clone()).collect();

    // Six assigned, two each; the four who wrote last wait, visible as unassigned.
    let assigned = until("six assigned", Duration::from_secs(10), async || {
        let now = assignments(&app).await;
        (now.values().filter(|a| a.is_some()).count() == 6).then_some(now)
    })
    .await;
    for (id, _) in &agents {
        let theirs = assigned
            .values()
            .filter(|a| a.as_deref() == Some(id))
            .count();
        assert_eq!(theirs, 2, "{assigned:?}");
    }
    for (k, id) in in_order.iter().enumerate() {
        assert_eq!(assigned[id].is_some(), k < 6, "customer {k} (oldest first)");
    }
    let waiting: Value = app
        .get_json("/api/conversations?assignee=none&sort=waiting_longest")
        .await;
    let waiting = waiting["items"].as_array().expect("items");
    assert_eq!(waiting.len(), 4);
    assert_eq!(waiting[0]["id"], in_order[6]);
    assert!(waiting[0]["waiting_since"].is_string(), "{}", waiting[0]);
    // Nothing more is given out while everyone is full.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        assignments(&app)
            .await
            .values()
            .filter(|a| a.is_some())
            .count(),
        6
    );

    // Ana resolves one: the oldest waiting conversation goes to her within a second (passes
    // run every 300 ms; measured about 0.2 s).
    let (ana, ana_token) = &agents[0];
    let hers = in_order
        .iter()
        .find(|id| assigned[*id].as_deref() == Some(ana.as_str()))
        .expect("one of hers");
    let resolved = Instant::now();
    let path = format!("/api/conversations/{hers}/status");
    let response = app
        .send_as(
            ana_token,
            Method::PUT,
            &path,
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    until(
        "the oldest waiting assigned",
        Duration::from_secs(1),
        async || {
            let now = assignments(&app).await;
            (now[&in_order[6]].as_deref() == Some(ana.as_str())).then_some(())
        },
    )
    .await;
    println!("freed capacity used after {:?}", resolved.elapsed());
    assert!(assignments(&app).await[&in_order[7]].is_none());

    // Cy goes offline and resolves one of his: none of the waiting ones go to him.
    let (cy, cy_token) = &agents[2];
    set_availability(&app, cy_token, "me", "offline").await;
    let his = in_order
        .iter()
        .find(|id| assigned[*id].as_deref() == Some(cy.as_str()))
        .expect("one of his");
    let path = format!("/api/conversations/{his}/status");
    let response = app
        .send_as(
            cy_token,
            Method::PUT,
            &path,
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let now = assignments(&app).await;
    for id in &in_order[7..] {
        assert!(now[id].is_none(), "{id} went to {:?}", now[id]);
    }
    // Each decision is in the log with its policy and reason.
    let events: Value = app.get_json("/api/events?limit=500").await;
    let decided: Vec<&Value> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["type"] == "ConversationAutoAssigned")
        .collect();
    assert_eq!(decided.len(), 7);
    assert_eq!(decided[0]["data"]["AutoAssigned"]["policy"], "round_robin");
    assert!(decided[0]["data"]["AutoAssigned"]["reason"].is_string());
}

async fn an_agent_without_a_socket_goes_offline_after_the_grace_period(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.conversations.availability_grace = Duration::from_secs(30);
    })
    .await;
    let (id, _token) = online_agent(&app, "dee").await;
    let availability = async || {
        let agent: Value = app.get_json(&format!("/api/agents/{id}")).await;
        agent["availability"].as_str().map(str::to_owned)
    };
    app.settle().await;
    assert_eq!(availability().await.as_deref(), Some("online"));
    app.clock.advance_seconds(31);
    until("offline", Duration::from_secs(10), async || {
        (availability().await.as_deref() == Some("offline")).then_some(())
    })
    .await;
    let events: Value = app.get_json("/api/events?limit=500").await;
    let change = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .rfind(|e| e["type"] == "AgentAvailabilityChanged")
        .cloned()
        .expect("the change is an event");
    assert_eq!(
        change["data"]["AvailabilityChanged"]["reason"],
        "disconnected"
    );
    // Nobody may set another's availability without managing them.
    let (_, other) = online_agent(&app, "eli").await;
    let response = app
        .send_as(
            &other,
            Method::PUT,
            &format!("/api/agents/{id}/availability"),
            Some(json!({"availability": "online"})),
        )
        .await;
    assert_eq!(response.status(), 403);
}

async fn a_connected_agent_stays_online_until_their_last_socket_leaves(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.conversations.availability_grace = Duration::from_secs(2);
    })
    .await;
    let (id, token) = online_agent(&app, "fia").await;
    let availability = async || {
        let agent: Value = app.get_json(&format!("/api/agents/{id}")).await;
        agent["availability"].as_str().map(str::to_owned)
    };
    let socket = crate::socket_client::SocketClient::connect(&app.address, json!({"token": token}))
        .await
        .expect("connects");
    // The presence worker's report of this agent's sockets (every half second, 2 s grace).
    let reported = async |sockets: i64| {
        until("the presence report", Duration::from_secs(10), async || {
            let now: Option<i64> = with_pool!(&app.database, pool => sqlx::query_scalar(
                "select max(sockets) from agent_connections where agent_id = $1")
                .bind(&id).fetch_one(pool).await.expect("report"));
            (now == Some(sockets)).then_some(())
        })
        .await;
    };
    // Reported connected, then time passes: still online (reports keep coming).
    reported(1).await;
    app.clock.advance_seconds(10);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    app.settle().await;
    assert_eq!(availability().await.as_deref(), Some("online"));
    // The socket leaves; once the grace period has passed without one, offline.
    socket.close().await;
    reported(0).await;
    app.clock.advance_seconds(10);
    until("offline", Duration::from_secs(10), async || {
        (availability().await.as_deref() == Some("offline")).then_some(())
    })
    .await;
}

on_both_backends!(
    capacity_caps_assignment_and_freed_capacity_drains_the_oldest,
    an_agent_without_a_socket_goes_offline_after_the_grace_period,
    a_connected_agent_stays_online_until_their_last_socket_leaves,
);

/// Two server processes on one PostgreSQL assign every conversation exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_assign_every_conversation_exactly_once() {
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let first = TestApp::spawn(Backend::Postgres).await;
    let second = first.another_instance(|_| {}).await;
    set_policy(&first, "default", "least_busy", 1_000).await;
    for name in ["fay", "gus", "hal"] {
        online_agent(&first, name).await;
    }
    let wa_ids = customers(&first, 100, 40).await;
    // Half of them through the second instance.
    let more: Vec<String> = (200..240).map(|i| format!("4931{i:06}")).collect();
    for (k, wa_id) in more.iter().enumerate() {
        let row = [(wa_id.clone(), format!("D{k}"), "help".to_owned())];
        customers_write(&second, NUMBERS[0], &row, 1_780_000_500 + k as i64).await;
    }
    first.settle().await;
    let total = wa_ids.len() + more.len();
    until("all assigned", Duration::from_secs(20), async || {
        let now = assignments(&first).await;
        (now.values().filter(|a| a.is_some()).count() == total).then_some(())
    })
    .await;
    let per_conversation: Vec<(String, i64)> = switchboard_store::with_pool!(&first.database, pool =>
        sqlx::query_as("select aggregate_id, count(*) from events
            where event_type = 'ConversationAutoAssigned' group by aggregate_id")
            .fetch_all(pool).await.expect("counts"));
    assert_eq!(per_conversation.len(), total);
    assert!(
        per_conversation.iter().all(|(_, n)| *n == 1),
        "{per_conversation:?}"
    );
    // Least busy spreads them evenly.
    let now = assignments(&first).await;
    let mut loads: HashMap<String, usize> = HashMap::new();
    for agent in now.values().flatten() {
        *loads.entry(agent.clone()).or_default() += 1;
    }
    assert!(loads.values().all(|n| (26..=27).contains(n)), "{loads:?}");
}
