//! The SLA policy aggregate: created, changed and deleted by those who manage agents.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{SlaScope, SlaTerms, MAX_THRESHOLD_SECONDS};
use crate::agent::WorkingHours;
use crate::{Actor, AgentId, Timestamp};

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Requests to an [`SlaPolicy`].
#[derive(Debug, Clone, PartialEq)]
pub enum SlaPolicyCommand {
    /// Create it.
    Create {
        /// Its terms.
        terms: SlaTerms,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Change the fields given (`Some(None)`: remove that threshold or the business hours).
    Change {
        /// New name.
        name: Option<String>,
        /// New first-response threshold.
        first_response_seconds: Option<Option<u32>>,
        /// New next-response threshold.
        next_response_seconds: Option<Option<u32>>,
        /// New resolution threshold.
        resolution_seconds: Option<Option<u32>>,
        /// New business hours.
        business_hours: Option<Option<WorkingHours>>,
        /// New scope.
        applies_to: Option<SlaScope>,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Delete it: conversations no longer measured against it; what was recorded stays.
    Delete {
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
}

/// Events of an [`SlaPolicy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SlaPolicyEvent {
    /// Created.
    Created {
        /// Its terms.
        terms: SlaTerms,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// Its terms changed (all of them, as they now are).
    Changed {
        /// The terms now.
        terms: SlaTerms,
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

impl DomainEvent for SlaPolicyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "SlaPolicyCreated",
            Self::Changed { .. } => "SlaPolicyChanged",
            Self::Deleted { .. } => "SlaPolicyDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why an SLA policy command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaPolicyError {
    /// Needs `can_manage_agents`.
    #[error("SLA policies need the can_manage_agents permission")]
    NotPermitted,
    /// No such policy (or deleted).
    #[error("no such SLA policy")]
    NotFound,
    /// The id is taken.
    #[error("an SLA policy with this id exists")]
    AlreadyExists,
    /// Terms that measure nothing or cannot be kept.
    #[error("invalid SLA policy: {0}")]
    Invalid(&'static str),
}

/// An SLA policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaPolicy {
    terms: Option<SlaTerms>,
    deleted: bool,
}

impl SlaPolicy {
    /// The terms in force, unless never created or deleted.
    pub fn terms(&self) -> Option<&SlaTerms> {
        self.terms.as_ref().filter(|_| !self.deleted)
    }

    fn decide(&self, command: SlaPolicyCommand) -> Result<Vec<SlaPolicyEvent>, SlaPolicyError> {
        let by = match &command {
            SlaPolicyCommand::Create { by, .. }
            | SlaPolicyCommand::Change { by, .. }
            | SlaPolicyCommand::Delete { by, .. } => by,
        };
        if !by.permissions.can_manage_agents {
            return Err(SlaPolicyError::NotPermitted);
        }
        match command {
            SlaPolicyCommand::Create { terms, by, at } => {
                if self.terms.is_some() {
                    return Err(SlaPolicyError::AlreadyExists);
                }
                let terms = valid(terms)?;
                Ok(vec![SlaPolicyEvent::Created {
                    terms,
                    by: by.agent_id,
                    at,
                }])
            }
            SlaPolicyCommand::Change {
                name,
                first_response_seconds,
                next_response_seconds,
                resolution_seconds,
                business_hours,
                applies_to,
                by,
                at,
            } => {
                let mut terms = self.terms().cloned().ok_or(SlaPolicyError::NotFound)?;
                let before = terms.clone();
                if let Some(name) = name {
                    terms.name = name;
                }
                if let Some(seconds) = first_response_seconds {
                    terms.first_response_seconds = seconds;
                }
                if let Some(seconds) = next_response_seconds {
                    terms.next_response_seconds = seconds;
                }
                if let Some(seconds) = resolution_seconds {
                    terms.resolution_seconds = seconds;
                }
                if let Some(hours) = business_hours {
                    terms.business_hours = hours;
                }
                if let Some(scope) = applies_to {
                    terms.applies_to = scope;
                }
                let terms = valid(terms)?;
                if terms == before {
                    return Ok(vec![]);
                }
                Ok(vec![SlaPolicyEvent::Changed {
                    terms,
                    by: by.agent_id,
                    at,
                }])
            }
            SlaPolicyCommand::Delete { by, at } => {
                self.terms().ok_or(SlaPolicyError::NotFound)?;
                Ok(vec![SlaPolicyEvent::Deleted {
                    by: by.agent_id,
                    at,
                }])
            }
        }
    }
}

/// `terms` with a trimmed name, if they are valid: a name of 1 to [`MAX_NAME_CHARS`]
/// characters without control characters, at least one threshold, each from one second to
/// [`MAX_THRESHOLD_SECONDS`].
fn valid(mut terms: SlaTerms) -> Result<SlaTerms, SlaPolicyError> {
    terms.name = terms.name.trim().to_owned();
    if terms.name.is_empty()
        || terms.name.chars().count() > MAX_NAME_CHARS
        || terms.name.chars().any(char::is_control)
    {
        return Err(SlaPolicyError::Invalid(
            "the name must have 1 to 100 characters, without control characters",
        ));
    }
    let thresholds = [
        terms.first_response_seconds,
        terms.next_response_seconds,
        terms.resolution_seconds,
    ];
    if thresholds.iter().all(Option::is_none) {
        return Err(SlaPolicyError::Invalid("set at least one threshold"));
    }
    if thresholds
        .iter()
        .flatten()
        .any(|s| !(1..=MAX_THRESHOLD_SECONDS).contains(s))
    {
        return Err(SlaPolicyError::Invalid(
            "thresholds run from 1 second to 366 days",
        ));
    }
    Ok(terms)
}

impl Aggregate for SlaPolicy {
    const TYPE: &'static str = "SlaPolicy";
    type Command = SlaPolicyCommand;
    type Event = SlaPolicyEvent;
    type Error = SlaPolicyError;
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
            SlaPolicyEvent::Created { terms, .. } | SlaPolicyEvent::Changed { terms, .. } => {
                self.terms = Some(terms);
            }
            SlaPolicyEvent::Deleted { .. } => self.deleted = true,
        }
    }
}
