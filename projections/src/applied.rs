//! Reading one's own writes across the log and the read models. Read models follow the log a
//! moment behind; a client that has seen an event (a socket event's `position`) and then
//! loads a list must get a list that includes it, or it shows the past until the next event.
//! [`wait_until_applied`] is the server's half: it waits, briefly, until every running read
//! model has applied that event.

use std::time::Duration;

use switchboard_store::EventRepository;

use crate::runner::checkpoints;
use crate::{all_projections, ProjectionError, StoppedProjections};

/// How often the checkpoints are read while waiting. Polling the checkpoint table works
/// whichever instance applies the events; a notification would only reach this one.
const POLL: Duration = Duration::from_millis(20);

/// [`wait_until_applied`] for every event committed so far (the highest position): for a
/// worker about to decide on what the read models say.
///
/// # Errors
/// When the database fails.
pub async fn wait_until_caught_up(
    log: &EventRepository,
    stopped: &StoppedProjections,
    within: Duration,
) -> Result<bool, ProjectionError> {
    match log.head().await? {
        0 => Ok(true),
        head => wait_until_applied(log, stopped, head, within).await,
    }
}

/// Waits until every read model not stopped ([`StoppedProjections`]) has applied the event at
/// `position`, at most `within`: `true` when they have, `false` when the time ran out (the
/// caller answers with what the read models hold then).
///
/// # Errors
/// [`switchboard_store::StoreError::UnknownPosition`] (inside [`ProjectionError::Store`]) when
/// no event has that position; when the database fails.
pub async fn wait_until_applied(
    log: &EventRepository,
    stopped: &StoppedProjections,
    position: i64,
    within: Duration,
) -> Result<bool, ProjectionError> {
    let event = log.cursor_after(position).await?;
    let names: Vec<&'static str> = all_projections()
        .iter()
        .map(|p| p.name())
        .filter(|name| !stopped.contains(name))
        .collect();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let checkpoints = checkpoints(log.database()).await?;
        let applied = names
            .iter()
            .all(|name| checkpoints.get(*name).is_some_and(|at| *at >= event));
        if applied {
            return Ok(true);
        }
        if tokio::time::Instant::now() + POLL > deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}
