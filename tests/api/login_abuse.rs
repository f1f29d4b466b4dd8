//! Attacks on the login (issue #15, findings 2 and 4): a flood of failed logins from many
//! addresses stays within bounded password checks while the server keeps answering, and wrong
//! passwords from many addresses slow the guessers without locking the owner out.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// A client whose connections come from `127.0.0.<last>` (all of 127/8 is loopback).
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .expect("client")
}

async fn login_from(app: &TestApp, last: u8, email: &str, password: &str) -> reqwest::Response {
    client_from(last)
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login sent")
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After")
}

async fn code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("JSON error");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn a_flood_of_failed_logins_is_bounded_and_health_keeps_answering(backend: Backend) {
    // Production throttling; a short queue so that the flood overflows it for sure.
    let app = TestApp::spawn_with(backend, |s| {
        s.auth.login_attempts_per_ip = 30;
        s.auth.login_attempts_per_account = 10;
        s.auth.login_queue = 4;
    })
    .await;
    let flooding = Arc::new(AtomicBool::new(true));
    let health = {
        let (client, url, flooding) = (
            app.client.clone(),
            app.url("/api/health"),
            Arc::clone(&flooding),
        );
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut answered = 0;
            while flooding.load(Ordering::Relaxed) {
                let started = Instant::now();
                let response =
                    tokio::time::timeout(Duration::from_secs(2), client.get(&url).send())
                        .await
                        .expect("/api/health answers within 2 s during the flood")
                        .expect("health sent");
                assert_eq!(response.status(), 200);
                slowest = slowest.max(started.elapsed());
                answered += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (answered, slowest)
        })
    };

    // 100 concurrent failed logins from 50 addresses (two each: below every throttle).
    let clients: Vec<reqwest::Client> = (10..60).map(client_from).collect();
    let url = app.url("/api/auth/login");
    let attempts = (0..100).map(|n| {
        clients[n % 50]
            .post(&url)
            .json(&json!({"email": format!("guess{n}@example.com"), "password": "wrong password!"}))
            .send()
    });
    let responses = join_all(attempts).await;
    flooding.store(false, Ordering::Relaxed);
    let (mut refused, mut overloaded) = (0, 0);
    for response in responses {
        let response = response.expect("login sent");
        match response.status().as_u16() {
            401 => refused += 1,
            503 => {
                assert!(retry_after(&response) >= 1);
                assert_eq!(code(response).await, "overloaded");
                overloaded += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused >= 6, "the admitted checks ran: {refused}");
    assert!(
        overloaded > 0,
        "beyond the lanes and the queue, 503 at once"
    );
    let (answered, slowest) = health.await.expect("health poller");
    assert!(
        answered > 0 && slowest < Duration::from_secs(1),
        "{answered} answers, slowest {slowest:?}"
    );

    // Afterwards the owner logs in as usual.
    let (email, password) = app.admin.clone();
    assert_eq!(login_from(&app, 1, &email, &password).await.status(), 200);
}

async fn wrong_passwords_from_many_addresses_do_not_lock_the_owner_out(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.auth.login_attempts_per_ip = 30;
        s.auth.login_attempts_per_account = 10;
    })
    .await;
    let (email, password) = app.admin.clone();
    // Ten wrong passwords for the account, each from another address.
    for last in 2..12 {
        let response = login_from(&app, last, &email, "wrong password!").await;
        assert_eq!(response.status(), 401, "attempt from 127.0.0.{last}");
    }
    // The owner, from an address without recent failures, gets in.
    assert_eq!(login_from(&app, 50, &email, &password).await.status(), 200);

    // One bad try every 3 s from fresh addresses, for a minute: still no lockout.
    for last in 100..120 {
        app.clock.advance_seconds(3);
        let response = login_from(&app, last, &email, "wrong password!").await;
        assert_eq!(response.status(), 401, "attempt from 127.0.0.{last}");
        assert_eq!(login_from(&app, 50, &email, &password).await.status(), 200);
    }

    // An address that failed on the account under attack is slowed, right password or not...
    let slowed = login_from(&app, 2, &email, &password).await;
    assert_eq!(slowed.status(), 429);
    let wait = retry_after(&slowed);
    assert!((1..=300).contains(&wait), "a bounded delay: {wait} s");
    assert_eq!(code(slowed).await, "rate_limited");
    // ... for its own delay only: the attack going on elsewhere does not extend it.
    app.clock
        .advance_seconds(i64::try_from(wait).expect("small") - 1);
    assert_eq!(
        login_from(&app, 120, &email, "wrong password!")
            .await
            .status(),
        401
    );
    app.clock.advance_seconds(1);
    assert_eq!(login_from(&app, 2, &email, &password).await.status(), 200);

    // One address failing on many accounts is slowed by growing delays.
    for n in 0..5 {
        let response =
            login_from(&app, 70, &format!("user{n}@example.com"), "wrong password!").await;
        assert_eq!(response.status(), 401);
    }
    let first = login_from(&app, 70, "user5@example.com", "wrong password!").await;
    assert_eq!(first.status(), 429);
    assert_eq!(retry_after(&first), 1);
    app.clock.advance_seconds(1);
    assert_eq!(
        login_from(&app, 70, "user5@example.com", "wrong password!")
            .await
            .status(),
        401
    );
    let second = login_from(&app, 70, "user6@example.com", "wrong password!").await;
    assert_eq!(second.status(), 429);
    assert_eq!(retry_after(&second), 2);
}

on_both_backends!(
    a_flood_of_failed_logins_is_bounded_and_health_keeps_answering,
    wrong_passwords_from_many_addresses_do_not_lock_the_owner_out,
);
