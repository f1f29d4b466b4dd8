//! Meta's WhatsApp Cloud API wire format: webhook signatures and payloads, and the Graph API
//! client that sends messages.

pub mod graph;
pub mod payload;
pub mod signature;
pub mod templates;
