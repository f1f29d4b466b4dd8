//! Rebuilding read models from the log on a live system, and checking them against a replay.
//!
//! A rebuild replays the whole log into shadow copies of a projection's tables
//! (`<table>__rebuild`, with their own checkpoints), using the projection's own code, while the
//! server keeps serving and updating the live tables. Then, in one transaction, the shadow
//! tables replace the live ones and the live checkpoint becomes the shadow's; the live runner
//! notices its checkpoint moved and applies whatever came after. Interrupted, a rebuild resumes
//! from its shadow checkpoint the next time it runs.

use switchboard_store::{with_pool, Database, EventRepository, LogCursor, Statement};

use crate::{Projection, ProjectionError, ProjectionRunner};

/// Suffix of the shadow tables a rebuild fills.
pub const REBUILD_SUFFIX: &str = "__rebuild";
/// Suffix of the shadow tables a verification fills.
pub const VERIFY_SUFFIX: &str = "__verify";

/// A rebuild of some projections.
pub struct Rebuild {
    log: EventRepository,
    projections: Vec<Box<dyn Projection>>,
    suffix: &'static str,
    progress: Option<crate::runner::Progress>,
}

/// One table's differences between the live read model and a fresh replay.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableDifference {
    /// The table.
    pub table: String,
    /// Rows only in the live table (or different there).
    pub only_live: i64,
    /// Rows only in the replay (or different there).
    pub only_replayed: i64,
    /// Ids (first column) of a few differing live rows.
    pub sample_ids: Vec<String>,
}

impl Rebuild {
    /// A rebuild of `projections` into tables suffixed `suffix`.
    pub fn new(
        log: EventRepository,
        projections: Vec<Box<dyn Projection>>,
        suffix: &'static str,
    ) -> Self {
        Self {
            log,
            projections,
            suffix,
            progress: None,
        }
    }

    /// Tells `progress` after each batch how many events it replayed.
    pub fn with_progress(mut self, progress: crate::runner::Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    fn database(&self) -> &Database {
        self.log.database()
    }

    fn tables(&self) -> Vec<&'static str> {
        self.projections
            .iter()
            .flat_map(|p| p.tables().iter().copied())
            .collect()
    }

    /// Creates the shadow tables (with the live tables' columns, keys and unique indexes) unless
    /// a previous, interrupted run left them.
    ///
    /// The other indexes serve only readers, and a replay rewrites most of them with nearly every
    /// event (every message moves a conversation's activity time): they are built once, after the
    /// load, by [`Rebuild::create_indexes`]. Unique indexes stay, as the projections' upserts
    /// need them.
    ///
    /// # Errors
    /// Database failures.
    pub async fn prepare(&self) -> Result<(), ProjectionError> {
        for table in self.tables() {
            let shadow = format!("{table}{}", self.suffix);
            match self.database() {
                Database::Postgres(pool) => {
                    sqlx::query(&format!(
                        "create table if not exists {shadow} (like {table} including all)"
                    ))
                    .execute(pool)
                    .await?;
                    for (name, _) in postgres_reader_indexes(pool, &shadow).await? {
                        sqlx::query(&format!("drop index if exists {name}"))
                            .execute(pool)
                            .await?;
                    }
                }
                Database::Sqlite(pool) => {
                    let ddl: Vec<(String, String, Option<String>)> = sqlx::query_as(
                        "select type, name, sql from sqlite_master where tbl_name = $1 order by type desc",
                    )
                    .bind(table)
                    .fetch_all(pool)
                    .await?;
                    for (kind, name, sql) in ddl {
                        // Autoindexes have no SQL: they come with the table's constraints.
                        let Some(sql) = sql else { continue };
                        let Some(body) = sql.find('(').map(|at| &sql[at..]) else {
                            continue;
                        };
                        let statement = if let Some(using) = virtual_table_module(&sql) {
                            format!("create virtual table if not exists {shadow} {using}")
                        } else if kind == "table" {
                            format!("create table if not exists {shadow} {body}")
                        } else {
                            if !declares_unique(&sql) {
                                continue;
                            }
                            let index = toggle_suffix(&name, self.suffix);
                            format!("create unique index if not exists {index} on {shadow} {body}")
                        };
                        sqlx::query(&statement).execute(pool).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Builds the shadow tables' other indexes (those [`Rebuild::prepare`] leaves out), from the
    /// live tables' definitions; a no-op for the ones a previous run built.
    ///
    /// # Errors
    /// Database failures.
    pub async fn create_indexes(&self) -> Result<(), ProjectionError> {
        for table in self.tables() {
            let shadow = format!("{table}{}", self.suffix);
            let statements: Vec<String> = match self.database() {
                Database::Postgres(pool) => postgres_reader_indexes(pool, table)
                    .await?
                    .into_iter()
                    .filter_map(|(name, definition)| {
                        let using = definition.find(" USING ")?;
                        let index = toggle_suffix(&name, self.suffix);
                        Some(format!(
                            "create index if not exists {index} on {shadow}{}",
                            &definition[using..]
                        ))
                    })
                    .collect(),
                Database::Sqlite(pool) => {
                    let ddl: Vec<(String, String)> = sqlx::query_as(
                        "select name, sql from sqlite_master \
                         where type = 'index' and tbl_name = $1 and sql is not null",
                    )
                    .bind(table)
                    .fetch_all(pool)
                    .await?;
                    ddl.into_iter()
                        .filter_map(|(name, sql)| {
                            let at = sql.find('(')?;
                            if declares_unique(&sql) {
                                return None;
                            }
                            let index = toggle_suffix(&name, self.suffix);
                            Some(format!(
                                "create index if not exists {index} on {shadow} {}",
                                &sql[at..]
                            ))
                        })
                        .collect()
                }
            };
            for statement in statements {
                with_pool!(self.database(), pool => sqlx::query(&statement).execute(pool).await.map(drop)?);
            }
        }
        Ok(())
    }

    /// Replays the log into the shadow tables, up to `until` (or the end); returns how many
    /// events were read.
    ///
    /// Without `until` it waits for every event committed before it started: on PostgreSQL
    /// the gapless reader holds back events behind transactions still in flight, and a rebuild
    /// must not stop short of them.
    ///
    /// # Errors
    /// As [`ProjectionRunner::catch_up`].
    pub async fn catch_up(&self, until: Option<LogCursor>) -> Result<u64, ProjectionError> {
        let head = self.log.head().await?;
        let runner =
            ProjectionRunner::new(self.log.clone(), crate::projection::by_names(&self.names()))
                .into_shadow(self.suffix)
                .with_batch_size(5_000)
                .with_progress(self.progress.clone())
                .until(until);
        let mut replayed = 0;
        loop {
            replayed += runner.catch_up().await?;
            if until.is_some() || self.missing_before(head).await? == 0 {
                return Ok(replayed);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Events up to `head` that the shadow tables have not seen yet.
    async fn missing_before(&self, head: i64) -> Result<i64, ProjectionError> {
        let mut oldest: Option<LogCursor> = None;
        for name in self.names() {
            let row: Option<(i64, i64)> = with_pool!(self.database(), pool => sqlx::query_as(
                "select transaction_id, position from projection_checkpoints where name = $1")
                .bind(format!("{name}{}", self.suffix)).fetch_optional(pool).await?);
            let cursor = row.map_or(LogCursor::START, |(transaction_id, position)| LogCursor {
                transaction_id: u64::try_from(transaction_id).unwrap_or(0),
                position,
            });
            oldest = Some(oldest.map_or(cursor, |o| o.min(cursor)));
        }
        Ok(self
            .log
            .unread_before(oldest.unwrap_or(LogCursor::START), head)
            .await?)
    }

    fn names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    /// Puts the shadow tables in place of the live ones, in one transaction.
    ///
    /// # Errors
    /// Database failures (nothing changes then).
    pub async fn swap(&self) -> Result<(), ProjectionError> {
        let mut statements = Vec::new();
        for table in self.tables() {
            let shadow = format!("{table}{}", self.suffix);
            statements.push(Statement::owned(
                format!("alter table {table} rename to {table}__old"),
                vec![],
            ));
            statements.push(Statement::owned(
                format!("alter table {shadow} rename to {table}"),
                vec![],
            ));
            statements.push(Statement::owned(format!("drop table {table}__old"), vec![]));
        }
        for name in self.names() {
            statements.push(Statement::new(
                "delete from projection_checkpoints where name = $1",
                vec![name.into()],
            ));
            statements.push(Statement::new(
                "update projection_checkpoints set name = $1 where name = $2",
                vec![name.into(), format!("{name}{}", self.suffix).into()],
            ));
        }
        self.database().execute_atomically(&statements).await?;
        Ok(())
    }

    /// Drops the shadow tables and their checkpoints.
    ///
    /// # Errors
    /// Database failures.
    pub async fn discard(&self) -> Result<(), ProjectionError> {
        let mut statements = Vec::new();
        for table in self.tables() {
            statements.push(Statement::owned(
                format!("drop table if exists {table}{}", self.suffix),
                vec![],
            ));
        }
        for name in self.names() {
            statements.push(Statement::new(
                "delete from projection_checkpoints where name = $1",
                vec![format!("{name}{}", self.suffix).into()],
            ));
        }
        self.database().execute_atomically(&statements).await?;
        Ok(())
    }

    /// The live checkpoint all these projections share, if they do (they advance together).
    ///
    /// # Errors
    /// Database failures.
    pub async fn live_checkpoint(&self) -> Result<Option<LogCursor>, ProjectionError> {
        let mut found: Option<LogCursor> = None;
        for name in self.names() {
            let row: Option<(i64, i64)> = with_pool!(self.database(), pool => sqlx::query_as(
                "select transaction_id, position from projection_checkpoints where name = $1")
                .bind(name).fetch_optional(pool).await?);
            let cursor = row.map(|(transaction_id, position)| LogCursor {
                transaction_id: u64::try_from(transaction_id).unwrap_or(0),
                position,
            });
            found = match (found, cursor) {
                (None, c) => c,
                (Some(a), Some(b)) => Some(a.min(b)),
                (Some(a), None) => Some(a),
            };
        }
        Ok(found)
    }

    /// Compares every live table with its shadow copy (both ways, whole rows).
    ///
    /// # Errors
    /// Database failures.
    pub async fn differences(&self) -> Result<Vec<TableDifference>, ProjectionError> {
        let mut differences = Vec::new();
        for table in self.tables() {
            let shadow = format!("{table}{}", self.suffix);
            let count = |a: &str, b: &str| {
                format!("select count(*) from (select * from {a} except select * from {b}) d")
            };
            let sample = format!(
                "select * from (select * from {table} except select * from {shadow}) d limit 5"
            );
            let (only_live, only_replayed): (i64, i64) = with_pool!(self.database(), pool => {
                let live: i64 = sqlx::query_scalar(&count(table, &shadow)).fetch_one(pool).await?;
                let replayed: i64 = sqlx::query_scalar(&count(&shadow, table)).fetch_one(pool).await?;
                (live, replayed)
            });
            if only_live == 0 && only_replayed == 0 {
                continue;
            }
            let sample_ids: Vec<String> = with_pool!(self.database(), pool => {
                use sqlx::Row;
                sqlx::query(&sample).fetch_all(pool).await?
                    .iter()
                    .filter_map(|row| row.try_get::<String, _>(0).ok())
                    .collect()
            });
            differences.push(TableDifference {
                table: table.to_owned(),
                only_live,
                only_replayed,
                sample_ids,
            });
        }
        Ok(differences)
    }
}

/// Names and definitions (`pg_get_indexdef`) of `table`'s indexes that are not unique: the
/// ones only readers use.
async fn postgres_reader_indexes(
    pool: &sqlx::PgPool,
    table: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "select ix.relname::text, pg_get_indexdef(i.indexrelid) from pg_index i \
         join pg_class ix on ix.oid = i.indexrelid \
         where i.indrelid = $1::regclass and not i.indisunique",
    )
    .bind(table)
    .fetch_all(pool)
    .await
}

/// Whether SQLite index DDL (`create [unique] index … (`) declares a unique index.
fn declares_unique(sql: &str) -> bool {
    sql[..sql.find('(').unwrap_or(0)]
        .to_lowercase()
        .contains("unique")
}

/// `using …` of SQLite's `create virtual table … using module(…)` (FTS5 search indexes), whose
/// column list is the module's arguments rather than a table body.
fn virtual_table_module(sql: &str) -> Option<&str> {
    let lower = sql.to_ascii_lowercase();
    if !lower.starts_with("create virtual table") {
        return None;
    }
    lower.find(" using ").map(|at| &sql[at + 1..])
}

/// `name` with `suffix` added, or removed when it already ends with it (so that shadow index
/// names alternate instead of growing with every rebuild).
fn toggle_suffix(name: &str, suffix: &str) -> String {
    match name.strip_suffix(suffix) {
        Some(base) => base.to_owned(),
        None => format!("{name}{suffix}"),
    }
}
