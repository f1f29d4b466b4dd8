//! Aggregates this process used recently, one slot each.
//!
//! A slot publishes what the process last knew of one aggregate — its state at a sequence, and
//! the instant that state was last proven current — to every command waiting on it, and has a
//! writer lock held by the one command that loads, catches up or appends, so that one
//! instance's writes to one aggregate take turns instead of racing each other to the database
//! while its refusals are answered side by side. The slots are bounded (least recently used go
//! first); losing one only costs a reload. Nothing here is trusted for a decision on its own:
//! see [`crate::SnapshotStore::execute`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hashlink::LruCache;

use crate::Loaded;

/// What the process knows of one aggregate.
#[derive(Debug, Clone)]
pub(crate) struct Known<A> {
    /// The aggregate at a sequence: exactly the state its events up to there give.
    pub loaded: Loaded<A>,
    /// Taken just before the read or the append that showed `loaded` to be the latest state
    /// was sent: at some instant after this one, it was.
    pub confirmed: Instant,
}

/// One aggregate's slot.
pub(crate) struct Slot<A> {
    /// What is known (nothing until loaded), published to the commands waiting on it.
    pub known: tokio::sync::watch::Sender<Option<Known<A>>>,
    /// Held while loading, catching up or appending: only its holder publishes.
    pub writer: tokio::sync::Mutex<()>,
}

/// The slots of the aggregates used most recently, at most `capacity` of them.
pub(crate) struct AggregateCache<A> {
    slots: Mutex<LruCache<String, Arc<Slot<A>>>>,
}

impl<A> AggregateCache<A> {
    /// Room for `capacity` aggregates.
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(LruCache::new(capacity.max(1))),
        }
    }

    /// The slot of `id`, if it has one (without making it the most recently used).
    pub fn peek(&self, id: &str) -> Option<Arc<Slot<A>>> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.peek(id).cloned()
    }

    /// The slot of `id`, made empty if it has none. An evicted slot still in use by a command
    /// stays valid for it; the next command on that aggregate starts from a fresh load.
    pub fn slot(&self, id: &str) -> Arc<Slot<A>> {
        // std mutex: held only for the map lookup, never across an await.
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(id) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot {
            known: tokio::sync::watch::Sender::new(None),
            writer: tokio::sync::Mutex::new(()),
        });
        slots.insert(id.to_owned(), Arc::clone(&slot));
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_slot_goes_first_and_the_map_stays_bounded() {
        let recent: AggregateCache<u8> = AggregateCache::new(2);
        let a = recent.slot("a");
        let _b = recent.slot("b");
        assert!(
            Arc::ptr_eq(&a, &recent.slot("a")),
            "a is kept and now most recent"
        );
        let _c = recent.slot("c");
        assert!(Arc::ptr_eq(&a, &recent.slot("a")), "b went, not a");
        assert_eq!(
            recent
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            2
        );
    }
}
