//! The clocks SLAs are measured on, kept by the conversation itself, and the decision whether
//! a threshold was met or breached: made against the conversation's own history at the
//! append, so two workers deciding at once record one outcome (the second finds it settled).

use serde::{Deserialize, Serialize};

use super::Conversation;
use crate::conversation::{ConversationEvent, ConversationStatus};
use crate::sla::{choose, SlaOutcome, SlaPolicyRef, SlaTarget};
use crate::Timestamp;

/// Answered waits kept for an outcome, at most.
const MAX_UNSETTLED: usize = 20;

/// When each measured stretch began and ended, and which are settled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct SlaClock {
    /// The customer's first message.
    first_wait: Option<Timestamp>,
    /// The first agent reply after it.
    first_response_at: Option<Timestamp>,
    /// The customer's first message since the last agent reply, while unanswered.
    waiting_since: Option<Timestamp>,
    /// Answered waits after the first response with no outcome yet: (since, answered at),
    /// oldest first, at most [`MAX_UNSETTLED`] (a worker asleep longer loses the oldest).
    answered: Vec<(Timestamp, Timestamp)>,
    /// The start, or the latest reopening.
    resolution_since: Option<Timestamp>,
    /// The resolution of that stretch.
    resolved_at: Option<Timestamp>,
    /// Per target, the start of the latest stretch with a recorded outcome.
    settled: Vec<(SlaTarget, Timestamp)>,
}

impl SlaClock {
    /// Moves the clocks with `event`.
    pub(super) fn apply(&mut self, event: &ConversationEvent) {
        match event {
            ConversationEvent::Started { started_at, .. } => {
                self.resolution_since = Some(*started_at);
            }
            ConversationEvent::CustomerMessageReceived { sent_at, .. } => {
                self.first_wait.get_or_insert(*sent_at);
                self.waiting_since.get_or_insert(*sent_at);
            }
            ConversationEvent::AgentReplied { at, .. } => {
                if let Some(since) = self.waiting_since.take() {
                    if self.first_response_at.is_none() {
                        self.first_response_at = Some(*at);
                    } else if !self.is_settled(SlaTarget::NextResponse, since) {
                        self.answered.push((since, *at));
                        if self.answered.len() > MAX_UNSETTLED {
                            self.answered.remove(0);
                        }
                    }
                }
            }
            ConversationEvent::StatusChanged { status, at, .. } => match status {
                ConversationStatus::Resolved => {
                    self.resolved_at.get_or_insert(*at);
                }
                _ if self.resolved_at.is_some() => {
                    self.resolution_since = Some(*at);
                    self.resolved_at = None;
                }
                _ => {}
            },
            ConversationEvent::SlaMet { target, since, .. }
            | ConversationEvent::SlaBreached { target, since, .. } => {
                if *target == SlaTarget::NextResponse {
                    self.answered.retain(|(s, _)| s != since);
                }
                self.settled.retain(|(t, _)| t != target);
                self.settled.push((*target, *since));
            }
            _ => {}
        }
    }

    /// Whether the stretch of `target` that began at `since` has its outcome. Next-response
    /// waits are settled one by one (several may await theirs); the others follow one another,
    /// so a later settled stretch settles the earlier ones.
    fn is_settled(&self, target: SlaTarget, since: Timestamp) -> bool {
        self.settled.iter().any(|(t, s)| {
            *t == target
                && match target {
                    SlaTarget::NextResponse => *s == since,
                    _ => *s >= since,
                }
        })
    }

    /// The stretches of `target` that may have an outcome: (since, ended at), oldest first.
    fn stretches(&self, target: SlaTarget) -> Vec<(Timestamp, Option<Timestamp>)> {
        match target {
            SlaTarget::FirstResponse => self
                .first_wait
                .map(|since| (since, self.first_response_at))
                .into_iter()
                .collect(),
            SlaTarget::NextResponse => {
                let waiting = self
                    .waiting_since
                    .filter(|_| self.first_response_at.is_some())
                    .map(|since| (since, None));
                self.answered
                    .iter()
                    .map(|(since, at)| (*since, Some(*at)))
                    .chain(waiting)
                    .collect()
            }
            SlaTarget::Resolution => self
                .resolution_since
                .map(|since| (since, self.resolved_at))
                .into_iter()
                .collect(),
        }
    }
}

impl Conversation {
    /// The customer's first message and the first agent reply to it, once answered.
    pub fn first_response(&self) -> Option<(Timestamp, Timestamp)> {
        self.sla.first_wait.zip(self.sla.first_response_at)
    }

    /// Decides [`crate::conversation::ConversationCommand::EvaluateSla`]: for each target of
    /// the covering policy, each unsettled stretch that ended (met if by its due time) or is
    /// past its due time unended (breached).
    pub(super) fn decide_sla(
        &self,
        policies: &[SlaPolicyRef],
        at: Timestamp,
    ) -> Vec<ConversationEvent> {
        if !self.exists() {
            return vec![];
        }
        let Some(policy) = choose(
            policies,
            self.assigned_group,
            &self.tags,
            self.phone_number_id.as_ref(),
        ) else {
            return vec![];
        };
        let mut events = Vec::new();
        for target in SlaTarget::ALL {
            for (since, ended) in self.sla.stretches(target) {
                if self.sla.is_settled(target, since) {
                    continue;
                }
                let Some(due_at) = policy.terms.due(target, since) else {
                    continue;
                };
                let outcome = match ended {
                    Some(ended) if ended <= due_at => SlaOutcome::Met,
                    Some(_) => SlaOutcome::Breached,
                    None if at > due_at => SlaOutcome::Breached,
                    None => continue,
                };
                let policy_id = policy.id.clone();
                events.push(match outcome {
                    SlaOutcome::Met => ConversationEvent::SlaMet {
                        policy_id,
                        target,
                        since,
                        due_at,
                        at: ended.unwrap_or(at),
                    },
                    SlaOutcome::Breached => ConversationEvent::SlaBreached {
                        policy_id,
                        target,
                        since,
                        due_at,
                        at,
                    },
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use crate::conversation::{ConversationCommand, ConversationEvent, Tag};
    use crate::sla::{SlaPolicyRef, SlaScope, SlaTarget, SlaTerms};
    use crate::{AgentId, Customer, PhoneNumberId, Timestamp, WaMessageId};

    use super::Conversation;

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_780_000_000 + seconds).expect("valid")
    }

    fn history() -> Vec<ConversationEvent> {
        let agent = AgentId::parse("00000000-0000-4000-8000-000000000001").expect("id");
        let received = |n: i64| ConversationEvent::CustomerMessageReceived {
            wamid: WaMessageId::new(format!("w{n}")),
            sent_at: t(n),
            window_closes_at: None,
        };
        let replied = |n: i64| ConversationEvent::AgentReplied {
            message_id: format!("m{n}"),
            by: agent,
            at: t(n),
        };
        vec![
            ConversationEvent::Started {
                phone_number_id: PhoneNumberId::new("120000000000001"),
                customer: Customer::new(Some("15550002222".into()), None).expect("customer"),
                started_at: t(0),
            },
            received(0),
            replied(60),
            received(100),
            received(150),
            replied(400),
        ]
    }

    fn policy(id: &str, first: u32, next: u32, tag: Option<&str>) -> SlaPolicyRef {
        SlaPolicyRef {
            id: id.to_owned(),
            terms: SlaTerms {
                name: id.to_owned(),
                first_response_seconds: Some(first),
                next_response_seconds: Some(next),
                resolution_seconds: None,
                business_hours: None,
                applies_to: SlaScope {
                    tag: tag.map(|t| Tag::parse(t).expect("tag")),
                    ..SlaScope::default()
                },
            },
        }
    }

    fn evaluate(policies: Vec<SlaPolicyRef>, at: i64) -> ConversationCommand {
        ConversationCommand::EvaluateSla {
            policies,
            at: t(at),
        }
    }

    #[test]
    fn each_wait_is_met_or_breached_once_by_the_covering_policy() {
        let met_first = ConversationEvent::SlaMet {
            policy_id: "general".into(),
            target: SlaTarget::FirstResponse,
            since: t(0),
            due_at: t(120),
            at: t(60),
        };
        // The next wait runs from the first message since the reply (100), due at 300.
        let breached_next = ConversationEvent::SlaBreached {
            policy_id: "general".into(),
            target: SlaTarget::NextResponse,
            since: t(100),
            due_at: t(300),
            at: t(500),
        };
        // A tagged policy covers nothing untagged: the general one applies.
        let policies = vec![
            policy("general", 120, 200, None),
            policy("vip", 10, 10, Some("vip")),
        ];
        TestFramework::<Conversation>::with(())
            .given(history())
            .when(evaluate(policies.clone(), 500))
            .then_expect_events(vec![met_first.clone(), breached_next.clone()]);
        let mut settled = history();
        settled.extend([met_first, breached_next]);
        TestFramework::<Conversation>::with(())
            .given(settled)
            .when(evaluate(policies, 900))
            .then_expect_events(vec![]);
    }

    #[test]
    fn two_waits_answered_between_passes_each_get_their_outcome() {
        let mut events = history();
        let agent = AgentId::parse("00000000-0000-4000-8000-000000000001").expect("id");
        events.extend([
            ConversationEvent::CustomerMessageReceived {
                wamid: WaMessageId::new("w500"),
                sent_at: t(500),
                window_closes_at: None,
            },
            ConversationEvent::AgentReplied {
                message_id: "m520".into(),
                by: agent,
                at: t(520),
            },
        ]);
        let outcome = |since: i64, due: i64, at: i64, met: bool| {
            let (policy_id, target) = ("general".to_owned(), SlaTarget::NextResponse);
            let (since, due_at, at) = (t(since), t(due), t(at));
            if met {
                ConversationEvent::SlaMet {
                    policy_id,
                    target,
                    since,
                    due_at,
                    at,
                }
            } else {
                ConversationEvent::SlaBreached {
                    policy_id,
                    target,
                    since,
                    due_at,
                    at,
                }
            }
        };
        let first = ConversationEvent::SlaMet {
            policy_id: "general".into(),
            target: SlaTarget::FirstResponse,
            since: t(0),
            due_at: t(120),
            at: t(60),
        };
        TestFramework::<Conversation>::with(())
            .given(events)
            .when(evaluate(vec![policy("general", 120, 200, None)], 600))
            .then_expect_events(vec![
                first,
                outcome(100, 300, 600, false),
                outcome(500, 700, 520, true),
            ]);
    }

    #[test]
    fn a_wait_not_yet_due_records_nothing() {
        let mut waiting = history();
        waiting.truncate(2);
        TestFramework::<Conversation>::with(())
            .given(waiting)
            .when(evaluate(vec![policy("general", 120, 200, None)], 119))
            .then_expect_events(vec![]);
    }
}
