-- Every acknowledged webhook, stored before Meta gets its 200. Times are Unix milliseconds.
create table raw_webhooks (
    id            bigint generated always as identity primary key,
    received_at   bigint  not null,
    request_id    text,
    body          bytea   not null,
    status        text    not null default 'pending' check (status in ('pending', 'processed', 'failed')),
    attempts      integer not null default 0,
    claimed_until bigint,
    last_error    text,
    processed_at  bigint
);
create index raw_webhooks_pending on raw_webhooks (id) where status = 'pending';
create index raw_webhooks_failed on raw_webhooks (id) where status = 'failed';
