-- Agents' messages waiting to be sent, built from the log (MessageOutboundRequested in,
-- MessageOutboundAccepted / MessageOutboundFailed out). Senders claim rows with a visibility
-- timeout, high priority first.
create table outbound_queue (
    message_id      text    primary key,
    conversation_id text    not null,
    phone_number_id text    not null,
    wa_id           text,
    user_id         text,
    priority_rank   bigint  not null,
    available_at    bigint  not null,
    attempts        integer not null default 0,
    claimed_until   bigint,
    content         text    not null,
    reply_to        text
);
create index outbound_queue_due on outbound_queue (priority_rank, available_at);
