//! Moving an install to another store (SQLite to PostgreSQL as a business outgrows one
//! machine): the log by export and import, then the state the log deliberately does not hold
//! (agents' password hashes, outgoing webhook endpoints' signing secrets), then every read
//! model rebuilt from the log and verified.
//!
//! Not moved, by design: logins (agents sign in again), the webhook inbox's history and worker
//! state (stop the server once the inbox and the send queue are empty; `/api/health/detailed`
//! shows both), and media files (copy the media directory or point both at one bucket).

use std::io::{BufReader, Seek, SeekFrom};

use switchboard_store::{with_pool, Database, EventRepository, StoreError};

use super::export::{self, ExportFilter};
use super::verify::{self, Verification};
use super::ReplayError;

/// What a move did.
#[derive(Debug)]
pub struct Moved {
    /// Events copied.
    pub events: u64,
    /// Agents' credentials copied.
    pub credentials: usize,
    /// Outgoing webhook endpoints' secrets copied.
    pub endpoint_secrets: usize,
    /// The target's verification after its rebuild.
    pub verification: Verification,
}

/// Moves `source` into `target` (migrated and empty).
///
/// # Errors
/// A target that is not empty; database failures; an export that cannot be read back.
pub async fn move_store(
    source: &EventRepository,
    target: &EventRepository,
) -> Result<Moved, ReplayError> {
    // Through a file: the log can be larger than memory.
    let path =
        std::env::temp_dir().join(format!("switchboard-move-{}.ndjson", uuid::Uuid::new_v4()));
    let copied = async {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let events = export::export(source, &ExportFilter::default(), &mut file).await?;
        file.seek(SeekFrom::Start(0))?;
        export::import(target, BufReader::new(file)).await?;
        Ok::<u64, ReplayError>(events)
    }
    .await;
    let _ = std::fs::remove_file(&path);
    let events = copied?;
    let (from, to) = (source.database(), target.database());
    let credentials = copy_rows(from, to, "credentials", CREDENTIALS).await?;
    let endpoint_secrets = copy_rows(from, to, "webhook_endpoint_secrets", SECRETS).await?;
    super::rebuild(target, &[]).await?;
    let verification = verify::verify(target).await?;
    Ok(Moved {
        events,
        credentials,
        endpoint_secrets,
        verification,
    })
}

const CREDENTIALS: [&str; 3] = ["agent_id", "password_hash", "updated_at"];
const SECRETS: [&str; 3] = ["endpoint_id", "secret", "created_at"];

/// Copies a table of `(text, text, integer)` rows, named by `columns`, as it is.
async fn copy_rows(
    from: &Database,
    to: &Database,
    table: &str,
    columns: [&str; 3],
) -> Result<usize, StoreError> {
    let [key, text, at] = columns;
    let select = format!("select {key}, {text}, {at} from {table}");
    let insert = format!("insert into {table} ({key}, {text}, {at}) values ($1, $2, $3)");
    let rows: Vec<(String, String, i64)> =
        with_pool!(from, pool => sqlx::query_as(&select).fetch_all(pool).await?);
    let statements: Vec<_> = rows
        .iter()
        .map(|(key, text, at)| {
            switchboard_store::Statement::owned(
                insert.clone(),
                vec![key.as_str().into(), text.as_str().into(), (*at).into()],
            )
        })
        .collect();
    to.execute_atomically(&statements).await?;
    Ok(rows.len())
}
