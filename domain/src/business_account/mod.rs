//! A WhatsApp Business Account's notifications: everything Meta sends that is not a message or
//! a template (account reviews and restrictions, number quality and name, calls, marketing
//! preferences, system-level errors, ...). Kept whole and shown to admins, so nothing Meta says
//! is lost even before the inbox acts on it.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{PhoneNumberId, Timestamp};

/// One notification from Meta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountNotification {
    /// The webhook `field` (e.g. `account_update`, `calls`), or `messages.errors` for
    /// system-level errors on the messages field.
    pub field: String,
    /// The business number it concerns, when the payload says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<PhoneNumberId>,
    /// A short summary (the `event` or first error title), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// When Meta says it happened, or when we received it.
    pub at: Timestamp,
    /// The `value` object as sent.
    pub value: Value,
}

/// Requests to a [`BusinessAccount`].
#[derive(Debug, Clone, PartialEq)]
pub enum BusinessAccountCommand {
    /// Record a notification; one already recorded (same `notification_id`) is a no-op.
    RecordNotification {
        /// Content-derived id.
        notification_id: String,
        /// The notification.
        notification: AccountNotification,
    },
}

/// Events of a [`BusinessAccount`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BusinessAccountEvent {
    /// Meta sent a notification.
    NotificationReceived {
        /// Content-derived id.
        notification_id: String,
        /// The notification.
        notification: AccountNotification,
    },
}

impl DomainEvent for BusinessAccountEvent {
    fn event_type(&self) -> String {
        "BusinessAccountNotificationReceived".to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Business account commands cannot fail; the type exists because cqrs-es asks for one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("business account error")]
pub struct BusinessAccountError;

/// A WhatsApp Business Account (WABA). It remembers the ids of its most recent
/// notifications only ([`RECENT_REPORTS`](crate::RECENT_REPORTS)), so what it loads stays small
/// however long it lives; older duplicates are stopped earlier, by the webhook inbox, which
/// keeps each delivered body once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BusinessAccount {
    notifications: crate::RecentIds,
}

impl Aggregate for BusinessAccount {
    const TYPE: &'static str = "BusinessAccount";
    type Command = BusinessAccountCommand;
    type Event = BusinessAccountEvent;
    type Error = BusinessAccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let BusinessAccountCommand::RecordNotification {
            notification_id,
            notification,
        } = command;
        if !self.notifications.contains(&notification_id) {
            let event = BusinessAccountEvent::NotificationReceived {
                notification_id,
                notification,
            };
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let BusinessAccountEvent::NotificationReceived {
            notification_id, ..
        } = event;
        self.notifications.remember(notification_id);
    }
}
