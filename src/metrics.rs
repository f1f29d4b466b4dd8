//! Prometheus metrics: one recorder per process, names by Prometheus conventions (base units,
//! `_seconds`, `_total`). Gauges that are counts of stored things are refreshed at scrape time
//! from the database, so they are exact whichever instance is scraped.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests refused by a rate limit of the edge, by limit (`credential`, `address`,
/// `webhook_address`).
pub const RATE_LIMITED: &str = "switchboard_rate_limited_total";
/// HTTP requests, by method, route and status.
pub const HTTP_REQUESTS: &str = "switchboard_http_requests_total";
/// HTTP request duration, by method, route and status.
pub const HTTP_DURATION: &str = "switchboard_http_request_duration_seconds";
/// Webhooks stored and acknowledged.
pub const WEBHOOKS_RECEIVED: &str = "switchboard_webhooks_received_total";
/// Webhooks refused, by reason.
pub const WEBHOOKS_REJECTED: &str = "switchboard_webhooks_rejected_total";
/// Time to process a claimed batch of webhooks, by mode (batch or single).
pub const WEBHOOK_PROCESSING: &str = "switchboard_webhook_processing_duration_seconds";
/// Processing attempts of stored webhooks.
pub const WEBHOOK_ATTEMPTS: &str = "switchboard_webhook_processing_attempts_total";
/// Failed processing attempts, by reason (retryable, permanent).
pub const WEBHOOK_FAILURES: &str = "switchboard_webhook_processing_failures_total";
/// Stored webhooks not yet processed.
pub const WEBHOOKS_AWAITING: &str = "switchboard_webhooks_awaiting_processing";
/// Dead-lettered webhooks.
pub const WEBHOOKS_DEAD_LETTERED: &str = "switchboard_webhooks_dead_lettered";
/// Customer messages received (new ones, duplicates excluded).
pub const MESSAGES_RECEIVED: &str = "switchboard_messages_received_total";
/// Conversations not resolved.
pub const ACTIVE_CONVERSATIONS: &str = "switchboard_active_conversations";
/// Lock attempts refused because another agent holds the lock.
pub const LOCK_CONFLICTS: &str = "switchboard_lock_conflicts_total";
/// Authentication failures, by reason.
pub const AUTH_FAILURES: &str = "switchboard_authentication_failures_total";
/// Events in the log not yet applied to the read models.
pub const PROJECTION_LAG: &str = "switchboard_projection_lag_events";
/// Events of the log after a read model's checkpoint, by projection (positions apart: an
/// upper bound on PostgreSQL, where a few may be in flight).
pub const PROJECTION_BEHIND: &str = "switchboard_projection_behind_events";
/// The position a read model stopped at (an event it cannot apply), by projection; 0 running.
pub const PROJECTION_STOPPED: &str = switchboard_projections::stopped::PROJECTION_STOPPED;

/// Send attempts to Meta, by outcome (`accepted`, `refused`, `retried`, `unreachable`,
/// `dead_lettered`) and Meta's error code (`none` when accepted, `local` for our own errors).
pub const SENDS: &str = "switchboard_sends_total";
/// Outbound messages queued and not yet sent.
pub const SENDS_QUEUED: &str = "switchboard_sends_queued";
/// Outbound messages in the dead-letter queue.
pub const SENDS_DEAD_LETTERED: &str = "switchboard_sends_dead_lettered";

/// Duration of a send request to Meta's Graph API, by outcome.
pub const GRAPH_SEND_DURATION: &str = "switchboard_graph_send_duration_seconds";
/// From Meta's timestamp of a customer message to its event in the log.
pub const INBOUND_DELAY: &str = switchboard_projections::runner::INBOUND_DELAY;

/// From a customer's first message to the first agent reply, observed as the reply is accepted.
pub const FIRST_RESPONSE: &str = "switchboard_first_response_seconds";
/// SLA outcomes recorded in the log, by target and outcome (`met`, `breached`): a count read
/// from the `sla` read model at each scrape (the same on every instance).
pub const SLA_OUTCOMES: &str = "switchboard_sla_outcomes";

/// Outgoing webhook deliveries, by outcome (`delivered`, `failed`, `dead_lettered`).
pub const OUTGOING_DELIVERIES: &str = "switchboard_outgoing_webhook_deliveries_total";
/// Outgoing webhook endpoints the deliverer disabled after failing too long.
pub const OUTGOING_DISABLED: &str = "switchboard_outgoing_webhook_endpoints_disabled_total";
/// Outgoing webhook endpoints failing now (no success since their last failure).
pub const OUTGOING_FAILING: &str = "switchboard_outgoing_webhook_endpoints_failing";
/// Conversations handed from the bot to the humans, by reason.
pub const BOT_HANDOFFS: &str = "switchboard_bot_handoffs_total";
/// Events in the log not yet published to NATS JetStream.
pub const STREAM_LAG: &str = "switchboard_stream_lag_events";
/// Failed attempts at publishing to NATS JetStream.
pub const STREAM_PUBLISH_ERRORS: &str = "switchboard_stream_publish_errors_total";
/// 1 while this instance holds the stream publisher's lease.
pub const STREAM_LEADER: &str = "switchboard_stream_leader";
/// Events published to NATS JetStream (acknowledged).
pub const STREAM_PUBLISHED: &str = "switchboard_stream_published_total";
/// Agents' sockets connected to this instance.
pub const SOCKETS_CONNECTED: &str = "switchboard_sockets_connected";
/// Log events pushed to sockets.
pub const SOCKET_EVENTS_SENT: &str = "switchboard_socket_events_sent_total";
/// Sockets the server closed, by reason (token_expired, agent_deactivated, slow_consumer).
pub const SOCKETS_CLOSED: &str = "switchboard_sockets_closed_by_server_total";

/// The process-wide Prometheus recorder (installed on first use).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(INBOUND_DELAY.to_owned()),
                    &[0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0],
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full(FIRST_RESPONSE.to_owned()),
                        &[
                            10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0,
                        ],
                    )
                })
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Suffix("_seconds".to_owned()),
                        &[
                            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                            2.5, 5.0, 10.0,
                        ],
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    handle
                }
                // Another recorder is installed (embedding); render ours standalone.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route and status");
    describe_gauge!(
        SOCKETS_CONNECTED,
        "Agents' sockets connected to this instance"
    );
    describe_counter!(SOCKET_EVENTS_SENT, "Log events pushed to sockets");
    describe_counter!(SOCKETS_CLOSED, "Sockets closed by the server, by reason");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request duration");
    describe_counter!(WEBHOOKS_RECEIVED, "Webhooks stored and acknowledged");
    describe_counter!(WEBHOOKS_REJECTED, "Webhooks refused, by reason");
    describe_histogram!(
        WEBHOOK_PROCESSING,
        Unit::Seconds,
        "Processing time of a claimed batch of webhooks"
    );
    describe_counter!(WEBHOOK_ATTEMPTS, "Processing attempts of stored webhooks");
    describe_counter!(WEBHOOK_FAILURES, "Failed processing attempts, by reason");
    describe_gauge!(WEBHOOKS_AWAITING, "Stored webhooks not yet processed");
    describe_gauge!(WEBHOOKS_DEAD_LETTERED, "Dead-lettered webhooks");
    describe_counter!(
        MESSAGES_RECEIVED,
        "Customer messages received (duplicates excluded)"
    );
    describe_gauge!(ACTIVE_CONVERSATIONS, "Conversations not resolved");
    describe_counter!(
        LOCK_CONFLICTS,
        "Lock attempts refused because another agent holds it"
    );
    describe_counter!(AUTH_FAILURES, "Authentication failures, by reason");
    describe_gauge!(PROJECTION_LAG, "Events not yet applied to the read models");
    describe_gauge!(
        PROJECTION_BEHIND,
        "Log positions after each read model's checkpoint"
    );
    describe_counter!(
        SENDS,
        "Send attempts to Meta, by outcome and Meta's error code"
    );
    describe_gauge!(SENDS_QUEUED, "Outbound messages queued and not yet sent");
    describe_histogram!(
        GRAPH_SEND_DURATION,
        Unit::Seconds,
        "Send requests to Meta's Graph API, by outcome"
    );
    describe_histogram!(
        INBOUND_DELAY,
        Unit::Seconds,
        "From Meta's timestamp of a customer message to its event in the log"
    );
    describe_histogram!(
        FIRST_RESPONSE,
        Unit::Seconds,
        "From a customer's first message to the first agent reply"
    );
    describe_gauge!(SLA_OUTCOMES, "SLA outcomes recorded, by target and outcome");
    describe_gauge!(
        SENDS_DEAD_LETTERED,
        "Outbound messages in the dead-letter queue"
    );
    describe_counter!(
        OUTGOING_DELIVERIES,
        "Outgoing webhook delivery attempts, by outcome"
    );
    describe_counter!(
        OUTGOING_DISABLED,
        "Outgoing webhook endpoints disabled after failing too long"
    );
    describe_gauge!(
        OUTGOING_FAILING,
        "Outgoing webhook endpoints failing without a success since"
    );
    describe_gauge!(
        STREAM_LAG,
        "Events in the log not yet published to NATS JetStream"
    );
    describe_counter!(
        STREAM_PUBLISH_ERRORS,
        "Failed attempts at publishing to NATS JetStream"
    );
    describe_counter!(STREAM_PUBLISHED, "Events published to NATS JetStream");
    describe_gauge!(
        STREAM_LEADER,
        "1 while this instance publishes the log to NATS JetStream"
    );
    describe_counter!(
        BOT_HANDOFFS,
        "Conversations the bot-reply watch handed to the humans, by reason"
    );
}
