-- Meta's pair limit: when each (business number, customer) pair may be written to next.
-- Sender state shared by every instance, not a read model: it is never rebuilt from events.
create table outbound_pacing (
    pair    text   primary key,
    next_at bigint not null
);
