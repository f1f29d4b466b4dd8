//! Each agent's share of this instance's sockets: a slot is taken at the handshake, under one
//! lock, and given back when the socket's session is dropped, so concurrent handshakes cannot
//! exceed the cap and a count never needs a scan of every socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use switchboard_domain::AgentId;

/// The live sockets per agent on this instance.
#[derive(Debug, Default)]
pub struct Slots {
    held: Mutex<HashMap<AgentId, usize>>,
}

/// One socket's slot; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    agent: AgentId,
}

impl Slots {
    /// A slot for `agent`, or `None` when it already holds `cap` (0: no cap).
    pub fn take(self: &Arc<Self>, agent: AgentId, cap: usize) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(agent).or_insert(0);
        if cap > 0 && *count >= cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: Arc::clone(self),
            agent,
        })
    }

    /// How many sockets each agent holds.
    pub fn by_agent(&self) -> HashMap<AgentId, usize> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.agent) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.agent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_refused_at_the_cap_and_given_back_when_dropped() {
        let slots = Arc::new(Slots::default());
        let agent = AgentId::parse("6f1c1e8e-2f1a-4d3b-9a3c-1b2c3d4e5f60").expect("id");
        let first = slots.take(agent, 2).expect("first");
        let _second = slots.take(agent, 2).expect("second");
        assert!(slots.take(agent, 2).is_none());
        drop(first);
        assert!(slots.take(agent, 2).is_some());
        assert_eq!(slots.by_agent().get(&agent), Some(&1));
    }
}
