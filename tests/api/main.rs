//! End-to-end tests: a real server over real HTTP, on a real database.
//!
//! Every test runs on both backends: `sqlite::<name>` always, `postgres::<name>` when
//! `DATABASE_URL` is set (it prints that it was skipped otherwise, and fails instead when
//! `SWITCHBOARD_REQUIRE_POSTGRES` is set, as in CI).

mod helpers;

mod locks;
mod media;
mod migration;
mod observability;
mod openapi;
mod outbound;
mod outbox;

mod agent_rights;
mod analytics;
mod api_keys;
mod auth;
mod batching;
mod bots;
mod cli;
mod collisions;
mod dead_letters;
mod edge;
mod event_log;
mod events;
mod evolution;
mod floods;
mod fuzz_smoke;
mod hardening;
mod inbox;
mod instances;
mod integrations;
mod login_abuse;
mod monitoring;
mod nul_bytes;
mod permissions;
mod privacy;
mod privacy_keys;
mod privacy_media;
mod quick_replies;
mod realtime;
mod receiver;
mod replay;
mod s3;
mod secrets;
mod sending;
mod shutdown;
mod sla;
mod socket_client;
mod stream;
mod templates;
mod third_party;
mod webhooks;
