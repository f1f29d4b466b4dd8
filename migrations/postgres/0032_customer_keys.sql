-- Customers' data keys (crypto-shredding): personal data in events and snapshots is sealed
-- with them; destroying a row erases what it sealed. Wrapped by the master key `master_key`
-- names. Not part of the log, not a read model: copied by `switchboard-replay move`.
-- `scope` is -1 for the customer's identity, else the hour (Unix seconds / 3600) of content.
create table customer_keys (
    id text primary key,
    conversation_id text not null,
    scope bigint not null,
    wrapped bytea not null,
    master_key text not null,
    unique (conversation_id, scope)
);
create index customer_keys_by_master_key on customer_keys (master_key);
