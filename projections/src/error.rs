//! The read-model boundary's error type.

use switchboard_store::StoreError;

/// A failure to build or read a read model.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// An event in the log does not deserialize: a bug or a missing upcaster. The runner stops
    /// at it rather than skip it.
    #[error("event at position {position} ({event_type}) does not deserialize")]
    Undecodable {
        /// Its position.
        position: i64,
        /// Its type.
        event_type: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query failed.
    #[error("read-model query failed")]
    Query(#[source] sqlx::Error),
    /// The task writing a batch panicked or was cancelled (nothing of it was committed then,
    /// or all of it: the next batch's checkpoint guards tell).
    #[error("a projection batch's write was aborted")]
    Aborted(#[from] tokio::task::JoinError),
    /// A pagination cursor from a client does not parse.
    #[error("invalid cursor")]
    InvalidCursor,
}

impl From<sqlx::Error> for ProjectionError {
    fn from(error: sqlx::Error) -> Self {
        switchboard_store::database::note_failure(&error);
        Self::Query(error)
    }
}
