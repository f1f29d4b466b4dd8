//! Customers' data keys (crypto-shredding): personal parts of events and snapshots are sealed
//! with AES-256-GCM under a key of the customer's conversation (see
//! [`switchboard_domain::privacy`] for which key seals what), and erasing them is destroying
//! the key. Keys live in `customer_keys`, outside the log, wrapped by the master key from
//! configuration; a destroyed key's data reads as the domain's erased form everywhere.
//!
//! ring's AEAD is used (already linked for TLS, audited): no second crypto stack.
//!
//! Keys are cached in memory for [`CACHE_TTL`]: another instance may go on reading an erased
//! customer's data for that long after the erasure (this instance forgets at once).

mod master;
mod seal;
mod table;
mod upgrade;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashlink::LruCache;
use ring::aead::LessSafeKey;
use serde_json::Value;
use switchboard_domain::privacy;

pub use master::{MasterKeys, MIN_MASTER_KEY_BYTES};
use seal::SealedPlans;
pub(crate) use table::{destroying, insert_fresh, Fresh, CHUNK as KEYS_PER_STATEMENT};
pub use table::{rewrap_all, wrapped_by_others};
pub use upgrade::seal_existing;

use crate::{Database, StoreError};

/// How long a data key (or its absence) is trusted from memory.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// Data keys kept in memory.
const CACHED_KEYS: usize = 50_000;

/// What an append stores: event payloads and snapshot states sealed, and the keys generated
/// for them, which the same transaction inserts.
pub(crate) struct Sealed<'a> {
    pub(crate) payloads: Vec<Cow<'a, Value>>,
    pub(crate) snapshots: Vec<Value>,
    pub(crate) fresh: Vec<Fresh>,
    /// [`Vault::stored`]'s argument once committed.
    pub(crate) generation: u64,
}

/// A data key as cached: `None` when it was destroyed.
#[derive(Clone)]
struct Cached {
    at: Instant,
    key: Option<Arc<LessSafeKey>>,
}

/// The master keys and a bounded cache of unwrapped data keys.
pub struct Vault {
    master: Arc<MasterKeys>,
    /// `false` only for benchmarks measuring what sealing costs
    /// ([`MasterKeys::in_clear_for_benchmarks`]).
    seals: bool,
    /// Moves on with every [`Self::forget`]: a key read before it is not cached after it.
    generation: AtomicU64,
    /// By key id.
    keys: Mutex<LruCache<String, Cached>>,
    /// Key id by `(conversation, scope)`, for sealing.
    scopes: Mutex<LruCache<(String, i64), (Instant, String)>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault over `master`.
    pub fn new(master: Arc<MasterKeys>) -> Self {
        Self {
            seals: master.seals(),
            master,
            generation: AtomicU64::new(0),
            keys: Mutex::new(LruCache::new(CACHED_KEYS)),
            scopes: Mutex::new(LruCache::new(CACHED_KEYS)),
        }
    }

    /// The master keys.
    pub fn master(&self) -> &MasterKeys {
        &self.master
    }

    /// The keys sealing `scopes` (`(conversation, scope)`), those missing created and stored
    /// now (`defer: false`) or generated and left to the caller to store with what they seal
    /// ([`Sealed::fresh`], then [`Self::stored`]).
    async fn sealing_keys(
        &self,
        database: &Database,
        scopes: &[(String, i64)],
        defer: bool,
    ) -> Result<(SealedPlans, Vec<Fresh>), StoreError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut found = HashMap::new();
        let mut ids = HashMap::new();
        {
            let mut cached = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
            for scope in scopes {
                if let Some((at, id)) = cached.get(scope) {
                    if at.elapsed() < CACHE_TTL {
                        ids.insert(scope.clone(), id.clone());
                    }
                }
            }
        }
        let known: Vec<String> = ids.values().cloned().collect();
        let keys = self.opening_keys(database, &known).await?;
        // Never cached, or destroyed since (by another instance): created, in one batch.
        let mut missing: Vec<_> = scopes
            .iter()
            .filter(|s| !ids.contains_key(*s))
            .cloned()
            .collect();
        for (scope, id) in ids {
            match keys.get(&id).cloned().flatten() {
                Some(key) => {
                    found.insert(scope, (id, key));
                }
                None => missing.push(scope),
            }
        }
        let mut fresh = Vec::new();
        if !missing.is_empty() {
            let rows = if defer {
                let rows = table::find(database, &self.master, &missing).await?;
                let stored: HashSet<_> = rows.iter().map(|(scope, _, _)| scope).collect();
                missing.retain(|scope| !stored.contains(scope));
                fresh = table::generate(&self.master, missing)?;
                for new in &fresh {
                    found.insert(new.scope.clone(), (new.id.clone(), new.key.clone()));
                }
                rows
            } else {
                table::ensure(database, &self.master, &missing).await?
            };
            for (scope, id, key) in &rows {
                found.insert(scope.clone(), (id.clone(), key.clone()));
            }
            self.remember(rows, generation);
        }
        Ok((found, fresh))
    }

    /// Caches keys generated for an append once it committed.
    pub(crate) fn stored(&self, fresh: Vec<Fresh>, generation: u64) {
        self.remember(
            fresh.into_iter().map(|new| (new.scope, new.id, new.key)),
            generation,
        );
    }

    /// Caches stored keys `(scope, id, key)` for sealing and opening, unless some key was
    /// destroyed since `generation` was read (they may be among them).
    fn remember(
        &self,
        rows: impl IntoIterator<Item = ((String, i64), String, Arc<LessSafeKey>)>,
        generation: u64,
    ) {
        let now = Instant::now();
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        for (scope, id, key) in rows {
            scopes.insert(scope, (now, id.clone()));
            keys.insert(
                id,
                Cached {
                    at: now,
                    key: Some(key),
                },
            );
        }
    }

    /// The keys named `ids`; `None` for the destroyed ones.
    pub(crate) async fn opening_keys(
        &self,
        database: &Database,
        ids: &[String],
    ) -> Result<HashMap<String, Option<Arc<LessSafeKey>>>, StoreError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let mut cached = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            for id in ids {
                match cached.get(id) {
                    Some(entry) if entry.at.elapsed() < CACHE_TTL => {
                        found.insert(id.clone(), entry.key.clone());
                    }
                    _ if !found.contains_key(id) => missing.push(id.clone()),
                    _ => {}
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        missing.sort_unstable();
        missing.dedup();
        let loaded = table::load(database, &self.master, &missing).await?;
        let now = Instant::now();
        let mut cached = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.generation.load(Ordering::SeqCst) == generation;
        for id in missing {
            let key = loaded.get(&id).cloned();
            if !current {
                found.insert(id, key);
                continue;
            }
            cached.insert(
                id.clone(),
                Cached {
                    at: now,
                    key: key.clone(),
                },
            );
            found.insert(id, key);
        }
        Ok(found)
    }

    /// Event payloads `(aggregate type, aggregate id, payload)` as they are stored: those with
    /// personal parts copied and sealed, the others borrowed. Missing keys are created first.
    pub(crate) async fn sealed<'a>(
        &self,
        database: &Database,
        events: &[(&str, &str, &'a Value)],
    ) -> Result<Vec<Cow<'a, Value>>, StoreError> {
        let sealed = self.sealing(database, events, &[], false).await?;
        Ok(sealed.payloads)
    }

    /// Event payloads and snapshot states `(aggregate type, aggregate id, state)` as they are
    /// stored, sealed with keys of which the missing ones are generated and returned
    /// ([`Sealed::fresh`]) to be inserted by the appending transaction: no separate write for
    /// them (on SQLite, a second turn at the one writer lock for every batch that starts a
    /// conversation or an hour).
    pub(crate) async fn sealed_for_append<'a>(
        &self,
        database: &Database,
        events: &[(&str, &str, &'a Value)],
        snapshots: &[(&str, &str, &Value)],
    ) -> Result<Sealed<'a>, StoreError> {
        self.sealing(database, events, snapshots, true).await
    }

    async fn sealing<'a>(
        &self,
        database: &Database,
        events: &[(&str, &str, &'a Value)],
        snapshots: &[(&str, &str, &Value)],
        defer: bool,
    ) -> Result<Sealed<'a>, StoreError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let snapshot_scopes: Vec<_> = snapshots
            .iter()
            .map(|(kind, id, state)| {
                let conversation = self
                    .seals
                    .then(|| privacy::snapshot_conversation(kind, id, state))
                    .flatten();
                conversation.map(|c| (c, privacy::KeyScope::Identity.as_i64()))
            })
            .collect();
        let plans: Vec<_> = events
            .iter()
            .map(|(kind, id, payload)| {
                self.seals
                    .then(|| privacy::personal(kind, id, payload))
                    .flatten()
            })
            .collect();
        let mut scopes: Vec<_> = plans.iter().flatten().flat_map(seal::scopes).collect();
        scopes.extend(snapshot_scopes.iter().flatten().cloned());
        if scopes.is_empty() {
            return Ok(Sealed {
                payloads: events.iter().map(|(_, _, p)| Cow::Borrowed(*p)).collect(),
                snapshots: snapshots.iter().map(|(_, _, s)| (*s).clone()).collect(),
                fresh: Vec::new(),
                generation,
            });
        }
        scopes.sort_unstable();
        scopes.dedup();
        let (keys, fresh) = self.sealing_keys(database, &scopes, defer).await?;
        let mut sealed_snapshots = Vec::with_capacity(snapshots.len());
        for ((_, aggregate_id, state), scope) in snapshots.iter().zip(&snapshot_scopes) {
            let sealed = match scope {
                Some(scope) => {
                    let (id, key) = keys
                        .get(scope)
                        .ok_or(StoreError::Crypto("no snapshot key"))?;
                    seal::seal_snapshot(id, key, aggregate_id, state)?
                }
                None => (*state).clone(),
            };
            sealed_snapshots.push(sealed);
        }
        let mut sealed = Vec::with_capacity(events.len());
        for ((_, id, payload), plan) in events.iter().zip(&plans) {
            match plan {
                Some(plan) => {
                    let mut copy = (*payload).clone();
                    seal::seal_payload(plan, &keys, id, &mut copy)?;
                    sealed.push(Cow::Owned(copy));
                }
                None => sealed.push(Cow::Borrowed(*payload)),
            }
        }
        Ok(Sealed {
            payloads: sealed,
            snapshots: sealed_snapshots,
            fresh,
            generation,
        })
    }

    /// Opens sealed event payloads `(aggregate id, payload)` in place.
    pub(crate) async fn open_events(
        &self,
        database: &Database,
        events: &mut [(&str, &mut Value)],
    ) -> Result<(), StoreError> {
        let ids: Vec<String> = events
            .iter()
            .flat_map(|(_, payload)| seal::key_ids(payload))
            .map(str::to_owned)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let keys = self.opening_keys(database, &ids).await?;
        for (id, payload) in events.iter_mut() {
            seal::open_payload(&keys, id, payload);
        }
        Ok(())
    }

    /// Stored snapshots `(aggregate id, payload)` opened; `None` for those whose key is gone.
    pub(crate) async fn open_snapshots(
        &self,
        database: &Database,
        snapshots: Vec<(String, Value)>,
    ) -> Result<Vec<(String, Option<Value>)>, StoreError> {
        let ids: Vec<String> = snapshots
            .iter()
            .flat_map(|(_, payload)| seal::key_ids(payload))
            .map(str::to_owned)
            .collect();
        let keys = if ids.is_empty() {
            HashMap::new()
        } else {
            self.opening_keys(database, &ids).await?
        };
        Ok(snapshots
            .into_iter()
            .map(|(id, payload)| {
                let state = seal::open_snapshot(&keys, &id, payload);
                (id, state)
            })
            .collect())
    }

    /// Moves on with every [`Self::forget`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Forgets every cached key (after this instance destroyed some).
    pub(crate) fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
