-- Sends whose every attempt failed stay in the queue, marked dead, until an operator retries
-- or purges them.
alter table outbound_queue add column dead bigint not null default 0;
alter table outbound_queue add column last_error text;
alter table outbound_queue add column dead_lettered_at bigint;
