-- The event log on NATS JetStream (issue #24). Worker state, not a read model: per stream, the
-- position just after the last event JetStream acknowledged, and the publisher's lease (one
-- instance publishes at a time; another takes over once `lease_until` has passed).
create table stream_publishers (
    stream         text   primary key,
    after_tx       bigint not null,
    after_position bigint not null,
    holder         text,
    lease_until    bigint not null
);
