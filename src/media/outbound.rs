//! Agents' uploads on their way out: a send naming an `upload_id` goes to Meta with Meta's
//! media id, uploading the file from the sending number first unless Meta has it already
//! (Meta keeps uploads 30 days; `meta_uploads`, the sender's worker state, remembers them).

use switchboard_domain::message::OutboundContent;
use switchboard_domain::upload::Upload;
use switchboard_store::{with_pool, EventRepository, Statement};

use super::MediaStore;
use crate::clock::wall_millis as wall_ms;
use crate::whatsapp::graph::{local_error, GraphClient, GraphError, SendOutcome};

/// How long Meta's id of an upload is reused: a day short of Meta's 30.
const REUSE_MS: i64 = 29 * 24 * 3_600_000;

const KNOWN: &str = "select meta_media_id from meta_uploads
    where sha256 = $1 and phone_number_id = $2 and uploaded_at > $3";
const REMEMBER: &str =
    "insert into meta_uploads (sha256, phone_number_id, meta_media_id, uploaded_at)
    values ($1, $2, $3, $4)
    on conflict (sha256, phone_number_id) do update
    set meta_media_id = excluded.meta_media_id, uploaded_at = excluded.uploaded_at";

fn refused(title: &str, message: String) -> SendOutcome {
    SendOutcome::Refused {
        error: local_error(title, Some(message)),
        retryable: false,
    }
}

/// `content` with Meta's media id in place of our upload's (unchanged without one); a failure
/// is the send's outcome (an upload gone for good is final, Meta unreachable is retried).
pub async fn attach(
    log: &EventRepository,
    store: Option<&MediaStore>,
    graph: &GraphClient,
    mut content: OutboundContent,
    phone_number_id: &str,
) -> Result<OutboundContent, SendOutcome> {
    let Some(media) = content.media_mut() else {
        return Ok(content);
    };
    let Some(upload_id) = media.upload_id.take() else {
        return Ok(content);
    };
    let (upload, _) = log
        .load_aggregate::<Upload>(&upload_id)
        .await
        .map_err(|e| SendOutcome::Unreachable(format!("loading upload: {e}")))?;
    let Some(file) = upload.file() else {
        return Err(refused("unknown upload", upload_id));
    };
    let known: Option<String> = with_pool!(log.database(), pool => sqlx::query_scalar(KNOWN)
        .bind(&file.sha256).bind(phone_number_id).bind(wall_ms() - REUSE_MS)
        .fetch_optional(pool).await)
    .map_err(|e| SendOutcome::Unreachable(format!("meta_uploads: {e}")))?;
    let meta_id = match known {
        Some(id) => id,
        None => {
            let store = store.ok_or_else(|| refused("no media store", upload_id.clone()))?;
            let bytes = store
                .get(&file.sha256, None)
                .await
                .map_err(|e| SendOutcome::Unreachable(format!("reading the upload: {e}")))?;
            let name = file.filename.as_deref().unwrap_or("file");
            let id = graph
                .upload_media(phone_number_id, bytes, &file.mime_type, name)
                .await
                .map_err(|error| match error {
                    GraphError::Refused { status, error, .. } => SendOutcome::Refused {
                        retryable: crate::whatsapp::graph::is_retryable(status, error.code),
                        error,
                    },
                    GraphError::Unreachable(reason) => SendOutcome::Unreachable(reason),
                })?;
            log.database()
                .execute_atomically(&[Statement::new(
                    REMEMBER,
                    vec![
                        file.sha256.as_str().into(),
                        phone_number_id.into(),
                        id.as_str().into(),
                        wall_ms().into(),
                    ],
                )])
                .await
                .map_err(|e| SendOutcome::Unreachable(format!("meta_uploads: {e}")))?;
            id
        }
    };
    if let Some(media) = content.media_mut() {
        media.id = Some(meta_id);
    }
    Ok(content)
}
