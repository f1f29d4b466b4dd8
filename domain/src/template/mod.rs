//! A message template's life as Meta reports it: status (approved, rejected, paused, ...),
//! category, quality and component changes. Each report carries an id derived from its content,
//! so a report delivered twice is recorded once.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::WabaId;
use crate::Timestamp;

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
}

impl DomainEvent for TemplateEvent {
    fn event_type(&self) -> String {
        "TemplateChangeReported".to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Template commands cannot fail; the type exists because cqrs-es asks for one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template error")]
pub struct TemplateError;

/// A template (one Meta template id, all its translations). It remembers the ids of its most
/// recent reports only, so what it loads stays small however many reports Meta sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Template {
    reports: crate::RecentIds,
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
        let TemplateCommand::RecordChange { report_id, change } = command;
        if !self.reports.contains(&report_id) {
            sink.write(TemplateEvent::ChangeReported { report_id, change }, self)
                .await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let TemplateEvent::ChangeReported { report_id, .. } = event;
        self.reports.remember(report_id);
    }
}
