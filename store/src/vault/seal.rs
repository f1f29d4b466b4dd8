//! Sealing and opening stored payloads.
//!
//! A sealed event keeps its shape: each personal field holds its erased form
//! ([`switchboard_domain::privacy::erased`]), and a `"$sealed"` array beside the variant holds,
//! per key, the original fields encrypted (`{"k": key id, "c": base64(nonce, ciphertext)}`,
//! bound to the aggregate id). Opening puts back the fields whose key still exists and drops
//! `"$sealed"`, so every reader sees either the data or `[erased]`, never ciphertext. A sealed
//! snapshot is `{"$snapshot": {"k", "c"}}`, unreadable (and so ignored) once its key is gone.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::LessSafeKey;
use serde_json::{json, Map, Value};
use switchboard_domain::privacy::{self, KeyScope, Personal};

use super::master::{open, seal};
use crate::StoreError;

/// The keys a batch of payloads is sealed with, by `(conversation, scope)`.
pub(crate) type SealedPlans = HashMap<(String, i64), (String, Arc<LessSafeKey>)>;

/// Replaces the personal fields of `payload` (an event of `personal`'s plan) by their erased
/// form and appends their sealed originals.
pub(crate) fn seal_payload(
    personal: &Personal,
    keys: &SealedPlans,
    aggregate_id: &str,
    payload: &mut Value,
) -> Result<(), StoreError> {
    let Some(body) = payload
        .get_mut(&personal.variant)
        .and_then(Value::as_object_mut)
    else {
        return Ok(());
    };
    let mut envelopes = Vec::with_capacity(personal.parts.len());
    for (scope, fields) in &personal.parts {
        let (id, key) = keys
            .get(&(personal.conversation.clone(), scope.as_i64()))
            .ok_or(StoreError::Crypto("no key for a personal field"))?;
        let mut originals = Map::new();
        for field in fields {
            if let Some(value) = body.get_mut(*field) {
                let erased = privacy::erased(value);
                originals.insert((*field).to_owned(), std::mem::replace(value, erased));
            }
        }
        let plain = serde_json::to_vec(&Value::Object(originals))
            .map_err(|_| StoreError::Crypto("unserializable field"))?;
        let sealed = seal(key, &context(EVENT, aggregate_id, id), &plain)?;
        envelopes.push(json!({"k": id, "c": STANDARD.encode(sealed)}));
    }
    if let Some(object) = payload.as_object_mut() {
        object.insert("$sealed".to_owned(), Value::Array(envelopes));
    }
    Ok(())
}

const EVENT: &str = "event";
const SNAPSHOT: &str = "snapshot";

/// What sealed bytes are bound to: what they are, whose, and the key named beside them, so
/// that no envelope can be moved to another aggregate, key or kind of record.
fn context(purpose: &str, aggregate_id: &str, key_id: &str) -> Vec<u8> {
    format!("{purpose}\n{aggregate_id}\n{key_id}").into_bytes()
}

/// The key ids a stored payload (event or snapshot) was sealed with.
pub(crate) fn key_ids(payload: &Value) -> impl Iterator<Item = &str> {
    let envelopes = match (payload.get("$sealed"), payload.get("$snapshot")) {
        (Some(Value::Array(list)), _) => list.iter().collect::<Vec<_>>(),
        (_, Some(one)) => vec![one],
        _ => Vec::new(),
    };
    envelopes.into_iter().filter_map(|e| e.get("k")?.as_str())
}

/// Puts back the sealed fields of an event payload whose keys are in `keys` (destroyed keys,
/// `None`, leave the erased form) and removes the envelopes.
pub(crate) fn open_payload(
    keys: &HashMap<String, Option<Arc<LessSafeKey>>>,
    aggregate_id: &str,
    payload: &mut Value,
) {
    let Some(object) = payload.as_object_mut() else {
        return;
    };
    let Some(Value::Array(envelopes)) = object.remove("$sealed") else {
        return;
    };
    let Some(body) = object.values_mut().next().and_then(Value::as_object_mut) else {
        return;
    };
    for envelope in envelopes {
        if let Some(Value::Object(fields)) = open_envelope(keys, EVENT, aggregate_id, &envelope) {
            body.extend(fields);
        }
    }
}

/// A snapshot payload sealed whole under `key`.
pub(crate) fn seal_snapshot(
    id: &str,
    key: &LessSafeKey,
    aggregate_id: &str,
    state: &Value,
) -> Result<Value, StoreError> {
    let plain =
        serde_json::to_vec(state).map_err(|_| StoreError::Crypto("unserializable state"))?;
    let sealed = seal(key, &context(SNAPSHOT, aggregate_id, id), &plain)?;
    Ok(json!({"$snapshot": {"k": id, "c": STANDARD.encode(sealed)}}))
}

/// A stored snapshot payload opened: the state, `None` when its key was destroyed (the
/// snapshot is then ignored and the events replayed). Unsealed payloads are returned as they
/// are.
pub(crate) fn open_snapshot(
    keys: &HashMap<String, Option<Arc<LessSafeKey>>>,
    aggregate_id: &str,
    payload: Value,
) -> Option<Value> {
    match payload.get("$snapshot") {
        Some(envelope) => open_envelope(keys, SNAPSHOT, aggregate_id, envelope),
        None => Some(payload),
    }
}

fn open_envelope(
    keys: &HashMap<String, Option<Arc<LessSafeKey>>>,
    purpose: &str,
    aggregate_id: &str,
    envelope: &Value,
) -> Option<Value> {
    let id = envelope.get("k")?.as_str()?;
    let key = keys.get(id)?.as_ref()?;
    let sealed = STANDARD.decode(envelope.get("c")?.as_str()?).ok()?;
    let plain = open(key, &context(purpose, aggregate_id, id), &sealed)?;
    serde_json::from_slice(&plain).ok()
}

/// The `(conversation, scope)` keys `personal` needs.
pub(crate) fn scopes(personal: &Personal) -> impl Iterator<Item = (String, i64)> + '_ {
    personal
        .parts
        .iter()
        .map(|(scope, _)| (personal.conversation.clone(), KeyScope::as_i64(*scope)))
}
