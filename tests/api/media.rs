//! Customers' files: fetched from Meta (the simulator) as they arrive, checked, kept once, and
//! served to agents who may read the conversation, with ranges for audio and the name of
//! documents; Meta's failures retried, a corrupt file refused, an expired URL asked for again.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use switchboard::simulator::{MediaFile, Simulator};
use switchboard_store::with_pool;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::outbound::wired_sending_with;
use crate::s3::Moto;

const BUCKET: &str = "switchboard-media";

/// A server sending to the simulator, keeping files in a directory or (`s3`) in a bucket of a
/// moto server of its own (returned, to keep it running).
async fn wired(backend: Backend, s3: bool) -> (Simulator, TestApp, String, Option<Moto>) {
    wired_with_limit(backend, s3, 100 * 1024 * 1024).await
}

/// [`wired`], fetching files of at most `max_bytes`.
async fn wired_with_limit(
    backend: Backend,
    s3: bool,
    max_bytes: u64,
) -> (Simulator, TestApp, String, Option<Moto>) {
    let moto = match s3 {
        true => Some(Moto::start(BUCKET).await),
        false => None,
    };
    let bucket = moto.as_ref().map(|m| m.settings(BUCKET, "media"));
    let (simulator, app, conversation) = wired_sending_with(backend, true, move |s| {
        s.media.s3 = bucket;
        s.media.max_bytes = max_bytes;
    })
    .await;
    (simulator, app, conversation, moto)
}

const CUSTOMER: &str = "15550002222";

/// `len` bytes that start like a file of that kind and differ per `seed`.
pub(crate) fn bytes(magic: &[u8], len: usize, seed: u8) -> Vec<u8> {
    let mut data = magic.to_vec();
    data.extend((0..len - magic.len()).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    data
}

pub(crate) fn add(simulator: &Simulator, mime_type: &str, data: &[u8], faults: Value) -> String {
    let mut file = json!({"mime_type": mime_type,
        "data_base64": base64::engine::general_purpose::STANDARD.encode(data)});
    if let (Some(file), Some(faults)) = (file.as_object_mut(), faults.as_object()) {
        file.extend(faults.clone());
    }
    simulator.add_media(serde_json::from_value::<MediaFile>(file).expect("media file"))
}

/// One webhook with `messages` (each `(wamid, type, media object)`) from the customer.
pub(crate) fn webhook(messages: &[(&str, &str, Value)]) -> Vec<u8> {
    let messages: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, (wamid, kind, media))| {
            json!({"from": CUSTOMER, "id": wamid, "timestamp": (1_780_000_100 + i).to_string(),
                   "type": kind, *kind: media})
        })
        .collect();
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": CUSTOMER, "profile": {"name": "Ana"}}],
        "messages": messages}}]}]})
    .to_string()
    .into_bytes()
}

/// Waits while the file of message `id` is being fetched (at most `within`); the answer.
pub(crate) async fn until_settled(app: &TestApp, id: &str, within: Duration) -> reqwest::Response {
    let deadline = Instant::now() + within;
    loop {
        let response = app.get(&format!("/api/media/{id}")).await;
        if response.status() != 409 || Instant::now() >= deadline {
            return response;
        }
        let body: Value = response.json().await.expect("error");
        if body["error"]["code"] != "media_pending" {
            return app.get(&format!("/api/media/{id}")).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn events(app: &TestApp, event_type: &str, id: &str) -> i64 {
    with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from events where event_type = $1 and aggregate_id = $2")
        .bind(event_type).bind(id).fetch_one(pool).await.expect("count"))
}

async fn files_received_are_kept_and_served_in_scope(backend: Backend) {
    received_files(backend, false).await;
}

async fn files_received_are_kept_in_s3_and_served(backend: Backend) {
    received_files(backend, true).await;
}

async fn received_files(backend: Backend, s3: bool) {
    let (simulator, app, _conversation, moto) = wired(backend, s3).await;
    let photo = bytes(b"\xFF\xD8\xFF\xE0JFIF", 200_000, 1);
    let voice = bytes(b"OggS", 300_000, 2);
    let pdf = bytes(b"%PDF-1.7", 100_000, 3);
    let photo_id = add(&simulator, "image/jpeg", &photo, json!({}));
    let voice_id = add(&simulator, "audio/ogg; codecs=opus", &voice, json!({}));
    let pdf_id = add(&simulator, "application/pdf", &pdf, json!({}));
    let posted = Instant::now();
    let response = app
        .post_webhook(&webhook(&[
            ("wamid.PHOTO", "image", json!({"id": photo_id, "mime_type": "image/jpeg", "caption": "it broke"})),
            ("wamid.VOICE", "audio", json!({"id": voice_id, "mime_type": "audio/ogg; codecs=opus", "voice": true})),
            ("wamid.PDF", "document", json!({"id": pdf_id, "mime_type": "application/pdf", "filename": "Factura março.pdf"})),
        ]))
        .await;
    assert_eq!(response.status(), 200);
    app.settle().await;

    // Each is kept within a second of the webhook, the same bytes, with its headers.
    for (id, data, mime_type) in [
        ("wamid.PHOTO", &photo, "image/jpeg"),
        ("wamid.VOICE", &voice, "audio/ogg; codecs=opus"),
        ("wamid.PDF", &pdf, "application/pdf"),
    ] {
        let served = until_settled(&app, id, Duration::from_secs(5)).await;
        assert_eq!(served.status(), 200, "{id}");
        assert!(
            posted.elapsed() < Duration::from_secs(1),
            "{id} kept after {:?}",
            posted.elapsed()
        );
        let headers = served.headers().clone();
        assert_eq!(headers["content-type"], mime_type);
        assert_eq!(headers["content-length"], data.len().to_string().as_str());
        assert_eq!(
            headers["etag"],
            format!("\"{}\"", hex::encode(Sha256::digest(data))).as_str()
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["accept-ranges"], "bytes");
        assert_eq!(
            served.bytes().await.expect("bytes").as_ref(),
            data.as_slice(),
            "{id}"
        );
    }
    let document = app.get("/api/media/wamid.PDF").await;
    assert_eq!(
        document.headers()["content-disposition"],
        "attachment; filename=\"Factura mar_o.pdf\"; filename*=UTF-8''Factura%20mar%C3%A7o.pdf"
    );
    assert_eq!(
        app.get("/api/media/wamid.PHOTO").await.headers()["content-disposition"],
        "inline"
    );

    // A range of the voice note: 206 with that slice.
    let ranged = app
        .client
        .get(app.url("/api/media/wamid.VOICE"))
        .bearer_auth(&app.admin_token)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .expect("range");
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.headers()["content-range"],
        format!("bytes 1000-1999/{}", voice.len()).as_str()
    );
    assert_eq!(
        ranged.bytes().await.expect("slice").as_ref(),
        &voice[1000..2000]
    );
    let outside = app
        .client
        .get(app.url("/api/media/wamid.VOICE"))
        .bearer_auth(&app.admin_token)
        .header("range", "bytes=900000-")
        .send()
        .await
        .expect("range");
    assert_eq!(outside.status(), 416);

    // An agent who may read only their own conversations: 404, as for no file at all.
    app.create_agent(
        json!({"email": "out@example.com", "name": "Out", "role": "agent",
        "password": "a long enough password", "permissions": {"can_read_chats": "assigned"}}),
    )
    .await;
    let outsider = app.login("out@example.com", "a long enough password").await;
    assert_eq!(
        app.get_as(&outsider, "/api/media/wamid.PHOTO")
            .await
            .status(),
        404
    );
    assert_eq!(app.get("/api/media/wamid.NOSUCH").await.status(), 404);

    // A short-lived link for <img src>: the file without a bearer header, for this file only;
    // its token is no access token.
    assert_eq!(
        app.get_as(&outsider, "/api/media/wamid.PHOTO/link")
            .await
            .status(),
        404
    );
    let link = app.get_json("/api/media/wamid.PHOTO/link").await;
    let url = link["url"].as_str().expect("url");
    let by_link = app.client.get(app.url(url)).send().await.expect("link");
    assert_eq!(by_link.status(), 200);
    assert_eq!(
        by_link.bytes().await.expect("bytes").as_ref(),
        photo.as_slice()
    );
    let token = url.split("token=").nth(1).expect("token");
    let other = app
        .client
        .get(app.url(&format!("/api/media/wamid.VOICE/signed?token={token}")))
        .send()
        .await
        .expect("other");
    assert_eq!(other.status(), 404, "a link opens its own file only");
    assert_eq!(app.get_as(token, "/api/conversations").await.status(), 401);
    app.clock.advance_seconds(301);
    assert_eq!(
        app.client
            .get(app.url(url))
            .send()
            .await
            .expect("late")
            .status(),
        404
    );

    // The same photo sent again is kept once.
    let again = add(&simulator, "image/jpeg", &photo, json!({}));
    app.post_webhook(&webhook(&[(
        "wamid.PHOTO2",
        "image",
        json!({"id": again, "mime_type": "image/jpeg"}),
    )]))
    .await;
    app.settle().await;
    assert_eq!(
        until_settled(&app, "wamid.PHOTO2", Duration::from_secs(5))
            .await
            .status(),
        200
    );
    let hex = hex::encode(Sha256::digest(&photo));
    let copies = match &moto {
        Some(moto) => moto
            .keys(BUCKET, &format!("media/sha256/{}/", &hex[..2]))
            .await
            .len(),
        None => std::fs::read_dir(app.settings.media.dir.join("sha256").join(&hex[..2]))
            .expect("shard")
            .count(),
    };
    assert_eq!(copies, 1, "one copy of the photo");
}

async fn failures_are_retried_refused_or_refreshed(backend: Backend) {
    failures(backend, false).await;
}

async fn failures_are_retried_refused_or_refreshed_with_s3(backend: Backend) {
    failures(backend, true).await;
}

async fn failures(backend: Backend, s3: bool) {
    let (simulator, app, _conversation, _moto) = wired_with_limit(backend, s3, 1_000_000).await;
    let flaky = bytes(b"\x89PNG", 50_000, 4);
    let corrupt = bytes(b"\xFF\xD8", 50_000, 5);
    let stale = bytes(b"%PDF", 50_000, 6);
    let flaky_id = add(
        &simulator,
        "image/png",
        &flaky,
        json!({"failing_downloads": 2}),
    );
    let corrupt_id = add(
        &simulator,
        "image/jpeg",
        &corrupt,
        json!({"sha256": "c0ffee0000000000000000000000000000000000000000000000000000000000"}),
    );
    let stale_id = add(
        &simulator,
        "application/pdf",
        &stale,
        json!({"expired_urls": 1}),
    );
    let video = bytes(b"\x00\x00\x00\x18ftyp", 1_500_000, 9);
    let large_id = add(&simulator, "video/mp4", &video, json!({}));
    app.post_webhook(&webhook(&[
        (
            "wamid.FLAKY",
            "image",
            json!({"id": flaky_id, "mime_type": "image/png"}),
        ),
        (
            "wamid.CORRUPT",
            "image",
            json!({"id": corrupt_id, "mime_type": "image/jpeg"}),
        ),
        (
            "wamid.STALE",
            "document",
            json!({"id": stale_id, "mime_type": "application/pdf"}),
        ),
        (
            "wamid.LARGE",
            "video",
            json!({"id": large_id, "mime_type": "video/mp4"}),
        ),
    ]))
    .await;
    app.settle().await;

    // Meta answered 500 twice, then the file: kept once.
    let served = until_settled(&app, "wamid.FLAKY", Duration::from_secs(10)).await;
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.bytes().await.expect("bytes").as_ref(),
        flaky.as_slice()
    );
    assert_eq!(simulator.media_downloads(&flaky_id), 1);
    assert_eq!(events(&app, "MessageMediaStored", "wamid.FLAKY").await, 1);

    // A checksum that does not match: not kept, and the reason is recorded.
    let refused = until_settled(&app, "wamid.CORRUPT", Duration::from_secs(10)).await;
    assert_eq!(refused.status(), 409);
    let error: Value = refused.json().await.expect("error");
    assert_eq!(error["error"]["code"], "media_unavailable");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("checksum_mismatch")),
        "{error}"
    );
    assert_eq!(
        events(&app, "MessageMediaUnavailable", "wamid.CORRUPT").await,
        1
    );
    assert_eq!(events(&app, "MessageMediaStored", "wamid.CORRUPT").await, 0);

    // A URL that expired before the download: a fresh one through the media id.
    let served = until_settled(&app, "wamid.STALE", Duration::from_secs(10)).await;
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.bytes().await.expect("bytes").as_ref(),
        stale.as_slice()
    );

    // Over the configured limit (1 MB here): not fetched, and it says so.
    let large = until_settled(&app, "wamid.LARGE", Duration::from_secs(10)).await;
    assert_eq!(large.status(), 409);
    let error: Value = large.json().await.expect("error");
    let reason = error["error"]["message"].as_str().unwrap_or_default();
    assert!(reason.starts_with("too_large"), "{error}");
    assert_eq!(simulator.media_downloads(&large_id), 0);

    // What happened is in the log: a rebuild gives the same files, and verify agrees.
    let log = app.log();
    switchboard::replay::rebuild(&log, &[])
        .await
        .expect("rebuild");
    assert_eq!(app.get("/api/media/wamid.FLAKY").await.status(), 200);
    assert_eq!(app.get("/api/media/wamid.CORRUPT").await.status(), 409);
    assert!(switchboard::replay::verify::verify(&log)
        .await
        .expect("verify")
        .ok());
}

async fn upload(app: &TestApp, data: Vec<u8>, mime_type: &str, name: &str) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(data)
        .file_name(name.to_owned())
        .mime_str(mime_type)
        .expect("mime");
    app.client
        .post(app.url("/api/media"))
        .bearer_auth(&app.admin_token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload")
}

async fn an_upload_is_sent_through_meta_once(backend: Backend) {
    uploads(backend, false).await;
}

async fn an_upload_kept_in_s3_is_sent_through_meta_once(backend: Backend) {
    uploads(backend, true).await;
}

async fn uploads(backend: Backend, s3: bool) {
    let (simulator, app, conversation, _moto) = wired(backend, s3).await;
    let photo = bytes(b"\xFF\xD8\xFF\xE0JFIF", 3 * 1024 * 1024, 7);
    let uploaded = upload(&app, photo.clone(), "image/jpeg", "shelf.jpg").await;
    assert_eq!(uploaded.status(), 201);
    let uploaded: Value = uploaded.json().await.expect("upload");
    assert_eq!(uploaded["kind"], "image");
    assert_eq!(uploaded["size"], photo.len());
    let upload_id = uploaded["id"].as_str().expect("id").to_owned();
    // The uploader sees it; it is served like any file.
    app.settle().await;
    assert_eq!(
        until_settled(&app, &upload_id, Duration::from_secs(5))
            .await
            .status(),
        200
    );

    // Sent twice: uploaded to Meta once, and both sends name Meta's id for it.
    for n in 0..2 {
        let sent = app
            .send_as(
                &app.admin_token,
                reqwest::Method::POST,
                &format!("/api/conversations/{conversation}/messages"),
                Some(json!({"client_id": format!("photo-{n}"), "type": "image",
                    "upload_id": upload_id, "caption": "the shelf you asked about"})),
            )
            .await;
        assert_eq!(sent.status(), 202, "{:?}", sent.text().await);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let images = loop {
        let received: Value = app
            .client
            .get(format!("{}/control/received", simulator.url()))
            .send()
            .await
            .expect("received")
            .json()
            .await
            .expect("json");
        let images: Vec<Value> = received
            .as_array()
            .expect("list")
            .iter()
            .filter(|m| m["type"] == "image")
            .cloned()
            .collect();
        if images.len() == 2 || Instant::now() > deadline {
            break images;
        }
        // The second waits for the customer's pair slot (6 s on the test's clock).
        if images.len() == 1 {
            app.clock.advance_seconds(7);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(images.len(), 2, "both sends reached Meta");
    assert_eq!(simulator.media_uploads(), 1, "one upload for two sends");
    let meta_id = images[0]["image"]["id"].as_str().expect("Meta's media id");
    assert_eq!(images[1]["image"]["id"], meta_id);
    assert_eq!(images[0]["image"]["caption"], "the shelf you asked about");
    let at_meta: Value = app
        .client
        .get(format!("{}/v24.0/{meta_id}", simulator.url()))
        .bearer_auth("simulator-token")
        .send()
        .await
        .expect("media")
        .json()
        .await
        .expect("json");
    assert_eq!(at_meta["file_size"], photo.len().to_string());
    assert_eq!(at_meta["sha256"], hex::encode(Sha256::digest(&photo)));

    // Too large for an image, a type WhatsApp does not send, an unknown upload: 422.
    let huge = upload(
        &app,
        bytes(b"\xFF\xD8", 20 * 1024 * 1024, 8),
        "image/jpeg",
        "huge.jpg",
    )
    .await;
    assert_eq!(huge.status(), 422);
    let error: Value = huge.json().await.expect("error");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("5242880 bytes")),
        "{error}"
    );
    let program = upload(
        &app,
        b"MZ\x90\x00".to_vec(),
        "application/x-msdownload",
        "setup.exe",
    )
    .await;
    assert_eq!(program.status(), 422);
    let unknown = app
        .send_as(&app.admin_token, reqwest::Method::POST,
            &format!("/api/conversations/{conversation}/messages"),
            Some(json!({"client_id": "ghost", "type": "image", "upload_id": "00000000-0000-4000-8000-000000000000"})))
        .await;
    assert_eq!(unknown.status(), 422);
    let as_document = app
        .send_as(
            &app.admin_token,
            reqwest::Method::POST,
            &format!("/api/conversations/{conversation}/messages"),
            Some(json!({"client_id": "doc", "type": "document", "upload_id": upload_id})),
        )
        .await;
    assert_eq!(
        as_document.status(),
        422,
        "an image upload is sent as an image"
    );
}

async fn files_past_the_retention_period_are_deleted(backend: Backend) {
    let (simulator, app, _conversation) = wired_sending_with(backend, true, |s| {
        s.media.retention = Some(Duration::from_secs(30 * 86_400));
    })
    .await;
    let photo = bytes(b"\xFF\xD8\xFF\xE0", 10_000, 11);
    let id = add(&simulator, "image/jpeg", &photo, json!({}));
    app.post_webhook(&webhook(&[(
        "wamid.OLD",
        "image",
        json!({"id": id, "mime_type": "image/jpeg"}),
    )]))
    .await;
    app.settle().await;
    assert_eq!(
        until_settled(&app, "wamid.OLD", Duration::from_secs(5))
            .await
            .status(),
        200
    );

    let log = app.log();
    let retention = switchboard::media::retention::Retention::new(
        app.database.clone(),
        switchboard::cqrs::framework(&log),
        switchboard::media::MediaStore::open(&app.settings.media).expect("store"),
        std::sync::Arc::new(app.clock.clone()),
        Duration::from_secs(30 * 86_400),
    );
    assert_eq!(
        retention.run_once().await.expect("pass"),
        0,
        "not yet 30 days"
    );
    app.clock.advance_seconds(31 * 86_400);
    assert_eq!(retention.run_once().await.expect("pass"), 1);
    app.settle().await;
    // A month later: a new sign-in.
    let token = app.login(&app.admin.0, &app.admin.1).await;
    let gone = app.get_as(&token, "/api/media/wamid.OLD").await;
    assert_eq!(gone.status(), 409);
    let error: Value = gone.json().await.expect("error");
    assert_eq!(error["error"]["code"], "media_unavailable");
    assert_eq!(error["error"]["message"], "retention");
    assert_eq!(events(&app, "MessageMediaDeleted", "wamid.OLD").await, 1);
    let hex = hex::encode(Sha256::digest(&photo));
    assert!(!app
        .settings
        .media
        .dir
        .join("sha256")
        .join(&hex[..2])
        .join(&hex)
        .exists());
    // The message keeps its content.
    assert_eq!(
        app.get_as(&token, "/api/messages/wamid.OLD").await.status(),
        200
    );
}

on_both_backends!(
    files_past_the_retention_period_are_deleted,
    files_received_are_kept_and_served_in_scope,
    files_received_are_kept_in_s3_and_served,
    failures_are_retried_refused_or_refreshed,
    failures_are_retried_refused_or_refreshed_with_s3,
    an_upload_is_sent_through_meta_once,
    an_upload_kept_in_s3_is_sent_through_meta_once
);
