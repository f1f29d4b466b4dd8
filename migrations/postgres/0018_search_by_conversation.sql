-- The search index names each document's conversation, so a search within an agent's
-- conversations walks their documents instead of every match. The search read model is
-- rebuilt from the log by the runner (checkpoint reset).
drop table if exists search_index__rebuild;
drop table if exists search_index__verify;
drop table if exists search_documents__rebuild;
drop table if exists search_documents__verify;
drop table search_index;
drop table search_documents;
delete from projection_checkpoints where name like 'search%';

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
create table search_index (
    rowid           bigint primary key,
    conversation_id text   not null,
    folded          text   not null,
    tsv             tsvector generated always as (to_tsvector('simple', folded)) stored
);
create index search_index_words on search_index using gin (tsv);
create index search_index_by_conversation on search_index (conversation_id);
