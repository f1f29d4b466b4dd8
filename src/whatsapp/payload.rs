//! Reading Meta's webhook bodies into domain instructions.
//!
//! Lenient by design: every `entry × change × messages/statuses/errors` element is visited
//! (never just `[0]`), missing optional parts are tolerated, numbers that arrive as strings
//! (and the reverse) are accepted, and a message whose type we do not know or whose body is
//! malformed is kept whole rather than dropped. What cannot be read at all is reported as a
//! [`Problem`], so the webhook shows up as a processing failure instead of vanishing.

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchboard_domain::business_account::AccountNotification;
use switchboard_domain::ids::WabaId;
use switchboard_domain::message::{
    DeliveryStatus, Interactive, Media, MessageContent, MessageContext, OrderItem, Referral,
    StatusReport,
};
use switchboard_domain::template::{TemplateChange, TemplateChangeKind};
use switchboard_domain::{
    ConversationId, Customer, MetaError, PhoneNumberId, Timestamp, WaMessageId,
};

/// Something a webhook asks of the domain.
#[derive(Debug, Clone, PartialEq)]
pub enum Instruction {
    /// A customer wrote.
    CustomerMessage(Box<CustomerMessage>),
    /// The business wrote from the WhatsApp Business app (coexistence echo).
    Echo(Box<Echo>),
    /// A delivery status for a message sent from this number.
    Status(Box<Status>),
    /// A template report.
    Template {
        /// Meta's template id.
        template_id: String,
        /// Content-derived id of the report (idempotency).
        report_id: String,
        /// The report.
        change: TemplateChange,
    },
    /// Anything else Meta reports about the account.
    AccountNotification {
        /// The business account.
        waba_id: WabaId,
        /// Content-derived id (idempotency).
        notification_id: String,
        /// The notification.
        notification: AccountNotification,
    },
}

/// A message from a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerMessage {
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// The business number.
    pub phone_number_id: PhoneNumberId,
    /// The customer.
    pub customer: Customer,
    /// Profile name from `contacts[]`.
    pub profile_name: Option<String>,
    /// Meta's id.
    pub wamid: WaMessageId,
    /// Meta's timestamp.
    pub sent_at: Timestamp,
    /// The content.
    pub content: MessageContent,
    /// Reply / forward context.
    pub context: Option<MessageContext>,
    /// Ad referral.
    pub referral: Option<Referral>,
    /// Errors Meta attached.
    pub errors: Vec<MetaError>,
}

/// A message the business sent from the WhatsApp Business app.
#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// The business number.
    pub phone_number_id: PhoneNumberId,
    /// The recipient.
    pub customer: Customer,
    /// Meta's id.
    pub wamid: WaMessageId,
    /// Meta's timestamp.
    pub sent_at: Timestamp,
    /// The content.
    pub content: MessageContent,
}

/// A delivery status report.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The recipient's conversation.
    pub conversation_id: ConversationId,
    /// The business number.
    pub phone_number_id: PhoneNumberId,
    /// The recipient.
    pub customer: Customer,
    /// The message reported on.
    pub wamid: WaMessageId,
    /// The report.
    pub report: StatusReport,
}

impl Status {
    /// The message aggregate the report is about: one of our sends names itself in
    /// `biz_opaque_callback_data` (so a status is matched even if it overtakes the send's own
    /// answer); anything else is keyed by its wamid.
    pub fn message_id(&self) -> &str {
        match self.report.callback_data.as_deref() {
            Some(ours) if ours.starts_with(OUR_MESSAGE_PREFIX) => ours,
            _ => self.wamid.as_str(),
        }
    }
}

/// Prefix of the ids of messages agents send through Switchboard (`out.<uuid>`).
pub const OUR_MESSAGE_PREFIX: &str = "out.";

/// Part of a webhook that could not be turned into an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

/// The result of reading one webhook body.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ParsedWebhook {
    /// What to do, in payload order.
    pub instructions: Vec<Instruction>,
    /// What could not be read.
    pub problems: Vec<Problem>,
}

/// Why a body could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a WhatsApp webhook envelope.
    #[error("not a WhatsApp webhook: {0}")]
    NotWhatsApp(String),
}

/// Fields that carry account-level notifications, recorded whole.
const ACCOUNT_FIELDS: &[&str] = &[
    "account_alerts",
    "account_review_update",
    "account_update",
    "automatic_events",
    "business_capability_update",
    "business_status_update",
    "calls",
    "flows",
    "history",
    "message_echoes",
    "partner_solutions",
    "payment_configuration_update",
    "phone_number_name_update",
    "phone_number_quality_update",
    "security",
    "smb_app_state_sync",
    "tracking_events",
    "user_preferences",
];

/// Reads a webhook body. `received_at` stands in for timestamps the payload lacks;
/// `extra_fields` are further fields to record as account notifications.
///
/// # Errors
/// When the body is not JSON or not a WhatsApp Business Account envelope.
pub fn parse(
    body: &[u8],
    received_at: Timestamp,
    extra_fields: &[String],
) -> Result<ParsedWebhook, PayloadError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    let object = root
        .get("object")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if object != "whatsapp_business_account" {
        return Err(PayloadError::NotWhatsApp(format!("object is {object:?}")));
    }
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| PayloadError::NotWhatsApp("no entry array".to_owned()))?;
    let mut parsed = ParsedWebhook::default();
    for entry in entries {
        let waba_id = WabaId::new(id(entry.get("id")).unwrap_or_default());
        let entry_time = seconds(entry.get("time")).unwrap_or(received_at);
        let Some(changes) = entry.get("changes").and_then(Value::as_array) else {
            parsed
                .problems
                .push(Problem(format!("entry {waba_id} has no changes")));
            continue;
        };
        for change in changes {
            let field = change
                .get("field")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let value = change.get("value").unwrap_or(&Value::Null);
            let context = ChangeContext {
                waba_id: &waba_id,
                entry_time,
                stated_time: seconds(entry.get("time")),
                received_at,
                extra_fields,
            };
            context.read_change(field, value, &mut parsed);
        }
    }
    Ok(parsed)
}

struct ChangeContext<'a> {
    waba_id: &'a WabaId,
    entry_time: Timestamp,
    /// `entry[].time` as Meta stated it (absent: `entry_time` is the receipt time).
    stated_time: Option<Timestamp>,
    received_at: Timestamp,
    extra_fields: &'a [String],
}

impl ChangeContext<'_> {
    fn read_change(&self, field: &str, value: &Value, out: &mut ParsedWebhook) {
        match field {
            "messages" => self.read_messages_change(value, out),
            "smb_message_echoes" => self.read_echoes(value, out),
            "message_template_status_update" => {
                self.template(TemplateChangeKind::Status, field, value, out)
            }
            "template_category_update" => {
                self.template(TemplateChangeKind::Category, field, value, out)
            }
            "message_template_quality_update" => {
                self.template(TemplateChangeKind::Quality, field, value, out)
            }
            "message_template_components_update" => {
                self.template(TemplateChangeKind::Components, field, value, out);
            }
            known
                if ACCOUNT_FIELDS.contains(&known)
                    || self.extra_fields.iter().any(|f| f == known) =>
            {
                self.notification(field, value, out);
            }
            unknown => out
                .problems
                .push(Problem(format!("unknown webhook field {unknown:?}"))),
        }
    }

    fn read_messages_change(&self, value: &Value, out: &mut ParsedWebhook) {
        let phone_number_id = value
            .pointer("/metadata/phone_number_id")
            .and_then(|v| text(Some(v)))
            .map(PhoneNumberId::new);
        let contacts = value
            .get("contacts")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let messages = array(value, "messages");
        let statuses = array(value, "statuses");
        if !messages.is_empty() || !statuses.is_empty() {
            let Some(phone_number_id) = phone_number_id.clone() else {
                out.problems.push(Problem(
                    "messages change without metadata.phone_number_id".to_owned(),
                ));
                return;
            };
            for message in messages {
                match self.customer_message(&phone_number_id, contacts, message) {
                    Ok(m) => out
                        .instructions
                        .push(Instruction::CustomerMessage(Box::new(m))),
                    Err(problem) => out.problems.push(problem),
                }
            }
            for status in statuses {
                match self.status(&phone_number_id, contacts, status) {
                    Ok(s) => out.instructions.push(Instruction::Status(Box::new(s))),
                    Err(problem) => out.problems.push(problem),
                }
            }
        }
        if !array(value, "errors").is_empty() {
            self.notification("messages.errors", value, out);
        }
        if messages.is_empty() && statuses.is_empty() && array(value, "errors").is_empty() {
            out.problems.push(Problem(
                "messages change with no messages, statuses or errors".to_owned(),
            ));
        }
    }

    fn customer_message(
        &self,
        phone_number_id: &PhoneNumberId,
        contacts: &[Value],
        message: &Value,
    ) -> Result<CustomerMessage, Problem> {
        let wamid =
            id(message.get("id")).ok_or_else(|| Problem("message without id".to_owned()))?;
        let from = text(message.get("from"));
        let from_user_id = text(message.get("from_user_id"));
        let contact = find_contact(contacts, from.as_deref(), from_user_id.as_deref());
        let wa_id = contact.and_then(|c| text(c.get("wa_id"))).or(from);
        let user_id = contact
            .and_then(|c| text(c.get("user_id")))
            .or(from_user_id);
        let customer = Customer::new(wa_id, user_id)
            .ok_or_else(|| Problem(format!("message {wamid} names no sender")))?;
        let profile_name = contact
            .and_then(|c| c.pointer("/profile/name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(CustomerMessage {
            conversation_id: ConversationId::for_customer(phone_number_id, &customer),
            phone_number_id: phone_number_id.clone(),
            customer,
            profile_name,
            wamid: WaMessageId::new(wamid),
            sent_at: seconds(message.get("timestamp")).unwrap_or(self.received_at),
            content: content(message),
            context: message.get("context").map(context),
            referral: message.get("referral").cloned().map(Referral),
            errors: errors(message.get("errors")),
        })
    }

    fn status(
        &self,
        phone_number_id: &PhoneNumberId,
        contacts: &[Value],
        status: &Value,
    ) -> Result<Status, Problem> {
        let wamid = id(status.get("id")).ok_or_else(|| Problem("status without id".to_owned()))?;
        let name = status
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let delivery = DeliveryStatus::parse(name).ok_or_else(|| {
            Problem(format!(
                "status {name:?} of {wamid} is not a known delivery status"
            ))
        })?;
        let first_contact = contacts.first();
        let wa_id = text(status.get("recipient_id"))
            .or_else(|| first_contact.and_then(|c| text(c.get("wa_id"))));
        let user_id = text(status.get("recipient_user_id"))
            .or_else(|| first_contact.and_then(|c| text(c.get("user_id"))));
        let customer = Customer::new(wa_id, user_id)
            .ok_or_else(|| Problem(format!("status of {wamid} names no recipient")))?;
        Ok(Status {
            conversation_id: ConversationId::for_customer(phone_number_id, &customer),
            phone_number_id: phone_number_id.clone(),
            customer,
            wamid: WaMessageId::new(wamid),
            report: StatusReport {
                status: delivery,
                at: seconds(status.get("timestamp")).unwrap_or(self.received_at),
                errors: errors(status.get("errors")),
                pricing: status.get("pricing").cloned(),
                billing_conversation: status.get("conversation").cloned(),
                callback_data: text(status.get("biz_opaque_callback_data")),
            },
        })
    }

    fn read_echoes(&self, value: &Value, out: &mut ParsedWebhook) {
        let Some(phone_number_id) = value
            .pointer("/metadata/phone_number_id")
            .and_then(|v| text(Some(v)))
            .map(PhoneNumberId::new)
        else {
            out.problems
                .push(Problem("echo without metadata.phone_number_id".to_owned()));
            return;
        };
        for echo in array(value, "message_echoes") {
            let wamid = id(echo.get("id"));
            let customer = Customer::new(text(echo.get("to")), text(echo.get("to_user_id")));
            match (wamid, customer) {
                (Some(wamid), Some(customer)) => {
                    out.instructions.push(Instruction::Echo(Box::new(Echo {
                        conversation_id: ConversationId::for_customer(&phone_number_id, &customer),
                        phone_number_id: phone_number_id.clone(),
                        customer,
                        wamid: WaMessageId::new(wamid),
                        sent_at: seconds(echo.get("timestamp")).unwrap_or(self.received_at),
                        content: content(echo),
                    })))
                }
                _ => out
                    .problems
                    .push(Problem("echo without id or recipient".to_owned())),
            }
        }
    }

    fn template(
        &self,
        kind: TemplateChangeKind,
        field: &str,
        value: &Value,
        out: &mut ParsedWebhook,
    ) {
        let Some(template_id) = id(value.get("message_template_id")) else {
            // A template report that names no template is still worth keeping.
            self.notification(field, value, out);
            return;
        };
        let new_value = match kind {
            TemplateChangeKind::Status => text(value.get("event")),
            TemplateChangeKind::Category => text(value.get("new_category")),
            TemplateChangeKind::Quality => text(value.get("new_quality_score")),
            TemplateChangeKind::Components => None,
        };
        out.instructions.push(Instruction::Template {
            template_id,
            // The entry's time is part of the report: Meta's redelivery repeats it, while a
            // later report with the same content (approved again after an edit) has its own.
            report_id: match self.stated_time {
                Some(time) => digest(&format!("{field}@{}", time.unix_millis()), value),
                None => digest(field, value),
            },
            change: TemplateChange {
                kind,
                waba_id: self.waba_id.clone(),
                name: text(value.get("message_template_name")),
                language: text(value.get("message_template_language")),
                value: new_value,
                category: text(value.get("message_template_category")).or_else(|| {
                    (kind == TemplateChangeKind::Category)
                        .then(|| text(value.get("new_category")))
                        .flatten()
                }),
                reason: text(value.get("reason")),
                at: self.entry_time,
                details: value.clone(),
            },
        });
    }

    fn notification(&self, field: &str, value: &Value, out: &mut ParsedWebhook) {
        let phone_number_id = value
            .pointer("/metadata/phone_number_id")
            .or_else(|| value.get("phone_number_id"))
            .and_then(|v| text(Some(v)))
            .map(PhoneNumberId::new);
        let summary = text(value.get("event"))
            .or_else(|| text(value.get("decision")))
            .or_else(|| value.pointer("/errors/0/title").and_then(|v| text(Some(v))))
            .or_else(|| value.pointer("/calls/0/event").and_then(|v| text(Some(v))));
        let at = seconds(value.get("timestamp"))
            .or_else(|| {
                value
                    .pointer("/calls/0/timestamp")
                    .and_then(|v| seconds(Some(v)))
            })
            .unwrap_or(self.entry_time);
        out.instructions.push(Instruction::AccountNotification {
            waba_id: self.waba_id.clone(),
            notification_id: digest(field, value),
            notification: AccountNotification {
                field: field.to_owned(),
                phone_number_id,
                summary,
                at,
                value: value.clone(),
            },
        });
    }
}

/// A content-derived id: the same report delivered twice gets the same id.
fn digest(field: &str, value: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(field.as_bytes());
    hasher.update([0]);
    hasher.update(value.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

fn array<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A string or number as text; `None` for null, empty or other shapes.
/// An identifier Meta assigned (they become aggregate ids): [`text`] without control
/// characters. None of Meta's holds one; one that does is unreadable here, the same on both
/// backends, rather than failing in storage.
fn id(value: Option<&Value>) -> Option<String> {
    text(value).filter(|id| !id.contains(char::is_control))
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Unix seconds given as a string or a number.
fn seconds(value: Option<&Value>) -> Option<Timestamp> {
    let seconds = match value? {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    Timestamp::from_unix_seconds(seconds)
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn find_contact<'c>(
    contacts: &'c [Value],
    from: Option<&str>,
    from_user_id: Option<&str>,
) -> Option<&'c Value> {
    contacts
        .iter()
        .find(|c| {
            let wa_id = c.get("wa_id").and_then(Value::as_str);
            let user_id = c.get("user_id").and_then(Value::as_str);
            (from.is_some() && wa_id == from) || (from_user_id.is_some() && user_id == from_user_id)
        })
        .or_else(|| (contacts.len() == 1).then(|| &contacts[0]))
}

fn errors(value: Option<&Value>) -> Vec<MetaError> {
    let Some(Value::Array(items)) = value else {
        return vec![];
    };
    items
        .iter()
        .map(|e| MetaError {
            code: number(e.get("code")).map_or(0, |c| c as i64),
            title: text(e.get("title")),
            message: text(e.get("message")),
            details: e.pointer("/error_data/details").and_then(|v| text(Some(v))),
            href: text(e.get("href")),
        })
        .collect()
}

fn context(value: &Value) -> MessageContext {
    let flag = |key| value.get(key).and_then(Value::as_bool).unwrap_or(false);
    MessageContext {
        from: text(value.get("from")),
        id: text(value.get("id")),
        forwarded: flag("forwarded"),
        frequently_forwarded: flag("frequently_forwarded"),
        referred_product: value
            .get("referred_product")
            .and_then(|p| serde_json::from_value(p.clone()).ok()),
    }
}

fn media(value: Option<&Value>) -> Media {
    let Some(value) = value else {
        return Media::default();
    };
    Media {
        id: text(value.get("id")),
        url: text(value.get("url")).or_else(|| text(value.get("link"))),
        mime_type: text(value.get("mime_type")),
        sha256: text(value.get("sha256")),
        caption: text(value.get("caption")),
        filename: text(value.get("filename")),
        voice: value.get("voice").and_then(Value::as_bool),
        animated: value.get("animated").and_then(Value::as_bool),
    }
}

/// The content of a message object, by its `type`; anything unreadable is kept raw.
fn content(message: &Value) -> MessageContent {
    let kind = message
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    known_content(kind, message).unwrap_or_else(|| MessageContent::Unknown {
        type_name: kind.to_owned(),
        raw: message.clone(),
    })
}

fn known_content(kind: &str, message: &Value) -> Option<MessageContent> {
    let body = message.get(kind);
    Some(match kind {
        "text" => MessageContent::Text {
            body: body?.get("body")?.as_str()?.to_owned(),
        },
        "image" => MessageContent::Image(media(body)),
        "audio" => MessageContent::Audio(media(body)),
        "video" => MessageContent::Video(media(body)),
        "document" => MessageContent::Document(media(body)),
        "sticker" => MessageContent::Sticker(media(body)),
        "location" => {
            let body = body?;
            MessageContent::Location {
                latitude: number(body.get("latitude"))?,
                longitude: number(body.get("longitude"))?,
                name: text(body.get("name")),
                address: text(body.get("address")),
                url: text(body.get("url")),
            }
        }
        "contacts" => MessageContent::Contacts {
            contacts: body?.as_array()?.clone(),
        },
        "interactive" => MessageContent::Interactive(interactive(body?)),
        "button" => {
            let body = body?;
            MessageContent::Button {
                text: text(body.get("text"))?,
                payload: text(body.get("payload")),
            }
        }
        "reaction" => {
            let body = body?;
            MessageContent::Reaction {
                message_id: text(body.get("message_id"))?,
                emoji: text(body.get("emoji")),
            }
        }
        "order" => {
            let body = body?;
            let items = body
                .get("product_items")
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(order_item).collect())
                .unwrap_or_default();
            MessageContent::Order {
                catalog_id: text(body.get("catalog_id")),
                text: text(body.get("text")),
                product_items: items,
            }
        }
        "system" => {
            let body = body?;
            MessageContent::System {
                subtype: text(body.get("type")),
                body: text(body.get("body")),
                new_wa_id: text(body.get("wa_id")).or_else(|| text(body.get("new_wa_id"))),
                raw: body.clone(),
            }
        }
        "request_welcome" => MessageContent::RequestWelcome,
        "edit" => {
            let body = body?;
            MessageContent::Edit {
                original_message_id: text(body.get("original_message_id"))?,
                message: body.get("message").cloned().unwrap_or(Value::Null),
            }
        }
        "revoke" => MessageContent::Revoke {
            original_message_id: text(body?.get("original_message_id"))?,
        },
        "unsupported" | "unknown" => MessageContent::Unsupported {
            subtype: body.and_then(|b| text(b.get("type"))),
        },
        _ => return None,
    })
}

fn order_item(item: &Value) -> Option<OrderItem> {
    Some(OrderItem {
        product_retailer_id: text(item.get("product_retailer_id"))?,
        quantity: number(item.get("quantity"))?,
        item_price: number(item.get("item_price"))?,
        currency: text(item.get("currency")).unwrap_or_default(),
    })
}

fn interactive(body: &Value) -> Interactive {
    let subtype = body.get("type").and_then(Value::as_str).unwrap_or_default();
    let reply = body.get(subtype);
    let parsed = match subtype {
        "button_reply" => reply.and_then(|r| {
            Some(Interactive::ButtonReply {
                id: text(r.get("id"))?,
                title: text(r.get("title"))?,
            })
        }),
        "list_reply" => reply.and_then(|r| {
            Some(Interactive::ListReply {
                id: text(r.get("id"))?,
                title: text(r.get("title"))?,
                description: text(r.get("description")),
            })
        }),
        "nfm_reply" => reply.map(|r| Interactive::FlowReply {
            name: text(r.get("name")),
            body: text(r.get("body")),
            response: match r.get("response_json") {
                Some(Value::String(json)) => {
                    serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.clone()))
                }
                Some(other) => other.clone(),
                None => Value::Null,
            },
        }),
        _ => None,
    };
    parsed.unwrap_or_else(|| Interactive::Other {
        subtype: subtype.to_owned(),
        raw: body.clone(),
    })
}
