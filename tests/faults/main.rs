//! Faults of the world around the server: PostgreSQL restarted under load, a full disk.
//!
//! A test binary of its own: Cargo runs test binaries one after another, so restarting the
//! PostgreSQL cluster here cannot break the other suites' tests mid-flight.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod postgres_restart;
mod sqlite_disk_full;
