//! U+0000 (NUL) in stored text, on both backends alike.
//!
//! PostgreSQL cannot hold U+0000 in `text` nor in `jsonb` (it refuses `\u0000` there), yet a
//! customer's message may contain it, and the event log must keep customer content exactly.
//! So:
//!
//! - **JSON in the event log and snapshots** (payloads, metadata) is stored with every string
//!   and object key *escaped*, losslessly: [`ESCAPE`] (a Unicode noncharacter, reserved for
//!   internal use and never sent by anyone) introduces `0` for U+0000 and a second [`ESCAPE`]
//!   for itself. Every reader of the store decodes it again, so the domain, projections, the
//!   event API and exports see the original text. Both backends store the same form.
//! - **Read-model text columns** are display copies of what the log holds: a U+0000 in them
//!   is written as U+2400 (␀, the symbol for NUL), on both backends, so the inbox shows that
//!   the customer sent one. JSON kept in read-model columns (message content) is serialized
//!   by `serde_json`, which writes `\u0000`: it is kept exactly.

use std::borrow::Cow;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;

/// The escape character: U+FDD0, the first Unicode noncharacter.
pub const ESCAPE: char = '\u{FDD0}';

/// What a read-model text column shows for U+0000: U+2400 (␀).
pub const VISIBLE_NUL: char = '\u{2400}';

fn needs_escape(text: &str) -> bool {
    text.contains(['\0', ESCAPE])
}

fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\0' => {
                out.push(ESCAPE);
                out.push('0');
            }
            ESCAPE => {
                out.push(ESCAPE);
                out.push(ESCAPE);
            }
            c => out.push(c),
        }
    }
    out
}

fn unescape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != ESCAPE {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some(ESCAPE) => out.push(ESCAPE),
            // Not written by `encode` (text stored before escaping existed): kept as it is.
            Some(other) => {
                out.push(ESCAPE);
                out.push(other);
            }
            None => out.push(ESCAPE),
        }
    }
    out
}

/// Whether any string or key of `value` satisfies `test`.
fn any_text(value: &Value, test: &dyn Fn(&str) -> bool) -> bool {
    match value {
        Value::String(text) => test(text),
        Value::Array(items) => items.iter().any(|item| any_text(item, test)),
        Value::Object(map) => map.iter().any(|(k, v)| test(k) || any_text(v, test)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Rewrites every string and key of `value` with `rewrite` where `test` says so.
fn rewrite_text(value: &mut Value, test: &dyn Fn(&str) -> bool, rewrite: &dyn Fn(&str) -> String) {
    match value {
        Value::String(text) => {
            if test(text) {
                *text = rewrite(text);
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite_text(item, test, rewrite);
            }
        }
        Value::Object(map) => {
            let renamed: Vec<String> = map.keys().filter(|k| test(k)).cloned().collect();
            for key in renamed {
                if let Some(inner) = map.remove(&key) {
                    map.insert(rewrite(&key), inner);
                }
            }
            for inner in map.values_mut() {
                rewrite_text(inner, test, rewrite);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The stored form of a JSON value (see the module documentation); borrowed, without a copy,
/// when nothing in it needs escaping (nearly always).
pub fn encode(value: &Value) -> Cow<'_, Value> {
    if !any_text(value, &needs_escape) {
        return Cow::Borrowed(value);
    }
    let mut stored = value.clone();
    rewrite_text(&mut stored, &needs_escape, &escape_text);
    Cow::Owned(stored)
}

/// The original of a stored JSON value, in place.
pub fn decode(value: &mut Value) {
    let escaped = |text: &str| text.contains(ESCAPE);
    if any_text(value, &escaped) {
        rewrite_text(value, &escaped, &unescape_text);
    }
}

/// [`decode`], by value.
pub fn decoded(mut value: Value) -> Value {
    decode(&mut value);
    value
}

/// The text a read-model column holds for `text`: U+0000 shown as [`VISIBLE_NUL`].
pub fn visible(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', &VISIBLE_NUL.to_string())
    } else {
        text
    }
}

/// A cqrs-es event repository (postgres-es, sqlite-es) that stores JSON in the escaped form
/// and hands it back decoded.
pub(crate) struct Escaping<R>(pub(crate) R);

fn encode_event(event: &SerializedEvent) -> Cow<'_, SerializedEvent> {
    match (encode(&event.payload), encode(&event.metadata)) {
        (Cow::Borrowed(_), Cow::Borrowed(_)) => Cow::Borrowed(event),
        (payload, metadata) => Cow::Owned(SerializedEvent {
            payload: payload.into_owned(),
            metadata: metadata.into_owned(),
            ..event.clone()
        }),
    }
}

fn decode_events(mut events: Vec<SerializedEvent>) -> Vec<SerializedEvent> {
    for event in &mut events {
        decode(&mut event.payload);
        decode(&mut event.metadata);
    }
    events
}

/// A replay stream over events already loaded (and decoded).
pub(crate) async fn replay(events: Vec<SerializedEvent>) -> Result<ReplayStream, PersistenceError> {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        feed.push(Ok(event)).await?;
    }
    Ok(stream)
}

impl<R: PersistedEventRepository> PersistedEventRepository for Escaping<R> {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        Ok(decode_events(self.0.get_events::<A>(aggregate_id).await?))
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .0
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await?;
        Ok(decode_events(events))
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let snapshot = self.0.get_snapshot::<A>(aggregate_id).await?;
        Ok(snapshot.map(|mut snapshot| {
            decode(&mut snapshot.aggregate);
            snapshot
        }))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let snapshot_update =
            snapshot_update.map(|(id, state, n)| (id, encode(&state).into_owned(), n));
        if events
            .iter()
            .all(|e| matches!(encode_event(e), Cow::Borrowed(_)))
        {
            return self.0.persist::<A>(events, snapshot_update).await;
        }
        let stored: Vec<SerializedEvent> = events
            .iter()
            .map(|e| encode_event(e).into_owned())
            .collect();
        self.0.persist::<A>(&stored, snapshot_update).await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        replay(self.get_events::<A>(aggregate_id).await?).await
    }

    /// Loads every event of the type before streaming them (Switchboard itself replays
    /// through the global reader, not through this).
    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let mut inner = self.0.stream_all_events::<A>().await?;
        let mut events = Vec::new();
        while let Some(envelope) = inner.next::<A>(&[]).await {
            events.push(SerializedEvent::try_from(&envelope?)?);
        }
        replay(decode_events(events)).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_and_keys_round_trip_whatever_they_hold() {
        let original = json!({
            "text": {"body": "a\u{0}b\u{FDD0}c\u{FDD0}0\u{0}"},
            "k\u{0}ey": ["\u{0}", 1, null, {"x": "\u{FDD0}\u{FDD0}"}],
            "plain": "hello",
        });
        let stored = encode(&original).into_owned();
        assert!(!stored.to_string().contains("\\u0000"), "{stored}");
        assert_ne!(stored, original);
        assert_eq!(decoded(stored), original);
    }

    #[test]
    fn values_without_nul_are_neither_copied_nor_changed() {
        let value = json!({"text": "hello", "n": [1, 2]});
        assert!(matches!(encode(&value), Cow::Borrowed(_)));
        assert_eq!(decoded(value.clone()), value);
        let legacy = json!("\u{FDD0}x");
        assert_eq!(
            decoded(legacy.clone()),
            legacy,
            "an unknown sequence is kept"
        );
    }

    #[test]
    fn read_model_text_shows_nul_as_a_symbol() {
        assert_eq!(visible("a\u{0}b".to_owned()), "a\u{2400}b");
        assert_eq!(visible("ab".to_owned()), "ab");
    }
}
