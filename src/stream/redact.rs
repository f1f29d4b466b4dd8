//! Facts without contents: with `SWITCHBOARD_NATS_REDACT_CONTENT=true` the stream carries what
//! happened (who wrote, when, which kind of message, statuses, assignments) but not what
//! customers and agents wrote: message contents, captions, names, notes, referrals and reply
//! contexts are replaced by `"[redacted]"`.

use serde_json::Value;

/// The fields whose values are personal contents, wherever they appear in an event.
const CONTENT_FIELDS: [&str; 8] = [
    "content",
    "profile_name",
    "name",
    "text",
    "caption",
    "body",
    "referral",
    "context",
];

/// What stands in for a redacted value.
pub const REDACTED: &str = "[redacted]";

/// `envelope` (the `/api/events` item) with the contents of its `data` redacted.
pub fn redact(mut envelope: Value) -> Value {
    if let Some(data) = envelope.get_mut("data") {
        redact_value(data);
    }
    envelope
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if CONTENT_FIELDS.contains(&key.as_str()) && !field.is_null() {
                    *field = Value::String(REDACTED.to_owned());
                } else {
                    redact_value(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn contents_go_facts_stay() {
        let envelope = json!({"position": 7, "type": "MessageInboundReceived", "data": {
            "InboundReceived": {"conversation_id": "c", "profile_name": "Sheena",
                "content": {"type": "text", "body": "my address is …"}, "sent_at": "t"}}});
        let redacted = redact(envelope);
        let inner = &redacted["data"]["InboundReceived"];
        assert_eq!(inner["content"], REDACTED);
        assert_eq!(inner["profile_name"], REDACTED);
        assert_eq!(inner["conversation_id"], "c");
        assert_eq!(redacted["position"], 7);
    }
}
