//! The conversation aggregate.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::conversation::{ConversationCommand, ConversationError, ConversationEvent};
use crate::{Actor, AgentId, Customer, GroupId, PhoneNumberId, Timestamp};

/// How long after a customer's message free-form replies are allowed: Meta's 24 hours.
pub const SERVICE_WINDOW_SECONDS: i64 = 24 * 60 * 60;

/// One customer on one business number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    phone_number_id: Option<PhoneNumberId>,
    customer: Option<Customer>,
    profile_name: Option<String>,
    last_customer_message_at: Option<Timestamp>,
    window_closes_at: Option<Timestamp>,
    assigned_agent: Option<AgentId>,
    assigned_group: Option<GroupId>,
}

impl Conversation {
    /// When the customer-service window closes, if it was ever opened.
    pub fn window_closes_at(&self) -> Option<Timestamp> {
        self.window_closes_at
    }

    /// The customer, once the conversation has started.
    pub fn customer(&self) -> Option<&Customer> {
        self.customer.as_ref()
    }

    /// The agent and group it is assigned to.
    pub fn assignment(&self) -> (Option<AgentId>, Option<GroupId>) {
        (self.assigned_agent, self.assigned_group)
    }

    /// Whether the conversation exists.
    pub fn exists(&self) -> bool {
        self.phone_number_id.is_some()
    }

    /// Checks that `actor` may write to this conversation now.
    fn authorize_write(&self, actor: &Actor) -> Result<(), ConversationError> {
        if !self.exists() || !actor.may_read(self.assigned_agent, self.assigned_group) {
            return Err(ConversationError::NotFound);
        }
        if !actor.on_duty {
            return Err(ConversationError::OffDuty);
        }
        if !actor.may_write(self.assigned_agent, self.assigned_group) {
            return Err(ConversationError::NotPermitted);
        }
        Ok(())
    }

    fn decide(
        &self,
        command: ConversationCommand,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        match command {
            ConversationCommand::RecordCustomerMessage {
                phone_number_id,
                customer,
                profile_name,
                wamid,
                sent_at,
                opens_window,
            } => {
                let mut events = self.start_or_identify(phone_number_id, customer, sent_at)?;
                if let Some(name) = profile_name.filter(|n| !n.is_empty()) {
                    if self.profile_name.as_deref() != Some(name.as_str()) {
                        events.push(ConversationEvent::CustomerProfileNamed { name });
                    }
                }
                if self
                    .last_customer_message_at
                    .is_none_or(|last| sent_at > last)
                {
                    events.push(ConversationEvent::CustomerMessageReceived {
                        wamid,
                        sent_at,
                        window_closes_at: opens_window
                            .then(|| sent_at.plus_seconds(SERVICE_WINDOW_SECONDS)),
                    });
                }
                Ok(events)
            }
            ConversationCommand::Touch {
                phone_number_id,
                customer,
                at,
            } => self.start_or_identify(phone_number_id, customer, at),
            ConversationCommand::Assign {
                actor,
                agent,
                group,
                reason,
                at,
            } => {
                self.authorize_write(&actor)?;
                if (agent, group) == (self.assigned_agent, self.assigned_group) {
                    return Ok(vec![]);
                }
                if agent.is_none() && group.is_none() {
                    return Ok(self.unassign(actor.agent_id, at));
                }
                Ok(vec![ConversationEvent::Assigned {
                    agent,
                    group,
                    reason,
                    by: actor.agent_id,
                    at,
                }])
            }
            ConversationCommand::Unassign { actor, at } => {
                self.authorize_write(&actor)?;
                Ok(self.unassign(actor.agent_id, at))
            }
        }
    }

    fn unassign(&self, by: AgentId, at: Timestamp) -> Vec<ConversationEvent> {
        if self.assigned_agent.is_none() && self.assigned_group.is_none() {
            return vec![];
        }
        vec![ConversationEvent::Unassigned { by, at }]
    }

    fn start_or_identify(
        &self,
        phone_number_id: PhoneNumberId,
        customer: Customer,
        at: Timestamp,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        let (Some(own_number), Some(known)) = (&self.phone_number_id, &self.customer) else {
            return Ok(vec![ConversationEvent::Started {
                phone_number_id,
                customer,
                started_at: at,
            }]);
        };
        if *own_number != phone_number_id {
            return Err(ConversationError::WrongPhoneNumber {
                expected: own_number.to_string(),
                actual: phone_number_id.to_string(),
            });
        }
        let merged = Customer {
            wa_id: known.wa_id.clone().or(customer.wa_id),
            user_id: known.user_id.clone().or(customer.user_id),
        };
        if merged == *known {
            return Ok(vec![]);
        }
        Ok(vec![ConversationEvent::CustomerIdentified {
            customer: merged,
        }])
    }
}

impl Aggregate for Conversation {
    const TYPE: &'static str = "Conversation";
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;
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
            ConversationEvent::Started {
                phone_number_id,
                customer,
                ..
            } => {
                self.phone_number_id = Some(phone_number_id);
                self.customer = Some(customer);
            }
            ConversationEvent::CustomerIdentified { customer } => self.customer = Some(customer),
            ConversationEvent::CustomerProfileNamed { name } => self.profile_name = Some(name),
            ConversationEvent::CustomerMessageReceived {
                sent_at,
                window_closes_at,
                ..
            } => {
                self.last_customer_message_at = Some(sent_at);
                if window_closes_at.is_some() {
                    self.window_closes_at = window_closes_at;
                }
            }
            ConversationEvent::Assigned { agent, group, .. } => {
                self.assigned_agent = agent;
                self.assigned_group = group;
            }
            ConversationEvent::Unassigned { .. } => {
                self.assigned_agent = None;
                self.assigned_group = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::WaMessageId;

    type ConversationTest = TestFramework<Conversation>;

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_780_000_000 + seconds).expect("valid")
    }
    fn phone() -> PhoneNumberId {
        PhoneNumberId::new("120000000000001")
    }
    fn customer() -> Customer {
        Customer::new(Some("15550002222".into()), None).expect("customer")
    }
    fn started() -> ConversationEvent {
        ConversationEvent::Started {
            phone_number_id: phone(),
            customer: customer(),
            started_at: t(0),
        }
    }
    fn wrote(wamid: &str, at: i64, name: Option<&str>) -> ConversationCommand {
        ConversationCommand::RecordCustomerMessage {
            phone_number_id: phone(),
            customer: customer(),
            profile_name: name.map(str::to_owned),
            wamid: WaMessageId::new(wamid),
            sent_at: t(at),
            opens_window: true,
        }
    }
    fn received(wamid: &str, at: i64) -> ConversationEvent {
        ConversationEvent::CustomerMessageReceived {
            wamid: WaMessageId::new(wamid),
            sent_at: t(at),
            window_closes_at: Some(t(at + SERVICE_WINDOW_SECONDS)),
        }
    }

    #[test]
    fn the_first_message_starts_the_conversation_and_opens_the_window() {
        ConversationTest::with(())
            .given_no_previous_events()
            .when(wrote("w1", 0, Some("Sheena")))
            .then_expect_events(vec![
                started(),
                ConversationEvent::CustomerProfileNamed {
                    name: "Sheena".into(),
                },
                received("w1", 0),
            ]);
    }

    #[test]
    fn an_older_or_repeated_message_does_not_move_the_window() {
        ConversationTest::with(())
            .given(vec![started(), received("w2", 100)])
            .when(wrote("w1", 50, None))
            .then_expect_events(vec![]);
        ConversationTest::with(())
            .given(vec![started(), received("w2", 100)])
            .when(wrote("w2", 100, None))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_newer_message_restarts_the_window() {
        ConversationTest::with(())
            .given(vec![started(), received("w1", 0)])
            .when(wrote("w2", 10, None))
            .then_expect_events(vec![received("w2", 10)]);
    }

    #[test]
    fn a_bsuid_seen_later_is_linked_to_the_customer() {
        let with_bsuid =
            Customer::new(Some("15550002222".into()), Some("US.1".into())).expect("customer");
        ConversationTest::with(())
            .given(vec![started()])
            .when(ConversationCommand::Touch {
                phone_number_id: phone(),
                customer: with_bsuid.clone(),
                at: t(5),
            })
            .then_expect_events(vec![ConversationEvent::CustomerIdentified {
                customer: with_bsuid,
            }]);
    }

    #[test]
    fn a_conversation_stays_on_its_number() {
        ConversationTest::with(())
            .given(vec![started()])
            .when(ConversationCommand::Touch {
                phone_number_id: PhoneNumberId::new("999"),
                customer: customer(),
                at: t(5),
            })
            .then_expect_error(ConversationError::WrongPhoneNumber {
                expected: "120000000000001".into(),
                actual: "999".into(),
            });
    }
}
