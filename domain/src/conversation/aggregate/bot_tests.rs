//! The bot's part: who may write while the conversation is with the bot, hand-offs, and the
//! reply timeout decided at the append.

use cqrs_es::test::TestFramework;

use super::*;
use crate::agent::{ChatScope, Permissions, Role};
use crate::WaMessageId;

type ConversationTest = TestFramework<Conversation>;

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(1_780_000_000 + seconds).expect("valid")
}
fn id(n: u128) -> AgentId {
    AgentId::parse(&uuid::Uuid::from_u128(n).to_string()).expect("id")
}
fn actor(n: u128, bot: bool) -> Actor {
    let mut permissions = Permissions::for_role(Role::Agent);
    permissions.can_read_chats = ChatScope::All;
    permissions.can_write_to_chats = ChatScope::All;
    Actor {
        agent_id: id(n),
        role: Role::Agent,
        groups: vec![],
        permissions,
        on_duty: true,
        bot,
    }
}
fn write(actor: Actor, at: i64) -> Write {
    Write {
        actor,
        expected_version: None,
        at: t(at),
    }
}
fn started() -> ConversationEvent {
    ConversationEvent::Started {
        phone_number_id: PhoneNumberId::new("120000000000001"),
        customer: Customer::new(Some("15550002222".into()), None).expect("customer"),
        started_at: t(0),
    }
}
fn received(wamid: &str, at: i64) -> ConversationEvent {
    ConversationEvent::CustomerMessageReceived {
        wamid: WaMessageId::new(wamid),
        sent_at: t(at),
        window_closes_at: Some(t(at + SERVICE_WINDOW_SECONDS)),
    }
}
/// Started, handed back to the bot at 5 s, and the customer wrote at 10 s.
fn waiting_for_the_bot() -> Vec<ConversationEvent> {
    vec![
        started(),
        received("w1", 0),
        ConversationEvent::StatusChanged {
            status: ConversationStatus::Pending,
            by: Some(id(1)),
            reason: None,
            at: t(5),
        },
        received("w2", 10),
    ]
}
fn unanswered(at: i64, bot_unreachable: bool) -> ConversationCommand {
    ConversationCommand::HandOffUnanswered {
        timeout_seconds: 60,
        bot_unreachable,
        at: t(at),
    }
}
fn handed_off(reason: &str, by: Option<AgentId>, at: i64) -> ConversationEvent {
    ConversationEvent::HandedOff {
        group: None,
        reason: reason.to_owned(),
        by,
        at: t(at),
    }
}

#[test]
fn a_bot_writes_only_to_conversations_with_the_bot() {
    let reply = |n| ConversationCommand::Reply {
        write: write(actor(9, true), 20),
        message_id: format!("k{n}"),
        template: false,
    };
    ConversationTest::with(())
        .given(vec![started(), received("w1", 0)])
        .when(reply(1))
        .then_expect_error(ConversationError::NotWithBot);
    ConversationTest::with(())
        .given(waiting_for_the_bot())
        .when(reply(2))
        .then_expect_events(vec![ConversationEvent::AgentReplied {
            message_id: "k2".to_owned(),
            by: id(9),
            at: t(20),
        }]);
}

#[test]
fn the_bot_hands_off_only_what_it_has() {
    let hand_off = || ConversationCommand::HandOff {
        write: write(actor(9, true), 20),
        group: None,
        reason: "asked for a human".to_owned(),
    };
    ConversationTest::with(())
        .given(waiting_for_the_bot())
        .when(hand_off())
        .then_expect_events(vec![handed_off("asked for a human", Some(id(9)), 20)]);
    let mut handed = waiting_for_the_bot();
    handed.push(handed_off("asked for a human", Some(id(9)), 20));
    ConversationTest::with(())
        .given(handed)
        .when(hand_off())
        .then_expect_error(ConversationError::NotWithBot);
}

#[test]
fn an_unanswered_customer_is_handed_off_after_the_timeout_once() {
    ConversationTest::with(())
        .given(waiting_for_the_bot())
        .when(unanswered(69, false))
        .then_expect_events(vec![]);
    ConversationTest::with(())
        .given(waiting_for_the_bot())
        .when(unanswered(70, false))
        .then_expect_events(vec![handed_off("bot_timeout", None, 70)]);
    let mut answered = waiting_for_the_bot();
    answered.push(ConversationEvent::AgentReplied {
        message_id: "k".to_owned(),
        by: id(9),
        at: t(30),
    });
    ConversationTest::with(())
        .given(answered)
        .when(unanswered(500, true))
        .then_expect_events(vec![]);
    ConversationTest::with(())
        .given(waiting_for_the_bot())
        .when(unanswered(11, true))
        .then_expect_events(vec![handed_off("bot_unreachable", None, 11)]);
}

#[test]
fn after_a_hand_off_the_conversation_waits_for_an_agent() {
    let mut events = waiting_for_the_bot();
    events.push(handed_off("bot_timeout", None, 70));
    let mut conversation = Conversation::default();
    for event in events {
        conversation.apply(event);
    }
    assert!(!conversation.with_bot());
    assert_eq!(conversation.status(), ConversationStatus::Open);
    assert_eq!(conversation.assignment(), (None, None));
    assert_eq!(conversation.awaiting_bot_since(), None);
}
