//! Background workers that act on time passing.

pub mod lock_expiry;
