-- Wake every server instance when events are committed (LISTEN switchboard_events): their
-- projection runners and event streams then read the log at once instead of at the next poll.
-- One notification per statement; PostgreSQL delivers it at commit and folds duplicates.
create or replace function switchboard_notify_events() returns trigger language plpgsql as $$
begin
    perform pg_notify('switchboard_events', '');
    return null;
end
$$;

create trigger events_notify after insert on events
    for each statement execute function switchboard_notify_events();
