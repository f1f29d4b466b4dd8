-- The log's high-water mark waits only for transactions that write events (see
-- store/src/high_water.rs). Every statement that inserts events registers its transaction as an
-- event writer before the transaction gets its id: a shared advisory lock on (1398276095, 0)
-- says "an event writer is here", then a shared advisory lock keyed by its own transaction id
-- (0x5357 << 16 | epoch, low 32 bits) says which. A transaction that wrote anything before its
-- first event would have its id before registering, and could be passed over by a reader:
-- such a transaction is refused.
create or replace function switchboard_register_event_writer() returns trigger language plpgsql as $$
declare
    x bigint;
begin
    if current_setting('switchboard.event_writer', true) = 'yes' then
        return null;
    end if;
    if pg_current_xact_id_if_assigned() is not null then
        raise exception 'switchboard: events must be the first thing a transaction writes';
    end if;
    perform pg_advisory_xact_lock_shared(1398276095, 0);
    x := pg_current_xact_id()::text::bigint;
    perform pg_advisory_xact_lock_shared(
        (1398210560 | (x >> 32))::int,
        ((x & 4294967295) - case when (x & 4294967295) >= 2147483648 then 4294967296 else 0 end)::int);
    perform set_config('switchboard.event_writer', 'yes', true);
    return null;
end
$$;

create trigger events_register_writer before insert on events
    for each statement execute function switchboard_register_event_writer();
