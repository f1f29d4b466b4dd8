-- Response times (projection `response_times`, issue #21): per conversation, whether and
-- since when the customer waits for an answer, its first answer and its resolution; and one
-- row per agent reply that answered a waiting customer (keyed by the reply's log position).
create table response_waits (
    conversation_id   text    primary key,
    started_at        bigint  not null,
    waiting_since     bigint,
    first_response_at bigint,
    resolved_at       bigint,
    reopens           bigint  not null default 0
);
create table responses (
    position        bigint  primary key,
    conversation_id text    not null,
    agent_id        text    not null,
    responded_at    bigint  not null,
    waited_ms       bigint  not null,
    is_first        bigint  not null
);
create index responses_by_time on responses (responded_at);
create index response_waits_by_start on response_waits (started_at);
