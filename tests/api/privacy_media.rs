//! Issue #26: an erased customer's file whose download is under way when the erasure lands is
//! not kept when the download ends.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use switchboard_store::with_pool;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

const CUSTOMER: &str = "15550002222";
const META_ID: &str = "8800000000001";

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    with_pool!(&app.database, pool => sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql))
}

async fn until(app: &TestApp, what: &str, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while scalar(app, sql).await == 0 {
        assert!(Instant::now() < deadline, "{what}: never");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_file_downloading_at_erasure_is_not_kept(backend: Backend) {
    let (simulator, app, _) = crate::outbound::wired_sending_with(backend, true, |_| {}).await;
    let report = crate::media::bytes(b"%PDF-1.7 Ana's medical report", 20_000, 3);
    let slow = json!({"id": META_ID, "download_delay_ms": 1_500});
    crate::media::add(&simulator, "application/pdf", &report, slow);
    let webhook = crate::media::webhook(&[(
        "wamid.REPORT",
        "document",
        json!({"id": META_ID, "mime_type": "application/pdf", "filename": "report.pdf"}),
    )]);
    assert_eq!(app.post_webhook(&webhook).await.status(), 200);
    until(&app, "the fetch began", "select count(*) from media_fetches where media_id = 'wamid.REPORT' and claimed_until is not null").await;
    let started = Instant::now();
    let erased = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            &format!("/api/customers/{CUSTOMER}"),
            Some(json!({"reason": "GDPR-17"})),
        )
        .await;
    assert_eq!(erased.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "the erasure must land during the download ({:?})",
        started.elapsed()
    );

    // The download ends; its outcome is settled.
    let deadline = Instant::now() + Duration::from_secs(20);
    while simulator.media_downloads(META_ID) == 0 {
        assert!(Instant::now() < deadline, "never downloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until(
        &app,
        "the fetch settled",
        "select cast(case when exists (select 1 from media_fetches
        where media_id = 'wamid.REPORT' and claimed_until is not null) then 0 else 1 end as bigint)",
    )
    .await;
    app.settle().await;

    let stored = "select count(*) from events where event_type = 'MessageMediaStored'";
    assert_eq!(scalar(&app, stored).await, 0, "recorded as kept");
    let given_up = "select count(*) from events where event_type = 'MessageMediaUnavailable'";
    assert_eq!(scalar(&app, given_up).await, 1);
    let hex = hex::encode(Sha256::digest(&report));
    let path = app
        .settings
        .media
        .dir
        .join(format!("sha256/{}/{hex}", &hex[..2]));
    assert!(
        !path.exists(),
        "the downloaded file was kept: {}",
        path.display()
    );
}

on_both_backends!(a_file_downloading_at_erasure_is_not_kept);
