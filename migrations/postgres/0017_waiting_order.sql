-- "Waiting longest" sorts on coalesce(waiting_since, max): index that expression, so the view
-- reads its first page from the index instead of sorting every conversation.
-- `if exists`: a rebuild swaps in a copy whose indexes may carry other names.
drop index if exists conversations_by_waiting;
create index conversations_by_waiting on conversations ((coalesce(waiting_since, 9223372036854775807)), id);
