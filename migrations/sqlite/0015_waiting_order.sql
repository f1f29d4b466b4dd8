-- "Waiting longest" sorts on coalesce(waiting_since, max): index that expression, so the view
-- reads its first page from the index instead of sorting every conversation.
drop index conversations_by_waiting;
create index conversations_by_waiting on conversations ((coalesce(waiting_since, 9223372036854775807)), id);
