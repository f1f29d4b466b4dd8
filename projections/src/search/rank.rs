//! Which documents a search returns, in which order: the exact phrase first, then by relevance
//! (PostgreSQL `ts_rank`, SQLite `bm25`), newest first among equals.
//!
//! Ranking weighs every document it ranks, so a common word over a million messages would weigh
//! a hundred thousand. A search over every conversation therefore ranks the newest matches
//! only: on PostgreSQL those among the newest [`WINDOW`] documents when there are at least
//! [`ENOUGH`] of them (a walk back along the primary key that stops early), else the newest
//! [`CANDIDATES`] of all (the GIN index, cheap when matches are few); on SQLite FTS5 walks its
//! doclists newest first itself. A search within an agent's or a group's conversations ranks
//! all of their matches: on PostgreSQL it walks their documents (`search_index` by
//! conversation), whose number bounds it, rather than every match of a common word.

use switchboard_store::{with_pool, Backend, Database, SqlValue};

use super::query::{match_condition, HitRow};
use crate::conversations::bind_args;
use crate::{ProjectionError, ReadScope};

/// The newest documents searched first.
const WINDOW: i64 = 20_000;
/// How many matches there must be among them to rank those alone.
const ENOUGH: usize = 100;
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
        (Backend::Postgres, ReadScope::All) => {
            let (_, query) = match_condition(backend, 1, terms);
            let seqs = newest_matches(db, &query).await?;
            if seqs.is_empty() {
                return Ok(vec![]);
            }
            let seqs: Vec<String> = seqs.iter().map(i64::to_string).collect();
            let sql = format!(
                "select {COLUMNS} from search_index
                 join search_documents d on d.seq = search_index.rowid
                 join conversations on conversations.id = d.conversation_id
                 where {scope} and search_index.rowid in ({seqs})
                 order by case when (' ' || d.folded) like $3 then 0 else 1 end,
                     ts_rank(search_index.tsv, to_tsquery('simple', $4)) desc, d.at desc, d.id
                 limit $5 offset $6",
                scope = scope.condition(),
                seqs = seqs.join(", ")
            );
            (sql, vec![mode.into(), me.into(), phrase, query])
        }
        (Backend::Sqlite, ReadScope::All) => {
            let (_, query) = match_condition(backend, 1, terms);
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
        (Backend::Postgres, _) => {
            let (_, query) = match_condition(backend, 3, terms);
            // `|| ''`: the words are checked per document, so the planner walks the scope's
            // documents instead of the GIN index's every match.
            let sql = format!(
                "select {COLUMNS} from search_index
                 join conversations on conversations.id = search_index.conversation_id
                 join search_documents d on d.seq = search_index.rowid
                 where {scope} and (search_index.tsv || ''::tsvector) @@ to_tsquery('simple', $3)
                 order by case when (' ' || d.folded) like $4 then 0 else 1 end,
                     ts_rank(search_index.tsv, to_tsquery('simple', $3)) desc, d.at desc, d.id
                 limit $5 offset $6",
                scope = scope.condition()
            );
            (sql, vec![mode.into(), me.into(), query, phrase])
        }
        (Backend::Sqlite, _) => {
            let (condition, query) = match_condition(backend, 3, terms);
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
    Ok(with_pool!(db, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await?))
}

/// PostgreSQL: the newest matches of `query` (a `tsquery` text), as described in the module.
async fn newest_matches(db: &Database, query: &SqlValue) -> Result<Vec<i64>, ProjectionError> {
    let Database::Postgres(pool) = db else {
        return Ok(vec![]);
    };
    let SqlValue::Text(Some(query)) = query else {
        return Ok(vec![]);
    };
    let recent = format!(
        "select rowid from (select rowid, tsv from search_index order by rowid desc limit {WINDOW}) w
         where tsv @@ to_tsquery('simple', $1) limit {CANDIDATES}"
    );
    let found: Vec<i64> = sqlx::query_scalar(&recent)
        .bind(query)
        .fetch_all(pool)
        .await?;
    if found.len() >= ENOUGH {
        return Ok(found);
    }
    // `rowid + 0`: not the primary key's order, so the planner takes the GIN index.
    let all = format!(
        "select rowid from search_index where tsv @@ to_tsquery('simple', $1)
         order by rowid + 0 desc limit {CANDIDATES}"
    );
    Ok(sqlx::query_scalar(&all).bind(query).fetch_all(pool).await?)
}
