-- The event log: sqlite-es's columns, plus a global position and the time it was recorded.
-- SQLite serializes writers, so position order is commit order (no transaction id needed).
create table events (
    aggregate_type text    not null,
    aggregate_id   text    not null,
    sequence       integer not null check (sequence >= 0),
    event_type     text    not null,
    event_version  text    not null,
    payload        text    not null,
    metadata       text    not null,
    position       integer,
    recorded_at    text    not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    primary key (aggregate_type, aggregate_id, sequence)
);
-- The position is the rowid at insert time, copied so that it survives VACUUM.
create trigger events_assign_position after insert on events
begin
    update events set position = new.rowid where rowid = new.rowid;
end;
create unique index events_position on events (position);

create table snapshots (
    aggregate_type   text    not null,
    aggregate_id     text    not null,
    last_sequence    integer not null check (last_sequence >= 0),
    current_snapshot integer not null check (current_snapshot >= 0),
    payload          text    not null,
    primary key (aggregate_type, aggregate_id)
);
