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
create virtual table search_index using fts5(
    conversation_id unindexed, folded,
    content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
);
