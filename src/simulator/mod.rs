//! A WhatsApp Cloud API simulator that speaks Meta's wire format, for tests, demos and the
//! sandbox: `POST /{version}/{phone_number_id}/messages` checks the bearer token and the body
//! as Meta does (Meta's error shape on bad input), answers with a wamid, then sends signed
//! status webhooks (sent, delivered, read) to the configured webhook URL. A small control API
//! shows what customers received.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::whatsapp::signature::sign;

mod media;
mod templates;

pub use media::MediaFile;

pub use templates::Review;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimulatorSettings {
    /// The access token senders must present.
    pub access_token: String,
    /// The app secret status webhooks are signed with.
    pub app_secret: String,
    /// Where status webhooks go (can be set later through the control API).
    pub webhook_url: Option<String>,
    /// Delay before each status webhook.
    pub status_delay: Duration,
}

/// A scripted failure: the next send is answered, after `delay_ms`, with this HTTP status and
/// Meta error code. A delay longer than the client's timeout is a timeout; status 200 with a
/// delay is a slow success.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Fault {
    /// HTTP status (e.g. 500, 400; 200 for a slow success).
    pub status: u16,
    /// Meta error code (e.g. 131047, 131000).
    pub code: i64,
    /// How long the simulator waits before answering.
    #[serde(default)]
    pub delay_ms: u64,
}

struct Shared {
    settings: SimulatorSettings,
    faults: Mutex<std::collections::VecDeque<Fault>>,
    webhook_url: Mutex<Option<String>>,
    received: Mutex<Vec<Value>>,
    read_receipts: Mutex<Vec<String>>,
    counter: AtomicU64,
    http: reqwest::Client,
    templates: Mutex<templates::Catalogue>,
    /// The `time` of the last template webhook (seconds).
    template_webhook_time: AtomicU64,
    /// Media files and the download URLs issued.
    media: Mutex<media::Library>,
    /// `http://host:port` of the simulator itself (download URLs point here).
    base_url: String,
}

/// A request carrying the configured access token; Meta answers 190 to any other.
struct Authorized;

impl axum::extract::FromRequestParts<Arc<Shared>> for Authorized {
    type Rejection = (StatusCode, Json<Value>);

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let expected = format!("Bearer {}", shared.settings.access_token);
        let given = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if given == Some(expected.as_str()) {
            Ok(Self)
        } else {
            Err(meta_error(
                StatusCode::UNAUTHORIZED,
                190,
                "Invalid OAuth access token",
            ))
        }
    }
}

fn has_webhook_url(shared: &Shared) -> bool {
    shared.webhook_url.lock().is_ok_and(|u| u.is_some())
}

/// Signs `body` and posts it to the webhook URL; answers the HTTP status.
async fn post_webhook(shared: &Shared, body: String) -> Result<u16, String> {
    let Some(url) = shared.webhook_url.lock().ok().and_then(|u| u.clone()) else {
        return Err("no webhook URL set".to_owned());
    };
    let signature = sign(&shared.settings.app_secret, body.as_bytes());
    shared
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// A running simulator.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
    address: SocketAddr,
}

fn meta_error(status: StatusCode, code: i64, message: &str) -> (StatusCode, Json<Value>) {
    let body = json!({"error": {
        "message": format!("(#{code}) {message}"),
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "SIMULATOR",
    }});
    (status, Json(body))
}

impl Simulator {
    /// Starts the simulator on `listen` (port 0: any free port).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start(listen: &str, settings: SimulatorSettings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(std::collections::VecDeque::new()),
            webhook_url: Mutex::new(settings.webhook_url.clone()),
            settings,
            received: Mutex::new(Vec::new()),
            read_receipts: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
            http: reqwest::Client::new(),
            templates: Mutex::new(templates::Catalogue::default()),
            template_webhook_time: AtomicU64::new(0),
            media: Mutex::new(media::Library::default()),
            base_url: format!("http://{address}"),
        });
        let router = Router::new()
            .route("/{version}/{phone_number_id}/messages", post(receive))
            .route("/control/received", get(received))
            .route("/control/webhook-url", post(set_webhook_url))
            .route("/control/customer-message", post(customer_message))
            .route("/control/faults", post(add_faults))
            .route(
                "/{version}/{waba_id}/message_templates",
                get(templates::list)
                    .post(templates::create)
                    .delete(templates::delete),
            )
            .route(
                "/{version}/{object_id}",
                post(templates::edit).get(media::location),
            )
            .route("/media-download", get(media::download))
            .route("/{version}/{phone_number_id}/media", post(media::upload))
            .route("/control/media", post(media::add))
            .route("/control/templates", post(templates::seed))
            .route("/control/template-review", post(templates::set_review))
            // Uploads reach Meta's largest file, 100 MB.
            .layer(axum::extract::DefaultBodyLimit::max(110 * 1024 * 1024))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "simulator stopped");
            }
        });
        Ok(Self { shared, address })
    }

    /// `http://host:port` of the simulator (the Graph base URL to use).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sets where status webhooks go.
    pub fn set_webhook_url(&self, url: impl Into<String>) {
        if let Ok(mut slot) = self.shared.webhook_url.lock() {
            *slot = Some(url.into());
        }
    }

    /// Adds a media file customers can send; answers its media id.
    ///
    /// # Panics
    /// When the file's base64 does not decode.
    pub fn add_media(&self, file: MediaFile) -> String {
        self.shared
            .media
            .lock()
            .expect("media library")
            .add(file)
            .expect("valid media file")
    }

    /// How many files the business uploaded (`POST /{phone-number-id}/media`).
    pub fn media_uploads(&self) -> u32 {
        self.shared
            .media
            .lock()
            .map_or(0, |library| library.uploads)
    }

    /// How many times the file `media_id` was downloaded whole.
    pub fn media_downloads(&self, media_id: &str) -> u32 {
        self.shared
            .media
            .lock()
            .map_or(0, |library| library.downloads(media_id))
    }

    /// Answers the next `times` sends with `fault`.
    pub fn fail_next(&self, fault: Fault, times: usize) {
        if let Ok(mut faults) = self.shared.faults.lock() {
            faults.extend(std::iter::repeat_n(fault, times));
        }
    }

    /// Adds templates (Meta's listing shape; `id` and `status` default to a fresh id and
    /// `APPROVED`) to `waba_id`'s catalogue; returns their ids.
    pub fn add_templates(&self, waba_id: &str, templates: Vec<Value>) -> Vec<String> {
        let mut catalogue = self.shared.templates.lock().expect("catalogue");
        templates
            .into_iter()
            .map(|t| catalogue.add(waba_id, t))
            .collect()
    }

    /// How the following template reviews end.
    pub fn set_template_review(&self, review: Review) {
        self.shared.templates.lock().expect("catalogue").review = review;
    }

    /// The catalogue as the simulator holds it (each template with its `waba_id`).
    pub fn templates(&self) -> Vec<Value> {
        self.shared
            .templates
            .lock()
            .expect("catalogue")
            .templates
            .clone()
    }

    /// The wamids marked read so far.
    pub fn read_receipts(&self) -> Vec<String> {
        self.shared
            .read_receipts
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Every message body received so far.
    pub fn received(&self) -> Vec<Value> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

async fn received(State(shared): State<Arc<Shared>>) -> Json<Vec<Value>> {
    Json(
        shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default(),
    )
}

/// `{"status": 500, "code": 131000, "times": 2}`: the next sends fail like that.
async fn add_faults(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> StatusCode {
    let fault: Result<Fault, _> = serde_json::from_value(body.clone());
    let times = body.get("times").and_then(Value::as_u64).unwrap_or(1);
    match (fault, shared.faults.lock()) {
        (Ok(fault), Ok(mut faults)) => {
            faults.extend(std::iter::repeat_n(
                fault,
                usize::try_from(times).unwrap_or(1),
            ));
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn set_webhook_url(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> StatusCode {
    match (
        body.get("url").and_then(Value::as_str),
        shared.webhook_url.lock(),
    ) {
        (Some(url), Ok(mut slot)) => {
            *slot = Some(url.to_owned());
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Injects a customer's text message: `{"from": "15550002222", "name": "Sheena", "text": "Hi",
/// "phone_number_id": "120000000000001"}` arrives at the webhook URL, signed, as Meta sends it.
async fn customer_message(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !has_webhook_url(&shared) {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "no webhook URL set"})),
        );
    }
    let text = |key: &str, default: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let from = text("from", "15550002222");
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let wamid = format!("wamid.SIMIN{n:018}");
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // With `media: {type, mime_type, data_base64, caption?, filename?}` the customer sends a
    // file (kept here, fetched by its id like Meta's); else `text`.
    let (kind, payload) = match body.get("media") {
        Some(media) => {
            let file = serde_json::from_value::<MediaFile>(media.clone())
                .map_err(|e| e.to_string())
                .and_then(|file| shared.media.lock().map_err(|e| e.to_string())?.add(file));
            let id = match file {
                Ok(id) => id,
                Err(error) => return (StatusCode::BAD_REQUEST, Json(json!({"error": error}))),
            };
            let kind = media["type"].as_str().unwrap_or("image").to_owned();
            let mut object = json!({"id": id, "mime_type": media["mime_type"]});
            for field in ["caption", "filename"] {
                if let Some(value) = media.get(field) {
                    object[field] = value.clone();
                }
            }
            (kind, object)
        }
        None => ("text".to_owned(), json!({"body": text("text", "Hello")})),
    };
    let mut message =
        json!({"from": from, "id": wamid, "timestamp": timestamp.to_string(), "type": kind});
    message[&kind] = payload;
    let webhook = json!({"object": "whatsapp_business_account", "entry": [{"id": "110000000000001", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550001111", "phone_number_id": text("phone_number_id", "120000000000001")},
                  "contacts": [{"profile": {"name": text("name", "Customer")}, "wa_id": from}],
                  "messages": [message]}}]}]})
    .to_string();
    match post_webhook(&shared, webhook).await {
        Ok(status) => (
            StatusCode::OK,
            Json(json!({"wamid": wamid, "webhook_status": status})),
        ),
        Err(error) => (StatusCode::BAD_GATEWAY, Json(json!({"error": error}))),
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    _: Authorized,
    body: Json<Value>,
) -> (StatusCode, Json<Value>) {
    let Json(body) = body;
    let fault = shared.faults.lock().ok().and_then(|mut f| f.pop_front());
    if let Some(fault) = fault {
        // A client that gives up first drops this future: nothing is recorded, as at Meta.
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        if fault.status != 200 {
            let status =
                StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return meta_error(status, fault.code, "Simulated failure");
        }
    }
    if body.get("status").and_then(Value::as_str) == Some("read") {
        let Some(wamid) = body.get("message_id").and_then(Value::as_str) else {
            return meta_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
        };
        if let Ok(mut receipts) = shared.read_receipts.lock() {
            receipts.push(wamid.to_owned());
        }
        return (StatusCode::OK, Json(json!({"success": true})));
    }
    let kind = body.get("type").and_then(Value::as_str).unwrap_or_default();
    let recipient = body
        .get("to")
        .or_else(|| body.get("recipient"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let valid = body.get("messaging_product").and_then(Value::as_str) == Some("whatsapp")
        && !kind.is_empty()
        && body.get(kind).is_some_and(Value::is_object);
    let Some(recipient) = recipient.filter(|_| valid) else {
        return meta_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    };
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let wamid = format!("wamid.SIM{n:020}");
    if let Ok(mut received) = shared.received.lock() {
        received.push(body.clone());
    }
    let callback = body.get("biz_opaque_callback_data").cloned();
    tokio::spawn(send_statuses(
        Arc::clone(&shared),
        phone_number_id,
        recipient.clone(),
        wamid.clone(),
        callback,
    ));
    (
        StatusCode::OK,
        Json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": recipient, "wa_id": recipient}],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        })),
    )
}

async fn send_statuses(
    shared: Arc<Shared>,
    phone_number_id: String,
    recipient: String,
    wamid: String,
    callback: Option<Value>,
) {
    for status in ["sent", "delivered", "read"] {
        tokio::time::sleep(shared.settings.status_delay).await;
        if !has_webhook_url(&shared) {
            return;
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut report = json!({"id": wamid, "status": status, "timestamp": timestamp.to_string(), "recipient_id": recipient});
        if let Some(callback) = &callback {
            report["biz_opaque_callback_data"] = callback.clone();
        }
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "110000000000001", "changes": [{
            "field": "messages",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
                      "statuses": [report]}}]}]})
        .to_string();
        if let Err(error) = post_webhook(&shared, body).await {
            tracing::warn!(%error, "simulator could not deliver a status webhook");
        }
    }
}
