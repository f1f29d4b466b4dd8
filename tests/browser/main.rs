//! The console in a real browser (Debian's Chromium driven by playwright-core).
//!
//! A test binary of its own: Cargo runs test binaries one after another, so the browser runs
//! with the machine to itself instead of beside the API suite's hundreds of tests, and the
//! latencies it asserts (a customer message on screen within a second) measure the console, not
//! the load of the other tests.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod console;
