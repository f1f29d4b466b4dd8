//! Files agents upload to send (`POST /api/media`): kept by the server first, uploaded to Meta
//! when a message that names them is sent.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{AgentId, Timestamp};

/// The largest file of `mime_type` Meta accepts to send (REFERENCE §13): images 5 MB, audio
/// and video 16 MB, stickers (WebP) 500 KB, documents 100 MB; `None` for a type Meta does not
/// send.
pub fn max_bytes(mime_type: &str) -> Option<u64> {
    const MB: u64 = 1024 * 1024;
    let essence = mime_type.split(';').next().unwrap_or_default().trim();
    match essence {
        "image/jpeg" | "image/png" => Some(5 * MB),
        "image/webp" => Some(500 * 1024),
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => Some(16 * MB),
        "video/mp4" | "video/3gpp" => Some(16 * MB),
        "application/pdf"
        | "text/plain"
        | "application/msword"
        | "application/vnd.ms-excel"
        | "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            Some(100 * MB)
        }
        _ => None,
    }
}

/// The message kind a file of `mime_type` is sent as.
pub fn kind_of(mime_type: &str) -> &'static str {
    match mime_type.split('/').next().unwrap_or_default() {
        _ if mime_type.starts_with("image/webp") => "sticker",
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        _ => "document",
    }
}

/// What an upload holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedFile {
    /// SHA-256 of the bytes, hex (the storage key).
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// Media type.
    pub mime_type: String,
    /// The name it was uploaded with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// Requests to an [`Upload`].
#[derive(Debug, Clone, PartialEq)]
pub enum UploadCommand {
    /// Record that the file was deleted (the retention period ended).
    Forget {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Record a file kept in storage.
    Record {
        /// The file.
        file: UploadedFile,
        /// Who uploaded it.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
}

/// Events of an [`Upload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UploadEvent {
    /// The file was deleted.
    Deleted {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// A file was uploaded and kept.
    Recorded {
        /// The file.
        file: UploadedFile,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for UploadEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Recorded { .. } => "UploadRecorded",
            Self::Deleted { .. } => "UploadDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why an upload command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// The id is taken.
    #[error("an upload with this id exists")]
    AlreadyExists,
}

/// One uploaded file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    file: Option<UploadedFile>,
    #[serde(default)]
    deleted: bool,
}

impl Upload {
    /// The file, once recorded and while not deleted.
    pub fn file(&self) -> Option<&UploadedFile> {
        self.file.as_ref().filter(|_| !self.deleted)
    }
}

impl Aggregate for Upload {
    const TYPE: &'static str = "Upload";
    type Command = UploadCommand;
    type Event = UploadEvent;
    type Error = UploadError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            UploadCommand::Record { .. } if self.file.is_some() => {
                return Err(UploadError::AlreadyExists)
            }
            UploadCommand::Record { file, by, at } => UploadEvent::Recorded { file, by, at },
            UploadCommand::Forget { .. } if self.file().is_none() => return Ok(()),
            UploadCommand::Forget { reason, at } => UploadEvent::Deleted { reason, at },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UploadEvent::Recorded { file, .. } => self.file = Some(file),
            UploadEvent::Deleted { .. } => self.deleted = true,
        }
    }
}
