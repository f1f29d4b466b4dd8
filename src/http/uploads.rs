//! Files agents upload to send (`POST /api/media`, multipart): checked against Meta's types
//! and per-type size limits, kept by SHA-256 like customers' files, and recorded
//! (`UploadRecorded`). A send names the file with `upload_id`; the sender uploads it to Meta
//! then (and reuses Meta's id for later sends from the same number while Meta keeps it).

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use switchboard_domain::upload::{kind_of, max_bytes, UploadCommand, UploadedFile};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::accounts::actor_metadata;
use crate::http::extract::AuthAgent;
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

/// The largest request: Meta's largest file (documents, 100 MB) and the form around it.
const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024 + 64 * 1024;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
}

/// A file kept to send.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Uploaded {
    /// Its id: send it as `upload_id` in an image, audio, video, document or sticker message.
    id: String,
    /// The message type it is sent as.
    kind: &'static str,
    /// Media type.
    mime_type: String,
    /// Bytes.
    size: u64,
    /// SHA-256, hex.
    sha256: String,
    /// The name it was uploaded with.
    filename: Option<String>,
}

/// The multipart form: one `file` part with its `Content-Type`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// How much of a refused file is read and dropped before answering (past it, the connection
/// is closed under the client).
const DRAIN_AT_MOST: usize = 128 * 1024 * 1024;

/// Keeps a file to send. Types and limits are Meta's: JPEG/PNG images 5 MB, WebP stickers
/// 500 KB, audio (AAC, AMR, MP3, MP4, OGG) and video (MP4, 3GPP) 16 MB, documents (PDF, text,
/// Office) 100 MB; anything else, or larger, is 422 naming the limit.
#[utoipa::path(post, path = "/api/media", operation_id = "uploadMedia", tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = [])), responses((status = 201, body = Uploaded), Errors))]
async fn upload(
    State(state): State<AppState>,
    auth: AuthAgent,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    // Not multipart at all (or no boundary): our JSON error, not the extractor's text.
    let mut form = form.map_err(|rejection| {
        ApiError::BadRequest(format!(
            "send the file as multipart/form-data with a `file` part: {}",
            rejection.body_text()
        ))
    })?;
    let invalid = |message: String| ApiError::Unprocessable {
        code: "invalid_media",
        message,
    };
    let mut found: Option<(Bytes, String, Option<String>)> = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| invalid(format!("not a readable multipart form: {e}")))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let mime_type = field.content_type().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let limit = max_bytes(&mime_type).ok_or_else(|| {
            invalid(format!("{mime_type:?} is not a type WhatsApp sends (images JPEG/PNG, WebP stickers, audio AAC/AMR/MP3/MP4/OGG, video MP4/3GPP, PDF, text, Office documents)"))
        })?;
        // Read in chunks and stopped at the type's limit: a 100 MB body claiming to be an
        // image is never held whole.
        let mut field = field;
        let mut bytes = bytes::BytesMut::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| invalid(format!("the file could not be read: {e}")))?
        {
            if (bytes.len() + chunk.len()) as u64 > limit {
                // The rest is read and dropped (up to the largest any type allows) so that the
                // client, still sending, gets this answer instead of a reset connection.
                let mut drained = bytes.len() + chunk.len();
                while drained < DRAIN_AT_MOST {
                    match field.chunk().await {
                        Ok(Some(more)) => drained += more.len(),
                        _ => break,
                    }
                }
                return Err(invalid(format!(
                    "{} files may be at most {} bytes ({} MB); this one has more",
                    kind_of(&mime_type),
                    limit,
                    limit as f64 / (1024.0 * 1024.0),
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        found = Some((bytes.freeze(), mime_type, filename));
        break;
    }
    let (bytes, mime_type, filename) =
        found.ok_or_else(|| invalid("the form has no `file` part".to_owned()))?;
    if bytes.is_empty() {
        return Err(invalid("the file is empty".to_owned()));
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size = bytes.len() as u64;
    state
        .media
        .put(&sha256, bytes)
        .await
        .map_err(|error| ApiError::Internal(Box::new(error)))?;
    let file = UploadedFile {
        sha256,
        size,
        mime_type,
        filename: filename
            .filter(|n| !n.is_empty() && n.chars().count() <= 240 && !n.contains(char::is_control)),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let now = state.clock.now();
    let command = UploadCommand::Record {
        file: file.clone(),
        by: auth.actor.agent_id,
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.uploads, &id, command, &metadata).await?;
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            id,
            kind: kind_of(&file.mime_type),
            mime_type: file.mime_type,
            size: file.size,
            sha256: file.sha256,
            filename: file.filename,
        }),
    ))
}
