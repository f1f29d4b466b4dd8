//! Searching the index within a read scope: ranked hits with a highlighted snippet.

use serde::Serialize;
use switchboard_store::Database;

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
