-- An agent's own view (read scope `assigned`, `assignee=me`) reads its first page from the index
-- in activity order; the index on the agent alone is its prefix.
-- `if exists`: a rebuild swaps in a copy whose indexes may carry other names.
drop index if exists conversations_by_agent;
create index conversations_by_agent on conversations (assigned_agent_id, last_activity_at desc, id desc);
