//! Turning log rows back into domain events, once per event for all projections.

use switchboard_domain::agent::{Agent, AgentEvent};
use switchboard_domain::api_key::{ApiKey, ApiKeyEvent};
use switchboard_domain::assignment::{AssignmentPolicy, AssignmentPolicyEvent};
use switchboard_domain::business_account::{BusinessAccount, BusinessAccountEvent};
use switchboard_domain::conversation::{Conversation, ConversationEvent};
use switchboard_domain::group::{Group, GroupEvent};
use switchboard_domain::message::{Message, MessageEvent};
use switchboard_domain::quick_reply::{QuickReply, QuickReplyEvent};
use switchboard_domain::sla::{SlaPolicy, SlaPolicyEvent};
use switchboard_domain::template::{Template, TemplateEvent};
use switchboard_domain::upload::{Upload, UploadEvent};
use switchboard_domain::webhook_endpoint::{WebhookEndpoint, WebhookEndpointEvent};
use switchboard_store::RecordedEvent;

use crate::ProjectionError;

fn aggregate_type<A: cqrs_es::Aggregate>() -> &'static str {
    A::TYPE
}

/// A log event decoded into its domain type.
///
/// Variants differ in size; that is fine for a value decoded once per event and dropped.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DecodedEvent {
    /// An event of a conversation.
    Conversation(ConversationEvent),
    /// An event of a message.
    Message(MessageEvent),
    /// An event of a template.
    Template(TemplateEvent),
    /// An event of a business account.
    BusinessAccount(BusinessAccountEvent),
    /// An event of an agent.
    Agent(AgentEvent),
    /// An event of a group.
    Group(GroupEvent),
    /// An event of an auto-assignment policy.
    AssignmentPolicy(AssignmentPolicyEvent),
    /// An event of a quick reply.
    QuickReply(QuickReplyEvent),
    /// An event of an SLA policy.
    SlaPolicy(SlaPolicyEvent),
    /// An event of an upload.
    Upload(UploadEvent),
    /// An event of an API key.
    ApiKey(ApiKeyEvent),
    /// An event of an outgoing webhook endpoint.
    WebhookEndpoint(WebhookEndpointEvent),
    /// An aggregate type no projection here reads.
    Other,
}

impl DecodedEvent {
    /// Decodes `event` by its aggregate type.
    ///
    /// # Errors
    /// [`ProjectionError::Undecodable`] when the payload does not match its type.
    pub fn decode(event: &RecordedEvent) -> Result<Self, ProjectionError> {
        let undecodable = |source| ProjectionError::Undecodable {
            position: event.position,
            event_type: event.event_type.clone(),
            source,
        };
        let payload = event.payload.clone();
        Ok(match event.aggregate_type.as_str() {
            t if t == aggregate_type::<Conversation>() => {
                Self::Conversation(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<Message>() => {
                Self::Message(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<Template>() => {
                Self::Template(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<BusinessAccount>() => {
                Self::BusinessAccount(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<Agent>() => {
                Self::Agent(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<Group>() => {
                Self::Group(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<AssignmentPolicy>() => {
                Self::AssignmentPolicy(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<QuickReply>() => {
                Self::QuickReply(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<SlaPolicy>() => {
                Self::SlaPolicy(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<Upload>() => {
                Self::Upload(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<ApiKey>() => {
                Self::ApiKey(serde_json::from_value(payload).map_err(undecodable)?)
            }
            t if t == aggregate_type::<WebhookEndpoint>() => {
                Self::WebhookEndpoint(serde_json::from_value(payload).map_err(undecodable)?)
            }
            _ => Self::Other,
        })
    }
}
