-- API keys (projection `api_keys`, issue #23): what admins see of them; never the secret.
create table api_keys (
    id          text    primary key,
    name        text    not null,
    prefix      text    not null,
    permissions text    not null,
    created_by  text    not null,
    created_at  bigint  not null,
    expires_at  bigint,
    revoked_at  bigint
);
