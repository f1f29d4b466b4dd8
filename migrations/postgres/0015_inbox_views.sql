-- Inbox views (issue #17): how long the customer has been waiting for an answer, tags one row
-- per tag (filtering by several tags), and indexes for each sort and the common filters.
-- The conversations read model is rebuilt from the log by the runner (checkpoint reset), so
-- existing conversations get their waiting time and tags too.
drop table if exists conversations__rebuild;
drop table if exists conversations__verify;
delete from projection_checkpoints where name like 'conversations%';
delete from conversations;

alter table conversations add column waiting_since bigint;

create table conversation_tags (
    conversation_id text not null,
    tag             text not null,
    primary key (conversation_id, tag)
);
create index conversation_tags_by_tag on conversation_tags (tag, conversation_id);

create index conversations_by_status on conversations (status, last_activity_at desc, id desc);
create index conversations_by_started on conversations (started_at desc, id desc);
create index conversations_by_waiting on conversations (waiting_since, id);
