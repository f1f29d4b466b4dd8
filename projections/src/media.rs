//! The files messages carry (`media_files`): what Meta announced, and once fetched, what we
//! keep (by the SHA-256 of the bytes) or why we could not.

use serde::Serialize;
use switchboard_domain::conversation::ConversationEvent;
use switchboard_domain::message::MessageEvent;
use switchboard_domain::upload::{kind_of, UploadEvent};
use switchboard_store::{with_pool, Database, RecordedEvent, Statement};

use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds `media_files`.
pub struct MediaProjection;

const ANNOUNCED: &str = "insert into media_files
    (id, conversation_id, meta_media_id, kind, mime_type, expected_sha256, filename, voice,
     status, received_at)
    values ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9) on conflict (id) do nothing";
const UPLOADED: &str = "insert into media_files
    (id, uploaded_by, kind, mime_type, filename, status, sha256, size, received_at, settled_at)
    values ($1, $2, $3, $4, $5, 'stored', $6, $7, $8, $8)";
const DELETED: &str = "update media_files set status = 'deleted', reason = $1,
    settled_at = $2 where id = $3";
const STORED: &str = "update media_files set status = 'stored', sha256 = $1, size = $2,
    mime_type = $3, settled_at = $4 where id = $5";
/// An erasure request (every file of the conversation so far) or the retention period (files
/// received before `$2`): Meta's id, checksum and the file name read `[erased]`, as replay
/// reads them from the events whose keys were destroyed.
const ERASED: &str = "update media_files set
    meta_media_id = case when meta_media_id is null then null else '[erased]' end,
    expected_sha256 = case when expected_sha256 is null then null else '[erased]' end,
    filename = case when filename is null then null else '[erased]' end
    where conversation_id = $1 and received_at < $2";
const UNAVAILABLE: &str = "update media_files set status = 'unavailable', reason = $1,
    settled_at = $2 where id = $3";

impl Projection for MediaProjection {
    fn name(&self) -> &'static str {
        "media"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["media_files"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["Message", "Upload", "Conversation"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let deleted = match decoded {
            DecodedEvent::Upload(UploadEvent::Deleted { reason, at })
            | DecodedEvent::Message(MessageEvent::MediaDeleted { reason, at }) => {
                Some((reason, at))
            }
            _ => None,
        };
        if let Some((reason, at)) = deleted {
            out.push(Statement::new(
                DELETED,
                vec![
                    reason.as_str().into(),
                    at.unix_millis().into(),
                    event.aggregate_id.as_str().into(),
                ],
            ));
            return;
        }
        let erased = match decoded {
            DecodedEvent::Conversation(ConversationEvent::CustomerErased { .. }) => Some(i64::MAX),
            DecodedEvent::Conversation(ConversationEvent::ContentExpired { before, .. }) => {
                Some(before.unix_millis())
            }
            _ => None,
        };
        if let Some(before) = erased {
            let id = event.aggregate_id.as_str();
            out.push(Statement::new(ERASED, vec![id.into(), before.into()]));
            return;
        }
        if let DecodedEvent::Upload(UploadEvent::Recorded { file, by, at }) = decoded {
            out.push(Statement::new(
                UPLOADED,
                vec![
                    event.aggregate_id.as_str().into(),
                    by.to_string().into(),
                    kind_of(&file.mime_type).into(),
                    file.mime_type.as_str().into(),
                    file.filename.clone().into(),
                    file.sha256.as_str().into(),
                    i64::try_from(file.size).unwrap_or(i64::MAX).into(),
                    at.unix_millis().into(),
                ],
            ));
            return;
        }
        let DecodedEvent::Message(message_event) = decoded else {
            return;
        };
        let id = event.aggregate_id.as_str();
        match message_event {
            // A customer's file, or one the business sent from the WhatsApp Business app.
            MessageEvent::InboundReceived {
                conversation_id,
                content,
                sent_at,
                ..
            }
            | MessageEvent::EchoRecorded {
                conversation_id,
                content,
                sent_at,
                ..
            } => {
                let Some(media) = content.media().filter(|m| m.id.is_some()) else {
                    return;
                };
                out.push(Statement::new(
                    ANNOUNCED,
                    vec![
                        id.into(),
                        conversation_id.to_string().into(),
                        media.id.clone().into(),
                        content.kind().into(),
                        media.mime_type.clone().into(),
                        media.sha256.clone().into(),
                        media.filename.clone().into(),
                        i64::from(media.voice == Some(true)).into(),
                        sent_at.unix_millis().into(),
                    ],
                ));
            }
            MessageEvent::MediaStored {
                sha256,
                size,
                mime_type,
                at,
            } => out.push(Statement::new(
                STORED,
                vec![
                    sha256.as_str().into(),
                    i64::try_from(*size).unwrap_or(i64::MAX).into(),
                    mime_type.as_str().into(),
                    at.unix_millis().into(),
                    id.into(),
                ],
            )),
            MessageEvent::MediaUnavailable { reason, at } => out.push(Statement::new(
                UNAVAILABLE,
                vec![reason.as_str().into(), at.unix_millis().into(), id.into()],
            )),
            _ => {}
        }
    }
}

/// A message's file as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MediaView {
    /// The media id (the message's id).
    pub id: String,
    /// Its conversation (none for a file an agent uploaded).
    pub conversation_id: Option<String>,
    /// The agent who uploaded it.
    pub uploaded_by: Option<String>,
    /// `image`, `audio`, `video`, `document`, `sticker`.
    pub kind: String,
    /// Media type.
    pub mime_type: Option<String>,
    /// The document's file name.
    pub filename: Option<String>,
    /// `pending` (not fetched yet), `stored`, `unavailable` or `deleted` (retention).
    pub status: String,
    /// SHA-256 of the bytes, hex, once stored.
    pub sha256: Option<String>,
    /// Bytes, once stored.
    pub size: Option<i64>,
    /// Why it is unavailable.
    pub reason: Option<String>,
}

type Row = (
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// The file `id`, if any.
///
/// # Errors
/// Database failures.
pub async fn get(db: &Database, id: &str) -> Result<Option<MediaView>, ProjectionError> {
    const SQL: &str =
        "select id, conversation_id, uploaded_by, kind, mime_type, filename, status, sha256,
        size, reason from media_files where id = $1";
    let row: Option<Row> =
        with_pool!(db, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?);
    Ok(row.map(
        |(
            id,
            conversation_id,
            uploaded_by,
            kind,
            mime_type,
            filename,
            status,
            sha256,
            size,
            reason,
        )| {
            MediaView {
                id,
                conversation_id,
                uploaded_by,
                kind,
                mime_type,
                filename,
                status,
                sha256,
                size,
                reason,
            }
        },
    ))
}
