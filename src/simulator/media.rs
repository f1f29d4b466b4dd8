//! Media in the simulator, in Meta's wire format (REFERENCE §13): `GET /{media-id}` answers a
//! download URL with the type, checksum and size (a string, as Meta sends it); the URL needs
//! the bearer token and expires. Tests add files through `POST /control/media` (or
//! [`super::Simulator::add_media`]) and script faults: downloads answered 500 a number of times,
//! URLs issued already expired, a wrong checksum, slow downloads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{meta_error, Authorized, Shared};

/// How long a download URL lives (Meta: about five minutes).
const URL_LIFETIME: Duration = Duration::from_secs(300);

/// A file the simulator holds, and its scripted faults.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MediaFile {
    /// Media id (default: a fresh one).
    #[serde(default)]
    pub id: Option<String>,
    /// Media type.
    pub mime_type: String,
    /// The bytes, base64.
    pub data_base64: String,
    /// The checksum to announce instead of the real one (a corrupt file).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Downloads answered 500 before one succeeds.
    #[serde(default)]
    pub failing_downloads: u32,
    /// URLs issued already expired (their download answers 404).
    #[serde(default)]
    pub expired_urls: u32,
    /// Milliseconds each download takes before its bytes come (a slow network).
    #[serde(default)]
    pub download_delay_ms: u64,
}

/// Every file, and the URLs issued.
#[derive(Debug, Default)]
pub(super) struct Library {
    files: HashMap<String, (MediaFile, Vec<u8>)>,
    /// URL token → (media id, expires).
    urls: HashMap<String, (String, Instant)>,
    issued: u64,
    /// Successful downloads per media id.
    downloads: HashMap<String, u32>,
    /// Files uploaded by the business.
    pub(super) uploads: u32,
}

impl Library {
    /// Adds `file`; answers its id.
    pub(super) fn add(&mut self, mut file: MediaFile) -> Result<String, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.data_base64)
            .map_err(|e| format!("data_base64: {e}"))?;
        self.issued += 1;
        let id = file
            .id
            .clone()
            .unwrap_or_else(|| format!("{}", 1_700_000_000_000_000u64 + self.issued));
        file.id = Some(id.clone());
        self.files.insert(id.clone(), (file, bytes));
        Ok(id)
    }

    /// How many times `id` was downloaded whole.
    pub(super) fn downloads(&self, id: &str) -> u32 {
        self.downloads.get(id).copied().unwrap_or(0)
    }
}

/// `POST /control/media`: adds a file; answers `{id}`.
pub(super) async fn add(
    State(shared): State<Arc<Shared>>,
    Json(file): Json<MediaFile>,
) -> (StatusCode, Json<Value>) {
    let added = shared
        .media
        .lock()
        .map_err(|e| e.to_string())
        .and_then(|mut l| l.add(file));
    match added {
        Ok(id) => (StatusCode::OK, Json(json!({"id": id}))),
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({"error": error}))),
    }
}

/// `GET /{version}/{media-id}`: where to download it.
pub(super) async fn location(
    State(shared): State<Arc<Shared>>,
    _token: Authorized,
    Path((_version, id)): Path<(String, String)>,
) -> Response {
    let Ok(mut library) = shared.media.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some((file, bytes)) = library.files.get_mut(&id) else {
        return meta_error(
            StatusCode::NOT_FOUND,
            100,
            "Unsupported get request. Object with ID does not exist",
        )
        .into_response();
    };
    let sha256 = file
        .sha256
        .clone()
        .unwrap_or_else(|| hex::encode(Sha256::digest(&bytes[..])));
    let (mime_type, size) = (file.mime_type.clone(), bytes.len());
    let expires = if file.expired_urls > 0 {
        file.expired_urls -= 1;
        Instant::now()
    } else {
        Instant::now() + URL_LIFETIME
    };
    library.issued += 1;
    let token = format!("{:016x}", library.issued);
    library.urls.insert(token.clone(), (id.clone(), expires));
    Json(json!({
        "messaging_product": "whatsapp",
        "url": format!("{}/media-download?mid={id}&token={token}", shared.base_url),
        "mime_type": mime_type,
        "sha256": sha256,
        "file_size": size.to_string(),
        "id": id,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub(super) struct Download {
    mid: String,
    token: String,
}

/// `GET /media-download?mid&token`: the bytes, with the bearer token, while the URL lives.
pub(super) async fn download(
    State(shared): State<Arc<Shared>>,
    _token: Authorized,
    Query(download): Query<Download>,
) -> Response {
    let (mime_type, bytes, delay) = match serve(&shared, download) {
        Ok(served) => served,
        Err(status) => return status.into_response(),
    };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    ([(axum::http::header::CONTENT_TYPE, mime_type)], bytes).into_response()
}

/// What a download answers (the type, the bytes, how long it takes), or its error status.
fn serve(shared: &Shared, download: Download) -> Result<(String, Vec<u8>, u64), StatusCode> {
    let Ok(mut library) = shared.media.lock() else {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let live = library
        .urls
        .get(&download.token)
        .is_some_and(|(id, expires)| *id == download.mid && Instant::now() < *expires);
    if !live {
        return Err(StatusCode::NOT_FOUND);
    }
    let Some((file, bytes)) = library.files.get_mut(&download.mid) else {
        return Err(StatusCode::NOT_FOUND);
    };
    if file.failing_downloads > 0 {
        file.failing_downloads -= 1;
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let served = (
        file.mime_type.clone(),
        bytes.clone(),
        file.download_delay_ms,
    );
    *library.downloads.entry(download.mid).or_default() += 1;
    Ok(served)
}

/// `POST /{version}/{phone-number-id}/media` (multipart `messaging_product`, `type`, `file`):
/// keeps the file as Meta would (downloadable by its new id); answers `{id}`.
pub(super) async fn upload(
    State(shared): State<Arc<Shared>>,
    _token: Authorized,
    Path((_version, _phone_number_id)): Path<(String, String)>,
    mut form: axum::extract::Multipart,
) -> Response {
    let (mut product, mut declared, mut file) = (None, None, None);
    while let Ok(Some(field)) = form.next_field().await {
        match field.name().unwrap_or_default() {
            "messaging_product" => product = field.text().await.ok(),
            "type" => declared = field.text().await.ok(),
            "file" => {
                let mime_type = field.content_type().unwrap_or_default().to_owned();
                file = field.bytes().await.ok().map(|bytes| (mime_type, bytes));
            }
            _ => {}
        }
    }
    let (Some("whatsapp"), Some(declared), Some((_, bytes))) = (product.as_deref(), declared, file)
    else {
        return meta_error(
            StatusCode::BAD_REQUEST,
            100,
            "Invalid parameter: messaging_product, type and file are required",
        )
        .into_response();
    };
    let added = shared
        .media
        .lock()
        .map_err(|e| e.to_string())
        .and_then(|mut library| {
            library.uploads += 1;
            library.add(MediaFile {
                mime_type: declared,
                data_base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
                ..MediaFile::default()
            })
        });
    match added {
        Ok(id) => Json(json!({"id": id})).into_response(),
        Err(error) => meta_error(StatusCode::BAD_REQUEST, 100, &error).into_response(),
    }
}
