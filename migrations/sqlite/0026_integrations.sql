-- Integrations and bots (issue #23).

-- Projection `api_keys`: whether a key has the `bot` scope (1) or not (0).
alter table api_keys add column bot bigint not null default 0;

-- Authentication state, not a read model (never rebuilt): when each API key was last used,
-- written at most once a minute per key.
create table api_key_usage (
    key_id       text   primary key,
    last_used_at bigint not null
);

-- Projection `webhook_endpoints`: outgoing webhook endpoints as admins list them.
create table webhook_endpoints (
    id                  text    primary key,
    url                 text    not null,
    description         text,
    event_types         text    not null,
    phone_number_ids    text    not null,
    group_ids           text    not null,
    bot                 bigint  not null,
    enabled             bigint  not null,
    disabled_reason     text,
    registered_position bigint  not null,
    created_by          text    not null,
    created_at          bigint  not null,
    updated_at          bigint  not null,
    deleted             bigint  not null default 0
);

-- Credentials, not a read model: each endpoint's signing secret. Never in the log, which is
-- exported and streamed.
create table webhook_endpoint_secrets (
    endpoint_id text   primary key,
    secret      text   not null,
    created_at  bigint not null
);

-- Worker state of the webhook deliverer: each endpoint's live cursor and its replays, with
-- the retry state of the event at their head.
create table webhook_tracks (
    id              text   primary key,
    endpoint_id     text   not null,
    kind            text   not null,
    after_tx        bigint not null,
    after_position  bigint not null,
    until_position  bigint,
    attempts        bigint not null default 0,
    next_attempt_at bigint not null default 0,
    failing_since   bigint,
    last_error      text,
    created_at      bigint not null
);
create index webhook_tracks_by_endpoint on webhook_tracks (endpoint_id);

-- Worker state: every delivery attempt (pruned by age).
create table webhook_deliveries (
    id               integer primary key autoincrement,
    endpoint_id      text   not null,
    position         bigint not null,
    attempt          bigint not null,
    kind             text   not null,
    status           bigint,
    error            text,
    latency_ms       bigint not null,
    response_excerpt text,
    at               bigint not null
);
create index webhook_deliveries_by_endpoint on webhook_deliveries (endpoint_id, id);

-- Worker state: events an endpoint never accepted, after every retry.
create table webhook_dead_letters (
    endpoint_id text   not null,
    position    bigint not null,
    attempts    bigint not null,
    last_error  text   not null,
    dead_at     bigint not null,
    primary key (endpoint_id, position)
);
