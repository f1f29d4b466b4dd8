//! The HTTP API: one module per resource, each with its own `router()`, merged here.

mod account;
mod agents;
mod analytics;
mod assignment;
mod auth;
mod console;
mod contract;
mod conversations;
mod customers;
mod dead_letters;
mod error;
mod events;
pub(crate) mod extract;
mod health;
mod inbox;
pub(crate) mod input;
mod locks;
mod metrics;
mod notes;
pub use metrics::StoredCounts;
mod api_keys;
mod media;
mod observe;
mod openapi;
mod outbound_dead_letters;
mod ownership;
mod quick_replies;
mod sending;
mod sla_policies;
mod template_check;
mod templates;
mod uploads;
mod webhook_deliveries;
mod webhook_endpoints;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, Request};
use axum::Router;
use switchboard_store::{Database, EventRepository};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::auth::Auth;
use crate::clock::Clock;
use crate::config::{ConversationSettings, WhatsAppSettings};
use crate::cqrs::Frameworks;
use crate::webhooks::inbox::WebhookInbox;
use crate::workers::health::WorkerHealth;

/// The header that carries the request id, accepted from clients or generated.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What handlers share: one allocation, so that the per-request clones axum makes of the state
/// (each extractor and middleware takes its own) cost one reference count, not one per field
/// (they took 3 % of the CPU while ingesting at full speed).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of a server.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    /// The read side.
    pub database: Database,
    /// The event log.
    pub log: EventRepository,
    /// The durable webhook inbox.
    pub inbox: WebhookInbox,
    /// Meta-facing settings.
    pub whatsapp: Arc<WhatsAppSettings>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The command side.
    pub frameworks: Frameworks,
    /// Authentication.
    pub auth: Auth,
    /// Conversation lock settings.
    pub conversations: Arc<ConversationSettings>,
    /// Whether the background workers are alive.
    pub workers: Arc<WorkerHealth>,
    /// When this instance started.
    pub started: std::time::Instant,
    /// Renders the metrics.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// How long one event-stream response lasts.
    pub event_stream_max: Duration,
    /// The Graph API client, when sending is configured.
    pub graph: Option<crate::whatsapp::graph::GraphClient>,
    /// Read models stopped by an event they cannot apply (health and readiness report them).
    pub stopped_projections: switchboard_projections::StoppedProjections,
    /// Agents' sockets connected to this instance (kept by the realtime side; health reads it).
    pub sockets_connected: Arc<std::sync::atomic::AtomicU64>,
    /// Where customers' files are kept.
    pub media: crate::media::MediaStore,
    /// Outgoing webhooks and the bot.
    pub outgoing: Arc<crate::outgoing::OutgoingSettings>,
    /// The NATS JetStream publisher's state.
    pub stream: Arc<crate::stream::StreamStatus>,
    /// What the edge enforces (CORS, timeouts, sockets per agent).
    pub edge: Arc<crate::edge::EdgeSettings>,
    /// The edge's rate limits.
    pub limits: Arc<crate::edge::limits::Limits>,
}

/// Each module's routes, documented.
fn modules(max_webhook_bytes: usize) -> Vec<utoipa_axum::router::OpenApiRouter<AppState>> {
    vec![
        webhooks::router(max_webhook_bytes),
        inbox::router(),
        conversations::router(),
        account::router(),
        templates::router(),
        dead_letters::router(),
        auth::router(),
        agents::router(),
        analytics::router(),
        ownership::router(),
        notes::router(),
        customers::router(),
        assignment::router(),
        quick_replies::router(),
        media::router(),
        api_keys::router(),
        webhook_endpoints::router(),
        webhook_deliveries::router(),
        uploads::router(),
        sla_policies::router(),
        sending::router(),
        outbound_dead_letters::router(),
        locks::router(),
        health::router(),
        metrics::router(),
        events::router(),
        openapi::router(),
    ]
}

/// Schema names that two modules define differently. utoipa keys schemas by type name, so two
/// types of one name (say two `LockView`s) would silently share one schema and a generated
/// client would drop the fields of the other; a test keeps this empty.
pub fn schema_name_clashes() -> Vec<String> {
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    let mut clashes = Vec::new();
    for module in modules(0) {
        let (_, spec) = module.split_for_parts();
        for (name, schema) in spec.components.map(|c| c.schemas).unwrap_or_default() {
            let text = serde_json::to_string(&schema).unwrap_or_default();
            match seen.get(&name) {
                Some(earlier) if *earlier != text => clashes.push(name),
                Some(_) => {}
                None => {
                    seen.insert(name, text);
                }
            }
        }
    }
    clashes
}

/// The whole HTTP surface, with request ids and request tracing.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let (edge, limits) = (Arc::clone(&state.edge), Arc::clone(&state.limits));
    let hsts = edge.hsts;
    let (api, spec) = modules(state.whatsapp.max_body_bytes)
        .into_iter()
        .fold(
            utoipa_axum::router::OpenApiRouter::with_openapi(
                <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
            ),
            utoipa_axum::router::OpenApiRouter::merge,
        )
        .split_for_parts();
    openapi::publish(spec);
    api.route_layer(axum::middleware::from_fn(observe::observe))
        .merge(console::router())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn(input::refuse_control_characters))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
                })
                .on_response(|response: &axum::response::Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = response.status().as_u16(), latency_ms = latency.as_millis() as u64, "response");
                }),
        )
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(edge.body_timeout))
        .layer(axum::middleware::from_fn({
            let limit = edge.request_timeout;
            move |request, next| crate::edge::deadline::within(limit, request, next)
        }))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&limits),
            crate::edge::limits::guard,
        ))
        .layer(axum::middleware::from_fn(move |request, next| {
            crate::edge::headers::secure(hsts, request, next)
        }))
        .layer(crate::edge::headers::cors(&edge.cors_origins))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            crate::edge::limits::identify,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
