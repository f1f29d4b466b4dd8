//! A bounded memory of the most recent ids an aggregate has seen, for deduplicating reports
//! Meta may deliver twice without letting the aggregate's state grow with every report.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How many recent report ids an aggregate remembers.
pub const RECENT_REPORTS: usize = 1_000;

/// The last [`RECENT_REPORTS`] ids, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecentIds(VecDeque<String>);

impl RecentIds {
    /// Whether `id` is among the recent ones.
    pub fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|known| known == id)
    }

    /// Remembers `id`, forgetting the oldest past the limit.
    pub fn remember(&mut self, id: String) {
        self.0.push_back(id);
        while self.0.len() > RECENT_REPORTS {
            self.0.pop_front();
        }
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_is_bounded_and_keeps_the_newest() {
        let mut recent = RecentIds::default();
        for i in 0..RECENT_REPORTS + 10 {
            recent.remember(format!("r{i}"));
        }
        assert_eq!(recent.len(), RECENT_REPORTS);
        assert!(!recent.contains("r0"));
        assert!(recent.contains(&format!("r{}", RECENT_REPORTS + 9)));
    }
}
