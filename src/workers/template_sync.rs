//! Syncing the template catalogue from Meta: every configured business account's templates,
//! page by page, each recorded on its Template aggregate (a no-op when nothing changed);
//! templates the catalogue had but Meta no longer lists are recorded as deleted. Runs once at
//! start and on `POST /api/templates/sync`; webhooks keep it current in between.

use std::sync::Arc;

use cqrs_es::AggregateError;
use serde::Serialize;
use switchboard_domain::ids::WabaId;
use switchboard_domain::template::{Template, TemplateCommand, TemplateError};
use switchboard_projections::templates;
use switchboard_store::{Database, EventRepository};

use crate::auth::accounts::actor_metadata;
use crate::clock::Clock;
use crate::cqrs::{execute, Frameworks};
use crate::whatsapp::graph::{GraphClient, GraphError};

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    /// Templates Meta listed.
    pub listed: usize,
    /// Of those, how many were new or changed.
    pub changed: usize,
    /// Templates the catalogue had that Meta no longer lists.
    pub removed: usize,
}

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Meta refused or did not answer.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Recording failed.
    #[error("recording the catalogue failed: {0}")]
    Store(String),
}

fn store<E: std::fmt::Display>(error: E) -> SyncError {
    SyncError::Store(error.to_string())
}

/// Syncs the catalogues of `accounts`.
///
/// # Errors
/// The first failure; what was recorded before it stays.
pub async fn sync(
    graph: &GraphClient,
    frameworks: &Frameworks,
    log: &EventRepository,
    database: &Database,
    clock: &Arc<dyn Clock>,
    accounts: &[String],
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    for account in accounts {
        let waba_id = WabaId::new(account.clone());
        let listed = crate::whatsapp::templates::list_all(graph, &waba_id).await?;
        report.listed += listed.len();
        let known = templates::ids_of(database, account).await.map_err(store)?;
        for chunk in listed.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
            let current = log.load_aggregates::<Template>(&ids).await.map_err(store)?;
            for (id, definition) in chunk {
                let unchanged = current
                    .get(id)
                    .and_then(|(template, _)| template.definition())
                    == Some(definition);
                if unchanged {
                    continue;
                }
                let at = clock.now();
                let command = TemplateCommand::Sync {
                    definition: definition.clone(),
                    at,
                };
                execute(
                    &frameworks.templates,
                    id,
                    command,
                    &actor_metadata(None, at),
                )
                .await
                .map_err(store)?;
                report.changed += 1;
            }
        }
        for id in known
            .iter()
            .filter(|k| !listed.iter().any(|(id, _)| id == *k))
        {
            let at = clock.now();
            let command = TemplateCommand::Delete { by: None, at };
            match execute(
                &frameworks.templates,
                id,
                command,
                &actor_metadata(None, at),
            )
            .await
            {
                Ok(()) => report.removed += 1,
                // Known only from a status webhook, never synced: nothing to delete.
                Err(AggregateError::UserError(TemplateError::NotFound)) => {}
                Err(error) => return Err(store(error)),
            }
        }
    }
    Ok(report)
}

/// The sync at start: logs what it did or why it failed.
pub async fn at_start(
    graph: GraphClient,
    frameworks: Frameworks,
    log: EventRepository,
    clock: Arc<dyn Clock>,
    accounts: Vec<String>,
) {
    if accounts.is_empty() {
        return;
    }
    let database = log.database().clone();
    match sync(&graph, &frameworks, &log, &database, &clock, &accounts).await {
        Ok(report) => tracing::info!(
            listed = report.listed,
            changed = report.changed,
            removed = report.removed,
            "template catalogue synced"
        ),
        Err(error) => {
            tracing::warn!(%error, "template catalogue sync failed; POST /api/templates/sync retries")
        }
    }
}
