//! Searching the index within a read scope: ranked hits with a highlighted snippet.

use serde::Serialize;
use switchboard_store::{with_pool, Backend, Database, SqlValue};

use super::fold::{fold_word, query_terms, words};
use crate::conversations::{bind_args, get_many, ConversationView};
use crate::page::{page_size, rfc3339, Cursor, Page};
use crate::scope::scope_filter;
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
    /// The conversation it belongs to, as the inbox shows it.
    pub conversation: ConversationView,
}

/// The match condition on `search_index` for a query, with its argument numbered `$index`.
pub(crate) struct Matching {
    /// SQL selecting the ids of matching conversations.
    pub sql: String,
    /// Its arguments.
    pub args: Vec<SqlValue>,
}

/// The backend's match condition on `search_index` with the query as argument `$index`, and
/// that argument (`None`: the query has no words).
fn match_condition(backend: Backend, index: usize, terms: &[String]) -> (String, SqlValue) {
    match backend {
        Backend::Postgres => {
            let query: Vec<String> = terms.iter().map(|t| format!("{t}:*")).collect();
            (
                format!("search_index.tsv @@ to_tsquery('simple', ${index})"),
                query.join(" & ").into(),
            )
        }
        Backend::Sqlite => {
            let query: Vec<String> = terms.iter().map(|t| format!("\"{t}\"*")).collect();
            (
                format!("search_index match ${index}"),
                query.join(" ").into(),
            )
        }
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
    let (condition, arg) = match_condition(backend, index, &terms);
    Matching {
        sql: format!(
            "select d.conversation_id from search_index
             join search_documents d on d.seq = search_index.rowid where {condition}"
        ),
        args: vec![arg],
    }
}

#[derive(sqlx::FromRow)]
struct HitRow {
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
    let (mode, me) = scope.args();
    let backend = db.backend();
    let (condition, arg) = match_condition(backend, 3, &terms);
    let rank = match backend {
        Backend::Postgres => "ts_rank(search_index.tsv, to_tsquery('simple', $3)) desc",
        Backend::Sqlite => "bm25(search_index)",
    };
    let sql = format!(
        "select d.id, d.conversation_id, d.kind, d.body, d.at from search_index
         join search_documents d on d.seq = search_index.rowid
         join conversations on conversations.id = d.conversation_id
         where {scope} and {condition}
         order by case when (' ' || d.folded) like $4 then 0 else 1 end, {rank}, d.at desc, d.id
         limit $5 offset $6",
        scope = scope_filter!()
    );
    let phrase = format!("% {}%", terms.join(" "));
    let args: Vec<SqlValue> = vec![
        mode.into(),
        me.into(),
        arg,
        phrase.into(),
        (i64::from(limit) + 1).into(),
        offset.into(),
    ];
    let mut rows: Vec<HitRow> = with_pool!(db, pool =>
        bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await?);
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
                kind: row.kind,
                conversation,
            })
        })
        .collect();
    Ok(Page { items, next_cursor })
}

/// Words shown before the first match.
const CONTEXT_BEFORE: usize = 8;
/// Words a snippet shows at most.
const SNIPPET_WORDS: usize = 32;

/// The part of `body` around the first word matching a term (as a prefix, folded), HTML-escaped,
/// with every matching word in `<mark>…</mark>` and `…` where it was cut.
fn snippet(body: &str, terms: &[String]) -> String {
    let found: Vec<(usize, &str, bool)> = words(body)
        .map(|(at, word)| {
            let folded = fold_word(word);
            (
                at,
                word,
                terms.iter().any(|t| folded.starts_with(t.as_str())),
            )
        })
        .collect();
    let first = found.iter().position(|(_, _, hit)| *hit).unwrap_or(0);
    let from = first.saturating_sub(CONTEXT_BEFORE);
    let to = (from + SNIPPET_WORDS).min(found.len());
    let start = if from == 0 { 0 } else { found[from].0 };
    let end = if to == found.len() {
        body.len()
    } else {
        found[to - 1].0 + found[to - 1].1.len()
    };
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for (word_at, word, hit) in &found[from..to] {
        escape_into(&mut out, &body[at..*word_at]);
        if *hit {
            out.push_str("<mark>");
            escape_into(&mut out, word);
            out.push_str("</mark>");
        } else {
            escape_into(&mut out, word);
        }
        at = word_at + word.len();
    }
    escape_into(&mut out, &body[at..end]);
    if end < body.len() {
        out.push('…');
    }
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::snippet;

    #[test]
    fn snippets_mark_folded_matches_and_escape_the_rest() {
        let terms = vec!["cancelacion".to_owned()];
        assert_eq!(
            snippet("Quiero la <b>cancelación</b> ya", &terms),
            "Quiero la &lt;b&gt;<mark>cancelación</mark>&lt;/b&gt; ya"
        );
        let long = format!("{} pedido final", "palabra ".repeat(40));
        let cut = snippet(&long, &["pedido".to_owned()]);
        assert!(cut.starts_with('…') && cut.contains("<mark>pedido</mark> final"));
    }
}
