//! What `switchboard-replay` does, as a library: rebuild read models on a live system, audit a
//! conversation as of any time, export and import the log, verify it, reprocess stored webhooks.
//! Everything here is a replay of the event log (or of the stored raw webhooks).

pub mod audit;
pub mod export;
pub mod moving;
pub mod reprocess;
pub mod verify;

use switchboard_projections::rebuild::REBUILD_SUFFIX;
use switchboard_projections::{all_projections, by_names, ProjectionError, Rebuild};
use switchboard_store::EventRepository;

/// Rebuilds the named projections (all when `names` is empty) into fresh tables and swaps them
/// in; resumes an interrupted rebuild. `progress` is told how many events were replayed.
///
/// # Errors
/// Unknown projection names; database failures; undecodable events.
pub async fn rebuild(log: &EventRepository, names: &[String]) -> Result<u64, ReplayError> {
    rebuild_with_progress(log, names, None).await
}

/// [`rebuild`], telling `progress` after each batch how many events it replayed.
///
/// # Errors
/// As [`rebuild`].
pub async fn rebuild_with_progress(
    log: &EventRepository,
    names: &[String],
    progress: Option<switchboard_projections::runner::Progress>,
) -> Result<u64, ReplayError> {
    let projections = if names.is_empty() {
        all_projections()
    } else {
        let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
        let found = by_names(&wanted);
        if let Some(unknown) = wanted
            .iter()
            .find(|n| !found.iter().any(|p| p.name() == **n))
        {
            return Err(ReplayError::UnknownProjection((*unknown).to_owned()));
        }
        found
    };
    let mut rebuild = Rebuild::new(log.clone(), projections, REBUILD_SUFFIX);
    if let Some(progress) = progress {
        rebuild = rebuild.with_progress(progress);
    }
    rebuild.prepare().await?;
    let replayed = rebuild.catch_up(None).await?;
    rebuild.create_indexes().await?;
    rebuild.swap().await?;
    Ok(replayed)
}

/// Why a replay tool failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No projection has this name.
    #[error("no projection named {0:?} (known: {known})", known = all_projections().iter().map(|p| p.name()).collect::<Vec<_>>().join(", "))]
    UnknownProjection(String),
    /// Building or reading read models failed.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] switchboard_store::StoreError),
    /// Import into a store that already has events.
    #[error("the target store is not empty ({0} events): import only into an empty store")]
    NotEmpty(i64),
    /// A line of an export does not parse.
    #[error("line {line} of the export does not parse: {reason}")]
    BadExportLine {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// Reading or writing a file or a stream.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The conversation has no events.
    #[error("no conversation {0}")]
    NoSuchConversation(String),
}
