-- Read models, built only by projections (projections/src). Times are Unix milliseconds;
-- JSON values are stored as text so that the same projection code serves both backends.

create table projection_checkpoints (
    name           text   primary key,
    transaction_id bigint not null,
    position       bigint not null
);

create table conversations (
    id                       text   primary key,
    phone_number_id          text   not null,
    customer_wa_id           text,
    customer_user_id         text,
    profile_name             text,
    status                   text   not null default 'open',
    started_at               bigint not null,
    last_activity_at         bigint not null,
    last_message_id          text,
    last_message_preview     text,
    last_message_direction   text,
    last_message_at          bigint,
    unread_count             bigint not null default 0,
    last_customer_message_at bigint,
    window_closes_at         bigint,
    version                  bigint not null
);
create index conversations_by_activity on conversations (last_activity_at desc, id desc);

create table messages (
    id                text   primary key,
    conversation_id   text   not null,
    wamid             text,
    direction         text   not null,
    kind              text,
    content           text,
    context           text,
    referral          text,
    errors            text,
    profile_name      text,
    sent_at           bigint,
    sort_at           bigint not null,
    first_position    bigint not null,
    status            text,
    status_at         bigint,
    sent_status_at    bigint,
    delivered_at      bigint,
    read_at           bigint,
    played_at         bigint,
    failed_at         bigint,
    status_errors     text,
    pricing           text,
    ignored_statuses  bigint not null default 0,
    version           bigint not null
);
create index messages_by_conversation on messages (conversation_id, sort_at, first_position);

create table templates (
    id          text   primary key,
    waba_id     text   not null,
    name        text,
    language    text,
    status      text,
    category    text,
    quality     text,
    reason      text,
    updated_at  bigint not null,
    version     bigint not null
);

create table account_notifications (
    id              text   primary key,
    waba_id         text   not null,
    field           text   not null,
    phone_number_id text,
    summary         text,
    at              bigint not null,
    value           text   not null,
    position        bigint not null
);
create index account_notifications_by_time on account_notifications (at desc, id desc);
