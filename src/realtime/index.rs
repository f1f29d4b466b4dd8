//! Scoped fan-out: this instance's sockets indexed by what they may see, so that a batch read
//! from the log wakes only the sockets it concerns (an idle socket that may see none of it is
//! not woken at all).
//!
//! Each socket is indexed under the [`Key`]s of its agent's rights ([`Reader::keys`]: every
//! conversation, a group, conversations assigned to the agent, the agent's account, managers);
//! each event is looked up by the keys of its audience ([`Audience::keys`]). They share a key
//! exactly when the event admits the socket, so the index hands a socket every batch holding
//! an event it may receive, or one that moves its standing (its own account events; a
//! conversation taken away from it, which it may read before the event). The socket still
//! decides each event itself, with its rights at that point of the log: the index only spares
//! the others a wake-up.
//!
//! Rights change at known log positions, the agent's own account events, so keys stay right:
//!
//! - A socket is registered with a queue and *unsettled* (handed every batch) until it has
//!   caught up from the log past the point where it registered; batches before that point are
//!   its catch-up's to read.
//! - When the fan-out hands a socket one of its agent's account events, the socket is
//!   unsettled from that event on: its rights may change there.
//! - When the socket passes such an event (or finishes catching up) it settles on the keys of
//!   its rights at that point, unless another of its account events has been handed to it
//!   beyond that point (it settles when it passes that one).
//!
//! So a batch a socket was not handed holds no event it may receive: before its registration
//! the catch-up reads it, after it the keys were those of its rights there. A socket that
//! falls [`LIVE_CAPACITY`] batches behind is dropped from the live stream (its queue ends) and
//! catches up from the log again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use socketioxide::socket::Sid;
use switchboard_domain::AgentId;
use switchboard_store::LogCursor;
use tokio::sync::mpsc;

use super::audience::{Audience, Key, Reader};
use super::stamp::Batch;

/// Batches handed to one socket and not yet passed; a socket that falls further behind catches
/// up from the log.
pub const LIVE_CAPACITY: usize = 256;

/// The sockets of this instance by what they may see, and how far the fan-out has read.
#[derive(Default)]
pub struct Index {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The last event handed out (or the point the fan-out started at).
    head: LogCursor,
    sockets: HashMap<Sid, Entry>,
    by_key: HashMap<Key, HashSet<Sid>>,
    /// Unsettled sockets: handed every batch.
    unsettled: HashSet<Sid>,
}

struct Entry {
    agent: AgentId,
    /// What it is indexed under in `by_key` (its account's key at least).
    keys: Vec<Key>,
    /// Indexed under its rights' keys; otherwise in `unsettled`, handed every batch.
    settled: bool,
    /// `None` once it fell too far behind: it catches up from the log and registers again.
    queue: Option<mpsc::UnboundedSender<Batch>>,
    /// Batches handed to it and not yet passed (the socket's task counts them down).
    pending: Arc<AtomicUsize>,
    /// It has caught up from the log past the point where it registered.
    live: bool,
    /// The last of its agent's account events handed to it.
    own_event_handed: LogCursor,
}

/// One socket's place in the index: its queue of batches. Dropping it takes the socket out.
pub struct Subscription {
    index: Arc<Index>,
    sid: Sid,
    queue: mpsc::UnboundedReceiver<Batch>,
    pending: Arc<AtomicUsize>,
}

impl Index {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock is never held across an await, and every update leaves the maps consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How far the fan-out has handed out the log: a socket connecting without a position
    /// starts here.
    pub fn head(&self) -> LogCursor {
        self.lock().head
    }

    /// Sets where the fan-out starts, before it hands out anything. A socket registered before
    /// may have finished its catch-up short of that point: its queue ends, so it catches up
    /// from the log again.
    pub fn start_at(&self, head: LogCursor) {
        let mut inner = self.lock();
        inner.head = head;
        for entry in inner.sockets.values_mut() {
            entry.queue = None;
            entry.live = false;
        }
    }

    /// Registers socket `sid` of `agent`, unsettled, with a fresh queue for every batch handed
    /// out from now on.
    pub fn subscribe(self: &Arc<Self>, sid: Sid, agent: AgentId) -> Subscription {
        let (queue, pending) = self.register(sid, agent);
        Subscription {
            index: Arc::clone(self),
            sid,
            queue,
            pending,
        }
    }

    fn register(
        &self,
        sid: Sid,
        agent: AgentId,
    ) -> (mpsc::UnboundedReceiver<Batch>, Arc<AtomicUsize>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let keys = vec![Key::Account(agent)];
        let mut inner = self.lock();
        inner.remove(sid);
        inner.index(sid, &keys);
        inner.unsettled.insert(sid);
        inner.sockets.insert(
            sid,
            Entry {
                agent,
                keys,
                settled: false,
                queue: Some(sender),
                pending: Arc::clone(&pending),
                live: false,
                own_event_handed: LogCursor::START,
            },
        );
        (receiver, pending)
    }

    /// Hands `batch`, which ends at `head`, to every socket it concerns; returns how many.
    pub fn dispatch(&self, batch: &Batch, head: LogCursor) -> usize {
        let mut inner = self.lock();
        let mut keys = HashSet::new();
        let mut own_events = Vec::new();
        for delivery in batch.iter() {
            keys.extend(delivery.audience.keys());
            if let Audience::Agent(agent) = delivery.audience {
                own_events.push((agent, delivery.cursor));
            }
        }
        let mut targets: HashSet<Sid> = inner.unsettled.clone();
        for key in &keys {
            if let Some(sids) = inner.by_key.get(key) {
                targets.extend(sids);
            }
        }
        // Their rights may change at their account's event: unsettled from there on.
        for (agent, cursor) in own_events {
            let sids: Vec<Sid> = inner
                .by_key
                .get(&Key::Account(agent))
                .map(|sids| sids.iter().copied().collect())
                .unwrap_or_default();
            for sid in sids {
                if let Some(entry) = inner.sockets.get_mut(&sid) {
                    entry.own_event_handed = entry.own_event_handed.max(cursor);
                }
                inner.unsettle(sid);
            }
        }
        let mut handed = 0;
        for sid in targets {
            let Some(entry) = inner.sockets.get_mut(&sid) else {
                continue;
            };
            if entry.queue.is_none() {
                continue;
            }
            if entry.pending.load(Ordering::SeqCst) >= LIVE_CAPACITY {
                // Too far behind: its queue ends, and it catches up from the log.
                entry.queue = None;
                entry.live = false;
                continue;
            }
            entry.pending.fetch_add(1, Ordering::SeqCst);
            let sent = entry.queue.as_ref().map(|q| q.send(Arc::clone(batch)));
            if matches!(sent, Some(Ok(()))) {
                handed += 1;
            }
        }
        inner.head = head;
        handed
    }

    /// The socket has caught up from the log: it stands at `cursor` with `reader`'s rights and
    /// has passed every event up to the point where it registered.
    pub fn caught_up(&self, sid: Sid, reader: &Reader, cursor: LogCursor) {
        let mut inner = self.lock();
        if let Some(entry) = inner.sockets.get_mut(&sid) {
            entry.live = true;
            inner.settle(sid, reader, cursor);
        }
    }

    /// The socket passed one of its agent's account events, at `cursor`: its rights there are
    /// `reader`'s.
    pub fn rights_passed(&self, sid: Sid, reader: &Reader, cursor: LogCursor) {
        let mut inner = self.lock();
        if inner.sockets.get(&sid).is_some_and(|entry| entry.live) {
            inner.settle(sid, reader, cursor);
        }
    }

    /// The point of the log the socket has passed, sent or not: `cursor`, the last event its
    /// task passed, or the fan-out's head when every batch handed to the socket is passed (the
    /// events in between concern it not, so its rights and what it may read are the same there).
    pub fn passed(&self, sid: Sid, cursor: LogCursor) -> LogCursor {
        let inner = self.lock();
        match inner.sockets.get(&sid) {
            Some(entry)
                if entry.live
                    && entry.queue.is_some()
                    && entry.pending.load(Ordering::SeqCst) == 0 =>
            {
                cursor.max(inner.head)
            }
            _ => cursor,
        }
    }
}

impl Inner {
    fn index(&mut self, sid: Sid, keys: &[Key]) {
        for key in keys {
            self.by_key.entry(*key).or_default().insert(sid);
        }
    }

    fn unindex(&mut self, sid: Sid, keys: &[Key]) {
        for key in keys {
            if let Some(sids) = self.by_key.get_mut(key) {
                sids.remove(&sid);
                if sids.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
    }

    /// Handed every batch from now on (still indexed under its account, so that its account
    /// events are noted).
    fn unsettle(&mut self, sid: Sid) {
        let Some(entry) = self.sockets.get_mut(&sid) else {
            return;
        };
        if !entry.settled {
            return;
        }
        let old = std::mem::replace(&mut entry.keys, vec![Key::Account(entry.agent)]);
        entry.settled = false;
        let keys = entry.keys.clone();
        self.unindex(sid, &old);
        self.index(sid, &keys);
        self.unsettled.insert(sid);
    }

    /// Indexed under `reader`'s keys, if no account event beyond `cursor` was handed to it.
    fn settle(&mut self, sid: Sid, reader: &Reader, cursor: LogCursor) {
        let Some(entry) = self.sockets.get_mut(&sid) else {
            return;
        };
        if entry.own_event_handed > cursor {
            return;
        }
        let keys = reader.keys();
        let old = std::mem::replace(&mut entry.keys, keys.clone());
        entry.settled = true;
        self.unindex(sid, &old);
        self.index(sid, &keys);
        self.unsettled.remove(&sid);
    }

    fn remove(&mut self, sid: Sid) {
        if let Some(entry) = self.sockets.remove(&sid) {
            self.unindex(sid, &entry.keys);
            self.unsettled.remove(&sid);
        }
    }
}

impl Subscription {
    /// The next batch handed to the socket; `None` when it fell too far behind and must catch
    /// up from the log (then [`Subscription::renew`]).
    pub async fn recv(&mut self) -> Option<Batch> {
        self.queue.recv().await
    }

    /// The socket passed the last batch it received.
    pub fn passed(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }

    /// Registers the socket again (after it fell behind), unsettled, with a fresh queue; the
    /// caller catches up from the log next.
    pub fn renew(&mut self, agent: AgentId) {
        let (queue, pending) = self.index.register(self.sid, agent);
        self.queue = queue;
        self.pending = pending;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.index.lock().remove(self.sid);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::to_raw_value;
    use switchboard_domain::agent::{Agent, AgentEvent};
    use switchboard_domain::GroupId;

    use super::*;
    use crate::realtime::audience::Assignment;
    use crate::realtime::stamp::Delivery;

    fn agent(n: u8) -> AgentId {
        AgentId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02}")).expect("agent")
    }

    fn group(n: u8) -> GroupId {
        GroupId::parse(&format!("00000000-0000-4000-8000-0000000001{n:02}")).expect("group")
    }

    fn at(position: i64) -> LogCursor {
        LogCursor {
            transaction_id: 0,
            position,
        }
    }

    fn delivery(position: i64, audience: Audience) -> Delivery {
        Delivery {
            cursor: at(position),
            audience,
            account: None::<AgentEvent>,
            json: to_raw_value(&position).expect("json"),
        }
    }

    fn in_group(position: i64, n: u8) -> Delivery {
        let assignment = Assignment {
            agent: None,
            group: Some(group(n)),
        };
        delivery(
            position,
            Audience::Conversation {
                id: format!("c{n}"),
                after: assignment,
                before: assignment,
                mentioned: vec![],
            },
        )
    }

    fn batch(deliveries: Vec<Delivery>) -> Batch {
        deliveries.into()
    }

    /// A reader of agent `n` as an unregistered agent (reads nothing): its keys are its
    /// account's only.
    fn nobody(n: u8) -> Reader {
        Reader::of(agent(n), &Agent::default())
    }

    /// A socket that caught up at `cursor` with `reader`'s rights.
    fn live(index: &Arc<Index>, n: u8, reader: &Reader, cursor: i64) -> Subscription {
        let subscription = index.subscribe(Sid::new(), agent(n));
        index.caught_up(subscription.sid, reader, at(cursor));
        subscription
    }

    fn received(subscription: &mut Subscription) -> Vec<i64> {
        let mut positions = Vec::new();
        while let Ok(batch) = subscription.queue.try_recv() {
            positions.extend(batch.iter().map(|d| d.cursor.position));
            subscription.passed();
        }
        positions
    }

    #[test]
    fn a_batch_wakes_only_the_sockets_it_concerns() {
        let index = Arc::new(Index::default());
        let mut idle = live(&index, 1, &nobody(1), 0);
        let mut other = live(&index, 2, &nobody(2), 0);
        assert_eq!(index.dispatch(&batch(vec![in_group(1, 1)]), at(1)), 0);
        let handed = index.dispatch(&batch(vec![delivery(2, Audience::Agent(agent(1)))]), at(2));
        assert_eq!(
            handed, 1,
            "its own account event reaches the idle socket only"
        );
        assert_eq!(received(&mut idle), [2]);
        assert!(received(&mut other).is_empty());
    }

    #[test]
    fn a_socket_is_handed_everything_until_it_has_caught_up() {
        let index = Arc::new(Index::default());
        let mut subscription = index.subscribe(Sid::new(), agent(1));
        index.dispatch(&batch(vec![in_group(1, 1)]), at(1));
        assert_eq!(received(&mut subscription), [1]);
        assert_eq!(
            index.passed(subscription.sid, at(0)),
            at(0),
            "still catching up"
        );
        index.caught_up(subscription.sid, &nobody(1), at(1));
        index.dispatch(&batch(vec![in_group(2, 1)]), at(2));
        assert!(received(&mut subscription).is_empty());
        assert_eq!(index.passed(subscription.sid, at(1)), at(2));
    }

    #[test]
    fn after_its_account_event_a_socket_is_handed_everything_until_it_passes_it() {
        let index = Arc::new(Index::default());
        let mut subscription = live(&index, 1, &nobody(1), 0);
        let sid = subscription.sid;
        index.dispatch(&batch(vec![delivery(1, Audience::Agent(agent(1)))]), at(1));
        index.dispatch(&batch(vec![delivery(2, Audience::Agent(agent(1)))]), at(2));
        index.dispatch(&batch(vec![in_group(3, 1)]), at(3));
        assert_eq!(index.passed(sid, at(0)), at(0), "batches not passed yet");
        // Passing the first does not settle it: the second may change its rights again.
        index.rights_passed(sid, &nobody(1), at(1));
        index.dispatch(&batch(vec![in_group(4, 1)]), at(4));
        index.rights_passed(sid, &nobody(1), at(2));
        index.dispatch(&batch(vec![in_group(5, 1)]), at(5));
        assert_eq!(received(&mut subscription), [1, 2, 3, 4]);
        assert_eq!(index.passed(sid, at(4)), at(5));
    }

    #[tokio::test]
    async fn a_socket_too_far_behind_loses_its_queue_and_registers_again() {
        let index = Arc::new(Index::default());
        let mut subscription = index.subscribe(Sid::new(), agent(1));
        for position in 1..=i64::try_from(LIVE_CAPACITY).expect("small") + 1 {
            index.dispatch(&batch(vec![in_group(position, 1)]), at(position));
        }
        let queued = received(&mut subscription);
        assert_eq!(queued.len(), LIVE_CAPACITY);
        let ended = subscription.recv().await;
        assert!(ended.is_none(), "the queue ends after what it holds");
        subscription.renew(agent(1));
        index.dispatch(&batch(vec![in_group(300, 2)]), at(300));
        assert_eq!(received(&mut subscription), [300]);
    }

    #[tokio::test]
    async fn a_socket_registered_before_the_fan_out_started_catches_up_again() {
        let index = Arc::new(Index::default());
        let mut early = live(&index, 1, &nobody(1), 0);
        index.start_at(at(40));
        assert_eq!(index.passed(early.sid, at(0)), at(0));
        assert!(early.recv().await.is_none(), "its queue ends");
        early.renew(agent(1));
        index.dispatch(&batch(vec![in_group(41, 1)]), at(41));
        assert_eq!(received(&mut early), [41], "unsettled until it catches up");
    }

    #[test]
    fn a_socket_leaves_the_index_with_its_subscription() {
        let index = Arc::new(Index::default());
        let subscription = index.subscribe(Sid::new(), agent(1));
        drop(subscription);
        assert_eq!(index.dispatch(&batch(vec![in_group(1, 1)]), at(1)), 0);
        let inner = index.lock();
        assert!(inner.sockets.is_empty() && inner.by_key.is_empty() && inner.unsettled.is_empty());
    }
}
