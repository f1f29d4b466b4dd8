//! The search index: message text and captions, customer names and numbers, and private notes,
//! folded (see [`fold`]) and indexed for full-text search.
//!
//! Two tables: `search_documents` holds each document as written (and its folded words), keyed
//! by the log position of the event that last wrote it (`seq`, so a replay gives the same rows);
//! `search_index` indexes the folded words by that `seq` (`rowid`): on PostgreSQL a `tsvector`
//! in the `simple` configuration with a GIN index, on SQLite a contentless FTS5 table
//! (`unicode61 remove_diacritics 2`). The same statements write both backends.

mod engine;
pub mod fold;
mod query;
mod rank;
mod snippet;

pub(crate) use engine::conversations_matching;
pub use query::{search, SearchHit};

use switchboard_domain::conversation::ConversationEvent;
use switchboard_domain::message::MessageEvent;
use switchboard_store::{RecordedEvent, SqlValue, Statement};

use crate::{DecodedEvent, Projection};

/// Builds the search index.
pub struct SearchProjection;

const UNINDEX: &str =
    "delete from search_index where rowid = (select seq from search_documents where id = $1)";
const DOCUMENT: &str = "
insert into search_documents (id, seq, conversation_id, kind, body, folded, at)
values ($1, $2, $3, $4, $5, $6, $7)
on conflict (id) do update set seq = excluded.seq, body = excluded.body,
    folded = excluded.folded, at = excluded.at";
const INDEX: &str = "insert into search_index (rowid, conversation_id, folded) values ($1, $2, $3)";
/// An erasure request: every document of the conversation written before it goes.
const ERASE_INDEX: &str = "delete from search_index where rowid in
    (select seq from search_documents where conversation_id = $1 and seq < $2)";
const ERASE_DOCUMENTS: &str =
    "delete from search_documents where conversation_id = $1 and seq < $2";
/// The retention period: messages and notes written before `$3` go.
const EXPIRE_INDEX: &str = "delete from search_index where rowid in
    (select seq from search_documents where conversation_id = $1 and seq < $2 and at < $3
     and kind <> 'customer')";
const EXPIRE_DOCUMENTS: &str = "delete from search_documents where conversation_id = $1
    and seq < $2 and at < $3 and kind <> 'customer'";
/// SQLite's FTS5 only marks deleted rows until its segments are merged: an erasure merges
/// them at once, so that no erased word stays in the index's pages (`/* sqlite only */`:
/// PostgreSQL skips it, see `switchboard_store::sql::SQLITE_ONLY`).
const MERGE_AWAY: &str =
    "/* sqlite only */ insert into search_index(search_index) values('optimize')";

/// What kind of thing a document is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Message,
    Customer,
    Note,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Customer => "customer",
            Self::Note => "note",
        }
    }
}

/// The statements that (re)write document `id` of `conversation_id` with `body`.
fn document(
    out: &mut Vec<Statement>,
    event: &RecordedEvent,
    (id, conversation_id): (String, &str),
    kind: Kind,
    body: Option<String>,
    at: i64,
) {
    let Some(body) = body else { return };
    let folded = fold::fold(&body);
    // A message's document is written once (one event per message id writes it); customer
    // documents are rewritten, their old words taken out of the index first.
    if !matches!(kind, Kind::Message) {
        out.push(Statement::new(UNINDEX, vec![id.as_str().into()]));
    }
    out.push(Statement::new(
        DOCUMENT,
        vec![
            id.into(),
            event.position.into(),
            conversation_id.into(),
            kind.name().into(),
            body.into(),
            folded.as_str().into(),
            at.into(),
        ],
    ));
    out.push(Statement::new(
        INDEX,
        vec![
            event.position.into(),
            conversation_id.into(),
            SqlValue::from(folded),
        ],
    ));
}

impl Projection for SearchProjection {
    fn name(&self) -> &'static str {
        "search"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["search_documents", "search_index"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["Conversation", "Message"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let id = event.aggregate_id.as_str();
        match decoded {
            DecodedEvent::Message(message) => {
                let (conversation_id, text, at) = match message {
                    MessageEvent::InboundReceived {
                        conversation_id,
                        content,
                        sent_at,
                        ..
                    }
                    | MessageEvent::EchoRecorded {
                        conversation_id,
                        content,
                        sent_at,
                        ..
                    } => (conversation_id, content.search_text(), sent_at),
                    MessageEvent::OutboundRequested {
                        conversation_id,
                        content,
                        at,
                        ..
                    } => (conversation_id, content.search_text(), at),
                    _ => return,
                };
                let conversation_id = conversation_id.to_string();
                let key = (id.to_owned(), conversation_id.as_str());
                document(out, event, key, Kind::Message, text, at.unix_millis());
            }
            DecodedEvent::Conversation(conversation) => {
                let at = event.recorded_at_ms;
                match conversation {
                    ConversationEvent::Started {
                        customer,
                        started_at,
                        ..
                    } => {
                        let number = customer.wa_id.clone().or_else(|| customer.user_id.clone());
                        let key = (format!("number:{id}"), id);
                        document(
                            out,
                            event,
                            key,
                            Kind::Customer,
                            number,
                            started_at.unix_millis(),
                        );
                    }
                    ConversationEvent::CustomerIdentified { customer } => {
                        let number = customer.wa_id.clone().or_else(|| customer.user_id.clone());
                        let key = (format!("number:{id}"), id);
                        document(out, event, key, Kind::Customer, number, at);
                    }
                    ConversationEvent::CustomerProfileNamed { name } => {
                        let key = (format!("name:{id}"), id);
                        document(out, event, key, Kind::Customer, Some(name.clone()), at);
                    }
                    ConversationEvent::NoteAdded {
                        note_id,
                        text,
                        at: written,
                        ..
                    } => {
                        // Its own time, as the timeline and the retention period see it.
                        let key = (format!("note:{note_id}"), id);
                        let at = written.unix_millis();
                        document(out, event, key, Kind::Note, Some(text.clone()), at);
                    }
                    ConversationEvent::CustomerErased { .. } => {
                        let args = || vec![id.into(), event.position.into()];
                        out.push(Statement::new(ERASE_INDEX, args()));
                        out.push(Statement::new(ERASE_DOCUMENTS, args()));
                        out.push(Statement::new(MERGE_AWAY, vec![]));
                    }
                    ConversationEvent::ContentExpired { before, .. } => {
                        let args = || {
                            vec![
                                id.into(),
                                event.position.into(),
                                before.unix_millis().into(),
                            ]
                        };
                        out.push(Statement::new(EXPIRE_INDEX, args()));
                        out.push(Statement::new(EXPIRE_DOCUMENTS, args()));
                        out.push(Statement::new(MERGE_AWAY, vec![]));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}
