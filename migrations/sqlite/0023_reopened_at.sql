-- When a resolved conversation was last reopened (projection `response_times`): the start of
-- its resolution stretch for SLA due times. Rows written before it stay null (the start of
-- the conversation is used) until the next rebuild.
alter table response_waits add column reopened_at bigint;
