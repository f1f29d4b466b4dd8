//! What a message says. Every inbound type Meta documents has a variant that keeps its content;
//! anything else is kept raw in [`MessageContent::Unknown`] so that nothing is dropped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A media attachment (image, audio, video, document, sticker), referenced by Meta's media id.
///
/// The bytes are never inline in webhooks; the id resolves to a short-lived download URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Media {
    /// Meta's media id (inbound) or an uploaded media id (outbound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A public link (outbound by link; some inbound payloads carry a `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// MIME type as Meta reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Meta's checksum of the file (opaque).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Caption (image, video, document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name (document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// `true` for a recorded voice note rather than an attached audio file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// `true` for an animated sticker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
}

/// The customer's answer to an interactive message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Interactive {
    /// A reply button was tapped.
    ButtonReply {
        /// The button id we sent.
        id: String,
        /// The button label.
        title: String,
    },
    /// A list row was chosen.
    ListReply {
        /// The row id we sent.
        id: String,
        /// The row title.
        title: String,
        /// The row description, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// A WhatsApp Flow (or address message) was completed.
    FlowReply {
        /// `flow` or `address_message`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The text shown in the chat.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// The flow's answer, parsed from Meta's JSON string (kept as the string if it is not JSON).
        response: Value,
    },
    /// Any other interactive reply (e.g. `call_permission_reply`), kept as sent.
    Other {
        /// Meta's `interactive.type`.
        subtype: String,
        /// The whole `interactive` object.
        raw: Value,
    },
}

/// One product line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The product's id in the catalog.
    pub product_retailer_id: String,
    /// How many.
    pub quantity: f64,
    /// Unit price.
    pub item_price: f64,
    /// ISO 4217 currency.
    pub currency: String,
}

/// What a message says, by type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageContent {
    /// Plain text (may contain WhatsApp markdown).
    Text {
        /// The text.
        body: String,
    },
    /// A picture.
    Image(Media),
    /// An audio file or voice note (`voice`).
    Audio(Media),
    /// A video.
    Video(Media),
    /// A document.
    Document(Media),
    /// A sticker.
    Sticker(Media),
    /// A shared location or place.
    Location {
        /// Latitude in degrees.
        latitude: f64,
        /// Longitude in degrees.
        longitude: f64,
        /// Place name, for shared places.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Place address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        /// Place URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    /// Shared contact cards, kept as Meta sent them (a vCard-like structure with many optional parts).
    Contacts {
        /// The `contacts` array.
        contacts: Vec<Value>,
    },
    /// An answer to an interactive message.
    Interactive(Interactive),
    /// A template quick-reply button was tapped.
    Button {
        /// The button label.
        text: String,
        /// The payload set when sending the template (or the label).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<String>,
    },
    /// A reaction to one of our messages; `emoji: None` removes it.
    Reaction {
        /// The message reacted to.
        message_id: String,
        /// The emoji, or `None` when the reaction was removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emoji: Option<String>,
    },
    /// A cart sent from the catalog.
    Order {
        /// The catalog.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        catalog_id: Option<String>,
        /// The customer's note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// The products.
        product_items: Vec<OrderItem>,
    },
    /// A system notice, such as the customer changing their number.
    System {
        /// Meta's `system.type` (e.g. `user_changed_number`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subtype: Option<String>,
        /// The notice text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// The new `wa_id`, for number changes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_wa_id: Option<String>,
        /// The whole `system` object.
        raw: Value,
    },
    /// The customer opened the chat for the first time.
    RequestWelcome,
    /// The customer edited an earlier message.
    Edit {
        /// The message that was edited.
        original_message_id: String,
        /// The new content, as Meta sent it.
        message: Value,
    },
    /// The customer deleted an earlier message.
    Revoke {
        /// The message that was deleted.
        original_message_id: String,
    },
    /// Meta could not render the message (`type: unsupported`); the errors say why.
    Unsupported {
        /// `unsupported.type`, when given (e.g. `poll`, `edit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subtype: Option<String>,
    },
    /// A type this version does not know, kept whole so that a later version can read it.
    Unknown {
        /// Meta's `type`.
        #[serde(rename = "meta_type")]
        type_name: String,
        /// The whole message object.
        raw: Value,
    },
}

impl MessageContent {
    /// The file a message of a media kind carries (image, audio, video, document, sticker).
    pub fn media(&self) -> Option<&Media> {
        match self {
            Self::Image(media)
            | Self::Audio(media)
            | Self::Video(media)
            | Self::Document(media)
            | Self::Sticker(media) => Some(media),
            _ => None,
        }
    }

    /// The type name shown to clients (`text`, `image`, …).
    pub fn kind(&self) -> &str {
        match self {
            Self::Text { .. } => "text",
            Self::Image(_) => "image",
            Self::Audio(_) => "audio",
            Self::Video(_) => "video",
            Self::Document(_) => "document",
            Self::Sticker(_) => "sticker",
            Self::Location { .. } => "location",
            Self::Contacts { .. } => "contacts",
            Self::Interactive(_) => "interactive",
            Self::Button { .. } => "button",
            Self::Reaction { .. } => "reaction",
            Self::Order { .. } => "order",
            Self::System { .. } => "system",
            Self::RequestWelcome => "request_welcome",
            Self::Edit { .. } => "edit",
            Self::Revoke { .. } => "revoke",
            Self::Unsupported { .. } => "unsupported",
            Self::Unknown { .. } => "unknown",
        }
    }

    /// Whether a customer's message of this kind opens (or restarts) the 24-hour
    /// customer-service window.
    ///
    /// Meta documents that customer messages open it; whether reactions do is undocumented, and
    /// system notices are not written by the customer. Those two are treated as not opening it,
    /// so the inbox never offers a free-form reply that Meta would refuse with 131047.
    pub fn opens_service_window(&self) -> bool {
        !matches!(self, Self::Reaction { .. } | Self::System { .. })
    }

    /// The words a search finds the message by (text, captions, file and place names, chosen
    /// replies); `None` for kinds without any.
    pub fn search_text(&self) -> Option<String> {
        let join = |parts: &[Option<&String>]| {
            let text: Vec<&str> = parts.iter().flatten().map(|s| s.as_str()).collect();
            (!text.is_empty()).then(|| text.join(" "))
        };
        match self {
            Self::Text { body } => Some(body.clone()),
            Self::Image(m)
            | Self::Video(m)
            | Self::Document(m)
            | Self::Audio(m)
            | Self::Sticker(m) => join(&[m.filename.as_ref(), m.caption.as_ref()]),
            Self::Location { name, address, .. } => join(&[name.as_ref(), address.as_ref()]),
            Self::Interactive(Interactive::ButtonReply { title, .. })
            | Self::Interactive(Interactive::ListReply { title, .. }) => Some(title.clone()),
            Self::Interactive(Interactive::FlowReply { body, .. }) => body.clone(),
            Self::Button { text, .. } => Some(text.clone()),
            Self::System { body, .. } => body.clone(),
            _ => None,
        }
    }

    /// A one-line preview for inbox lists, at most [`PREVIEW_CHARS`] characters.
    pub fn preview(&self) -> String {
        let text = match self {
            Self::Text { body } => body.clone(),
            Self::Image(m) => media_preview("Photo", m),
            Self::Video(m) => media_preview("Video", m),
            Self::Document(m) => m
                .filename
                .clone()
                .or_else(|| m.caption.clone())
                .map_or_else(|| "Document".to_owned(), |f| format!("Document: {f}")),
            Self::Audio(m) if m.voice == Some(true) => "Voice message".to_owned(),
            Self::Audio(_) => "Audio".to_owned(),
            Self::Sticker(_) => "Sticker".to_owned(),
            Self::Location { name, .. } => name
                .as_ref()
                .map_or_else(|| "Location".to_owned(), |n| format!("Location: {n}")),
            Self::Contacts { contacts } => format!("Contacts ({})", contacts.len()),
            Self::Interactive(Interactive::ButtonReply { title, .. })
            | Self::Interactive(Interactive::ListReply { title, .. }) => title.clone(),
            Self::Interactive(Interactive::FlowReply { body, .. }) => {
                body.clone().unwrap_or_else(|| "Form submitted".to_owned())
            }
            Self::Interactive(Interactive::Other { subtype, .. }) => format!("Reply ({subtype})"),
            Self::Button { text, .. } => text.clone(),
            Self::Reaction { emoji: Some(e), .. } => format!("Reacted {e}"),
            Self::Reaction { emoji: None, .. } => "Removed a reaction".to_owned(),
            Self::Order { product_items, .. } => format!("Order ({} items)", product_items.len()),
            Self::System { body, .. } => body.clone().unwrap_or_else(|| "System notice".to_owned()),
            Self::RequestWelcome => "Opened the chat".to_owned(),
            Self::Edit { .. } => "Edited a message".to_owned(),
            Self::Revoke { .. } => "Deleted a message".to_owned(),
            Self::Unsupported { .. } => "Unsupported message".to_owned(),
            Self::Unknown { type_name, .. } => format!("Unknown message ({type_name})"),
        };
        truncate_chars(&text, PREVIEW_CHARS)
    }
}

/// The longest preview, in characters.
pub const PREVIEW_CHARS: usize = 120;

fn media_preview(label: &str, media: &Media) -> String {
    media
        .caption
        .as_ref()
        .map_or_else(|| label.to_owned(), |c| format!("{label}: {c}"))
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A product the customer asked about (`context.referred_product`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferredProduct {
    /// The catalog.
    pub catalog_id: String,
    /// The product.
    pub product_retailer_id: String,
}

/// What a message refers to: a reply, a forward, a product.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessageContext {
    /// The author of the quoted message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The wamid of the quoted message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Forwarded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// Forwarded many times.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub frequently_forwarded: bool,
    /// The product asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_product: Option<ReferredProduct>,
}

/// The ad or post that brought the customer (Click-to-WhatsApp), kept whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Referral(pub Value);
