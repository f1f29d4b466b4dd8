//! Meta's WhatsApp Cloud API wire format: webhook signatures and payloads.

pub mod payload;
pub mod signature;
