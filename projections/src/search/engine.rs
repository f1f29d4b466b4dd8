//! The SQL of the two search engines (PostgreSQL `tsvector`, SQLite FTS5): the query text,
//! the match condition, and the documents' rows, shared by searching and ranking.

use switchboard_store::{Backend, SqlValue};

use super::fold::query_terms;

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
    pub(super) id: String,
    pub(super) conversation_id: String,
    pub(super) kind: String,
    pub(super) body: String,
    pub(super) at: i64,
}
