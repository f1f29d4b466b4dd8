//! Searching the index within a read scope: ranked hits with a highlighted snippet.

use serde::Serialize;
use switchboard_store::{Backend, Database, SqlValue};

use super::fold::query_terms;
use super::snippet::snippet;
use crate::conversations::{get_many, ConversationView};
use crate::page::{page_size, rfc3339, Cursor, Page};
use crate::{ProjectionError, ReadScope};

/// One document found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct SearchHit {
    /// `message`, `customer` (name or number) or `note`.
    pub kind: String,
    /// The message, for a message.
    pub message_id: Option<String>,
    /// The matching text around the first match, HTML-escaped, matches in `<mark>…</mark>`.
    pub snippet: String,
    /// When the document was written (a message: Meta's timestamp of it).
    pub at: String,
    /// The conversation's id (also in `conversation`).
    pub conversation_id: String,
    /// The conversation it belongs to, as the inbox shows it.
    pub conversation: ConversationView,
}

/// A condition on conversations' ids: SQL selecting those matching, and its arguments.
pub(crate) struct Matching {
    /// SQL selecting the ids of matching conversations.
    pub sql: String,
    /// Its arguments.
    pub args: Vec<SqlValue>,
}

/// The query text the backend's engine takes for `terms`, every one a word prefix: a
/// PostgreSQL `tsquery` or an FTS5 query (the terms hold only letters and digits).
pub(super) fn engine_query(backend: Backend, terms: &[String]) -> String {
    let words: Vec<String> = match backend {
        Backend::Postgres => terms.iter().map(|t| format!("{t}:*")).collect(),
        Backend::Sqlite => terms.iter().map(|t| format!("\"{t}\"*")).collect(),
    };
    words.join(if backend == Backend::Postgres {
        " & "
    } else {
        " "
    })
}

/// The backend's match condition on `search_index`, with the [`engine_query`] as `$index`.
pub(super) fn match_condition(backend: Backend, index: usize) -> String {
    match backend {
        Backend::Postgres => format!("search_index.tsv @@ to_tsquery('simple', ${index})"),
        Backend::Sqlite => format!("search_index match ${index}"),
    }
}

/// SQL for the ids of conversations with a document matching `text` (every word, as a
/// prefix), its argument numbered `$index`. Text without words matches nothing.
pub(crate) fn conversations_matching(backend: Backend, index: usize, text: &str) -> Matching {
    let terms = query_terms(text);
    if terms.is_empty() {
        return Matching {
            sql: "select conversation_id from search_documents where 1 = 0".to_owned(),
            args: vec![],
        };
    }
    let condition = match_condition(backend, index);
    let arg = SqlValue::from(engine_query(backend, &terms));
    Matching {
        // SQLite's contentless index keeps no column values: the documents name the conversation.
        sql: match backend {
            Backend::Postgres => {
                format!("select search_index.conversation_id from search_index where {condition}")
            }
            Backend::Sqlite => format!(
                "select d.conversation_id from search_index
                 join search_documents d on d.seq = search_index.rowid where {condition}"
            ),
        },
        args: vec![arg],
    }
}

/// A document found, before its conversation and snippet are added.
#[derive(sqlx::FromRow)]
pub(super) struct HitRow {
    id: String,
    conversation_id: String,
    kind: String,
    body: String,
    at: i64,
}

/// Documents matching every word of `query` (as a prefix) in conversations `scope` may see:
/// the exact phrase first, then by relevance (PostgreSQL `ts_rank`, SQLite `bm25`), newest
/// first among equals. Pages by offset (`cursor`), at most 100 hits each.
///
/// # Errors
/// [`ProjectionError::InvalidCursor`] for a bad cursor; database failures.
pub async fn search(
    db: &Database,
    scope: &ReadScope,
    query: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<SearchHit>, ProjectionError> {
    let limit = page_size(limit, 20, 100);
    let offset = match cursor.map(Cursor::parse).transpose()? {
        Some(Cursor { key, tie }) if key >= 0 && tie == "search" => key,
        Some(_) => return Err(ProjectionError::InvalidCursor),
        None => 0,
    };
    let terms = query_terms(query);
    if terms.is_empty() || *scope == ReadScope::Nothing {
        return Ok(Page {
            items: vec![],
            next_cursor: None,
        });
    }
    let fetch = i64::from(limit) + 1;
    let mut rows = super::rank::ranked(db, scope, &terms, fetch, offset).await?;
    let next_cursor = (rows.len() > limit as usize).then(|| {
        rows.truncate(limit as usize);
        Cursor::encode(offset + i64::from(limit), "search")
    });
    let ids: Vec<String> = rows.iter().map(|r| r.conversation_id.clone()).collect();
    let conversations = get_many(db, &ids).await?;
    let items = rows
        .into_iter()
        .filter_map(|row| {
            let conversation = conversations.get(&row.conversation_id)?.clone();
            Some(SearchHit {
                message_id: (row.kind == "message").then(|| row.id.clone()),
                snippet: snippet(&row.body, &terms),
                at: rfc3339(row.at),
                conversation_id: row.conversation_id.clone(),
                kind: row.kind,
                conversation,
            })
        })
        .collect();
    Ok(Page { items, next_cursor })
}
