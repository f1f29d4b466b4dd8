//! Background workers that act on time passing, and the health of all workers.

pub mod auto_assign;
pub mod availability;
pub mod bot_watch;
pub mod health;
pub mod listen;
pub mod lock_expiry;
pub mod outbound;
pub mod sla;
pub mod template_sync;
