//! Views over 2,000 conversations: every filter and combination returns exactly the expected
//! set, pages have no duplicates or gaps while webhooks arrive, counts agree with the lists, and
//! an `assigned`-scope agent only ever counts their own.

use std::collections::{BTreeSet, HashMap};

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use super::{all_pages, customers_write, ids_by_customer, NUMBERS};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "a long enough password";
const CUSTOMERS: usize = 2_000;

/// What the test did to one conversation: the expectation every view is checked against.
#[derive(Debug, Clone)]
struct Expected {
    id: String,
    number: &'static str,
    status: &'static str,
    agent: Option<String>,
    group: Option<String>,
    tags: Vec<&'static str>,
    unread: bool,
    locked: bool,
}

struct World {
    app: TestApp,
    expected: Vec<Expected>,
    /// (id, token) of the agents: one with scope `all`, one with scope `assigned`.
    ana: (String, String),
    bo: (String, String),
    group: String,
}

fn wa_id(i: usize) -> String {
    format!("4930{i:07}")
}

async fn agent(app: &TestApp, name: &str, scope: &str, groups: Vec<String>) -> (String, String) {
    let email = format!("{name}@example.com");
    let id = app
        .create_agent(json!({"email": email, "name": name, "role": "agent", "password": PASSWORD,
            "groups": groups,
            "permissions": {"can_read_chats": scope, "can_write_to_chats": scope, "can_use_tags": true}}))
        .await;
    (id, app.login(&email, PASSWORD).await)
}

async fn ok(response: reqwest::Response) {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {body}");
}

/// 2,000 conversations on two numbers; every fifth one assigned, re-statused, tagged, read or
/// locked in a pattern.
async fn world(backend: Backend) -> World {
    let app = TestApp::spawn(backend).await;
    let response = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/groups",
            Some(json!({"name": "Billing"})),
        )
        .await;
    let group = response.json::<Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let ana = agent(&app, "ana", "all", vec![group.clone()]).await;
    let bo = agent(&app, "bo", "assigned", vec![]).await;
    for (n, number) in NUMBERS.iter().enumerate() {
        let customers: Vec<(String, String, String)> = (0..CUSTOMERS)
            .filter(|i| i % 2 == n)
            .map(|i| (wa_id(i), format!("Customer {i}"), format!("hello {i}")))
            .collect();
        customers_write(&app, number, &customers, 1_780_000_000).await;
    }
    app.settle().await;
    let ids = ids_by_customer(&app).await;
    assert_eq!(ids.len(), CUSTOMERS);
    let mut expected: Vec<Expected> = (0..CUSTOMERS)
        .map(|i| Expected {
            id: ids[&wa_id(i)].clone(),
            number: NUMBERS[i % 2],
            status: "open",
            agent: None,
            group: None,
            tags: vec![],
            unread: true,
            locked: false,
        })
        .collect();
    let admin = app.admin_token.clone();
    for chunk in (0..CUSTOMERS).step_by(5).collect::<Vec<_>>().chunks(25) {
        let changes = chunk.iter().map(|&i| {
            let e = expected[i].clone();
            let (app, admin, ana, bo, group) = (&app, &admin, &ana, &bo, &group);
            async move {
                let mut e = e;
                let path = |tail: &str| format!("/api/conversations/{}{tail}", e.id);
                match i % 3 {
                    0 => e.agent = Some(ana.0.clone()),
                    1 => e.agent = Some(bo.0.clone()),
                    _ => {}
                }
                if i % 2 == 0 {
                    e.group = Some(group.clone());
                }
                if e.agent.is_some() || e.group.is_some() {
                    let body = json!({"agent_id": e.agent, "group_id": e.group});
                    ok(app
                        .send_as(admin, Method::PUT, &path("/assignment"), Some(body))
                        .await)
                    .await;
                }
                if i % 10 == 0 {
                    e.tags.push("billing");
                }
                if i % 15 == 0 {
                    e.tags.push("vip");
                }
                for tag in &e.tags {
                    let body = json!({"tag": tag});
                    ok(app
                        .send_as(admin, Method::POST, &path("/tags"), Some(body))
                        .await)
                    .await;
                }
                if i % 7 == 0 {
                    ok(app.send_as(admin, Method::POST, &path("/read"), None).await).await;
                    e.unread = false;
                }
                if i % 25 == 0 {
                    ok(app.send_as(admin, Method::POST, &path("/lock"), None).await).await;
                    e.locked = true;
                }
                let status = ["open", "pending", "resolved", "snoozed"][(i / 5) % 4];
                if status != "open" {
                    let mut body = json!({"status": status});
                    if status == "snoozed" {
                        body["snoozed_until"] = json!("2027-01-01T00:00:00Z");
                    }
                    ok(app
                        .send_as(admin, Method::PUT, &path("/status"), Some(body))
                        .await)
                    .await;
                    e.status = status;
                }
                (i, e)
            }
        });
        for (i, e) in join_all(changes).await {
            expected[i] = e;
        }
    }
    app.settle().await;
    World {
        app,
        expected,
        ana,
        bo,
        group,
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Lists `query` as `token`, checks there are no duplicates and returns the ids.
async fn listed(app: &TestApp, token: &str, query: &str) -> BTreeSet<String> {
    let items = all_pages(app, token, &format!("/api/conversations?{query}"), 97).await;
    let ids = ids(&items);
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "{query}: duplicates across pages");
    set
}

fn expect(world: &World, keep: impl Fn(&Expected) -> bool) -> BTreeSet<String> {
    world
        .expected
        .iter()
        .filter(|e| keep(e))
        .map(|e| e.id.clone())
        .collect()
}

/// One world of 2,000 conversations for every check (building it is the slow part): the
/// checks that add conversations or move the clock come last.
async fn views_over_two_thousand_conversations(backend: Backend) {
    let w = world(backend).await;
    every_filter_and_combination_returns_exactly_the_matching_set(&w).await;
    counts_agree_with_the_lists_in_every_scope(&w).await;
    windows_close_with_time(&w).await;
    pages_have_no_duplicates_or_gaps_while_webhooks_arrive(&w).await;
}

async fn every_filter_and_combination_returns_exactly_the_matching_set(w: &World) {
    let (app, admin) = (&w.app, w.app.admin_token.clone());
    let ana = w.ana.0.clone();
    let group = w.group.clone();
    type Keep = Box<dyn Fn(&Expected) -> bool>;
    let cases: Vec<(String, Keep)> = vec![
        ("".into(), Box::new(|_| true)),
        ("status=open".into(), Box::new(|e| e.status == "open")),
        (
            "status=pending&status=resolved".into(),
            Box::new(|e| ["pending", "resolved"].contains(&e.status)),
        ),
        (
            "status=snoozed,open".into(),
            Box::new(|e| ["snoozed", "open"].contains(&e.status)),
        ),
        (format!("assignee={ana}"), {
            let a = ana.clone();
            Box::new(move |e| e.agent.as_deref() == Some(a.as_str()))
        }),
        ("assignee=me".into(), Box::new(|_| false)),
        ("assignee=none".into(), Box::new(|e| e.agent.is_none())),
        (format!("group={group}"), {
            let g = group.clone();
            Box::new(move |e| e.group.as_deref() == Some(g.as_str()))
        }),
        (
            "tag=billing".into(),
            Box::new(|e| e.tags.contains(&"billing")),
        ),
        (
            "tag=billing&tag=vip".into(),
            Box::new(|e| e.tags.contains(&"billing") && e.tags.contains(&"vip")),
        ),
        ("unread=true".into(), Box::new(|e| e.unread)),
        ("unread=false".into(), Box::new(|e| !e.unread)),
        // Every customer wrote at the clock's time: every window is open.
        ("window=open".into(), Box::new(|_| true)),
        ("window=closed".into(), Box::new(|_| false)),
        (
            format!("phone_number_id={}", NUMBERS[1]),
            Box::new(|e| e.number == NUMBERS[1]),
        ),
        ("locked=true".into(), Box::new(|e| e.locked)),
        ("locked=false".into(), Box::new(|e| !e.locked)),
        (
            format!(
                "status=open&assignee=none&phone_number_id={}&unread=true",
                NUMBERS[0]
            ),
            Box::new(|e| {
                e.status == "open" && e.agent.is_none() && e.number == NUMBERS[0] && e.unread
            }),
        ),
        (
            format!("tag=billing&group={group}&status=resolved,snoozed&sort=waiting_longest"),
            {
                let g = group.clone();
                Box::new(move |e| {
                    e.tags.contains(&"billing")
                        && e.group.as_deref() == Some(g.as_str())
                        && ["resolved", "snoozed"].contains(&e.status)
                })
            },
        ),
        (format!("assignee={ana}&locked=true&sort=created"), {
            let a = ana.clone();
            Box::new(move |e| e.agent.as_deref() == Some(a.as_str()) && e.locked)
        }),
        ("q=Customer%201234".into(), Box::new(|_| false)),
    ];
    let named: HashMap<String, String> = ids_by_customer(app).await;
    for (query, keep) in &cases {
        let mut want = expect(w, keep);
        if query.starts_with("q=") {
            want = [named[&wa_id(1234)].clone()].into();
        }
        for sort in [
            "",
            "&sort=waiting_longest",
            "&sort=created",
            "&sort=last_activity",
        ] {
            if query.contains("sort=") && !sort.is_empty() {
                continue;
            }
            let got = listed(app, &admin, &format!("{query}{sort}")).await;
            assert_eq!(got.len(), want.len(), "{query}{sort}");
            assert_eq!(got, want, "{query}{sort}");
        }
    }
    // Unknown parameters and bad values are refused with a typed error.
    for bad in [
        "status=lost",
        "sort=random",
        "unread=yes",
        "window=ajar",
        "colour=red",
        "limit=-1",
    ] {
        let response = app
            .get_as(&admin, &format!("/api/conversations?{bad}"))
            .await;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "bad_request", "{bad}");
    }
}

async fn counts_agree_with_the_lists_in_every_scope(w: &World) {
    let app = &w.app;
    for (who, token) in [
        ("admin", app.admin_token.clone()),
        ("ana", w.ana.1.clone()),
        ("bo", w.bo.1.clone()),
    ] {
        for filter in [
            "",
            "tag=billing",
            &format!("phone_number_id={}", NUMBERS[0]),
        ] {
            let counts: Value = app
                .get_as(&token, &format!("/api/conversations/counts?{filter}"))
                .await
                .json()
                .await
                .expect("JSON");
            let join = if filter.is_empty() { "" } else { "&" };
            let all = listed(app, &token, filter).await;
            assert_eq!(counts["all"], all.len(), "{who} {filter}: {counts}");
            let mine = listed(app, &token, &format!("{filter}{join}assignee=me")).await;
            assert_eq!(counts["mine"], mine.len(), "{who} {filter}: {counts}");
            let nobody = listed(app, &token, &format!("{filter}{join}assignee=none")).await;
            assert_eq!(
                counts["unassigned"],
                nobody.len(),
                "{who} {filter}: {counts}"
            );
            for status in ["open", "pending", "snoozed", "resolved"] {
                let listed = listed(app, &token, &format!("{filter}{join}status={status}")).await;
                let counted = counts["by_status"][status].as_u64().unwrap_or(0);
                assert_eq!(
                    counted,
                    listed.len() as u64,
                    "{who} {filter} {status}: {counts}"
                );
            }
        }
    }
    // Bo reads only what is assigned to him: his counts and lists cover exactly that.
    let bo_id = w.bo.0.clone();
    let his = expect(w, |e| e.agent.as_deref() == Some(bo_id.as_str()));
    assert!(!his.is_empty());
    assert_eq!(listed(app, &w.bo.1, "").await, his);
    assert_eq!(listed(app, &w.bo.1, "assignee=none").await.len(), 0);
    let counts: Value = app
        .get_as(&w.bo.1, "/api/conversations/counts")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(counts["all"], his.len());
    assert_eq!(counts["mine"], his.len());
    assert_eq!(counts["unassigned"], 0);
    // Ana reads everything: "mine" is what is assigned to her.
    let ana_id = w.ana.0.clone();
    let hers = expect(w, |e| e.agent.as_deref() == Some(ana_id.as_str()));
    assert_eq!(listed(app, &w.ana.1, "assignee=me").await, hers);
    let counts: Value = app
        .get_as(&w.ana.1, "/api/conversations/counts")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(counts["mine"], hers.len());
    // A cursor of one sort is refused by another.
    let page: Value = app
        .get_as(&w.ana.1, "/api/conversations?limit=5&sort=created")
        .await
        .json()
        .await
        .expect("JSON");
    let cursor = super::urlencode(page["next_cursor"].as_str().expect("cursor"));
    let other = app
        .get_as(
            &w.ana.1,
            &format!("/api/conversations?sort=waiting_longest&cursor={cursor}"),
        )
        .await;
    assert_eq!(other.status(), 400);
}

/// A day later every window has closed.
async fn windows_close_with_time(w: &World) {
    let (app, admin) = (&w.app, &w.app.admin_token);
    app.clock
        .set(crate::helpers::fixture_epoch().plus_seconds(24 * 3600 + 1));
    assert_eq!(listed(app, admin, "window=closed").await.len(), CUSTOMERS);
    assert!(listed(app, admin, "window=open").await.is_empty());
}

async fn pages_have_no_duplicates_or_gaps_while_webhooks_arrive(w: &World) {
    let app = &w.app;
    let token = app.admin_token.clone();
    for (query, keep) in [
        ("sort=created", None),
        ("status=open&sort=waiting_longest", Some("open")),
        ("status=open", Some("open")),
    ] {
        let want = expect(w, |e| keep.is_none_or(|s| e.status == s));
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut round = 0;
        loop {
            // New customers write between every two pages.
            let newcomers: Vec<(String, String, String)> = (0..3)
                .map(|k| {
                    let i = 100_000 + round * 3 + k + query.len() * 1_000;
                    (wa_id(i), format!("New {i}"), "hi".to_owned())
                })
                .collect();
            customers_write(app, NUMBERS[0], &newcomers, 1_780_000_100).await;
            round += 1;
            let mut url = format!("/api/conversations?{query}&limit=150");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={}", super::urlencode(c)));
            }
            let page: Value = app.get_as(&token, &url).await.json().await.expect("JSON");
            seen.extend(ids(page["items"].as_array().expect("items")));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{query}: a conversation came twice"
        );
        let missing: Vec<&String> = want.difference(&unique).collect();
        assert!(missing.is_empty(), "{query}: {} missing", missing.len());
    }
}

on_both_backends!(views_over_two_thousand_conversations);
