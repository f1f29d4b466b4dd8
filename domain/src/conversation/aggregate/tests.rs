use cqrs_es::test::TestFramework;

use super::*;
use crate::agent::{ChatScope, Permissions, Role};
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
fn agent(n: u128) -> AgentId {
    AgentId::parse(&uuid::Uuid::from_u128(n).to_string()).expect("id")
}
const ALICE: u128 = 1;
const BOB: u128 = 2;
fn actor(n: u128, role: Role) -> Actor {
    Actor {
        agent_id: agent(n),
        role,
        groups: vec![],
        permissions: Permissions::for_role(role),
        on_duty: true,
        bot: false,
    }
}
fn alice() -> Actor {
    actor(ALICE, Role::Agent).with_scope(ChatScope::All)
}
fn bob() -> Actor {
    actor(BOB, Role::Agent).with_scope(ChatScope::All)
}
fn write(actor: Actor, at: i64) -> Write {
    Write {
        actor,
        expected_version: None,
        at: t(at),
    }
}

trait WithScope {
    fn with_scope(self, scope: ChatScope) -> Self;
}
impl WithScope for Actor {
    fn with_scope(mut self, scope: ChatScope) -> Self {
        self.permissions.can_read_chats = scope;
        self.permissions.can_write_to_chats = scope;
        self
    }
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
fn locked(n: u128, at: i64, until: i64) -> ConversationEvent {
    ConversationEvent::LockAcquired {
        agent: agent(n),
        acquired_at: t(at),
        expires_at: t(until),
    }
}
fn acquire(actor: Actor, at: i64, ttl: i64) -> ConversationCommand {
    ConversationCommand::AcquireLock {
        actor,
        expected_version: None,
        ttl_seconds: ttl,
        at: t(at),
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
fn a_new_message_reopens_a_resolved_conversation() {
    ConversationTest::with(())
        .given(vec![
            started(),
            received("w1", 0),
            ConversationEvent::StatusChanged {
                status: ConversationStatus::Resolved,
                by: Some(agent(ALICE)),
                reason: None,
                at: t(5),
            },
        ])
        .when(wrote("w2", 10, None))
        .then_expect_events(vec![
            received("w2", 10),
            ConversationEvent::StatusChanged {
                status: ConversationStatus::Open,
                by: None,
                reason: Some("customer_wrote".into()),
                at: t(10),
            },
        ]);
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

#[test]
fn a_free_lock_is_acquired() {
    ConversationTest::with(())
        .given(vec![started()])
        .when(acquire(alice(), 10, 60))
        .then_expect_events(vec![locked(ALICE, 10, 70)]);
}

#[test]
fn a_second_agent_cannot_take_a_held_lock() {
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(acquire(bob(), 59, 60))
        .then_expect_error(ConversationError::LockedByAnotherAgent {
            holder: agent(ALICE),
            until: t(60),
        });
}

#[test]
fn at_its_expiry_the_lock_is_free_and_its_lapse_is_recorded() {
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(acquire(bob(), 60, 30))
        .then_expect_events(vec![
            ConversationEvent::LockExpired {
                agent: agent(ALICE),
                expired_at: t(60),
            },
            locked(BOB, 60, 90),
        ]);
}

#[test]
fn the_holder_renews() {
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(acquire(alice(), 30, 60))
        .then_expect_events(vec![ConversationEvent::LockRenewed {
            agent: agent(ALICE),
            renewed_at: t(30),
            expires_at: t(90),
        }]);
}

#[test]
fn the_expiry_worker_records_only_lapsed_locks() {
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(ConversationCommand::ExpireLock { at: t(59) })
        .then_expect_events(vec![]);
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(ConversationCommand::ExpireLock { at: t(60) })
        .then_expect_events(vec![ConversationEvent::LockExpired {
            agent: agent(ALICE),
            expired_at: t(60),
        }]);
}

#[test]
fn only_the_holder_releases_unless_a_supervisor_forces_it_with_a_reason() {
    let release =
        |actor: Actor, force: bool, reason: Option<&str>| ConversationCommand::ReleaseLock {
            actor,
            force,
            reason: reason.map(str::to_owned),
            at: t(10),
        };
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(release(bob(), false, None))
        .then_expect_error(ConversationError::LockedByAnotherAgent {
            holder: agent(ALICE),
            until: t(60),
        });
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(release(bob(), true, Some("stuck")))
        .then_expect_error(ConversationError::ForceReleaseNotAllowed);
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(release(actor(3, Role::Supervisor), true, None))
        .then_expect_error(ConversationError::ForceReleaseNotAllowed);
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(release(
            actor(3, Role::Supervisor),
            true,
            Some("Alice is on a call"),
        ))
        .then_expect_events(vec![ConversationEvent::LockReleased {
            agent: agent(ALICE),
            by: agent(3),
            forced: true,
            reason: Some("Alice is on a call".into()),
            at: t(10),
        }]);
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(release(alice(), false, None))
        .then_expect_events(vec![ConversationEvent::LockReleased {
            agent: agent(ALICE),
            by: agent(ALICE),
            forced: false,
            reason: None,
            at: t(10),
        }]);
}

#[test]
fn other_agents_cannot_write_while_it_is_locked() {
    ConversationTest::with(())
        .given(vec![started(), locked(ALICE, 0, 60)])
        .when(ConversationCommand::ChangeStatus {
            write: write(bob(), 10),
            status: ConversationStatus::Resolved,
            reason: None,
        })
        .then_expect_error(ConversationError::LockedByAnotherAgent {
            holder: agent(ALICE),
            until: t(60),
        });
}

#[test]
fn a_stale_version_is_refused() {
    let mut stale = write(alice(), 10);
    stale.expected_version = Some(1);
    ConversationTest::with(())
        .given(vec![started(), received("w1", 1)])
        .when(ConversationCommand::ChangeStatus {
            write: stale,
            status: ConversationStatus::Resolved,
            reason: None,
        })
        .then_expect_error(ConversationError::Changed {
            expected: 1,
            current: 2,
        });
}

#[test]
fn off_duty_agents_and_agents_out_of_scope_cannot_write() {
    let mut off = alice();
    off.on_duty = false;
    ConversationTest::with(())
        .given(vec![started()])
        .when(acquire(off, 1, 60))
        .then_expect_error(ConversationError::OffDuty);
    ConversationTest::with(())
        .given(vec![started()])
        .when(acquire(alice().with_scope(ChatScope::Assigned), 1, 60))
        .then_expect_error(ConversationError::NotFound);
}

#[test]
fn takeover_and_handback_move_ownership_and_status() {
    ConversationTest::with(())
        .given(vec![started()])
        .when(ConversationCommand::TakeOver {
            write: write(alice(), 5),
            reason: Some("VIP".into()),
        })
        .then_expect_events(vec![ConversationEvent::TakenOver {
            agent: agent(ALICE),
            from: None,
            reason: Some("VIP".into()),
            at: t(5),
        }]);
    ConversationTest::with(())
        .given(vec![
            started(),
            ConversationEvent::TakenOver {
                agent: agent(ALICE),
                from: None,
                reason: None,
                at: t(5),
            },
        ])
        .when(ConversationCommand::HandBackToBot {
            write: write(alice(), 6),
            reason: Some("done".into()),
        })
        .then_expect_events(vec![
            ConversationEvent::HandedBackToBot {
                by: agent(ALICE),
                reason: Some("done".into()),
                at: t(6),
            },
            ConversationEvent::StatusChanged {
                status: ConversationStatus::Pending,
                by: Some(agent(ALICE)),
                reason: Some("done".into()),
                at: t(6),
            },
        ]);
}

#[test]
fn tags_need_the_permission() {
    let mut no_tags = alice();
    no_tags.permissions.can_use_tags = false;
    let tag = Tag::parse(" VIP ").expect("tag");
    assert_eq!(tag.as_str(), "vip");
    ConversationTest::with(())
        .given(vec![started()])
        .when(ConversationCommand::AddTag {
            write: write(no_tags, 1),
            tag: tag.clone(),
        })
        .then_expect_error(ConversationError::TagsNotAllowed);
    ConversationTest::with(())
        .given(vec![started()])
        .when(ConversationCommand::AddTag {
            write: write(alice(), 1),
            tag: tag.clone(),
        })
        .then_expect_events(vec![ConversationEvent::TagAdded {
            tag: tag.clone(),
            tags: vec![tag],
            by: agent(ALICE),
            at: t(1),
        }]);
}

#[test]
fn a_snooze_ends_at_its_time() {
    let snoozed = ConversationEvent::StatusChanged {
        status: ConversationStatus::Snoozed { until: t(100) },
        by: Some(agent(ALICE)),
        reason: None,
        at: t(1),
    };
    ConversationTest::with(())
        .given(vec![started(), snoozed.clone()])
        .when(ConversationCommand::WakeUp { at: t(99) })
        .then_expect_events(vec![]);
    ConversationTest::with(())
        .given(vec![started(), snoozed])
        .when(ConversationCommand::WakeUp { at: t(100) })
        .then_expect_events(vec![ConversationEvent::StatusChanged {
            status: ConversationStatus::Open,
            by: None,
            reason: Some("snooze_ended".into()),
            at: t(100),
        }]);
}

#[test]
fn a_note_needs_write_scope_but_not_the_lock() {
    let locked = ConversationEvent::LockAcquired {
        agent: agent(BOB),
        acquired_at: t(1),
        expires_at: t(300),
    };
    let note = |actor: Actor, text: &str| ConversationCommand::AddNote {
        write: write(actor, 2),
        note_id: "n1".into(),
        text: text.into(),
        mentions: vec![agent(BOB), agent(BOB)],
    };
    ConversationTest::with(())
        .given(vec![started(), locked.clone()])
        .when(note(alice(), "VIP"))
        .then_expect_events(vec![ConversationEvent::NoteAdded {
            note_id: "n1".into(),
            text: "VIP".into(),
            mentions: vec![agent(BOB)],
            by: agent(ALICE),
            at: t(2),
        }]);
    ConversationTest::with(())
        .given(vec![started()])
        .when(note(alice(), "   "))
        .then_expect_error(ConversationError::InvalidNote {
            max_chars: MAX_NOTE_CHARS,
            max_mentions: MAX_MENTIONS,
        });
    ConversationTest::with(())
        .given(vec![started()])
        .when(note(alice().with_scope(ChatScope::Assigned), "hi"))
        .then_expect_error(ConversationError::NotFound);
}

#[test]
fn auto_assignment_only_takes_a_conversation_still_waiting() {
    let assign = |n: u128| ConversationCommand::AutoAssign {
        agent: agent(n),
        group: None,
        policy: "round_robin".into(),
        reason: "0 of 2".into(),
        at: t(5),
    };
    let assigned = ConversationEvent::AutoAssigned {
        agent: agent(ALICE),
        group: None,
        policy: "round_robin".into(),
        reason: "0 of 2".into(),
        at: t(5),
    };
    ConversationTest::with(())
        .given(vec![started()])
        .when(assign(ALICE))
        .then_expect_events(vec![assigned.clone()]);
    // A second decider loses: it is no longer waiting.
    ConversationTest::with(())
        .given(vec![started(), assigned])
        .when(assign(BOB))
        .then_expect_error(ConversationError::NotWaitingForAssignment);
    // Owned by a human, or resolved: not waiting either.
    let taken = ConversationEvent::TakenOver {
        agent: agent(BOB),
        from: None,
        reason: None,
        at: t(1),
    };
    ConversationTest::with(())
        .given(vec![started(), taken])
        .when(assign(ALICE))
        .then_expect_error(ConversationError::NotWaitingForAssignment);
    let resolved = ConversationEvent::StatusChanged {
        status: ConversationStatus::Resolved,
        by: None,
        reason: None,
        at: t(1),
    };
    ConversationTest::with(())
        .given(vec![started(), resolved])
        .when(assign(ALICE))
        .then_expect_error(ConversationError::NotWaitingForAssignment);
}
