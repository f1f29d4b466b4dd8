//! Agents' replies: validated against Meta's limits and the conversation's rules, then stored
//! as a request before any network call. The same `client_id` again (a double click, a retry on
//! a weak connection) lands on the same message and sends nothing more.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::conversation::{Conversation, ConversationCommand, Write};
use switchboard_domain::message::{Message, MessageCommand, OutboundContent};
use switchboard_domain::{ConversationId, Timestamp};
use switchboard_store::EventRepository;
use uuid::Uuid;

use crate::auth::accounts::actor_metadata;
use crate::http::extract::{AuthAgent, ContentJson};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use crate::outbox;
use crate::transaction::{retrying, Attempt, Transaction};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send))
        .routes(routes!(mark_read))
}

/// Namespace of outbound message ids: one message per (conversation, client id), forever.
const OUTBOUND_NAMESPACE: Uuid = Uuid::from_u128(0x4d2c_9a7e_51b8_4f06_a3d1_7c9e_2b64_f018);

/// How soon a message goes out among those waiting for the same number.
#[derive(Deserialize, Clone, Copy, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }
}

/// A reply as the API takes it.
#[derive(Deserialize)]
pub(super) struct SendRequest {
    pub(super) client_id: String,
    #[serde(flatten)]
    pub(super) content: OutboundContent,
    pub(super) reply_to: Option<String>,
    #[serde(default)]
    pub(super) priority: Priority,
    pub(super) expected_version: Option<u64>,
}

/// A reply written from a quick reply: its text with the variables filled.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuickReplySend {
    client_id: String,
    quick_reply_id: String,
    /// Values for variables beyond `customer.name`, `agent.name`, `conversation.id` (or
    /// replacing them).
    #[serde(default)]
    variables: std::collections::BTreeMap<String, String>,
    reply_to: Option<String>,
    #[serde(default)]
    priority: Priority,
    expected_version: Option<u64>,
}

/// The most variables a quick-reply send names.
const MAX_VARIABLES: usize = 20;

impl QuickReplySend {
    /// The text reply this stands for: the quick reply (one the caller may use) rendered.
    async fn render(
        self,
        state: &AppState,
        auth: &AuthAgent,
        conversation_id: &str,
    ) -> Result<SendRequest, ApiError> {
        use switchboard_domain::quick_reply::{render, QuickReply};
        let too_long = self
            .variables
            .iter()
            .any(|(k, v)| k.len() > 64 || v.len() > 1024);
        if self.variables.len() > MAX_VARIABLES || too_long {
            return Err(ApiError::Unprocessable {
                code: "invalid_message",
                message: format!(
                    "variables: at most {MAX_VARIABLES}, names of 64 and values of 1024 bytes"
                ),
            });
        }
        let (quick_reply, _) = state
            .log
            .load_aggregate::<QuickReply>(&self.quick_reply_id)
            .await?;
        if !quick_reply
            .visibility()
            .is_some_and(|v| v.usable_by(&auth.actor))
        {
            return Err(ApiError::Unprocessable {
                code: "unknown_quick_reply",
                message: format!("no quick reply {} you may use", self.quick_reply_id),
            });
        }
        let conversation =
            crate::http::conversations::visible(state, auth, conversation_id).await?;
        let (agent, _) = state
            .log
            .load_aggregate::<switchboard_domain::agent::Agent>(&auth.actor.agent_id.to_string())
            .await?;
        let customer = conversation.customer.profile_name.unwrap_or_default();
        let mut values: Vec<(&str, &str)> = vec![
            ("customer.name", customer.as_str()),
            ("agent.name", agent.name().unwrap_or_default()),
            ("conversation.id", conversation_id),
        ];
        for (name, value) in &self.variables {
            values.retain(|(n, _)| n != name);
            values.push((name.as_str(), value.as_str()));
        }
        let text = render(quick_reply.text(), &values);
        let content = match quick_reply.media() {
            None => OutboundContent::Text {
                body: text,
                preview_url: false,
            },
            Some(media) => {
                use switchboard_domain::message::OutboundMedia;
                use switchboard_domain::quick_reply::MediaKind;
                let attached = OutboundMedia {
                    id: media.id.clone(),
                    link: media.link.clone(),
                    caption: Some(text),
                    filename: media.filename.clone(),
                    upload_id: None,
                };
                match media.kind {
                    MediaKind::Image => OutboundContent::Image(attached),
                    MediaKind::Video => OutboundContent::Video(attached),
                    MediaKind::Document => OutboundContent::Document(attached),
                }
            }
        };
        Ok(SendRequest {
            client_id: self.client_id,
            content,
            reply_to: self.reply_to,
            priority: self.priority,
            expected_version: self.expected_version,
        })
    }
}

/// The wire form of a send (documentation): `client_id`, `type`, and that type's fields; or
/// `client_id` and `quick_reply_id` (with `variables`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct SendRequestDoc {
    /// The client's idempotency key: the same one again sends nothing more.
    client_id: String,
    /// Send a quick reply (its text, variables filled) instead of `type` and content.
    quick_reply_id: Option<String>,
    /// Values of the quick reply's variables beyond `customer.name`, `agent.name` and
    /// `conversation.id`.
    variables: Option<std::collections::BTreeMap<String, String>>,
    /// `text {body, preview_url?}`, `image|audio|video|document|sticker {link | id, caption?,
    /// filename?}`, `location {latitude, longitude, name?, address?}`, `reaction {message_id,
    /// emoji}`, `buttons {body, buttons: [{id, title}], header?, footer?}`, `list {body, button,
    /// sections: [{title?, rows: [{id, title, description?}]}], header?, footer?}`, `template
    /// {name, language, components?}`.
    #[schema(rename = "type")]
    kind: MessageTypeDoc,
    /// The message this replies to.
    reply_to: Option<String>,
    priority: Option<Priority>,
    /// The conversation version the agent last saw (409 if it moved on).
    expected_version: Option<u64>,
}

/// The content types an agent may send.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum MessageTypeDoc {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Reaction,
    Buttons,
    List,
    Template,
}

/// A queued message.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Accepted {
    id: String,
    client_id: String,
    /// `queued`.
    #[schema(value_type = String)]
    status: &'static str,
}

/// Queues a reply. 202 with the message id; the same `client_id` again answers the same.
///
/// The reply is a conversation event and the message's request, appended in one transaction:
/// lock, scope, working hours, window and `expected_version` are decided with the append, so
/// of two agents answering with the same version exactly one gets through.
#[utoipa::path(post, path = "/api/conversations/{id}/messages", tag = "messages", params(("id" = String, Path, description = "Conversation id")),
    request_body = SendRequestDoc, security(("bearer" = [])),
    responses((status = 202, body = Accepted), Errors))]
async fn send(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(conversation_id): Path<String>,
    ContentJson(body): ContentJson<serde_json::Value>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    ConversationId::parse(&conversation_id).ok_or(ApiError::NotFound("conversation"))?;
    let (request, quick_reply) = if body.get("quick_reply_id").is_some() {
        let send = crate::http::extract::from_value::<QuickReplySend>(&body)?;
        let quick_reply = send.quick_reply_id.clone();
        let request = send.render(&state, &auth, &conversation_id).await?;
        (request, Some(quick_reply))
    } else {
        (
            crate::http::extract::from_value::<SendRequest>(&body)?,
            None,
        )
    };
    queue(&state, &auth, &conversation_id, request, quick_reply).await
}

/// Validates a reply and queues it: a template's parameters against the catalogue, then the
/// conversation's rules decided with the append.
pub(super) async fn queue(
    state: &AppState,
    auth: &AuthAgent,
    conversation_id: &str,
    mut request: SendRequest,
    quick_reply: Option<String>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let conversation_key =
        ConversationId::parse(conversation_id).ok_or(ApiError::NotFound("conversation"))?;
    let client_id = request.client_id.trim().to_owned();
    if client_id.is_empty() || client_id.len() > 128 || client_id.contains(char::is_control) {
        return Err(ApiError::Unprocessable {
            code: "invalid_client_id",
            message: "client_id must be 1 to 128 characters, none of them control characters"
                .to_owned(),
        });
    }
    if (request.reply_to.as_ref()).is_some_and(|r| r.len() > 512 || r.contains(char::is_control)) {
        return Err(ApiError::Unprocessable {
            code: "invalid_message",
            message: "reply_to: a message id of at most 512 bytes, without control characters"
                .to_owned(),
        });
    }
    request
        .content
        .validate()
        .map_err(|e| ApiError::Unprocessable {
            code: "invalid_message",
            message: e.to_string(),
        })?;
    crate::http::template_check::check_template(state, &mut request.content).await?;
    check_upload(state, &request.content).await?;
    check_references(state, conversation_key, &request).await?;
    let message_id = format!(
        "out.{}",
        Uuid::new_v5(
            &OUTBOUND_NAMESPACE,
            format!("{conversation_id}/{client_id}").as_bytes()
        )
    );
    let reply = Reply {
        conversation_id,
        conversation_key,
        message_id: &message_id,
        client_id: &client_id,
        request: &request,
        auth,
        now: state.clock.now(),
        quick_reply,
    };
    let first_response = retrying(|| reply.attempt(&state.log)).await?;
    if let Some(waited_ms) = first_response {
        metrics::histogram!(crate::metrics::FIRST_RESPONSE).record(waited_ms as f64 / 1000.0);
    }
    let accepted = Accepted {
        id: message_id.clone(),
        client_id,
        status: "queued",
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// One reply being decided.
struct Reply<'a> {
    conversation_id: &'a str,
    conversation_key: ConversationId,
    message_id: &'a str,
    client_id: &'a str,
    request: &'a SendRequest,
    auth: &'a AuthAgent,
    now: Timestamp,
    /// The quick reply it was written from, recorded in the events' metadata.
    quick_reply: Option<String>,
}

impl Reply<'_> {
    /// One try: a message that exists already (the same `client_id` again) is the answer;
    /// otherwise the conversation decides the reply and the message records the request.
    /// Answers, when this reply was the conversation's first response, how long the customer
    /// had waited (milliseconds).
    async fn attempt(&self, log: &EventRepository) -> Result<Attempt<Option<i64>>, ApiError> {
        let by = self.auth.actor.agent_id;
        let mut metadata = actor_metadata(Some(by), self.now);
        if let Some(quick_reply) = &self.quick_reply {
            metadata.insert("quick_reply_id".to_owned(), quick_reply.clone());
        }
        let mut tx = Transaction::new(log, &metadata);
        let mut message = tx.load::<Message>(self.message_id).await?;
        if message.aggregate.exists() {
            return Ok(Attempt::Done(None));
        }
        let mut conversation = tx.load::<Conversation>(self.conversation_id).await?;
        let (Some(phone_number_id), Some(customer)) = (
            conversation.aggregate.phone_number_id().cloned(),
            conversation.aggregate.customer().cloned(),
        ) else {
            return Err(ApiError::NotFound("conversation"));
        };
        let write = Write {
            actor: self.auth.actor.clone(),
            expected_version: self.request.expected_version,
            at: self.now,
        };
        let reply = ConversationCommand::Reply {
            write,
            message_id: self.message_id.to_owned(),
            template: self.request.content.is_template(),
        };
        tx.decide(self.conversation_id, &mut conversation, reply)
            .await?;
        let first_response = conversation
            .aggregate
            .first_response()
            .filter(|(_, answered)| *answered == self.now)
            .map(|(since, answered)| answered.unix_millis() - since.unix_millis());
        let request = MessageCommand::RequestOutbound {
            conversation_id: self.conversation_key,
            phone_number_id,
            customer,
            client_id: self.client_id.to_owned(),
            content: self.request.content.clone(),
            reply_to: self.request.reply_to.clone(),
            priority: self.request.priority.as_str().to_owned(),
            by,
            at: self.now,
        };
        let events = tx.decide(self.message_id, &mut message, request).await?;
        for statement in outbox::changes(self.message_id, &events) {
            tx.also(statement);
        }
        Ok(Attempt::commit(tx, first_response).await?)
    }
}

/// A quoted message (`reply_to`) and a reaction's target must be messages of this conversation.
async fn check_references(
    state: &AppState,
    conversation: ConversationId,
    request: &SendRequest,
) -> Result<(), ApiError> {
    let reaction = match &request.content {
        OutboundContent::Reaction { message_id, .. } => Some(("message_id", message_id)),
        _ => None,
    };
    let quoted = request.reply_to.as_ref().map(|id| ("reply_to", id));
    for (field, id) in quoted.into_iter().chain(reaction) {
        let known = id.len() <= 256
            && !id.contains('\0')
            && state
                .log
                .load_aggregate::<Message>(id)
                .await?
                .0
                .conversation_id()
                == Some(conversation);
        if !known {
            return Err(ApiError::Unprocessable {
                code: "unknown_message",
                message: format!("{field}: no message {id} in this conversation"),
            });
        }
    }
    Ok(())
}

/// Marks the customer's messages read: at Meta (blue ticks; when sending is configured) and in
/// the inbox (unread count back to zero). Meta is told first, so a refusal changes nothing.
#[utoipa::path(post, path = "/api/conversations/{id}/read", tag = "messages", params(("id" = String, Path, description = "Conversation id")), security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::ReadUpTo), Errors))]
async fn mark_read(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(conversation_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::whatsapp::graph::SendOutcome;
    let (conversation, _) = state
        .log
        .load_aggregate::<Conversation>(&conversation_id)
        .await?;
    let now = state.clock.now();
    let by = auth.actor.agent_id;
    let write = Write {
        actor: auth.actor,
        expected_version: None,
        at: now,
    };
    if !conversation.visible_to(&write.actor) {
        return Err(ApiError::NotFound("conversation"));
    }
    let up_to = conversation
        .last_customer_message()
        .cloned()
        .ok_or(ApiError::Unprocessable {
            code: "nothing_to_read",
            message: "the customer has not written yet".to_owned(),
        })?;
    if let (Some(graph), Some(phone)) = (&state.graph, conversation.phone_number_id()) {
        match graph.mark_read(phone.as_str(), up_to.as_str()).await {
            SendOutcome::Accepted(_) => {}
            SendOutcome::Refused { error, .. } => {
                return Err(ApiError::Conflict {
                    code: "meta_refused",
                    message: format!(
                        "Meta refused the read receipt: {} {}",
                        error.code,
                        error.message.unwrap_or_default()
                    ),
                })
            }
            SendOutcome::Unreachable(_) => return Err(ApiError::Unavailable("Graph API")),
        }
    }
    state
        .frameworks
        .conversations
        .execute(
            &conversation_id,
            ConversationCommand::MarkRead { write },
            &actor_metadata(Some(by), now),
        )
        .await?;
    Ok(Json(
        serde_json::json!({ "id": conversation_id, "read_up_to": up_to }),
    ))
}

/// A send naming an upload (`upload_id`) needs an upload of the message's kind.
async fn check_upload(state: &AppState, content: &OutboundContent) -> Result<(), ApiError> {
    let Some(id) = content.media().and_then(|m| m.upload_id.as_deref()) else {
        return Ok(());
    };
    // From the log, not a read model: an upload made a moment ago is there already.
    let (upload, _) = state
        .log
        .load_aggregate::<switchboard_domain::upload::Upload>(id)
        .await?;
    let kind = upload
        .file()
        .map(|f| switchboard_domain::upload::kind_of(&f.mime_type));
    match kind {
        Some(kind) if kind == content.kind() => Ok(()),
        Some(kind) => Err(ApiError::Unprocessable {
            code: "invalid_message",
            message: format!(
                "upload_id: the file is sent as {kind}, not as {}",
                content.kind()
            ),
        }),
        None => Err(ApiError::Unprocessable {
            code: "unknown_upload",
            message: format!("upload_id: no upload {id} (POST /api/media first)"),
        }),
    }
}
