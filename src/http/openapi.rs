//! The OpenAPI description of the HTTP API, generated from the handlers themselves (utoipa):
//! every route is registered through the same `routes!` call that documents it, so the two
//! cannot drift. Served at `/api/openapi.json`, readable at `/api/docs` (works offline).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder, ResponsesBuilder};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;

/// The document's frame: title, description, security schemes. Paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "Event-sourced backend for customer-service teams on WhatsApp. Errors are always `{\"error\": {\"code\", \"message\"}}`. Agents' live updates use Socket.IO at `/socket.io/` (see the README), which OpenAPI cannot describe."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, ErrorDetail))
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /api/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "hub_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Hub-Signature-256",
                "sha256=<HMAC-SHA256 of the raw body with the Meta app secret>",
            ))),
        );
    }
}

/// Every error answer.
#[allow(dead_code)] // documentation only: never built, described
#[derive(ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
    /// With `conversation_locked`: who holds the lock.
    #[schema(nullable = false)]
    pub locked_by: Option<String>,
    /// With `conversation_locked`: when the lock lapses.
    #[schema(nullable = false)]
    pub expires_at: Option<String>,
    /// With `conversation_changed`: the conversation's version now.
    #[schema(nullable = false)]
    pub current_version: Option<u64>,
}

/// A stable code and a message for people.
#[allow(dead_code)] // documentation only: never built, described
#[derive(ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`invalid_token`, `not_found`, `conversation_locked`, …).
    pub code: String,
    /// What happened, for people.
    pub message: String,
}

/// The error answers any API operation may give.
pub struct Errors;

impl utoipa::IntoResponses for Errors {
    fn responses() -> std::collections::BTreeMap<String, RefOr<Response>> {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            "ErrorBody",
                        ))))
                        .build(),
                )
                .build()
        };
        ResponsesBuilder::new()
            .response("400", error("Malformed request (query string, JSON)"))
            .response("401", error("No valid access token"))
            .response("403", error("Not allowed"))
            .response(
                "404",
                error("Not found (or out of the caller's read scope)"),
            )
            .response(
                "408",
                error("The request was not completed in time (a body sent too slowly)"),
            )
            .response("409", error("Conflict: locked, changed, or already so"))
            .response("422", error("Well-formed but refused by the rules"))
            .response(
                "429",
                error("Too many requests or attempts; see Retry-After"),
            )
            .response(
                "503",
                error("Unavailable or at capacity; retry (after Retry-After when given)"),
            )
            .build()
            .into()
    }
}

static SPEC: OnceLock<String> = OnceLock::new();

/// The routes of the description itself.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
}

/// Finishes the description and keeps it for `/api/openapi.json`.
pub(super) fn publish(mut spec: utoipa::openapi::OpenApi) {
    super::contract::finish(&mut spec);
    SPEC.get_or_init(|| spec.to_json().unwrap_or_else(|_| "{}".to_owned()));
}

/// This description, as JSON.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "getOpenApi", tag = "docs",
    responses((status = 200, description = "The OpenAPI 3.1 description", content_type = "application/json", body = serde_json::Value)))]
async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        SPEC.get().map_or("{}", String::as_str),
    )
}

/// A readable page of this description; self-contained (no CDN), so it works offline.
#[utoipa::path(get, path = "/api/docs", operation_id = "getDocs", tag = "docs",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String)))]
async fn docs() -> impl axum::response::IntoResponse {
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let policy = POLICY.get_or_init(|| docs_policy(DOCS));
    (
        [(axum::http::header::CONTENT_SECURITY_POLICY, policy.clone())],
        Html(DOCS),
    )
}

const DOCS: &str = include_str!("docs.html");

/// A policy that lets the docs page run its own inline script and style and nothing else:
/// each allowed by its SHA-256 (CSP level 2), computed from the page as built.
fn docs_policy(page: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let hash = |open: &str, close: &str| {
        let body = page
            .split_once(open)
            .and_then(|(_, rest)| rest.split_once(close))
            .map_or("", |(inside, _)| inside);
        let digest = sha2::Sha256::digest(body.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    };
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src 'self' data:; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
        hash("<script>", "</script>"),
        hash("<style>", "</style>")
    )
}

/// A role (documentation of `switchboard_domain::agent::Role`'s wire form).
#[allow(dead_code)] // documentation only: never built, described
#[derive(ToSchema)]
#[schema(as = Role, rename_all = "snake_case")]
pub enum RoleDoc {
    /// Everything, including managing agents.
    Admin,
    /// Every conversation, templates, analytics; may force-release locks.
    Supervisor,
    /// Handles conversations.
    Agent,
}

/// Which conversations a permission covers.
#[allow(dead_code)] // documentation only: never built, described
#[derive(ToSchema)]
#[schema(as = ChatScope, rename_all = "snake_case")]
pub enum ChatScopeDoc {
    /// Every conversation.
    All,
    /// Assigned to the agent or to one of their groups.
    Group,
    /// Assigned to the agent.
    Assigned,
    /// None.
    None,
}

/// When an agent is on duty, in their own time zone.
#[allow(dead_code)] // documentation only: never built, described
#[derive(ToSchema)]
#[schema(as = WorkingHours)]
pub struct WorkingHoursDoc {
    /// Days on duty (`mon` … `sun`).
    pub days: Vec<String>,
    /// Start of duty, `HH:MM`, local time.
    pub start: String,
    /// End of duty, `HH:MM`; before `start` means the shift crosses midnight.
    pub end: String,
    /// IANA time zone, e.g. `America/New_York`.
    pub timezone: String,
}

/// The answers built in place by handlers, described here (schemathesis checks every answer
/// against them in CI, so they cannot drift unnoticed).
#[allow(dead_code)] // documentation only: never built, described
pub mod answers {
    use utoipa::ToSchema;

    /// A conversation command applied.
    #[derive(ToSchema)]
    pub struct Versioned {
        /// The conversation.
        pub id: String,
        /// Its version now (pass as `expected_version` next time).
        pub version: u64,
    }

    /// The customer's messages marked read.
    #[derive(ToSchema)]
    pub struct ReadUpTo {
        /// The conversation.
        pub id: String,
        /// The newest customer message read (its wamid).
        pub read_up_to: String,
    }

    /// An agent registered.
    #[derive(ToSchema)]
    pub struct AgentCreated {
        /// The agent.
        pub id: String,
        /// Their login email, normalized.
        pub email: String,
        /// Their role.
        pub role: super::RoleDoc,
    }

    /// An agent changed.
    #[derive(ToSchema)]
    pub struct AgentUpdated {
        /// The agent.
        pub id: String,
        /// The agent's version before the change.
        pub previous_version: u64,
        /// The agent's version now (pass as `expected_version` next time).
        pub version: u64,
    }

    /// A group created.
    #[derive(ToSchema)]
    pub struct GroupCreated {
        /// The group.
        pub id: String,
        /// Its name.
        pub name: String,
    }

    /// A dead-lettered send queued again.
    #[derive(ToSchema)]
    pub struct Requeued {
        /// The message.
        pub id: String,
        /// `queued`.
        pub status: String,
    }

    /// A dead-lettered webhook queued again.
    #[derive(ToSchema)]
    pub struct RequeuedWebhook {
        /// The dead letter.
        pub id: i64,
        /// `pending`.
        pub status: String,
    }

    /// Dead letters queued again.
    #[derive(ToSchema)]
    pub struct QueuedCount {
        /// How many.
        pub queued: u64,
    }

    /// Dead letters purged.
    #[derive(ToSchema)]
    pub struct Deleted {
        /// How many.
        pub deleted: u64,
    }

    /// Dead-lettered sends.
    #[derive(ToSchema)]
    pub struct DeadSends {
        /// Newest first.
        pub items: Vec<DeadSend>,
    }

    /// A send whose every attempt failed.
    #[derive(ToSchema)]
    pub struct DeadSend {
        /// The message.
        pub id: String,
        /// Its conversation.
        pub conversation_id: String,
        /// Attempts made.
        pub attempts: i32,
        /// The last error, in Meta's shape.
        pub error: Option<serde_json::Value>,
        /// When it was dead-lettered.
        pub dead_lettered_at: Option<String>,
    }

    /// Liveness or readiness.
    #[derive(ToSchema)]
    pub struct Health {
        /// `ok`, `ready` or `not_ready`.
        pub status: String,
        /// Why not ready.
        #[schema(nullable = false)]
        pub reason: Option<String>,
    }
}
