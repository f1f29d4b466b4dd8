//! A message template (one Meta template id: a name in one language): its catalogue entry
//! as synced from Meta, what agents submitted, edited and deleted, and what Meta reported
//! about it by webhook (status, category, quality, components). Webhook reports carry an id
//! derived from their content, so a report delivered twice is recorded once.
//!
//! Management needs `can_manage_templates`; the aggregate checks it with the append.

mod definition;
mod parameters;

pub use definition::{placeholders, ParameterFormat, TemplateDefinition, Variable};
pub use parameters::{has_components, ParameterError};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::WabaId;
use crate::{Actor, AgentId, Timestamp};

/// Which aspect of a template a report is about (the webhook `field`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateChangeKind {
    /// `message_template_status_update`.
    Status,
    /// `template_category_update`.
    Category,
    /// `message_template_quality_update`.
    Quality,
    /// `message_template_components_update`.
    Components,
}

/// One template report, with the fields inboxes show and the rest kept whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateChange {
    /// Which aspect changed.
    pub kind: TemplateChangeKind,
    /// The business account.
    pub waba_id: WabaId,
    /// The template's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The language of this translation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The new value: status (`APPROVED`, …), category, or quality score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The template's category, when the report states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The reason Meta gives (rejections, pauses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When Meta says it happened.
    pub at: Timestamp,
    /// The whole `value` object of the webhook.
    pub details: Value,
}

impl TemplateChange {
    /// The components a `message_template_components_update` reports (title, element,
    /// footer, buttons), in the catalogue's shape; `None` for other reports.
    pub fn reported_components(&self) -> Option<Vec<Value>> {
        if self.kind != TemplateChangeKind::Components {
            return None;
        }
        let text = |key: &str| self.details.get(key).and_then(Value::as_str);
        let mut components = Vec::new();
        if let Some(title) = text("message_template_title") {
            components.push(serde_json::json!({"type": "HEADER", "format": "TEXT", "text": title}));
        }
        components
            .push(serde_json::json!({"type": "BODY", "text": text("message_template_element")?}));
        if let Some(footer) = text("message_template_footer") {
            components.push(serde_json::json!({"type": "FOOTER", "text": footer}));
        }
        if let Some(buttons) = self
            .details
            .get("message_template_buttons")
            .and_then(Value::as_array)
        {
            let buttons: Vec<Value> = buttons
                .iter()
                .map(|b| {
                    let mut button = serde_json::json!({
                        "type": b.get("message_template_button_type").cloned().unwrap_or(Value::Null),
                        "text": b.get("message_template_button_text").cloned().unwrap_or(Value::Null),
                    });
                    for (from, to) in [("message_template_button_url", "url"), ("message_template_button_phone_number", "phone_number")] {
                        if let Some(v) = b.get(from) {
                            button[to] = v.clone();
                        }
                    }
                    button
                })
                .collect();
            components.push(serde_json::json!({"type": "BUTTONS", "buttons": buttons}));
        }
        Some(components)
    }
}

/// Requests to a [`Template`].
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateCommand {
    /// Record a report from Meta; a report already recorded (same `report_id`) is a no-op.
    RecordChange {
        /// Content-derived id of the report.
        report_id: String,
        /// The report.
        change: TemplateChange,
    },
    /// Record the template as Meta's catalogue lists it; a no-op when nothing changed.
    Sync {
        /// The catalogue entry.
        definition: TemplateDefinition,
        /// When the sync read it.
        at: Timestamp,
    },
    /// Record a template Meta accepted for review (the id is Meta's answer).
    Submit {
        /// What was submitted, with the status Meta answered.
        definition: TemplateDefinition,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Record an edit Meta accepted.
    Edit {
        /// New components, if they changed.
        components: Option<Vec<Value>>,
        /// New category, if it changed.
        category: Option<String>,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Record that the template was deleted at Meta (by an agent, or found gone by a sync).
    Delete {
        /// Who (`None`: a sync found it gone).
        by: Option<Actor>,
        /// When.
        at: Timestamp,
    },
}

/// Events of a [`Template`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TemplateEvent {
    /// Meta reported a change.
    ChangeReported {
        /// Content-derived id of the report.
        report_id: String,
        /// The change.
        change: TemplateChange,
    },
    /// Meta's catalogue lists the template so.
    Synced {
        /// The catalogue entry.
        definition: TemplateDefinition,
        /// When.
        at: Timestamp,
    },
    /// An agent submitted the template and Meta took it for review.
    Submitted {
        /// What, with Meta's first status.
        definition: TemplateDefinition,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// An agent edited it; Meta reviews it again.
    Edited {
        /// New components, if they changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        components: Option<Vec<Value>>,
        /// New category, if it changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<String>,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// It is gone from Meta.
    Deleted {
        /// Who deleted it (`None`: a sync found it gone).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for TemplateEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ChangeReported { .. } => "TemplateChangeReported",
            Self::Synced { .. } => "TemplateSynced",
            Self::Submitted { .. } => "TemplateSubmitted",
            Self::Edited { .. } => "TemplateEdited",
            Self::Deleted { .. } => "TemplateDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a template command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Managing templates needs `can_manage_templates`.
    #[error("managing templates needs the can_manage_templates permission")]
    NotPermitted,
    /// No such template (or it was deleted).
    #[error("no such template")]
    NotFound,
    /// The id is taken.
    #[error("a template with this id exists")]
    AlreadyExists,
    /// Meta allows editing approved, rejected and paused templates only.
    #[error("a {0} template cannot be edited (approved, rejected or paused ones can)")]
    NotEditable(String),
}

impl TemplateError {
    /// A stable code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotPermitted => "forbidden",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "template_exists",
            Self::NotEditable(_) => "template_not_editable",
        }
    }
}

/// A template. It remembers its catalogue entry and the ids of its most recent reports only,
/// so what it loads stays small however many reports Meta sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Template {
    reports: crate::RecentIds,
    #[serde(default)]
    definition: Option<TemplateDefinition>,
    #[serde(default)]
    deleted: bool,
}

impl Template {
    /// The catalogue entry, unless deleted or never synced.
    pub fn definition(&self) -> Option<&TemplateDefinition> {
        self.definition.as_ref().filter(|_| !self.deleted)
    }

    fn managed(by: &Actor) -> Result<(), TemplateError> {
        if by.permissions.can_manage_templates {
            Ok(())
        } else {
            Err(TemplateError::NotPermitted)
        }
    }
}

impl Aggregate for Template {
    const TYPE: &'static str = "Template";
    type Command = TemplateCommand;
    type Event = TemplateEvent;
    type Error = TemplateError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            TemplateCommand::RecordChange { report_id, change } => {
                if self.reports.contains(&report_id) {
                    return Ok(());
                }
                TemplateEvent::ChangeReported { report_id, change }
            }
            TemplateCommand::Sync { definition, at } => {
                if self.definition() == Some(&definition) {
                    return Ok(());
                }
                TemplateEvent::Synced { definition, at }
            }
            TemplateCommand::Submit { definition, by, at } => {
                Self::managed(&by)?;
                if self.definition().is_some() {
                    return Err(TemplateError::AlreadyExists);
                }
                TemplateEvent::Submitted {
                    definition,
                    by: by.agent_id,
                    at,
                }
            }
            TemplateCommand::Edit {
                components,
                category,
                by,
                at,
            } => {
                Self::managed(&by)?;
                let current = self.definition().ok_or(TemplateError::NotFound)?;
                if !current.is_editable() {
                    return Err(TemplateError::NotEditable(
                        current.status.to_ascii_uppercase(),
                    ));
                }
                TemplateEvent::Edited {
                    components,
                    category,
                    by: by.agent_id,
                    at,
                }
            }
            TemplateCommand::Delete { by, at } => {
                if let Some(by) = &by {
                    Self::managed(by)?;
                }
                if self.definition().is_none() {
                    return Err(TemplateError::NotFound);
                }
                TemplateEvent::Deleted {
                    by: by.map(|b| b.agent_id),
                    at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TemplateEvent::ChangeReported { report_id, change } => {
                if let Some(definition) = &mut self.definition {
                    match change.kind {
                        TemplateChangeKind::Status => {
                            if let Some(status) = &change.value {
                                definition.status.clone_from(status);
                            }
                            definition.reason.clone_from(&change.reason);
                        }
                        TemplateChangeKind::Category => {
                            if let Some(category) = &change.category {
                                definition.category.clone_from(category);
                            }
                        }
                        TemplateChangeKind::Quality => definition.quality.clone_from(&change.value),
                        TemplateChangeKind::Components => {
                            if let Some(components) = change.reported_components() {
                                definition.components = components;
                            }
                        }
                    }
                }
                self.reports.remember(report_id);
            }
            TemplateEvent::Synced { definition, .. }
            | TemplateEvent::Submitted { definition, .. } => {
                self.definition = Some(definition);
                self.deleted = false;
            }
            TemplateEvent::Edited {
                components,
                category,
                ..
            } => {
                if let Some(definition) = &mut self.definition {
                    if let Some(components) = components {
                        definition.components = components;
                    }
                    if let Some(category) = category {
                        definition.category = category;
                    }
                    "PENDING".clone_into(&mut definition.status);
                    definition.reason = None;
                }
            }
            TemplateEvent::Deleted { .. } => self.deleted = true,
        }
    }
}
