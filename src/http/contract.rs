//! What makes the generated description a contract generated clients can rely on: the API
//! version, a description for every answer, an `operationId` per operation that reads as a
//! client method name (`listTemplates`, `acquireLock`), and closed object schemas
//! (`additionalProperties: false`), so that an undeclared field in an answer is a finding.
//!
//! utoipa leaves all four to the application; doing them here once keeps every handler's
//! annotation short.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::{OpenApi, RefOr};

/// Completes `spec` in place.
pub(super) fn finish(spec: &mut OpenApi) {
    env!("CARGO_PKG_VERSION").clone_into(&mut spec.info.version);
    for item in spec.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            name(operation);
            describe(operation);
        }
    }
    if let Some(components) = &mut spec.components {
        for schema in components.schemas.values_mut() {
            if let RefOr::T(Schema::Object(object)) = schema {
                let open_map = object.additional_properties.is_some();
                if !open_map && !object.properties.is_empty() {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}

/// `operationId` from the handler's name and the operation's tag (unless its annotation names
/// it, in camelCase): a handler named in several
/// words keeps them (`list_notifications` → `listNotifications`); a one-word one gets its
/// resource (`acquire` under `locks` → `acquireLock`, `list` under `templates` →
/// `listTemplates`, `detail` → `getTemplate`).
fn name(operation: &mut Operation) {
    let handler = operation.operation_id.clone().unwrap_or_default();
    if handler.chars().any(|c| c.is_ascii_uppercase()) {
        return; // named in the handler's annotation
    }
    let tag = operation
        .tags
        .as_ref()
        .and_then(|t| t.first())
        .cloned()
        .unwrap_or_default();
    let id = if handler.contains('_') || tag.is_empty() {
        camel(&handler, false)
    } else {
        let verb = if handler == "detail" {
            "get"
        } else {
            handler.as_str()
        };
        let resource = if verb == "list" {
            camel(&tag, true)
        } else {
            camel(&singular(&tag), true)
        };
        format!("{}{resource}", camel(verb, false))
    };
    operation.operation_id = Some(id);
}

fn singular(words: &str) -> String {
    if let Some(stem) = words.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = words.strip_suffix('s') {
        stem.to_owned()
    } else {
        words.to_owned()
    }
}

/// `snake_case` or `spaced words` in camelCase (`upper`: PascalCase).
fn camel(words: &str, upper: bool) -> String {
    let mut out = String::with_capacity(words.len());
    let mut capital = upper;
    for c in words.chars() {
        if c == '_' || c == ' ' || c == '-' {
            capital = true;
        } else if capital {
            out.extend(c.to_uppercase());
            capital = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A description for every answer that has none (OpenAPI requires one).
fn describe(operation: &mut Operation) {
    for (status, response) in &mut operation.responses.responses {
        if let RefOr::T(response) = response {
            if response.description.is_empty() {
                response.description = match status.as_str() {
                    "200" => "OK",
                    "201" => "Created",
                    "202" => "Accepted",
                    "204" => "Done, no content",
                    _ => "See the status",
                }
                .to_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_client_methods() {
        assert_eq!(camel("list_notifications", false), "listNotifications");
        assert_eq!(camel("quick replies", true), "QuickReplies");
        assert_eq!(singular("quick replies"), "quick reply");
        assert_eq!(singular("locks"), "lock");
    }
}
