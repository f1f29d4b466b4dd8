#![warn(missing_docs)]
//! Switchboard: an event-sourced backend for customer-service teams on WhatsApp.
//!
//! Meta's webhooks and agents' commands become events on the aggregates of
//! `switchboard-domain`; projections (`switchboard-projections`) turn the log into the read
//! models the API serves. This crate is the server around them:
//!
//! - [`config`] — typed settings, from flags and environment variables.
//! - [`startup`] — the one builder used by `main`, the tests and the tools.
//! - [`cqrs`] — the one place that wires aggregates to the event store.
//! - [`transaction`] — commands on several aggregates appended in one transaction.
//! - [`outbox`] — the sender's worker state, written with the message's events.
//! - [`http`] — the HTTP API and Meta's webhook endpoint.
//! - [`replay`] — rebuild, audit, export/import, verify, reprocess: the replay tools' work.
//! - [`simulator`] — a Cloud API simulator speaking Meta's wire format (tests, sandbox).
//! - [`whatsapp`] — Meta's wire format (signatures, webhook payloads).
//! - [`webhooks`] — the durable inbox of raw webhooks and the worker that turns them into commands.
//! - [`auth`] — agent authentication: passwords, tokens, sessions, rate limits.
//! - [`workers`] — background work driven by time (lock expiry, snooze wake-up).
//! - [`clock`] — time as an input, controllable in tests.
//! - [`telemetry`] — logging and the request id of the request being served.
//! - [`metrics`] — Prometheus metric names and the recorder.
//! - [`media`] — customers' files: where they are kept, and the fetcher that keeps them.

pub mod auth;
pub mod clock;
pub mod config;
pub mod cqrs;
pub mod edge;
pub mod fuzzing;
pub mod http;
pub mod media;
pub mod metrics;
pub mod outbox;
pub mod outgoing;
pub mod privacy;
pub mod realtime;
pub mod replay;
pub mod simulator;
pub mod startup;
pub mod stream;
pub mod telemetry;
pub mod transaction;
pub mod webhooks;
pub mod whatsapp;
pub mod workers;
