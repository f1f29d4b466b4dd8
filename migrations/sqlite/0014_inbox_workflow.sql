-- Issue #17: search index, availability, auto-assignment.

-- Search (projection `search`): documents as written, and their folded words indexed by `seq`
-- (the log position of the event that last wrote the document).
create table search_documents (
    id              text   primary key,
    seq             bigint not null unique,
    conversation_id text   not null,
    kind            text   not null,
    body            text   not null,
    folded          text   not null,
    at              bigint not null
);
create index search_documents_by_conversation on search_documents (conversation_id);
create virtual table search_index using fts5(
    folded, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
);

-- Availability (projection `agents`).
alter table agents add column availability text not null default 'offline';
alter table agents add column availability_since bigint;

-- Auto-assignment (projection `assignment`): each pool's policy, and when each agent last got a
-- conversation from it (round robin goes to the one who waited longest).
create table assignment_policies (
    pool       text   primary key,
    mode       text   not null,
    capacity   bigint not null,
    updated_at bigint not null
);
create table agent_assignments (
    agent_id         text   primary key,
    last_assigned_at bigint not null,
    last_position    bigint not null,
    assigned_total   bigint not null
);

-- Worker state (not a read model; a rebuild leaves it alone): each instance's connected sockets
-- per agent, refreshed while connected; an agent with none anywhere for the grace period goes
-- offline.
create table agent_connections (
    instance_id text   not null,
    agent_id    text   not null,
    sockets     bigint not null,
    seen_at     bigint not null,
    primary key (instance_id, agent_id)
);
create index agent_connections_by_agent on agent_connections (agent_id);
