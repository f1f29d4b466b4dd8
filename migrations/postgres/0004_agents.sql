-- Credentials and sessions: security state, deliberately kept out of the event log (which is
-- exported and streamed to analytics). The log records only that a password changed.
create table credentials (
    agent_id      text   primary key,
    password_hash text   not null,
    updated_at    bigint not null
);

-- One family per login; every refresh token descends from it. Revoking the family (logout,
-- or a rotated token presented again) kills every token of that login at once.
create table session_families (
    id            text   primary key,
    agent_id      text   not null,
    created_at    bigint not null,
    expires_at    bigint not null,
    revoked_at    bigint,
    revoke_reason text
);
create index session_families_by_agent on session_families (agent_id);

-- Refresh tokens, stored as SHA-256 hashes; `used_at` is set when one is rotated.
create table refresh_tokens (
    token_hash text   primary key,
    family_id  text   not null,
    issued_at  bigint not null,
    expires_at bigint not null,
    used_at    bigint
);
create index refresh_tokens_by_family on refresh_tokens (family_id);

-- Read models of agents and groups (built by projections).
create table agents (
    id            text   primary key,
    email         text   not null,
    name          text   not null,
    role          text   not null,
    group_ids     text   not null,
    permissions   text   not null,
    working_hours text,
    active        bigint not null,
    created_at    bigint not null,
    updated_at    bigint not null,
    version       bigint not null
);
create index agents_by_email on agents (email);

create table agent_groups (
    agent_id text not null,
    group_id text not null,
    primary key (agent_id, group_id)
);
create index agent_groups_by_group on agent_groups (group_id);

create table group_directory (
    id         text   primary key,
    name       text   not null,
    created_at bigint not null
);

alter table conversations add column assigned_agent_id text;
alter table conversations add column assigned_group_id text;
create index conversations_by_agent on conversations (assigned_agent_id);
create index conversations_by_group on conversations (assigned_group_id);
