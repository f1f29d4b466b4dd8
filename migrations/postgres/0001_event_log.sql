-- The event log: postgres-es's columns, plus a global position, the writing transaction id
-- (for the gapless reader, see store/src/event_log.rs) and the time the database recorded it.
create table events (
    aggregate_type text   not null,
    aggregate_id   text   not null,
    sequence       bigint not null check (sequence >= 0),
    event_type     text   not null,
    event_version  text   not null,
    payload        jsonb  not null,
    metadata       jsonb  not null,
    position       bigint generated always as identity,
    transaction_id xid8        not null default pg_current_xact_id(),
    recorded_at    timestamptz not null default now(),
    primary key (aggregate_type, aggregate_id, sequence)
);
create unique index events_position on events (position);
create index events_log_order on events (transaction_id, position);

-- Required by postgres-es's API; Switchboard does not use cqrs-es snapshots (0.5.0 applies
-- events twice when loading from one).
create table snapshots (
    aggregate_type   text   not null,
    aggregate_id     text   not null,
    last_sequence    bigint not null check (last_sequence >= 0),
    current_snapshot bigint not null check (current_snapshot >= 0),
    payload          jsonb  not null,
    primary key (aggregate_type, aggregate_id)
);
