//! Meta's webhooks after the signature check: stored durably first ([`inbox`]), turned into
//! commands afterwards ([`processor`]), so Meta never waits on aggregates and nothing
//! acknowledged is lost.

mod commands;
pub mod inbox;
pub mod processor;
pub mod retention;
pub mod unit_of_work;
