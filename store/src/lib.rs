#![warn(missing_docs)]
//! Storage for Switchboard: one event log, two backends.
//!
//! - [`database`] — a connection to PostgreSQL (production) or an embedded SQLite file (the
//!   default), with the migrations of each.
//! - [`event_log`] — the cqrs-es event repository over either backend, and the gapless global
//!   reader that projections, realtime and replay tools tail.
//! - [`streams`] — aggregates' streams: batch loading from snapshots, multi-aggregate appends.
//! - [`snapshot_store`] — commands on aggregates with long streams: loaded from snapshots, kept
//!   in memory while used, decided against that state and made atomic by the append.
//! - [`nul`] — U+0000 kept losslessly in stored JSON, and shown as ␀ in read-model text.
//! - [`coalesce`] — a batch's statements folded into multi-row statements.
//! - [`sql`] — backend-neutral SQL statements, so a read model is written once for both.
//! - [`upcast`] — older event shapes brought to the current one on every read.
//! - [`vault`] — customers' data keys: personal data sealed in the log, erased by destroying them.

mod aggregate_cache;
mod batch;
pub mod coalesce;
mod cqrs_repository;
pub mod database;
pub mod error;
pub mod event_log;
mod high_water;
pub mod nul;
mod recorded;
pub mod snapshot_store;
pub mod sql;
pub mod streams;
mod tail;
pub mod upcast;
pub mod vault;

pub use database::{Backend, Database, DatabaseConfig};
pub use error::{error_chain, StoreError};
pub use event_log::{EventRepository, LogCursor, RecordedEvent, READ_ALL_POSTGRES};
pub use snapshot_store::{SnapshotStore, CONFLICT_RETRIES, KEPT_AGGREGATES};
pub use sql::{SqlValue, Statement};
pub use streams::{AppendError, Loaded, NewEvent, Snapshot, StreamEvent, SNAPSHOT_EVERY};
