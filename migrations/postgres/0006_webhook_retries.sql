-- Inbound processing failures: every failed attempt with its error, and when a webhook was
-- dead-lettered (status 'failed' after its last attempt, or at once when retrying cannot help).
alter table raw_webhooks add column dead_lettered_at bigint;

create table webhook_attempts (
    id         bigint generated always as identity primary key,
    webhook_id bigint  not null,
    attempt    bigint  not null,
    at         bigint  not null,
    error      text    not null,
    retryable  bigint  not null
);
create index webhook_attempts_by_webhook on webhook_attempts (webhook_id, id);
