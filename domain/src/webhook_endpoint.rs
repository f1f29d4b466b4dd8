//! Outgoing webhook endpoints: where integrations (a CRM, a helpdesk, a chatbot) receive the
//! event log, signed. Admins register, change, disable and delete them; the delivery worker
//! disables one that has failed for too long. The signing secret is not part of these events
//! (the log is exported and streamed): it lives with the server's credentials.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::agent::Role;
use crate::{Actor, AgentId, GroupId, Timestamp};

/// The longest URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The most event-type patterns, phone numbers or groups one endpoint lists.
pub const MAX_FILTERS: usize = 50;
/// The longest pattern or phone number id, in characters.
pub const MAX_FILTER_CHARS: usize = 100;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// What an endpoint receives and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// Where deliveries go (`http` or `https`; the server checks the address).
    pub url: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Event types it receives; `*` matches any run of characters (`Message*`, `*`).
    pub event_types: Vec<String>,
    /// Only events of conversations on these numbers (empty: any event).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_number_ids: Vec<String>,
    /// Only events of conversations in these groups (empty: any event).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_ids: Vec<GroupId>,
    /// The bot's endpoint: it receives only events of conversations that are with the bot,
    /// and while it fails, customers waiting for the bot are handed to the humans.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
}

impl EndpointSpec {
    fn check(&self) -> Result<(), WebhookEndpointError> {
        let invalid = WebhookEndpointError::Invalid;
        if self.url.is_empty() || self.url.len() > MAX_URL_BYTES {
            return Err(invalid("the URL must have 1 to 2048 bytes"));
        }
        if self.event_types.is_empty() {
            return Err(invalid(
                "event_types needs at least one pattern (`*`: every event)",
            ));
        }
        if self.event_types.len() > MAX_FILTERS
            || self.phone_number_ids.len() > MAX_FILTERS
            || self.group_ids.len() > MAX_FILTERS
        {
            return Err(invalid(
                "at most 50 event types, phone numbers and groups each",
            ));
        }
        let bad = |s: &String| {
            s.trim().is_empty()
                || s.chars().count() > MAX_FILTER_CHARS
                || s.chars().any(|c| c.is_control() || c.is_whitespace())
        };
        if self.event_types.iter().any(bad) || self.phone_number_ids.iter().any(bad) {
            return Err(invalid(
                "event types and phone numbers are 1 to 100 characters without spaces",
            ));
        }
        if self.description.as_ref().is_some_and(|d| {
            d.chars().count() > MAX_DESCRIPTION_CHARS || d.chars().any(char::is_control)
        }) {
            return Err(invalid("the description has at most 500 characters"));
        }
        Ok(())
    }

    /// Whether `event_type` is one it receives.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types
            .iter()
            .any(|pattern| wildmatch::WildMatch::new(pattern).matches(event_type))
    }
}

/// Requests to a [`WebhookEndpoint`].
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEndpointCommand {
    /// Register it (admins).
    Register {
        /// What and where.
        spec: EndpointSpec,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Replace what and where (admins).
    Update {
        /// The new spec.
        spec: EndpointSpec,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Stop deliveries (admins, or the delivery worker when `by` is `None`).
    Disable {
        /// Why.
        reason: String,
        /// Who (`None`: the delivery worker, after failing too long).
        by: Option<Actor>,
        /// When.
        at: Timestamp,
    },
    /// Resume deliveries from where they stopped (admins).
    Enable {
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Delete it (admins).
    Delete {
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
}

/// Events of a [`WebhookEndpoint`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WebhookEndpointEvent {
    /// Registered: deliveries start after this event.
    Registered {
        /// What and where.
        spec: EndpointSpec,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// What and where changed.
    Updated {
        /// The new spec.
        spec: EndpointSpec,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// Deliveries stopped.
    Disabled {
        /// Why (`failing` when the worker decided).
        reason: String,
        /// Who (`None`: the delivery worker).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// Deliveries resumed.
    Enabled {
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

impl DomainEvent for WebhookEndpointEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Registered { .. } => "WebhookEndpointRegistered",
            Self::Updated { .. } => "WebhookEndpointUpdated",
            Self::Disabled { .. } => "WebhookEndpointDisabled",
            Self::Enabled { .. } => "WebhookEndpointEnabled",
            Self::Deleted { .. } => "WebhookEndpointDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a webhook endpoint command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookEndpointError {
    /// Only admins manage endpoints.
    #[error("only admins manage webhook endpoints")]
    NotPermitted,
    /// No such endpoint (or deleted).
    #[error("no such webhook endpoint")]
    NotFound,
    /// The id is taken.
    #[error("a webhook endpoint with this id exists")]
    AlreadyExists,
    /// A bad spec.
    #[error("invalid webhook endpoint: {0}")]
    Invalid(&'static str),
}

/// One outgoing webhook endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    spec: Option<EndpointSpec>,
    enabled: bool,
    deleted: bool,
    disabled_reason: Option<String>,
    created: Option<(AgentId, Timestamp)>,
    updated_at: Option<Timestamp>,
}

impl WebhookEndpoint {
    /// What it receives, unless it was never registered or is deleted.
    pub fn spec(&self) -> Option<&EndpointSpec> {
        self.spec.as_ref().filter(|_| !self.deleted)
    }

    /// Whether deliveries run.
    pub fn enabled(&self) -> bool {
        self.enabled && !self.deleted
    }

    /// Why deliveries stopped, while they are.
    pub fn disabled_reason(&self) -> Option<&str> {
        self.disabled_reason.as_deref().filter(|_| !self.enabled)
    }

    /// Who registered it and when.
    pub fn created(&self) -> Option<(AgentId, Timestamp)> {
        self.created
    }

    /// Its last change.
    pub fn updated_at(&self) -> Option<Timestamp> {
        self.updated_at
    }

    fn decide(
        &self,
        command: WebhookEndpointCommand,
    ) -> Result<Vec<WebhookEndpointEvent>, WebhookEndpointError> {
        let admin = |by: &Actor| {
            (by.role == Role::Admin)
                .then_some(by.agent_id)
                .ok_or(WebhookEndpointError::NotPermitted)
        };
        if let WebhookEndpointCommand::Register { spec, by, at } = command {
            let by = admin(&by)?;
            if self.spec.is_some() {
                return Err(WebhookEndpointError::AlreadyExists);
            }
            spec.check()?;
            return Ok(vec![WebhookEndpointEvent::Registered { spec, by, at }]);
        }
        let Some(current) = self.spec() else {
            return Err(WebhookEndpointError::NotFound);
        };
        Ok(match command {
            WebhookEndpointCommand::Register { .. } => vec![],
            WebhookEndpointCommand::Update { spec, by, at } => {
                let by = admin(&by)?;
                spec.check()?;
                if spec == *current {
                    return Ok(vec![]);
                }
                vec![WebhookEndpointEvent::Updated { spec, by, at }]
            }
            WebhookEndpointCommand::Disable { reason, by, at } => {
                let by = by.as_ref().map(admin).transpose()?;
                if !self.enabled {
                    return Ok(vec![]);
                }
                vec![WebhookEndpointEvent::Disabled { reason, by, at }]
            }
            WebhookEndpointCommand::Enable { by, at } => {
                let by = admin(&by)?;
                if self.enabled {
                    return Ok(vec![]);
                }
                vec![WebhookEndpointEvent::Enabled { by, at }]
            }
            WebhookEndpointCommand::Delete { by, at } => {
                vec![WebhookEndpointEvent::Deleted {
                    by: admin(&by)?,
                    at,
                }]
            }
        })
    }
}

impl Aggregate for WebhookEndpoint {
    const TYPE: &'static str = "WebhookEndpoint";
    type Command = WebhookEndpointCommand;
    type Event = WebhookEndpointEvent;
    type Error = WebhookEndpointError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WebhookEndpointEvent::Registered { spec, by, at } => {
                self.spec = Some(spec);
                self.enabled = true;
                self.created = Some((by, at));
                self.updated_at = Some(at);
            }
            WebhookEndpointEvent::Updated { spec, at, .. } => {
                self.spec = Some(spec);
                self.updated_at = Some(at);
            }
            WebhookEndpointEvent::Disabled { reason, at, .. } => {
                self.enabled = false;
                self.disabled_reason = Some(reason);
                self.updated_at = Some(at);
            }
            WebhookEndpointEvent::Enabled { at, .. } => {
                self.enabled = true;
                self.disabled_reason = None;
                self.updated_at = Some(at);
            }
            WebhookEndpointEvent::Deleted { at, .. } => {
                self.deleted = true;
                self.updated_at = Some(at);
            }
        }
    }
}
