-- Agents' sends in the messages read model: the client's idempotency key, priority and sender.
alter table messages add column client_id text;
alter table messages add column priority text;
alter table messages add column requested_by text;
