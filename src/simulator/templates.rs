//! The simulator's template management API, in Meta's wire format (REFERENCE §14):
//! `GET/POST/DELETE /{version}/{waba_id}/message_templates` (cursor paging, Meta's validation
//! errors) and `POST /{version}/{template_id}` (edit). A submitted or edited template is
//! reviewed after a delay: approved or rejected as the control API says
//! (`POST /control/template-review`), with the `message_template_status_update` webhook Meta
//! would send. `POST /control/templates` adds templates to the catalogue directly.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{meta_error, post_webhook, Authorized, Shared};

/// The most templates one page lists (Meta's `limit` cap).
const MAX_PAGE: usize = 100;
/// The default page size.
const DEFAULT_PAGE: usize = 25;

/// How the simulator reviews submitted templates.
#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    /// `approve` or `reject`.
    pub decision: String,
    /// Rejection reason (`INVALID_FORMAT`, `PROMOTIONAL`, …).
    #[serde(default)]
    pub reason: Option<String>,
    /// How long the review takes.
    #[serde(default)]
    pub delay_ms: u64,
}

impl Default for Review {
    fn default() -> Self {
        Self {
            decision: "approve".to_owned(),
            reason: None,
            delay_ms: 200,
        }
    }
}

/// The simulator's catalogue: every template with its `waba_id`, in creation order.
#[derive(Default)]
pub(super) struct Catalogue {
    pub(super) templates: Vec<Value>,
    pub(super) review: Review,
    next_id: u64,
}

impl Catalogue {
    fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}", 9_000_000_000_000_000u64 + self.next_id)
    }

    /// Adds `template` (Meta's listing shape) to `waba_id`'s catalogue; returns its id.
    pub(super) fn add(&mut self, waba_id: &str, mut template: Value) -> String {
        let id = match template.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => self.next_id(),
        };
        template["id"] = json!(id);
        template["waba_id"] = json!(waba_id);
        if template.get("status").is_none() {
            template["status"] = json!("APPROVED");
        }
        self.templates.push(template);
        id
    }
}

/// `limit`, `after`, and Meta's filters.
#[derive(Deserialize)]
pub(super) struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
    status: Option<String>,
    name: Option<String>,
    language: Option<String>,
}

fn field<'a>(template: &'a Value, key: &str) -> &'a str {
    template.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `GET /{version}/{waba_id}/message_templates`: one page, `paging.cursors.after` and `next`
/// while more remain.
pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    Path((version, waba_id)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    _: Authorized,
) -> (StatusCode, Json<Value>) {
    let catalogue = shared.templates.lock().expect("catalogue");
    let matching: Vec<&Value> = catalogue
        .templates
        .iter()
        .filter(|t| field(t, "waba_id") == waba_id)
        .filter(|t| {
            query
                .status
                .as_deref()
                .is_none_or(|s| field(t, "status").eq_ignore_ascii_case(s))
        })
        .filter(|t| query.name.as_deref().is_none_or(|n| field(t, "name") == n))
        .filter(|t| {
            query
                .language
                .as_deref()
                .is_none_or(|l| field(t, "language") == l)
        })
        .collect();
    let start = match &query.after {
        Some(after) => match after.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return meta_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter"),
        },
        None => 0,
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let end = (start + limit).min(matching.len());
    let data: Vec<Value> = matching[start.min(end)..end]
        .iter()
        .map(|t| {
            let mut listed = (*t).clone();
            if let Some(object) = listed.as_object_mut() {
                object.remove("waba_id");
            }
            listed
        })
        .collect();
    let mut paging = json!({"cursors": {"before": start.to_string(), "after": end.to_string()}});
    if end < matching.len() {
        paging["next"] = json!(format!(
            "/{version}/{waba_id}/message_templates?limit={limit}&after={end}"
        ));
    }
    (
        StatusCode::OK,
        Json(json!({"data": data, "paging": paging})),
    )
}

fn invalid(title: &str, message: &str) -> (StatusCode, Json<Value>) {
    let body = json!({"error": {
        "message": "Invalid parameter",
        "type": "OAuthException",
        "code": 100,
        "error_subcode": 2_388_043,
        "is_transient": false,
        "error_user_title": title,
        "error_user_msg": message,
        "fbtrace_id": "SIMULATOR",
    }});
    (StatusCode::BAD_REQUEST, Json(body))
}

/// Meta's checks of a new template: name, language, category, a body, no duplicate.
fn check_new(
    catalogue: &Catalogue,
    waba_id: &str,
    body: &Value,
) -> Result<(), (StatusCode, Json<Value>)> {
    let name = field(body, "name");
    if name.is_empty()
        || name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(invalid(
            "Invalid template name",
            "Template names can only contain lowercase letters, numbers and underscores.",
        ));
    }
    if field(body, "language").is_empty() {
        return Err(invalid("Language missing", "A template needs a language."));
    }
    if !["MARKETING", "UTILITY", "AUTHENTICATION"].contains(&field(body, "category")) {
        return Err(invalid(
            "Invalid category",
            "Category must be MARKETING, UTILITY or AUTHENTICATION.",
        ));
    }
    let components = body.get("components").and_then(Value::as_array);
    let has_body = components.is_some_and(|c| c.iter().any(|c| field(c, "type") == "BODY"));
    if !has_body {
        return Err(invalid(
            "Body missing",
            "A template needs a BODY component.",
        ));
    }
    let taken = catalogue.templates.iter().any(|t| {
        field(t, "waba_id") == waba_id
            && field(t, "name") == name
            && field(t, "language") == field(body, "language")
    });
    if taken {
        return Err(invalid(
            "Content in This Language Already Exists",
            "There is already content for this template in this language.",
        ));
    }
    Ok(())
}

/// `POST /{version}/{waba_id}/message_templates`: submits a template for review.
pub(super) async fn create(
    State(shared): State<Arc<Shared>>,
    Path((_version, waba_id)): Path<(String, String)>,
    _: Authorized,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let (id, category) = {
        let mut catalogue = shared.templates.lock().expect("catalogue");
        if let Err(refusal) = check_new(&catalogue, &waba_id, &body) {
            return refusal;
        }
        let mut template = body.clone();
        template["status"] = json!("PENDING");
        let id = catalogue.add(&waba_id, template);
        (id, field(&body, "category").to_owned())
    };
    tokio::spawn(review(Arc::clone(&shared), id.clone()));
    (
        StatusCode::OK,
        Json(json!({"id": id, "status": "PENDING", "category": category})),
    )
}

/// `POST /{version}/{template_id}`: edits components or category; the template is reviewed
/// again.
pub(super) async fn edit(
    State(shared): State<Arc<Shared>>,
    Path((_version, template_id)): Path<(String, String)>,
    _: Authorized,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    {
        let mut catalogue = shared.templates.lock().expect("catalogue");
        let Some(template) = catalogue
            .templates
            .iter_mut()
            .find(|t| field(t, "id") == template_id)
        else {
            return meta_error(StatusCode::NOT_FOUND, 100, "Unsupported post request");
        };
        if field(template, "status") == "PENDING" {
            return invalid(
                "Template can't be edited",
                "A template in review cannot be edited.",
            );
        }
        for key in ["components", "category"] {
            if let Some(value) = body.get(key) {
                template[key] = value.clone();
            }
        }
        template["status"] = json!("PENDING");
    }
    tokio::spawn(review(Arc::clone(&shared), template_id));
    (StatusCode::OK, Json(json!({"success": true})))
}

/// `name`, and `hsm_id` for one translation.
#[derive(Deserialize)]
pub(super) struct DeleteQuery {
    name: Option<String>,
    hsm_id: Option<String>,
}

/// `DELETE /{version}/{waba_id}/message_templates?name=…[&hsm_id=…]`.
pub(super) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((_version, waba_id)): Path<(String, String)>,
    Query(query): Query<DeleteQuery>,
    _: Authorized,
) -> (StatusCode, Json<Value>) {
    let Some(name) = query.name else {
        return meta_error(
            StatusCode::BAD_REQUEST,
            100,
            "The parameter name is required",
        );
    };
    let mut catalogue = shared.templates.lock().expect("catalogue");
    let before = catalogue.templates.len();
    catalogue.templates.retain(|t| {
        !(field(t, "waba_id") == waba_id
            && field(t, "name") == name
            && query
                .hsm_id
                .as_deref()
                .is_none_or(|id| field(t, "id") == id))
    });
    if catalogue.templates.len() == before {
        return invalid("Template not found", "No template with this name.");
    }
    (StatusCode::OK, Json(json!({"success": true})))
}

/// `POST /control/templates {waba_id, templates: [...]}`: adds templates as Meta would list
/// them; answers their ids.
pub(super) async fn seed(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let waba_id = field(&body, "waba_id").to_owned();
    let Some(templates) = body.get("templates").and_then(Value::as_array) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "templates: a list"})),
        );
    };
    let mut catalogue = shared.templates.lock().expect("catalogue");
    let ids: Vec<String> = templates
        .iter()
        .map(|t| catalogue.add(&waba_id, t.clone()))
        .collect();
    (StatusCode::OK, Json(json!({"ids": ids})))
}

/// `POST /control/template-review {decision, reason?, delay_ms?}`: how later reviews end.
pub(super) async fn set_review(
    State(shared): State<Arc<Shared>>,
    Json(review): Json<Review>,
) -> StatusCode {
    if !["approve", "reject"].contains(&review.decision.as_str()) {
        return StatusCode::BAD_REQUEST;
    }
    shared.templates.lock().expect("catalogue").review = review;
    StatusCode::NO_CONTENT
}

/// Ends a template's review after the configured delay and tells the webhook URL.
async fn review(shared: Arc<Shared>, template_id: String) {
    let review = shared.templates.lock().expect("catalogue").review.clone();
    tokio::time::sleep(Duration::from_millis(review.delay_ms)).await;
    let (event, reason) = if review.decision == "reject" {
        (
            "REJECTED",
            review.reason.unwrap_or_else(|| "INVALID_FORMAT".to_owned()),
        )
    } else {
        ("APPROVED", "NONE".to_owned())
    };
    let template = {
        let mut catalogue = shared.templates.lock().expect("catalogue");
        let Some(template) = catalogue
            .templates
            .iter_mut()
            .find(|t| field(t, "id") == template_id)
        else {
            return;
        };
        template["status"] = json!(event);
        if event == "REJECTED" {
            template["rejected_reason"] = json!(reason);
        }
        template.clone()
    };
    // Meta's `time` is in seconds; strictly increasing here, so that two reviews within one
    // second (tests) are two reports, as they would be seconds apart at Meta.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let next = |last: u64| now.max(last + 1);
    let time = shared
        .template_webhook_time
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(next(last))
        })
        .map_or(now, next);
    let numeric_id: Value = template_id
        .parse::<u64>()
        .map_or_else(|_| json!(template_id), |n| json!(n));
    let webhook = json!({"object": "whatsapp_business_account", "entry": [{
        "id": field(&template, "waba_id"), "time": time, "changes": [{
            "field": "message_template_status_update",
            "value": {"event": event, "message_template_id": numeric_id,
                      "message_template_name": field(&template, "name"),
                      "message_template_language": field(&template, "language"),
                      "message_template_category": field(&template, "category"),
                      "reason": reason}}]}]});
    if let Err(error) = post_webhook(&shared, webhook.to_string()).await {
        tracing::warn!(%error, "simulator could not deliver a template status webhook");
    }
}
