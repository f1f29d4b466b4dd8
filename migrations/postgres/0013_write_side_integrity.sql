-- Snapshots carry the schema version of the aggregate they hold; a snapshot of another version
-- is ignored (the aggregate is rebuilt from its events) and replaced at the next snapshot.
alter table snapshots add column schema_version bigint not null default 1;

-- outbound_queue is no longer a read model but the sender's outbox (worker state): its rows
-- are written in the same transaction as the message's events (the request, each attempt's
-- outcome, a dead letter, a retry or a purge), never by a projection, and a rebuild leaves it
-- alone. A row exists exactly while the message may still be sent.
delete from projection_checkpoints where name like 'outbound_queue%';
