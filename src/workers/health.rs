//! Whether the background workers are alive: each beats on every loop; readiness and the
//! detailed health read the beats. A worker stuck for long (or stopped) makes the instance
//! not ready, so a green HTTP 200 never hides a dead pipeline.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::clock::wall_millis as wall_ms;
use serde::Serialize;

/// The workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Worker {
    /// Turns stored webhooks into events.
    WebhookProcessor,
    /// Keeps the read models up to date.
    Projections,
    /// Records lapsed locks, wakes snoozed conversations.
    LockExpiry,
}

/// A worker is considered stuck when it has not beaten for this long.
pub const STALE_AFTER_MS: i64 = 60_000;

/// Last beat of each worker (Unix ms of the wall clock; 0 = not running).
#[derive(Debug, Default)]
pub struct WorkerHealth {
    beats: [AtomicI64; 3],
    expected: [std::sync::atomic::AtomicBool; 3],
}

fn index(worker: Worker) -> usize {
    match worker {
        Worker::WebhookProcessor => 0,
        Worker::Projections => 1,
        Worker::LockExpiry => 2,
    }
}

/// One worker's state, as health reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerState {
    /// Which.
    pub worker: Worker,
    /// Beating recently.
    pub running: bool,
    /// Milliseconds since the last beat (absent: never beat).
    pub since_last_beat_ms: Option<i64>,
}

impl WorkerHealth {
    /// Declares that `worker` runs in this instance (readiness then waits for its beats).
    pub fn expect(&self, worker: Worker) {
        self.expected[index(worker)].store(true, Ordering::Relaxed);
    }

    /// Records that `worker` is alive.
    pub fn beat(&self, worker: Worker) {
        self.beats[index(worker)].store(wall_ms(), Ordering::Relaxed);
    }

    /// Records that `worker` stopped.
    pub fn stopped(&self, worker: Worker) {
        self.beats[index(worker)].store(0, Ordering::Relaxed);
    }

    /// The state of every worker this instance runs.
    pub fn states(&self) -> Vec<WorkerState> {
        let now = wall_ms();
        [
            Worker::WebhookProcessor,
            Worker::Projections,
            Worker::LockExpiry,
        ]
        .into_iter()
        .filter(|w| self.expected[index(*w)].load(Ordering::Relaxed))
        .map(|worker| {
            let beat = self.beats[index(worker)].load(Ordering::Relaxed);
            let since = (beat > 0).then(|| now - beat);
            WorkerState {
                worker,
                running: since.is_some_and(|s| s < STALE_AFTER_MS),
                since_last_beat_ms: since,
            }
        })
        .collect()
    }

    /// Whether every worker this instance runs is alive.
    pub fn all_running(&self) -> bool {
        self.states().iter().all(|s| s.running)
    }
}
