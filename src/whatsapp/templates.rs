//! Meta's template management API (REFERENCE §14): listing a business account's catalogue
//! page by page, submitting, editing and deleting templates.

use reqwest::Method;
use serde_json::{json, Value};
use switchboard_domain::ids::WabaId;
use switchboard_domain::template::{ParameterFormat, TemplateDefinition};

use crate::whatsapp::graph::{GraphClient, GraphError};

/// Templates per page asked of Meta (its cap).
const PAGE: &str = "100";
/// The most pages one sync reads (100,000 templates; Meta allows far fewer per account), so a
/// misbehaving `next` link cannot loop forever.
const MAX_PAGES: usize = 1000;
/// The fields a listing asks for.
const FIELDS: &str =
    "id,name,language,status,category,components,quality_score,rejected_reason,parameter_format";

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// One listed template as `(id, definition)`; `None` when Meta left out its id, name or
/// language.
pub fn parse_listed(waba_id: &WabaId, listed: &Value) -> Option<(String, TemplateDefinition)> {
    let id = match listed.get("id")? {
        Value::String(id) => id.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let reason = text(listed, "rejected_reason").filter(|r| r != "NONE");
    Some((
        id,
        TemplateDefinition {
            waba_id: waba_id.clone(),
            name: text(listed, "name")?,
            language: text(listed, "language")?,
            category: text(listed, "category").unwrap_or_default(),
            status: text(listed, "status").unwrap_or_default(),
            reason,
            quality: listed
                .pointer("/quality_score/score")
                .and_then(Value::as_str)
                .map(str::to_owned),
            parameter_format: ParameterFormat::from_meta(
                listed.get("parameter_format").and_then(Value::as_str),
            ),
            components: listed
                .get("components")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        },
    ))
}

/// Every template of `waba_id`, following `paging.cursors.after` while Meta gives a `next`
/// page.
///
/// # Errors
/// Meta's refusal or no answer, on any page.
pub async fn list_all(
    graph: &GraphClient,
    waba_id: &WabaId,
) -> Result<Vec<(String, TemplateDefinition)>, GraphError> {
    let path = format!("{waba_id}/message_templates");
    let mut templates = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("fields", FIELDS), ("limit", PAGE)];
        if let Some(after) = &after {
            query.push(("after", after));
        }
        let page = graph.call(Method::GET, &path, &query, None).await?;
        let data = page.get("data").and_then(Value::as_array);
        templates.extend(
            data.into_iter()
                .flatten()
                .filter_map(|t| parse_listed(waba_id, t)),
        );
        after = page
            .pointer("/paging/cursors/after")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|_| page.pointer("/paging/next").is_some());
        if after.is_none() || data.is_none_or(Vec::is_empty) {
            break;
        }
    }
    Ok(templates)
}

/// Submits a template for review; answers Meta's id and first status.
///
/// # Errors
/// Meta's validation error, or no answer.
pub async fn create(
    graph: &GraphClient,
    definition: &TemplateDefinition,
) -> Result<(String, String), GraphError> {
    let mut body = json!({
        "name": definition.name,
        "language": definition.language,
        "category": definition.category,
        "components": definition.components,
    });
    if definition.parameter_format == ParameterFormat::Named {
        body["parameter_format"] = json!("NAMED");
    }
    let path = format!("{}/message_templates", definition.waba_id);
    let answer = graph.call(Method::POST, &path, &[], Some(&body)).await?;
    let id = match answer.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(GraphError::Unreachable(format!(
                "no template id in {answer}"
            )))
        }
    };
    let status = text(&answer, "status").unwrap_or_else(|| "PENDING".to_owned());
    Ok((id, status))
}

/// Edits a template's components or category (`POST /{template_id}`).
///
/// # Errors
/// Meta's refusal, or no answer.
pub async fn edit(
    graph: &GraphClient,
    template_id: &str,
    components: Option<&[Value]>,
    category: Option<&str>,
) -> Result<(), GraphError> {
    let mut body = json!({});
    if let Some(components) = components {
        body["components"] = json!(components);
    }
    if let Some(category) = category {
        body["category"] = json!(category);
    }
    graph
        .call(Method::POST, template_id, &[], Some(&body))
        .await
        .map(drop)
}

/// Deletes one translation (`hsm_id`) of the template `name`.
///
/// # Errors
/// Meta's refusal, or no answer.
pub async fn delete(
    graph: &GraphClient,
    waba_id: &str,
    name: &str,
    template_id: &str,
) -> Result<(), GraphError> {
    let path = format!("{waba_id}/message_templates");
    let query = [("name", name), ("hsm_id", template_id)];
    graph
        .call(Method::DELETE, &path, &query, None)
        .await
        .map(drop)
}
