//! What an agent sends, checked against Meta's limits before anything is stored, so that a
//! refusal is a clear 422 now rather than an error from Meta later.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A reply button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    /// Returned in the customer's answer; ≤ 256 characters, unique.
    pub id: String,
    /// The label; ≤ 20 characters, unique.
    pub title: String,
}

/// A row of a list message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    /// Returned in the customer's answer; ≤ 200 characters.
    pub id: String,
    /// ≤ 24 characters.
    pub title: String,
    /// ≤ 72 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A section of a list message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    /// Required when there is more than one section; ≤ 24 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The rows.
    pub rows: Vec<ListRow>,
}

/// Media to send: an uploaded media id or a public HTTPS link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OutboundMedia {
    /// Uploaded media id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Public HTTPS link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// A file uploaded to us (`POST /api/media`): uploaded to Meta when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Caption (image, video, document); ≤ 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name (document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// A message an agent asks to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundContent {
    /// Text (≤ 4096 characters).
    Text {
        /// The text.
        body: String,
        /// Render a preview of the first URL.
        #[serde(default)]
        preview_url: bool,
    },
    /// A picture.
    Image(OutboundMedia),
    /// An audio file (no caption).
    Audio(OutboundMedia),
    /// A video.
    Video(OutboundMedia),
    /// A document.
    Document(OutboundMedia),
    /// A sticker (no caption).
    Sticker(OutboundMedia),
    /// A location.
    Location {
        /// Latitude in degrees.
        latitude: f64,
        /// Longitude in degrees.
        longitude: f64,
        /// Place name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Place address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// A reaction to a message; an empty emoji removes ours.
    Reaction {
        /// The message reacted to.
        message_id: String,
        /// The emoji ("" removes).
        emoji: String,
    },
    /// Up to three reply buttons.
    Buttons {
        /// The message text (≤ 1024).
        body: String,
        /// A text header (≤ 60).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        /// A footer (≤ 60).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        /// 1 to 3 buttons.
        buttons: Vec<ReplyButton>,
    },
    /// A list of choices.
    List {
        /// The message text (≤ 1024).
        body: String,
        /// The label of the button that opens the list (≤ 20).
        button: String,
        /// A text header (≤ 60).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        /// A footer (≤ 60).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        /// Up to 10 sections, up to 10 rows in all.
        sections: Vec<ListSection>,
    },
    /// An approved template (allowed outside the 24-hour window).
    Template {
        /// Template name (lower-case letters, digits, underscores).
        name: String,
        /// Language code of an approved translation (`en_US`, …).
        language: String,
        /// Header/body/button parameters, in Meta's `components` shape.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        components: Vec<Value>,
        /// The text the customer reads (header, body, footer with the variables filled), set by
        /// the server from the catalogue when it checks the parameters; never sent to Meta.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rendered: Option<String>,
    },
}

/// Why a message cannot be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{field}: {reason}")]
pub struct ContentError {
    /// The offending field (`body`, `buttons[1].title`, …).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn too_long(field: impl Into<String>, text: &str, max: usize) -> Result<(), ContentError> {
    let length = text.chars().count();
    if length > max {
        return Err(ContentError {
            field: field.into(),
            reason: format!("at most {max} characters ({length} given)"),
        });
    }
    Ok(())
}

fn required(field: impl Into<String>, text: &str, max: usize) -> Result<(), ContentError> {
    let field = field.into();
    if text.trim().is_empty() {
        return Err(ContentError {
            field,
            reason: "must not be empty".to_owned(),
        });
    }
    too_long(field, text, max)
}

/// [`required`], for identifiers: no control characters either (text may hold anything).
fn identifier(field: impl Into<String>, text: &str, max: usize) -> Result<(), ContentError> {
    let field = field.into();
    if text.contains(char::is_control) {
        return Err(error(field, "must not contain control characters"));
    }
    required(field, text, max)
}

fn optional(field: &str, text: Option<&String>, max: usize) -> Result<(), ContentError> {
    text.map_or(Ok(()), |t| too_long(field, t, max))
}

fn error(field: impl Into<String>, reason: impl Into<String>) -> ContentError {
    ContentError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl OutboundContent {
    /// The media of an image, audio, video, document or sticker message.
    pub fn media(&self) -> Option<&OutboundMedia> {
        match self {
            Self::Image(m)
            | Self::Audio(m)
            | Self::Video(m)
            | Self::Document(m)
            | Self::Sticker(m) => Some(m),
            _ => None,
        }
    }

    /// [`Self::media`], to change (the sender puts Meta's id in place of our upload's).
    pub fn media_mut(&mut self) -> Option<&mut OutboundMedia> {
        match self {
            Self::Image(m)
            | Self::Audio(m)
            | Self::Video(m)
            | Self::Document(m)
            | Self::Sticker(m) => Some(m),
            _ => None,
        }
    }

    /// Whether this is a template (the only kind allowed outside the customer-service window).
    pub fn is_template(&self) -> bool {
        matches!(self, Self::Template { .. })
    }

    /// The type name (`text`, `buttons`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image(_) => "image",
            Self::Audio(_) => "audio",
            Self::Video(_) => "video",
            Self::Document(_) => "document",
            Self::Sticker(_) => "sticker",
            Self::Location { .. } => "location",
            Self::Reaction { .. } => "reaction",
            Self::Buttons { .. } => "buttons",
            Self::List { .. } => "list",
            Self::Template { .. } => "template",
        }
    }

    /// The words a search finds the message by; `None` for kinds without any.
    pub fn search_text(&self) -> Option<String> {
        match self {
            Self::Text { body, .. } | Self::Buttons { body, .. } | Self::List { body, .. } => {
                Some(body.clone())
            }
            Self::Location { name, .. } => name.clone(),
            Self::Image(m) | Self::Video(m) | Self::Document(m) => {
                let parts: Vec<&str> = [m.filename.as_ref(), m.caption.as_ref()]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            }
            Self::Template { rendered, .. } => rendered.clone(),
            Self::Reaction { .. } | Self::Audio(_) | Self::Sticker(_) => None,
        }
    }

    /// A one-line preview for the inbox.
    pub fn preview(&self) -> String {
        let text = match self {
            Self::Text { body, .. } | Self::Buttons { body, .. } | Self::List { body, .. } => {
                body.clone()
            }
            Self::Template {
                rendered: Some(text),
                ..
            } => text.clone(),
            Self::Template { name, .. } => format!("Template: {name}"),
            Self::Reaction { emoji, .. } if emoji.is_empty() => "Removed a reaction".to_owned(),
            Self::Reaction { emoji, .. } => format!("Reacted {emoji}"),
            Self::Location { name, .. } => name.clone().unwrap_or_else(|| "Location".to_owned()),
            Self::Image(m) | Self::Video(m) | Self::Document(m) => {
                m.caption.clone().unwrap_or_else(|| self.kind().to_owned())
            }
            Self::Audio(_) | Self::Sticker(_) => self.kind().to_owned(),
        };
        text.chars().take(120).collect()
    }

    /// Checks Meta's limits on counts and lengths.
    ///
    /// # Errors
    /// The first [`ContentError`] found.
    pub fn validate(&self) -> Result<(), ContentError> {
        match self {
            Self::Text { body, .. } => required("body", body, 4096),
            Self::Image(m) | Self::Video(m) | Self::Document(m) => {
                media(m)?;
                optional("caption", m.caption.as_ref(), 1024)
            }
            Self::Audio(m) | Self::Sticker(m) => {
                media(m)?;
                if m.caption.is_some() {
                    return Err(error(
                        "caption",
                        format!("{} messages take no caption", self.kind()),
                    ));
                }
                Ok(())
            }
            Self::Location {
                latitude,
                longitude,
                ..
            } => {
                if !(-90.0..=90.0).contains(latitude) {
                    return Err(error("latitude", "must be between -90 and 90"));
                }
                if !(-180.0..=180.0).contains(longitude) {
                    return Err(error("longitude", "must be between -180 and 180"));
                }
                Ok(())
            }
            Self::Reaction { message_id, emoji } => {
                identifier("message_id", message_id, 512)?;
                too_long("emoji", emoji, 16)
            }
            Self::Buttons {
                body,
                header,
                footer,
                buttons,
            } => {
                required("body", body, 1024)?;
                optional("header", header.as_ref(), 60)?;
                optional("footer", footer.as_ref(), 60)?;
                if buttons.is_empty() || buttons.len() > 3 {
                    return Err(error(
                        "buttons",
                        format!("1 to 3 buttons ({} given)", buttons.len()),
                    ));
                }
                for (i, button) in buttons.iter().enumerate() {
                    required(format!("buttons[{i}].title"), &button.title, 20)?;
                    identifier(format!("buttons[{i}].id"), &button.id, 256)?;
                    if button.id.trim() != button.id {
                        return Err(error(
                            format!("buttons[{i}].id"),
                            "no leading or trailing spaces",
                        ));
                    }
                    if buttons[..i].iter().any(|b| b.id == button.id) {
                        return Err(error(format!("buttons[{i}].id"), "ids must be unique"));
                    }
                    if buttons[..i].iter().any(|b| b.title == button.title) {
                        return Err(error(
                            format!("buttons[{i}].title"),
                            "titles must be unique",
                        ));
                    }
                }
                Ok(())
            }
            Self::List {
                body,
                button,
                header,
                footer,
                sections,
            } => {
                required("body", body, 1024)?;
                required("button", button, 20)?;
                optional("header", header.as_ref(), 60)?;
                optional("footer", footer.as_ref(), 60)?;
                if sections.is_empty() || sections.len() > 10 {
                    return Err(error(
                        "sections",
                        format!("1 to 10 sections ({} given)", sections.len()),
                    ));
                }
                let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
                if rows == 0 || rows > 10 {
                    return Err(error(
                        "sections",
                        format!("1 to 10 rows in all sections together ({rows} given)"),
                    ));
                }
                for (i, section) in sections.iter().enumerate() {
                    match &section.title {
                        Some(title) => required(format!("sections[{i}].title"), title, 24)?,
                        None if sections.len() > 1 => {
                            return Err(error(
                                format!("sections[{i}].title"),
                                "required when there are several sections",
                            ))
                        }
                        None => {}
                    }
                    for (j, row) in section.rows.iter().enumerate() {
                        required(format!("sections[{i}].rows[{j}].title"), &row.title, 24)?;
                        identifier(format!("sections[{i}].rows[{j}].id"), &row.id, 200)?;
                        optional(
                            &format!("sections[{i}].rows[{j}].description"),
                            row.description.as_ref(),
                            72,
                        )?;
                    }
                }
                Ok(())
            }
            Self::Template {
                name,
                language,
                components,
                ..
            } => {
                template_components(components)?;
                required("name", name, 512)?;
                if !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    return Err(error(
                        "name",
                        "lower-case letters, digits and underscores only",
                    ));
                }
                identifier("language", language, 15)
            }
        }
    }
}

/// Most components a template message carries: header, body, a limited-time offer and 10
/// buttons (Meta's limits; a carousel is one component).
pub const MAX_TEMPLATE_COMPONENTS: usize = 13;
/// Most parameters one template component carries (Meta allows far fewer variables in one
/// header or body).
pub const MAX_TEMPLATE_PARAMETERS: usize = 100;
/// Most cards of a carousel template.
pub const MAX_CAROUSEL_CARDS: usize = 10;
/// Most bytes of a template's components, as JSON.
pub const MAX_TEMPLATE_COMPONENT_BYTES: usize = 64 * 1024;

fn template_components(components: &[Value]) -> Result<(), ContentError> {
    if components.len() > MAX_TEMPLATE_COMPONENTS {
        return Err(error(
            "components",
            format!(
                "at most {MAX_TEMPLATE_COMPONENTS} components ({} given)",
                components.len()
            ),
        ));
    }
    for (i, component) in components.iter().enumerate() {
        if !component.is_object() {
            return Err(error(format!("components[{i}]"), "must be an object"));
        }
        for (key, max) in [
            ("parameters", MAX_TEMPLATE_PARAMETERS),
            ("cards", MAX_CAROUSEL_CARDS),
        ] {
            let count = component
                .get(key)
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if count > max {
                return Err(error(
                    format!("components[{i}].{key}"),
                    format!("at most {max} ({count} given)"),
                ));
            }
        }
    }
    let bytes = serde_json::to_vec(components).map_or(usize::MAX, |b| b.len());
    if bytes > MAX_TEMPLATE_COMPONENT_BYTES {
        return Err(error(
            "components",
            format!("at most {MAX_TEMPLATE_COMPONENT_BYTES} bytes of JSON ({bytes} given)"),
        ));
    }
    Ok(())
}

fn media(media: &OutboundMedia) -> Result<(), ContentError> {
    match (&media.id, &media.link, &media.upload_id) {
        (Some(id), None, None) => identifier("id", id, 256),
        (None, Some(link), None) if link.starts_with("https://") => identifier("link", link, 2048),
        (None, Some(_), None) => Err(error("link", "must be an https:// URL")),
        (None, None, Some(upload)) => identifier("upload_id", upload, 64),
        _ => Err(error(
            "id",
            "give exactly one of id (Meta's media id), link or upload_id (POST /api/media)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buttons(n: usize) -> OutboundContent {
        OutboundContent::Buttons {
            body: "Did it arrive?".into(),
            header: None,
            footer: None,
            buttons: (0..n)
                .map(|i| ReplyButton {
                    id: format!("b{i}"),
                    title: format!("Option {i}"),
                })
                .collect(),
        }
    }

    #[test]
    fn meta_limits_are_checked_with_the_offending_field() {
        assert!(buttons(3).validate().is_ok());
        assert_eq!(
            buttons(4).validate().map_err(|e| e.field),
            Err("buttons".to_owned())
        );
        let long_title = OutboundContent::Buttons {
            body: "x".into(),
            header: None,
            footer: None,
            buttons: vec![ReplyButton {
                id: "a".into(),
                title: "x".repeat(21),
            }],
        };
        assert_eq!(
            long_title.validate().map_err(|e| e.field),
            Err("buttons[0].title".to_owned())
        );
        let text = OutboundContent::Text {
            body: "x".repeat(4097),
            preview_url: false,
        };
        assert!(text.validate().is_err());
        let audio = OutboundContent::Audio(OutboundMedia {
            id: Some("1".into()),
            caption: Some("no".into()),
            ..Default::default()
        });
        assert_eq!(
            audio.validate().map_err(|e| e.field),
            Err("caption".to_owned())
        );
    }

    fn template(components: Vec<Value>) -> OutboundContent {
        OutboundContent::Template {
            name: "order_update".into(),
            language: "en_US".into(),
            components,
            rendered: None,
        }
    }

    #[test]
    fn template_components_are_bounded_by_metas_limits() {
        let body = |n: usize| serde_json::json!({"type": "body", "parameters": vec![serde_json::json!({"type": "text", "text": "x"}); n]});
        assert!(template(vec![body(3)]).validate().is_ok());
        let field = |c: OutboundContent| c.validate().map_err(|e| e.field);
        assert_eq!(
            field(template(vec![body(1); 10_000])),
            Err("components".to_owned())
        );
        assert_eq!(
            field(template(vec![body(101)])),
            Err("components[0].parameters".to_owned())
        );
        assert_eq!(
            field(template(vec![serde_json::json!("body")])),
            Err("components[0]".to_owned())
        );
        let huge = serde_json::json!({"type": "body", "parameters": [{"type": "text", "text": "x".repeat(70_000)}]});
        assert_eq!(field(template(vec![huge])), Err("components".to_owned()));
    }
}
