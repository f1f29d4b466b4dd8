//! The message aggregate: decides from its own state, applies facts without failing.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::message::{
    DeliveryStatus, MediaOutcome, MessageCommand, MessageError, MessageEvent, StatusReport,
};
use crate::ConversationId;

/// Which way a message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer to the business.
    Inbound,
    /// From the business to the customer.
    Outbound,
}

/// One message. Small on purpose: loading it is one short stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    direction: Option<Direction>,
    conversation_id: Option<ConversationId>,
    /// `true` once we know what the message says (a status can arrive for a message we never saw).
    has_content: bool,
    status: Option<DeliveryStatus>,
    /// Meta's id of an agent's message, once accepted.
    #[serde(default)]
    wamid: Option<String>,
    /// Meta refused the agent's message for good.
    #[serde(default)]
    send_failed: bool,
    /// Every attempt failed; waiting for an operator.
    #[serde(default)]
    dead_lettered: bool,
    /// Every status reported so far: a report seen before is a duplicate delivery.
    reported: Vec<DeliveryStatus>,
    /// An inbound message carries a file.
    #[serde(default)]
    has_media: bool,
    /// What became of it is recorded.
    #[serde(default)]
    media_settled: bool,
    /// It was kept, and is not deleted.
    #[serde(default)]
    media_kept: bool,
}

impl Message {
    /// Which way the message travelled, once known.
    pub fn direction(&self) -> Option<Direction> {
        self.direction
    }

    /// Whether the message exists (content known).
    pub fn exists(&self) -> bool {
        self.has_content
    }

    /// The conversation the message belongs to, once known.
    pub fn conversation_id(&self) -> Option<ConversationId> {
        self.conversation_id
    }

    /// Whether an agent's message is settled: accepted by Meta (or reported on by a status
    /// webhook, which proves Meta has it), or refused for good (or purged).
    pub fn is_settled(&self) -> bool {
        self.direction == Some(Direction::Outbound)
            && (self.wamid.is_some() || self.status.is_some() || self.send_failed)
    }

    /// Whether an agent's message may still be sent: requested, neither settled nor waiting in
    /// the dead-letter queue.
    pub fn may_be_sent(&self) -> bool {
        self.direction == Some(Direction::Outbound)
            && self.has_content
            && !self.is_settled()
            && !self.dead_lettered
    }

    /// The current delivery status of an outbound message.
    pub fn status(&self) -> Option<DeliveryStatus> {
        self.status
    }

    fn decide(&self, command: MessageCommand) -> Result<Vec<MessageEvent>, MessageError> {
        match command {
            MessageCommand::ForgetMedia { reason, at } => Ok(if self.media_kept {
                vec![MessageEvent::MediaDeleted { reason, at }]
            } else if self.has_media && !self.media_settled {
                vec![MessageEvent::MediaUnavailable { reason, at }]
            } else {
                vec![]
            }),
            MessageCommand::RecordMedia { outcome, at } => {
                if !self.has_media {
                    return Err(MessageError::NoMedia);
                }
                if self.media_settled {
                    // Recorded before (a retry) when the file is kept; given up otherwise.
                    return match outcome {
                        MediaOutcome::Stored { .. } if !self.media_kept => {
                            Err(MessageError::MediaNotKept)
                        }
                        _ => Ok(vec![]),
                    };
                }
                Ok(vec![match outcome {
                    MediaOutcome::Stored {
                        sha256,
                        size,
                        mime_type,
                    } => MessageEvent::MediaStored {
                        sha256,
                        size,
                        mime_type,
                        at,
                    },
                    MediaOutcome::Unavailable { reason } => {
                        MessageEvent::MediaUnavailable { reason, at }
                    }
                }])
            }
            MessageCommand::ReceiveInbound {
                conversation_id,
                phone_number_id,
                customer,
                profile_name,
                sent_at,
                content,
                context,
                referral,
                errors,
            } => {
                if self.direction == Some(Direction::Outbound) {
                    return Err(MessageError::DirectionMismatch {
                        id: conversation_id.to_string(),
                    });
                }
                if self.has_content {
                    return Ok(vec![]);
                }
                Ok(vec![MessageEvent::InboundReceived {
                    conversation_id,
                    phone_number_id,
                    customer,
                    profile_name,
                    sent_at,
                    content,
                    context,
                    referral,
                    errors,
                }])
            }
            MessageCommand::RecordEcho {
                conversation_id,
                phone_number_id,
                customer,
                sent_at,
                content,
            } => {
                if self.direction == Some(Direction::Inbound) {
                    return Err(MessageError::DirectionMismatch {
                        id: conversation_id.to_string(),
                    });
                }
                if self.has_content {
                    return Ok(vec![]);
                }
                Ok(vec![MessageEvent::EchoRecorded {
                    conversation_id,
                    phone_number_id,
                    customer,
                    sent_at,
                    content,
                }])
            }
            MessageCommand::RecordStatus {
                conversation_id,
                phone_number_id,
                report,
            } => Ok(self.decide_status(conversation_id, phone_number_id, report)),
            MessageCommand::RecordSendOutcome {
                wamid,
                error,
                attempt,
                at,
            } => {
                if self.direction != Some(Direction::Outbound)
                    || self.wamid.is_some()
                    || self.send_failed
                {
                    return Ok(vec![]);
                }
                Ok(match (wamid, error) {
                    (Some(wamid), _) => vec![MessageEvent::OutboundAccepted { wamid, attempt, at }],
                    (None, Some(error)) => {
                        vec![MessageEvent::OutboundFailed { error, attempt, at }]
                    }
                    (None, None) => vec![],
                })
            }
            MessageCommand::RecordSendAttemptFailed {
                error,
                attempt,
                retry_at,
                at,
            } => {
                if self.direction != Some(Direction::Outbound)
                    || self.wamid.is_some()
                    || self.send_failed
                {
                    return Ok(vec![]);
                }
                Ok(vec![MessageEvent::OutboundAttemptFailed {
                    error,
                    attempt,
                    retry_at,
                    at,
                }])
            }
            MessageCommand::DeadLetter {
                error,
                attempts,
                at,
            } => {
                if self.direction != Some(Direction::Outbound)
                    || self.wamid.is_some()
                    || self.send_failed
                    || self.dead_lettered
                {
                    return Ok(vec![]);
                }
                Ok(vec![MessageEvent::OutboundDeadLettered {
                    error,
                    attempts,
                    at,
                }])
            }
            MessageCommand::PurgeDeadLetter { by, at } => {
                if !self.dead_lettered {
                    return Err(MessageError::NotDeadLettered);
                }
                Ok(vec![MessageEvent::DeadLetterPurged { by, at }])
            }
            MessageCommand::Requeue { by, at } => {
                if !self.dead_lettered {
                    return Err(MessageError::NotDeadLettered);
                }
                Ok(vec![MessageEvent::OutboundRequeued { by, at }])
            }
            MessageCommand::RequestOutbound {
                conversation_id,
                phone_number_id,
                customer,
                client_id,
                content,
                reply_to,
                priority,
                by,
                at,
            } => {
                if self.has_content {
                    return Ok(vec![]);
                }
                Ok(vec![MessageEvent::OutboundRequested {
                    conversation_id,
                    phone_number_id,
                    customer,
                    client_id,
                    content,
                    reply_to,
                    priority,
                    by,
                    at,
                }])
            }
        }
    }

    /// The status rule: forward only, `failed` sticky, nothing undoes a delivery.
    fn decide_status(
        &self,
        conversation_id: ConversationId,
        phone_number_id: crate::PhoneNumberId,
        report: StatusReport,
    ) -> Vec<MessageEvent> {
        if self.reported.contains(&report.status) {
            return vec![];
        }
        let advances = match self.status {
            None => true,
            Some(DeliveryStatus::Failed) => false,
            Some(current) if report.status == DeliveryStatus::Failed => !current.reached_customer(),
            Some(current) => report.status.rank() > current.rank(),
        };
        match (advances, self.status) {
            (false, Some(current)) => vec![MessageEvent::StatusIgnored { report, current }],
            _ => vec![MessageEvent::StatusAdvanced {
                conversation_id,
                phone_number_id,
                report,
            }],
        }
    }
}

impl Aggregate for Message {
    const TYPE: &'static str = "Message";
    type Command = MessageCommand;
    type Event = MessageEvent;
    type Error = MessageError;
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
            MessageEvent::InboundReceived {
                conversation_id,
                ref content,
                ..
            } => {
                self.has_media = content.media().is_some_and(|m| m.id.is_some());
                self.direction = Some(Direction::Inbound);
                self.conversation_id = Some(conversation_id);
                self.has_content = true;
            }
            MessageEvent::EchoRecorded {
                conversation_id,
                ref content,
                ..
            } => {
                self.has_media = content.media().is_some_and(|m| m.id.is_some());
                self.direction = Some(Direction::Outbound);
                self.conversation_id = Some(conversation_id);
                self.has_content = true;
                self.status.get_or_insert(DeliveryStatus::Sent);
            }
            MessageEvent::StatusAdvanced {
                conversation_id,
                report,
                ..
            } => {
                self.direction.get_or_insert(Direction::Outbound);
                self.conversation_id.get_or_insert(conversation_id);
                self.status = Some(report.status);
                self.reported.push(report.status);
            }
            MessageEvent::StatusIgnored { report, .. } => self.reported.push(report.status),
            MessageEvent::MediaStored { .. } => {
                self.media_settled = true;
                self.media_kept = true;
            }
            MessageEvent::MediaUnavailable { .. } => self.media_settled = true,
            MessageEvent::MediaDeleted { .. } => self.media_kept = false,
            MessageEvent::OutboundAccepted { wamid, .. } => self.wamid = Some(wamid),
            MessageEvent::OutboundFailed { .. } => self.send_failed = true,
            MessageEvent::OutboundAttemptFailed { .. } => {}
            MessageEvent::OutboundDeadLettered { .. } => self.dead_lettered = true,
            MessageEvent::OutboundRequeued { .. } => self.dead_lettered = false,
            MessageEvent::DeadLetterPurged { .. } => {
                self.dead_lettered = false;
                self.send_failed = true;
            }
            MessageEvent::OutboundRequested {
                conversation_id, ..
            } => {
                self.direction = Some(Direction::Outbound);
                self.conversation_id = Some(conversation_id);
                self.has_content = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::message::MessageContent;
    use crate::{Customer, PhoneNumberId, Timestamp};

    type MessageTest = TestFramework<Message>;

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_780_000_000 + seconds).expect("valid")
    }
    fn conversation() -> ConversationId {
        ConversationId::for_customer(&phone(), &customer())
    }
    fn phone() -> PhoneNumberId {
        PhoneNumberId::new("120000000000001")
    }
    fn customer() -> Customer {
        Customer::new(Some("15550002222".into()), None).expect("customer")
    }
    fn report(status: DeliveryStatus, at: i64) -> StatusReport {
        StatusReport {
            status,
            at: t(at),
            errors: vec![],
            pricing: None,
            billing_conversation: None,
            callback_data: None,
        }
    }
    fn status(status: DeliveryStatus, at: i64) -> MessageCommand {
        MessageCommand::RecordStatus {
            conversation_id: conversation(),
            phone_number_id: phone(),
            report: report(status, at),
        }
    }
    fn advanced(status: DeliveryStatus, at: i64) -> MessageEvent {
        MessageEvent::StatusAdvanced {
            conversation_id: conversation(),
            phone_number_id: phone(),
            report: report(status, at),
        }
    }
    fn receive() -> MessageCommand {
        MessageCommand::ReceiveInbound {
            conversation_id: conversation(),
            phone_number_id: phone(),
            customer: customer(),
            profile_name: Some("Sheena".into()),
            sent_at: t(0),
            content: MessageContent::Text { body: "hi".into() },
            context: None,
            referral: None,
            errors: vec![],
        }
    }
    fn received() -> MessageEvent {
        MessageEvent::InboundReceived {
            conversation_id: conversation(),
            phone_number_id: phone(),
            customer: customer(),
            profile_name: Some("Sheena".into()),
            sent_at: t(0),
            content: MessageContent::Text { body: "hi".into() },
            context: None,
            referral: None,
            errors: vec![],
        }
    }

    fn image_received() -> MessageEvent {
        let media = crate::message::Media {
            id: Some("meta-media-1".into()),
            ..Default::default()
        };
        match received() {
            MessageEvent::InboundReceived {
                conversation_id,
                phone_number_id,
                customer,
                profile_name,
                sent_at,
                ..
            } => MessageEvent::InboundReceived {
                conversation_id,
                phone_number_id,
                customer,
                profile_name,
                sent_at,
                content: MessageContent::Image(media),
                context: None,
                referral: None,
                errors: vec![],
            },
            other => other,
        }
    }
    fn forget() -> MessageCommand {
        MessageCommand::ForgetMedia {
            reason: "erased".into(),
            at: t(5),
        }
    }
    fn stored() -> MediaOutcome {
        MediaOutcome::Stored {
            sha256: "ab".repeat(32),
            size: 3,
            mime_type: "image/jpeg".into(),
        }
    }
    fn kept() -> MessageEvent {
        MessageEvent::MediaStored {
            sha256: "ab".repeat(32),
            size: 3,
            mime_type: "image/jpeg".into(),
            at: t(1),
        }
    }

    #[test]
    fn a_file_given_up_before_its_fetch_ended_is_not_kept_by_the_fetch() {
        let given_up = MessageEvent::MediaUnavailable {
            reason: "erased".into(),
            at: t(5),
        };
        MessageTest::with(())
            .given(vec![image_received()])
            .when(forget())
            .then_expect_events(vec![given_up.clone()]);
        let late = MessageCommand::RecordMedia {
            outcome: stored(),
            at: t(6),
        };
        MessageTest::with(())
            .given(vec![image_received(), given_up])
            .when(late)
            .then_expect_error(MessageError::MediaNotKept);
    }

    #[test]
    fn a_kept_file_is_recorded_once_and_forgotten_once() {
        let again = || MessageCommand::RecordMedia {
            outcome: stored(),
            at: t(2),
        };
        MessageTest::with(())
            .given(vec![image_received(), kept()])
            .when(again())
            .then_expect_events(vec![]);
        let deleted = MessageEvent::MediaDeleted {
            reason: "erased".into(),
            at: t(5),
        };
        MessageTest::with(())
            .given(vec![image_received(), kept()])
            .when(forget())
            .then_expect_events(vec![deleted.clone()]);
        MessageTest::with(())
            .given(vec![image_received(), kept(), deleted.clone()])
            .when(forget())
            .then_expect_events(vec![]);
        MessageTest::with(())
            .given(vec![image_received(), kept(), deleted])
            .when(again())
            .then_expect_error(MessageError::MediaNotKept);
    }

    #[test]
    fn an_inbound_message_is_received_once() {
        MessageTest::with(())
            .given_no_previous_events()
            .when(receive())
            .then_expect_events(vec![received()]);
        MessageTest::with(())
            .given(vec![received()])
            .when(receive())
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_status_for_an_unknown_message_is_kept() {
        MessageTest::with(())
            .given_no_previous_events()
            .when(status(DeliveryStatus::Delivered, 5))
            .then_expect_events(vec![advanced(DeliveryStatus::Delivered, 5)]);
    }

    #[test]
    fn statuses_move_forward_and_late_ones_are_recorded_as_ignored() {
        MessageTest::with(())
            .given(vec![advanced(DeliveryStatus::Sent, 1)])
            .when(status(DeliveryStatus::Read, 3))
            .then_expect_events(vec![advanced(DeliveryStatus::Read, 3)]);
        MessageTest::with(())
            .given(vec![advanced(DeliveryStatus::Read, 3)])
            .when(status(DeliveryStatus::Delivered, 2))
            .then_expect_events(vec![MessageEvent::StatusIgnored {
                report: report(DeliveryStatus::Delivered, 2),
                current: DeliveryStatus::Read,
            }]);
    }

    #[test]
    fn a_repeated_status_changes_nothing() {
        MessageTest::with(())
            .given(vec![advanced(DeliveryStatus::Sent, 1)])
            .when(status(DeliveryStatus::Sent, 1))
            .then_expect_events(vec![]);
    }

    #[test]
    fn failed_is_sticky() {
        MessageTest::with(())
            .given(vec![
                advanced(DeliveryStatus::Sent, 1),
                advanced(DeliveryStatus::Failed, 2),
            ])
            .when(status(DeliveryStatus::Delivered, 3))
            .then_expect_events(vec![MessageEvent::StatusIgnored {
                report: report(DeliveryStatus::Delivered, 3),
                current: DeliveryStatus::Failed,
            }]);
    }

    #[test]
    fn a_failure_after_delivery_does_not_undo_it() {
        MessageTest::with(())
            .given(vec![advanced(DeliveryStatus::Delivered, 2)])
            .when(status(DeliveryStatus::Failed, 3))
            .then_expect_events(vec![MessageEvent::StatusIgnored {
                report: report(DeliveryStatus::Failed, 3),
                current: DeliveryStatus::Delivered,
            }]);
    }

    #[test]
    fn a_failure_before_delivery_is_applied() {
        MessageTest::with(())
            .given(vec![advanced(DeliveryStatus::Sent, 1)])
            .when(status(DeliveryStatus::Failed, 2))
            .then_expect_events(vec![advanced(DeliveryStatus::Failed, 2)]);
    }
}
