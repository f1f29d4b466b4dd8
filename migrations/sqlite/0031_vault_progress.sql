-- Worker state: how far the one-off pass sealing events written before the log was sealed
-- has come (store/src/vault/upgrade.rs).
create table vault_progress (
    name     text   primary key,
    position bigint not null
);
