-- SLA policies and the outcomes recorded against them (projection `sla`, issue #21).
-- `terms` is the policy's terms as JSON (thresholds, business hours, scope); `created_position`
-- orders policies oldest first (the oldest of equally specific ones applies).
create table sla_policies (
    id               text    primary key,
    name             text    not null,
    terms            text    not null,
    created_position bigint  not null,
    created_at       bigint  not null,
    updated_at       bigint  not null
);
-- One row per `ConversationSlaMet` / `ConversationSlaBreached`, keyed by its log position.
create table sla_outcomes (
    position        bigint  primary key,
    conversation_id text    not null,
    policy_id       text    not null,
    target          text    not null,
    outcome         text    not null,
    since           bigint  not null,
    due_at          bigint  not null,
    at              bigint  not null
);
create index sla_outcomes_by_due on sla_outcomes (due_at);
create index sla_outcomes_by_conversation on sla_outcomes (conversation_id);
