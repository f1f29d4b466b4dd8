//! Quick replies: saved answers agents insert with a shortcode (`/refund`), personal, for a
//! group, or for everyone.
//!
//! A quick reply's id derives from its visibility and shortcode ([`quick_reply_id`]), so a
//! shortcode is unique per visibility by construction: a second one lands on the same
//! aggregate and is refused there, atomically.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Actor, AgentId, GroupId, Timestamp};

/// The longest text, in characters (Meta's limit for a text message).
pub const MAX_TEXT_CHARS: usize = 4096;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;

const NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_03d2_8c45_4e7b_9b20_55e1_c3a4_7d19);

/// The most characters of a quick reply's text when it goes with media (Meta's caption limit).
pub const MAX_CAPTION_CHARS: usize = 1024;

/// Which media a quick reply sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A picture.
    Image,
    /// A video.
    Video,
    /// A file (PDF, …).
    Document,
}

/// Media a quick reply sends, with its text as the caption: an uploaded media id or a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReplyMedia {
    /// Image, video or document.
    pub kind: MediaKind,
    /// Meta's media id (uploaded before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A public `https` link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The file name a document shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl QuickReplyMedia {
    /// Exactly one of id and link; an id of at most 128 letters and digits, an `http(s)` link
    /// of at most 2,048 bytes without spaces, a file name (documents only) of at most 240
    /// characters, nothing with control characters.
    fn is_valid(&self) -> bool {
        let clean = |t: &str| !t.contains(char::is_control) && !t.trim().is_empty();
        let source = match (&self.id, &self.link) {
            (Some(id), None) => id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric()),
            (None, Some(link)) => {
                link.len() <= 2048
                    && (link.starts_with("https://") || link.starts_with("http://"))
                    && !link.contains(char::is_whitespace)
                    && clean(link)
            }
            _ => false,
        };
        let filename = match &self.filename {
            None => true,
            Some(name) => {
                self.kind == MediaKind::Document && name.chars().count() <= 240 && clean(name)
            }
        };
        source && filename
    }
}

/// Who may use a quick reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Visibility {
    /// Its author only.
    Personal {
        /// The author.
        agent: AgentId,
    },
    /// The members of a group.
    Group {
        /// The group.
        group: GroupId,
    },
    /// Every agent.
    Everyone,
}

impl Visibility {
    fn key(&self) -> String {
        match self {
            Self::Personal { agent } => format!("agent:{agent}"),
            Self::Group { group } => format!("group:{group}"),
            Self::Everyone => "everyone".to_owned(),
        }
    }

    /// Whether `actor` may use (see, insert) a quick reply of this visibility.
    pub fn usable_by(&self, actor: &Actor) -> bool {
        match self {
            Self::Personal { agent } => *agent == actor.agent_id,
            Self::Group { group } => actor.groups.contains(group),
            Self::Everyone => true,
        }
    }

    /// Whether `actor` may create, change or delete one of this visibility: their own
    /// personal ones; shared ones with `can_manage_templates`.
    fn manageable_by(&self, actor: &Actor) -> bool {
        match self {
            Self::Personal { agent } => *agent == actor.agent_id,
            Self::Group { .. } | Self::Everyone => actor.permissions.can_manage_templates,
        }
    }
}

/// The aggregate id of the quick reply with `shortcode` (normalized) and `visibility`.
pub fn quick_reply_id(visibility: &Visibility, shortcode: &str) -> String {
    let key = format!("{}|{}", visibility.key(), shortcode);
    Uuid::new_v5(&NAMESPACE, key.as_bytes()).to_string()
}

/// A shortcode as stored: `/` then 1 to 31 lower-case letters, digits, `-` or `_`.
///
/// # Errors
/// [`QuickReplyError::InvalidShortcode`].
pub fn normalize_shortcode(text: &str) -> Result<String, QuickReplyError> {
    let code = text.trim().to_lowercase();
    let code = if code.starts_with('/') {
        code
    } else {
        format!("/{code}")
    };
    let body = &code[1..];
    let valid = !body.is_empty()
        && body.chars().count() <= 31
        && body
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(code)
    } else {
        Err(QuickReplyError::InvalidShortcode)
    }
}

/// Requests to a [`QuickReply`].
#[derive(Debug, Clone, PartialEq)]
pub enum QuickReplyCommand {
    /// Create it.
    Create {
        /// Normalized shortcode (see [`normalize_shortcode`]).
        shortcode: String,
        /// Title.
        title: String,
        /// Text, with `{{variables}}`.
        text: String,
        /// Media sent with the text as caption.
        media: Option<QuickReplyMedia>,
        /// Who may use it.
        visibility: Visibility,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Change title, text and/or media.
    Change {
        /// New title.
        title: Option<String>,
        /// New text.
        text: Option<String>,
        /// New media (`Some(None)`: none any more).
        media: Option<Option<QuickReplyMedia>>,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Delete it (messages sent with it keep their text).
    Delete {
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
}

/// Events of a [`QuickReply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QuickReplyEvent {
    /// Created.
    Created {
        /// Shortcode.
        shortcode: String,
        /// Title.
        title: String,
        /// Text.
        text: String,
        /// Media, its caption the text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media: Option<QuickReplyMedia>,
        /// Who may use it.
        visibility: Visibility,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// Title, text or media changed.
    Changed {
        /// Title now.
        title: String,
        /// Text now.
        text: String,
        /// Media now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media: Option<QuickReplyMedia>,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// Deleted.
    Deleted {
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for QuickReplyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "QuickReplyCreated",
            Self::Changed { .. } => "QuickReplyChanged",
            Self::Deleted { .. } => "QuickReplyDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a quick-reply command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuickReplyError {
    /// This shortcode is taken for this visibility.
    #[error("a quick reply with this shortcode exists for this visibility")]
    ShortcodeTaken,
    /// No such quick reply.
    #[error("no such quick reply")]
    NotFound,
    /// Not the caller's to manage.
    #[error("shared quick replies need can_manage_templates; personal ones are their author's")]
    NotPermitted,
    /// Bad shortcode.
    #[error("a shortcode is / and 1 to 31 letters, digits, - or _")]
    InvalidShortcode,
    /// Bad title or text.
    #[error("title: 1 to {MAX_TITLE_CHARS} characters; text: 1 to {MAX_TEXT_CHARS}")]
    InvalidContent,
    /// Bad media.
    #[error("media: image, video or document, with an id or an http(s) link (a filename for documents only); its text, the caption, at most {MAX_CAPTION_CHARS} characters")]
    InvalidMedia,
}

impl QuickReplyError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ShortcodeTaken => "shortcode_taken",
            Self::NotFound => "not_found",
            Self::NotPermitted => "forbidden",
            Self::InvalidShortcode => "invalid_shortcode",
            Self::InvalidContent | Self::InvalidMedia => "invalid_quick_reply",
        }
    }
}

/// A quick reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuickReply {
    visibility: Option<Visibility>,
    title: String,
    text: String,
    #[serde(default)]
    media: Option<QuickReplyMedia>,
    deleted: bool,
}

impl QuickReply {
    /// Whether it exists (created, not deleted).
    pub fn exists(&self) -> bool {
        self.visibility.is_some() && !self.deleted
    }

    /// Who may use it, while it exists.
    pub fn visibility(&self) -> Option<Visibility> {
        self.visibility.filter(|_| !self.deleted)
    }

    /// Its text, with `{{variables}}`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The media it sends, if any.
    pub fn media(&self) -> Option<&QuickReplyMedia> {
        self.media.as_ref()
    }

    fn decide(&self, command: QuickReplyCommand) -> Result<QuickReplyEvent, QuickReplyError> {
        let valid = |title: &str, text: &str| {
            let title_chars = title.trim().chars().count();
            let text_chars = text.chars().count();
            (1..=MAX_TITLE_CHARS).contains(&title_chars)
                && !title.contains(char::is_control)
                && !text.trim().is_empty()
                && text_chars <= MAX_TEXT_CHARS
        };
        let media_fits = |media: Option<&QuickReplyMedia>, text: &str| {
            media.is_none_or(|m| m.is_valid() && text.chars().count() <= MAX_CAPTION_CHARS)
        };
        match command {
            QuickReplyCommand::Create {
                shortcode,
                title,
                text,
                media,
                visibility,
                by,
                at,
            } => {
                if !visibility.manageable_by(&by) {
                    return Err(QuickReplyError::NotPermitted);
                }
                if self.exists() {
                    return Err(QuickReplyError::ShortcodeTaken);
                }
                if !valid(&title, &text) {
                    return Err(QuickReplyError::InvalidContent);
                }
                if !media_fits(media.as_ref(), &text) {
                    return Err(QuickReplyError::InvalidMedia);
                }
                Ok(QuickReplyEvent::Created {
                    shortcode,
                    title: title.trim().to_owned(),
                    text,
                    media,
                    visibility,
                    by: by.agent_id,
                    at,
                })
            }
            QuickReplyCommand::Change {
                title,
                text,
                media,
                by,
                at,
            } => {
                let visibility = self.visibility().ok_or(QuickReplyError::NotFound)?;
                if !visibility.manageable_by(&by) {
                    return Err(if visibility.usable_by(&by) {
                        QuickReplyError::NotPermitted
                    } else {
                        QuickReplyError::NotFound
                    });
                }
                let title = title.unwrap_or_else(|| self.title.clone());
                let text = text.unwrap_or_else(|| self.text.clone());
                let media = media.unwrap_or_else(|| self.media.clone());
                if !valid(&title, &text) {
                    return Err(QuickReplyError::InvalidContent);
                }
                if !media_fits(media.as_ref(), &text) {
                    return Err(QuickReplyError::InvalidMedia);
                }
                Ok(QuickReplyEvent::Changed {
                    title: title.trim().to_owned(),
                    text,
                    media,
                    by: by.agent_id,
                    at,
                })
            }
            QuickReplyCommand::Delete { by, at } => {
                let visibility = self.visibility().ok_or(QuickReplyError::NotFound)?;
                if !visibility.manageable_by(&by) {
                    return Err(if visibility.usable_by(&by) {
                        QuickReplyError::NotPermitted
                    } else {
                        QuickReplyError::NotFound
                    });
                }
                Ok(QuickReplyEvent::Deleted {
                    by: by.agent_id,
                    at,
                })
            }
        }
    }
}

impl Aggregate for QuickReply {
    const TYPE: &'static str = "QuickReply";
    type Command = QuickReplyCommand;
    type Event = QuickReplyEvent;
    type Error = QuickReplyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            QuickReplyEvent::Created {
                title,
                text,
                media,
                visibility,
                ..
            } => {
                self.visibility = Some(visibility);
                self.title = title;
                self.text = text;
                self.media = media;
                self.deleted = false;
            }
            QuickReplyEvent::Changed {
                title, text, media, ..
            } => {
                self.title = title;
                self.text = text;
                self.media = media;
            }
            QuickReplyEvent::Deleted { .. } => self.deleted = true,
        }
    }
}

/// `text` with `{{name}}` replaced by the value of `name` in `values`; unknown variables are
/// left as written. One pass: values are not searched for variables again.
pub fn render(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match values.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_fill_once_and_unknown_ones_stay() {
        let values = [
            ("customer.name", "Ana {{agent.name}}"),
            ("agent.name", "Bo"),
        ];
        assert_eq!(
            render(
                "Hola {{customer.name}}, soy {{ agent.name }} {{x}} {{",
                &values
            ),
            "Hola Ana {{agent.name}}, soy Bo {{x}} {{"
        );
    }

    #[test]
    fn shortcodes_normalize() {
        assert_eq!(normalize_shortcode(" Refund ").as_deref(), Ok("/refund"));
        assert_eq!(normalize_shortcode("/envío_2").as_deref(), Ok("/envío_2"));
        assert!(normalize_shortcode("/").is_err());
        assert!(normalize_shortcode("/a b").is_err());
    }
}
