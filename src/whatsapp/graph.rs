//! The Graph API client: sends an agent's message in Meta's wire format and reads the answer.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use switchboard_domain::message::{OutboundContent, OutboundMedia};
use switchboard_domain::{Customer, MetaError};

/// Where and how to reach Meta (or the simulator).
#[derive(Debug, Clone)]
pub struct GraphSettings {
    /// Base URL, `https://graph.facebook.com` by default.
    pub base_url: String,
    /// API version, e.g. `v24.0`.
    pub api_version: String,
    /// System-user access token.
    pub access_token: Option<SecretString>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for GraphSettings {
    fn default() -> Self {
        Self {
            base_url: "https://graph.facebook.com".to_owned(),
            api_version: "v24.0".to_owned(),
            access_token: None,
            timeout: Duration::from_secs(20),
        }
    }
}

/// What Meta answered.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// Accepted, with the wamid statuses will refer to.
    Accepted(String),
    /// Refused; `retryable` says whether trying again may help (5xx, rate limits).
    Refused {
        /// Meta's error.
        error: MetaError,
        /// Worth retrying.
        retryable: bool,
    },
    /// No answer (network error, timeout): the message may or may not have been sent.
    Unreachable(String),
}

/// Meta error codes worth retrying (throughput, pair rate, app/WABA limits, transient errors).
const RETRYABLE_CODES: &[i64] = &[1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057];

/// Whether a refusal with this HTTP status and Meta error code may pass if tried again (server
/// errors, rate limits, an expired token being replaced, Meta's transient codes).
pub fn is_retryable(status: u16, code: i64) -> bool {
    status >= 500 || status == 429 || status == 401 || RETRYABLE_CODES.contains(&code)
}

/// A Graph API client.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    settings: GraphSettings,
    contact: std::sync::Arc<Contact>,
}

/// When the Graph API last answered (any answer, refusals included) and when it last could not
/// be reached: wall-clock Unix milliseconds, 0 for never. Shared by the clones of a client.
#[derive(Debug, Default)]
pub struct Contact {
    answered_ms: std::sync::atomic::AtomicI64,
    unreachable_ms: std::sync::atomic::AtomicI64,
}

impl Contact {
    fn record(&self, answered: bool) {
        let now = crate::clock::wall_millis();
        let slot = if answered {
            &self.answered_ms
        } else {
            &self.unreachable_ms
        };
        slot.store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// (last answered, last unreachable), Unix milliseconds; 0: never.
    pub fn last(&self) -> (i64, i64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.answered_ms.load(Relaxed),
            self.unreachable_ms.load(Relaxed),
        )
    }
}

impl GraphClient {
    /// A client with the given settings.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn new(settings: GraphSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self {
            http,
            settings,
            contact: std::sync::Arc::default(),
        })
    }

    /// When Meta last answered and last could not be reached.
    pub fn contact(&self) -> &Contact {
        &self.contact
    }

    /// Sends `body` from `phone_number_id`.
    pub async fn send(&self, phone_number_id: &str, body: &Value) -> SendOutcome {
        let outcome = self.post(phone_number_id, body).await;
        self.contact
            .record(!matches!(outcome, SendOutcome::Unreachable(_)));
        outcome
    }

    async fn post(&self, phone_number_id: &str, body: &Value) -> SendOutcome {
        let url = format!(
            "{}/{}/{}/messages",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.api_version,
            phone_number_id
        );
        let mut request = self.http.post(url).json(body);
        if let Some(token) = &self.settings.access_token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return SendOutcome::Unreachable(error.to_string()),
        };
        let status = response.status();
        let answer: Value = match response.json().await {
            Ok(answer) => answer,
            Err(error) => {
                return SendOutcome::Unreachable(format!("unreadable answer ({status}): {error}"))
            }
        };
        if status.is_success() && answer.get("success").and_then(Value::as_bool) == Some(true) {
            return SendOutcome::Accepted(String::new());
        }
        if status.is_success() {
            return match answer.pointer("/messages/0/id").and_then(Value::as_str) {
                Some(wamid) => SendOutcome::Accepted(wamid.to_owned()),
                None => SendOutcome::Unreachable(format!("no message id in {answer}")),
            };
        }
        let error = meta_error(&answer);
        SendOutcome::Refused {
            retryable: status.is_server_error() || RETRYABLE_CODES.contains(&error.code),
            error,
        }
    }

    /// A Graph call other than a send: `method` on `/{version}/{path}` with `query` and a JSON
    /// `body`; Meta's answer, or its error.
    ///
    /// # Errors
    /// [`GraphError::Refused`] with Meta's error; [`GraphError::Unreachable`] without an
    /// answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, GraphError> {
        let result = self.request(method, path, query, body).await;
        self.contact
            .record(!matches!(result, Err(GraphError::Unreachable(_))));
        result
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, GraphError> {
        let url = format!(
            "{}/{}/{}",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.api_version,
            path
        );
        let mut request = self.http.request(method, url).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = &self.settings.access_token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| GraphError::Unreachable(e.to_string()))?;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| GraphError::Unreachable(format!("unreadable answer ({status}): {e}")))?;
        if status.is_success() {
            return Ok(answer);
        }
        Err(GraphError::Refused {
            status: status.as_u16(),
            error: meta_error(&answer),
            user_message: answer
                .pointer("/error/error_user_msg")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

impl GraphClient {
    /// Where Meta keeps the file `media_id` for the next few minutes (`GET /{media-id}`).
    ///
    /// # Errors
    /// As [`Self::call`]; an answer without a URL is [`GraphError::Unreachable`].
    pub async fn media_location(&self, media_id: &str) -> Result<MediaLocation, GraphError> {
        let answer = self.call(reqwest::Method::GET, media_id, &[], None).await?;
        let text = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
        let url =
            text("url").ok_or_else(|| GraphError::Unreachable(format!("no url in {answer}")))?;
        Ok(MediaLocation {
            url,
            mime_type: text("mime_type"),
            sha256: text("sha256"),
            // Meta sends the size as a string.
            file_size: answer.get("file_size").and_then(|v| match v {
                Value::String(s) => s.parse().ok(),
                other => other.as_u64(),
            }),
        })
    }

    /// The bytes at a media `url` (with the bearer token Meta requires), at most `max_bytes`:
    /// read in chunks, so a larger file is refused without being held.
    ///
    /// # Errors
    /// [`DownloadError`].
    pub async fn download(&self, url: &str, max_bytes: u64) -> Result<Vec<u8>, DownloadError> {
        let mut request = self.http.get(url);
        if let Some(token) = &self.settings.access_token {
            request = request.bearer_auth(token.expose_secret());
        }
        let mut response = request.send().await.map_err(|e| {
            self.contact.record(false);
            DownloadError::Unreachable(e.to_string())
        })?;
        self.contact.record(true);
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Status(status.as_u16()));
        }
        if response.content_length().is_some_and(|n| n > max_bytes) {
            return Err(DownloadError::TooLarge);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| DownloadError::Unreachable(e.to_string()))?
        {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(DownloadError::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

impl GraphClient {
    /// Uploads a file to send from `phone_number_id` (`POST /{phone-number-id}/media`,
    /// multipart: `messaging_product`, `type`, `file`); Meta's media id.
    ///
    /// # Errors
    /// [`GraphError::Refused`] with Meta's error; [`GraphError::Unreachable`] without an
    /// answer, or an answer without an id.
    pub async fn upload_media(
        &self,
        phone_number_id: &str,
        bytes: bytes::Bytes,
        mime_type: &str,
        filename: &str,
    ) -> Result<String, GraphError> {
        let url = format!(
            "{}/{}/{}/media",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.api_version,
            phone_number_id
        );
        let part = reqwest::multipart::Part::stream(bytes)
            .file_name(filename.to_owned())
            .mime_str(mime_type)
            .map_err(|e| GraphError::Unreachable(format!("media type {mime_type:?}: {e}")))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime_type.to_owned())
            .part("file", part);
        let mut request = self.http.post(url).multipart(form);
        if let Some(token) = &self.settings.access_token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(|e| {
            self.contact.record(false);
            GraphError::Unreachable(e.to_string())
        })?;
        self.contact.record(true);
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| GraphError::Unreachable(format!("unreadable answer ({status}): {e}")))?;
        if !status.is_success() {
            return Err(GraphError::Refused {
                status: status.as_u16(),
                error: meta_error(&answer),
                user_message: None,
            });
        }
        answer
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| GraphError::Unreachable(format!("no media id in {answer}")))
    }
}

/// Where a media file can be downloaded, and what Meta says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLocation {
    /// A short-lived download URL (bearer token required).
    pub url: String,
    /// Media type.
    pub mime_type: Option<String>,
    /// Meta's checksum (hex or base64).
    pub sha256: Option<String>,
    /// Bytes.
    pub file_size: Option<u64>,
}

/// A media download that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// No answer.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// An HTTP error status (403/404: the URL expired or the id is gone).
    #[error("HTTP status {0}")]
    Status(u16),
    /// Larger than allowed.
    #[error("larger than the media size limit")]
    TooLarge,
}

/// A Graph call that did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with an error.
    #[error("Meta refused ({status}): {error:?}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Meta's error.
        error: MetaError,
        /// `error_user_msg`, what Meta says to show the user.
        user_message: Option<String>,
    },
    /// No usable answer (network error, timeout, unreadable body).
    #[error("Meta unreachable: {0}")]
    Unreachable(String),
}

/// A failure of our own (no answer, unreadable message) in Meta's error shape, code 0.
pub fn local_error(title: &str, message: Option<String>) -> MetaError {
    MetaError {
        code: 0,
        title: Some(title.to_owned()),
        message,
        details: None,
        href: None,
    }
}

/// Meta's error object of an error answer.
fn meta_error(answer: &Value) -> MetaError {
    let error = answer.get("error").unwrap_or(&Value::Null);
    let text = |pointer: &str| {
        error
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    MetaError {
        code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
        title: text("/error_user_title"),
        message: text("/message"),
        details: text("/error_data/details"),
        href: None,
    }
}

impl GraphClient {
    /// Marks the customer's messages up to `wamid` read (blue ticks on their side).
    pub async fn mark_read(&self, phone_number_id: &str, wamid: &str) -> SendOutcome {
        let body = json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid});
        self.post(phone_number_id, &body).await
    }
}

fn media(kind: &str, media: &OutboundMedia) -> Value {
    let mut object = serde_json::Map::new();
    if let Some(id) = &media.id {
        object.insert("id".to_owned(), json!(id));
    }
    if let Some(link) = &media.link {
        object.insert("link".to_owned(), json!(link));
    }
    if let Some(caption) = &media.caption {
        object.insert("caption".to_owned(), json!(caption));
    }
    if kind == "document" {
        if let Some(filename) = &media.filename {
            object.insert("filename".to_owned(), json!(filename));
        }
    }
    Value::Object(object)
}

fn text_header(header: Option<&String>) -> Option<Value> {
    header.map(|text| json!({"type": "text", "text": text}))
}

/// The `/messages` request body for `content` to `customer`, tagged with our message id
/// (`biz_opaque_callback_data`, echoed in every status webhook).
pub fn request_body(
    customer: &Customer,
    content: &OutboundContent,
    reply_to: Option<&str>,
    message_id: &str,
) -> Value {
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "type": "",
        "biz_opaque_callback_data": message_id,
    });
    match (&customer.wa_id, &customer.user_id) {
        (Some(wa_id), _) => body["to"] = json!(wa_id),
        (None, Some(user_id)) => body["recipient"] = json!(user_id),
        (None, None) => {}
    }
    if let Some(reply_to) = reply_to {
        body["context"] = json!({"message_id": reply_to});
    }
    let (kind, payload) = match content {
        OutboundContent::Text { body, preview_url } => {
            ("text", json!({"body": body, "preview_url": preview_url}))
        }
        OutboundContent::Image(m) => ("image", media("image", m)),
        OutboundContent::Audio(m) => ("audio", media("audio", m)),
        OutboundContent::Video(m) => ("video", media("video", m)),
        OutboundContent::Document(m) => ("document", media("document", m)),
        OutboundContent::Sticker(m) => ("sticker", media("sticker", m)),
        OutboundContent::Location {
            latitude,
            longitude,
            name,
            address,
        } => (
            "location",
            json!({"latitude": latitude, "longitude": longitude, "name": name, "address": address}),
        ),
        OutboundContent::Reaction { message_id, emoji } => (
            "reaction",
            json!({"message_id": message_id, "emoji": emoji}),
        ),
        OutboundContent::Buttons {
            body: text,
            header,
            footer,
            buttons,
        } => {
            let mut interactive = json!({
                "type": "button",
                "body": {"text": text},
                "action": {"buttons": buttons.iter().map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}})).collect::<Vec<_>>()},
            });
            if let Some(header) = text_header(header.as_ref()) {
                interactive["header"] = header;
            }
            if let Some(footer) = footer {
                interactive["footer"] = json!({"text": footer});
            }
            ("interactive", interactive)
        }
        OutboundContent::List {
            body: text,
            button,
            header,
            footer,
            sections,
        } => {
            let mut interactive = json!({
                "type": "list",
                "body": {"text": text},
                "action": {"button": button, "sections": sections},
            });
            if let Some(header) = text_header(header.as_ref()) {
                interactive["header"] = header;
            }
            if let Some(footer) = footer {
                interactive["footer"] = json!({"text": footer});
            }
            ("interactive", interactive)
        }
        OutboundContent::Template {
            name,
            language,
            components,
            ..
        } => (
            "template",
            json!({"name": name, "language": {"code": language}, "components": components}),
        ),
    };
    body["type"] = json!(kind);
    body[kind] = payload;
    body
}
