-- Media (issue #22). `media_files` (projection `media`): every file a message carries (and
-- every file an agent uploaded to send: no conversation, `uploaded_by` set), its
-- state (`pending` until fetched, then `stored` or `unavailable`), and where it is kept (the
-- SHA-256 of its bytes is the storage key). `media_fetches` is worker state, not a read model:
-- the fetcher's claims and attempts, which no rebuild touches.
create table media_files (
    id              text    primary key,
    conversation_id text,
    uploaded_by     text,
    meta_media_id   text,
    kind            text    not null,
    mime_type       text,
    expected_sha256 text,
    filename        text,
    voice           bigint  not null default 0,
    status          text    not null,
    sha256          text,
    size            bigint,
    reason          text,
    received_at     bigint  not null,
    settled_at      bigint
);
create index media_files_by_status on media_files (status, received_at);
create table media_fetches (
    media_id      text    primary key,
    attempts      bigint  not null default 0,
    available_at  bigint  not null default 0,
    claimed_until bigint,
    last_error    text
);
-- Worker state of the sender: Meta's id of a file uploaded from a number, reused while Meta
-- keeps it (30 days).
create table meta_uploads (
    sha256          text    not null,
    phone_number_id text    not null,
    meta_media_id   text    not null,
    uploaded_at     bigint  not null,
    primary key (sha256, phone_number_id)
);
