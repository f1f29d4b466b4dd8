-- Conversation ownership (bot or agent), snooze, tags and lock, as the inbox shows them.
alter table conversations add column owner_agent_id text;
alter table conversations add column snoozed_until bigint;
alter table conversations add column tags text not null default '[]';
alter table conversations add column lock_agent_id text;
alter table conversations add column lock_acquired_at bigint;
alter table conversations add column lock_expires_at bigint;
create index conversations_lock_expiry on conversations (lock_expires_at) where lock_expires_at is not null;
create index conversations_snoozed on conversations (snoozed_until) where snoozed_until is not null;
