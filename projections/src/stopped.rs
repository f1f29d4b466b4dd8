//! Projections stopped by an event they cannot apply: reported by health checks, readiness and
//! a metric until a fix (an upcaster, new code) lets them past it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// A projection standing at an event it cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stopped {
    /// The projection.
    pub projection: String,
    /// The position of the event it cannot apply (it has applied everything before).
    pub position: i64,
    /// The event's type.
    pub event_type: String,
    /// Why.
    pub error: String,
}

/// The stopped projections of one runner, shared with whoever reports on them.
#[derive(Debug, Clone, Default)]
pub struct StoppedProjections(Arc<Mutex<BTreeMap<String, Stopped>>>);

/// Gauge: the position a projection stopped at (0 while it runs), by projection.
pub const PROJECTION_STOPPED: &str = "switchboard_projection_stopped_at_position";

impl StoppedProjections {
    /// Every stopped projection, by name.
    pub fn list(&self) -> Vec<Stopped> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Whether `projection` is stopped.
    pub fn contains(&self, projection: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(projection)
    }

    /// Where `projection` stopped, if it did.
    pub fn position(&self, projection: &str) -> Option<i64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(projection)
            .map(|s| s.position)
    }

    pub(crate) fn stop(&self, stopped: Stopped) {
        tracing::error!(projection = %stopped.projection, position = stopped.position,
            event_type = %stopped.event_type, error = %stopped.error,
            "projection stopped at an event it cannot apply; the others go on");
        metrics::gauge!(PROJECTION_STOPPED, "projection" => stopped.projection.clone())
            .set(stopped.position as f64);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stopped.projection.clone(), stopped);
    }

    pub(crate) fn resume(&self, projection: &str) {
        let removed = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(projection);
        if let Some(stopped) = removed {
            tracing::info!(
                projection,
                position = stopped.position,
                "projection got past the event that stopped it"
            );
            metrics::gauge!(PROJECTION_STOPPED, "projection" => projection.to_owned()).set(0.0);
        }
    }
}
