//! The storage boundary's error type.

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        crate::database::note_failure(&error);
        Self::Database(error)
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement, or could not be reached.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The data directory of the embedded database could not be created.
    #[error("cannot prepare data directory {path}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stored event does not deserialize into its aggregate's event type.
    #[error("event {sequence} of {aggregate_type} {aggregate_id} is unreadable")]
    Unreadable {
        /// Its aggregate type.
        aggregate_type: &'static str,
        /// Its aggregate.
        aggregate_id: String,
        /// Its sequence.
        sequence: i64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A position that no event has was given as a cursor.
    #[error("no event at position {0}")]
    UnknownPosition(i64),
    /// A configured master key is too short.
    #[error(
        "a master key must be at least {} bytes",
        crate::vault::MIN_MASTER_KEY_BYTES
    )]
    MasterKey,
    /// A data key was wrapped by a master key that is not configured (current or previous).
    #[error("customer data keys were wrapped by master key {0}, which is not configured (SWITCHBOARD_PREVIOUS_MASTER_KEYS)")]
    MasterKeyMissing(String),
    /// The cryptography failed (no randomness, a malformed key).
    #[error("cryptography failed: {0}")]
    Crypto(&'static str),
}

impl StoreError {
    /// The cqrs-es error a command answers with when storage failed: a connection error when
    /// retrying may help, an unexpected one otherwise.
    pub fn into_aggregate_error<E: std::error::Error>(self) -> cqrs_es::AggregateError<E> {
        if self.is_transient() {
            cqrs_es::AggregateError::DatabaseConnectionError(Box::new(self))
        } else {
            cqrs_es::AggregateError::UnexpectedError(Box::new(self))
        }
    }

    /// Whether the failure is the database being unreachable or overloaded (worth retrying).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}

/// An error and all its causes on one line, for logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
