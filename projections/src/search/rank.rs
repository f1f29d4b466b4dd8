//! Which documents a search returns, in which order: the exact phrase first, then by relevance
//! (PostgreSQL `ts_rank`, SQLite `bm25`), newest first among equals.
//!
//! Ranking weighs every document it ranks, so a common word over a million messages would weigh
//! a hundred thousand. A search therefore ranks the newest matches the caller may see: on
//! PostgreSQL those among the newest [`WINDOW`] documents when there are at least [`ENOUGH`]
//! of them (a walk back along the primary key that stops early), else the newest
//! [`CANDIDATES`] of all (the GIN index, cheap when matches are few); on SQLite, over every
//! conversation, FTS5 walks its doclists newest first itself, and within an agent's or a
//! group's conversations all their matches are ranked.

use switchboard_store::{bind_all, with_pool, Backend, Database, SqlValue};

use super::engine::{engine_query, match_condition, HitRow};
use crate::{ProjectionError, ReadScope};

/// The newest documents searched first.
const WINDOW: i64 = 20_000;
/// How many matches there must be among them to rank those alone (a page).
const ENOUGH: usize = 20;
/// The most matches ranked (and paged through).
const CANDIDATES: i64 = 500;

const COLUMNS: &str = "d.id, d.conversation_id, d.kind, d.body, d.at";

/// Hits for `terms` that `scope` may see, in order, `fetch` of them after `offset`.
pub(super) async fn ranked(
    db: &Database,
    scope: &ReadScope,
    terms: &[String],
    fetch: i64,
    offset: i64,
) -> Result<Vec<HitRow>, ProjectionError> {
    let (mode, me) = scope.args();
    let phrase = SqlValue::from(format!("% {}%", terms.join(" ")));
    let backend = db.backend();
    let (sql, args) = match (backend, scope) {
        (Backend::Postgres, _) => {
            let query = engine_query(backend, terms);
            let seqs = newest_matches(db, scope, &query).await?;
            if seqs.is_empty() {
                return Ok(vec![]);
            }
            let seqs: Vec<String> = seqs.iter().map(i64::to_string).collect();
            let sql = format!(
                "select {COLUMNS} from search_index
                 join search_documents d on d.seq = search_index.rowid
                 where search_index.rowid in ({seqs})
                 order by case when (' ' || d.folded) like $1 then 0 else 1 end,
                     ts_rank(search_index.tsv, to_tsquery('simple', $2)) desc, d.at desc, d.id
                 limit $3 offset $4",
                seqs = seqs.join(", ")
            );
            (sql, vec![phrase, query.into()])
        }
        (Backend::Sqlite, ReadScope::All) => {
            let query = SqlValue::from(engine_query(backend, terms));
            let sql = format!(
                "with recent as (
                     select rowid as seq, bm25(search_index) as rank from search_index
                     where search_index match $1 order by rowid desc limit {CANDIDATES})
                 select {COLUMNS} from recent
                 join search_documents d on d.seq = recent.seq
                 join conversations on conversations.id = d.conversation_id
                 where {scope}
                 order by case when (' ' || d.folded) like $4 then 0 else 1 end, recent.rank,
                     d.at desc, d.id
                 limit $5 offset $6",
                scope = scope.condition_from(2)
            );
            (sql, vec![query, mode.into(), me.into(), phrase])
        }
        (Backend::Sqlite, _) => {
            let condition = match_condition(backend, 3);
            let query = SqlValue::from(engine_query(backend, terms));
            let sql = format!(
                "select {COLUMNS} from search_index
                 join search_documents d on d.seq = search_index.rowid
                 join conversations on conversations.id = d.conversation_id
                 where {scope} and {condition}
                 order by case when (' ' || d.folded) like $4 then 0 else 1 end,
                     bm25(search_index), d.at desc, d.id
                 limit $5 offset $6",
                scope = scope.condition()
            );
            (sql, vec![mode.into(), me.into(), query, phrase])
        }
    };
    let mut args = args;
    args.extend([fetch.into(), offset.into()]);
    Ok(with_pool!(db, pool => bind_all!(sqlx::query_as(&sql), args).fetch_all(pool).await?))
}

/// PostgreSQL: the newest matches of `query` (a `tsquery` text) that `scope` may see, as the
/// module describes.
async fn newest_matches(
    db: &Database,
    scope: &ReadScope,
    query: &str,
) -> Result<Vec<i64>, ProjectionError> {
    let Database::Postgres(pool) = db else {
        return Ok(vec![]);
    };
    let (mode, me) = scope.args();
    let recent = format!(
        "select w.rowid from (
             select rowid, conversation_id, tsv from search_index order by rowid desc limit {WINDOW}) w
         join conversations on conversations.id = w.conversation_id
         where {scope} and w.tsv @@ to_tsquery('simple', $3) limit {CANDIDATES}",
        scope = scope.condition()
    );
    let args: [SqlValue; 3] = [mode.into(), me.into(), query.into()];
    let found: Vec<i64> = bind_all!(sqlx::query_scalar(&recent), args.clone())
        .fetch_all(pool)
        .await?;
    if found.len() >= ENOUGH {
        return Ok(found);
    }
    // `rowid + 0`: not the primary key's order, so the planner takes the GIN index.
    let all = format!(
        "select search_index.rowid from search_index
         join conversations on conversations.id = search_index.conversation_id
         where {scope} and search_index.tsv @@ to_tsquery('simple', $3)
         order by search_index.rowid + 0 desc limit {CANDIDATES}",
        scope = scope.condition()
    );
    Ok(bind_all!(sqlx::query_scalar(&all), args)
        .fetch_all(pool)
        .await?)
}
