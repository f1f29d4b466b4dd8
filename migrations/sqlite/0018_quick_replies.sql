-- Quick replies (projection `quick_replies`): saved answers and who may use them.
create table quick_replies (
    id          text   primary key,
    shortcode   text   not null,
    title       text   not null,
    text        text   not null,
    visibility  text   not null,
    agent_id    text,
    group_id    text,
    created_by  text   not null,
    created_at  bigint not null,
    updated_at  bigint not null,
    version     bigint not null
);
create index quick_replies_by_shortcode on quick_replies (shortcode);
