//! Connecting to the database, whichever it is, and bringing its schema up to date.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::bind_all;
use crate::sql::Statement;
use crate::StoreError;

/// How long a PostgreSQL connection may sit idle before it is checked again when lent.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long every connection is checked when lent after one was found lost.
const CHECK_ALL_FOR: Duration = Duration::from_secs(5);

/// Until when (milliseconds after [`since_start`]'s origin) every connection is checked before
/// it is lent. Process-wide: a lost connection means the database restarted or its sessions
/// were terminated, which takes the other connections of every pool to it along; checking
/// too many only costs round trips.
static CHECK_ALL_UNTIL: AtomicU64 = AtomicU64::new(0);

fn since_start() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    u64::try_from(ORIGIN.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Whether `error` says the connection itself is gone (not the statement refused): the
/// socket failed, or PostgreSQL ended the session (SQLSTATE classes 08 and 57P).
pub fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Takes note of a failed statement: a lost connection has every connection checked when
/// lent for a while ([`CHECK_ALL_FOR`]), so that its lost siblings are replaced instead of
/// failing a request each. Called by the storage errors' conversions.
pub fn note_failure(error: &sqlx::Error) {
    if connection_lost(error) {
        let until = since_start().saturating_add(CHECK_ALL_FOR.as_millis() as u64);
        CHECK_ALL_UNTIL.fetch_max(until, Ordering::Relaxed);
    }
}

fn checking_all() -> bool {
    since_start() < CHECK_ALL_UNTIL.load(Ordering::Relaxed)
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
///
/// The body is compiled once per backend, so it may use types that differ between them as
/// long as its result type is the same.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Database::Postgres($pool) => $body,
            $crate::Database::Sqlite($pool) => $body,
        }
    };
}

/// Which database engine backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL: production, several server instances.
    Postgres,
    /// An embedded SQLite file: the zero-configuration default, one server instance.
    Sqlite,
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// A PostgreSQL server.
    Postgres {
        /// Connection options (from `DATABASE_URL`), boxed: they are large and built once.
        options: Box<PgConnectOptions>,
        /// Pool size.
        max_connections: u32,
    },
    /// An SQLite file, created on first start.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Pool size.
        max_connections: u32,
    },
}

impl DatabaseConfig {
    /// PostgreSQL from a `postgres://` URL.
    ///
    /// # Errors
    /// When the URL does not parse.
    pub fn postgres_url(url: &str) -> Result<Self, StoreError> {
        Ok(Self::Postgres {
            options: Box::new(PgConnectOptions::from_str(url)?),
            max_connections: 16,
        })
    }

    /// The embedded database `switchboard.db` in `data_dir`.
    pub fn sqlite_in(data_dir: impl Into<PathBuf>) -> Self {
        Self::Sqlite {
            path: data_dir.into().join("switchboard.db"),
            max_connections: 8,
        }
    }

    /// Which engine this configuration selects.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres { .. } => Backend::Postgres,
            Self::Sqlite { .. } => Backend::Sqlite,
        }
    }
}

/// A connection pool to the store's database.
#[derive(Debug, Clone)]
pub enum Database {
    /// PostgreSQL.
    Postgres(PgPool),
    /// Embedded SQLite.
    Sqlite(SqlitePool),
}

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

impl Database {
    /// Gets freed pages out of the files after an erasure: SQLite copies its write-ahead log
    /// into the database (whose freed pages `secure_delete` zeroed) and truncates it.
    /// PostgreSQL's dead row versions are reclaimed by autovacuum (see the README).
    ///
    /// # Errors
    /// When the database fails.
    /// Returns whether it completed (a reader holding an old snapshot keeps SQLite from it).
    pub async fn release_freed_pages(&self) -> Result<bool, StoreError> {
        if let Self::Sqlite(pool) = self {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("pragma wal_checkpoint(truncate)")
                .fetch_one(pool)
                .await?;
            return Ok(busy == 0);
        }
        Ok(true)
    }

    /// Connects (creating the SQLite file and its directory when needed).
    ///
    /// A PostgreSQL connection is checked (a round trip) before it is lent only when it sat
    /// idle for [`PING_AFTER_IDLE`]: sqlx's default checks every time, one round trip more for
    /// every query (ingestion at full speed: 20–25 % more messages processed a second without
    /// it). A connection lost while lent fails the statement it carries, as it would if lost
    /// between the check and the statement; then every connection is checked for a while
    /// ([`note_failure`]).
    ///
    /// SQLite runs in WAL mode with `synchronous=FULL`: an acknowledged write survives a power
    /// loss, and readers never block the writer.
    ///
    /// # Errors
    /// When the database cannot be reached or the data directory cannot be created.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        match config {
            DatabaseConfig::Postgres {
                options,
                max_connections,
            } => {
                let pool = PgPoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .test_before_acquire(false)
                    .before_acquire(|connection, meta| {
                        Box::pin(async move {
                            if meta.idle_for < PING_AFTER_IDLE && !checking_all() {
                                return Ok(true);
                            }
                            sqlx::Connection::ping(connection).await.map(|()| true)
                        })
                    })
                    .connect_with(options.as_ref().clone())
                    .await?;
                Ok(Self::Postgres(pool))
            }
            DatabaseConfig::Sqlite {
                path,
                max_connections,
            } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    // Freed pages are zeroed: an erased customer's bytes do not linger in
                    // the file (crypto-shredding destroys their key row).
                    .pragma("secure_delete", "on");
                let pool = SqlitePoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(Duration::from_secs(30))
                    // A file does not hang up: nothing to check before lending a connection.
                    .test_before_acquire(false)
                    .after_release(|connection, _| Box::pin(left_clean(connection)))
                    .connect_with(options)
                    .await?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// Applies the backend's pending migrations.
    ///
    /// # Errors
    /// When a migration fails or an applied one was changed.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Whether every migration this build knows has been applied.
    ///
    /// # Errors
    /// When the database cannot be queried.
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        let expected = match self {
            Self::Postgres(_) => POSTGRES_MIGRATIONS.iter().count(),
            Self::Sqlite(_) => SQLITE_MIGRATIONS.iter().count(),
        };
        let sql = "select count(*) from _sqlx_migrations where success";
        let applied: i64 = with_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await?);
        Ok(usize::try_from(applied).unwrap_or(0) >= expected)
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Runs the statements in one transaction: all of them or none.
    ///
    /// # Errors
    /// When any statement fails; nothing is written then.
    pub async fn execute_atomically(&self, statements: &[Statement]) -> Result<(), StoreError> {
        let postgres = matches!(self, Self::Postgres(_));
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for statement in statements.iter().filter(|s| !(postgres && s.sqlite_only())) {
                bind_all!(sqlx::query(&statement.sql), statement.args.iter().cloned())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Runs `guards` then `statements` in one transaction, committing only if every guard
    /// changed exactly one row; returns whether it committed.
    ///
    /// Guards are compare-and-set updates (e.g. "advance this checkpoint from where I read
    /// it"): when two writers race, the second one's guard matches nothing and its whole
    /// transaction is rolled back.
    ///
    /// # Errors
    /// When any statement fails; nothing is written then.
    pub async fn execute_guarded(
        &self,
        guards: &[Statement],
        statements: &[Statement],
    ) -> Result<bool, StoreError> {
        match self {
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                if !guards_hold!(tx, guards) {
                    tx.rollback().await?;
                    return Ok(false);
                }
                // One round trip for the whole batch (see `batch`).
                let statements: Vec<Statement> = statements
                    .iter()
                    .filter(|s| !s.sqlite_only())
                    .cloned()
                    .collect();
                let statements = statements.as_slice();
                if !statements.is_empty() {
                    let prepared: Vec<String> = sqlx::query_scalar(crate::batch::PREPARED)
                        .fetch_all(&mut *tx)
                        .await?;
                    let prepared = prepared.into_iter().collect();
                    let connection: &mut sqlx::PgConnection = &mut tx;
                    for prepare in crate::batch::preparations(statements, &prepared) {
                        sqlx::Executor::execute(&mut *connection, sqlx::raw_sql(&prepare)).await?;
                    }
                    let text = crate::batch::simple_query(statements);
                    sqlx::Executor::execute(connection, sqlx::raw_sql(&text)).await?;
                }
                tx.commit().await?;
            }
            Self::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                if !guards_hold!(tx, guards) {
                    tx.rollback().await?;
                    return Ok(false);
                }
                // A few hand-offs to the connection's thread for the whole batch (see `batch`).
                for text in crate::batch::inline(statements) {
                    sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&text)).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(true)
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("select 1").execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// Closes every connection (waiting for those in use).
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}

/// Runs the guards in `$tx`; each must change exactly one row (a macro, not a generic function:
/// the generic form's future is not `Send` under sqlx's higher-ranked executor bounds).
macro_rules! guards_hold {
    ($tx:ident, $guards:expr) => {{
        let mut hold = true;
        for guard in $guards {
            let changed = bind_all!(sqlx::query(&guard.sql), guard.args.iter().cloned())
                .execute(&mut *$tx)
                .await?
                .rows_affected();
            if changed != 1 {
                hold = false;
                break;
            }
        }
        hold
    }};
}
use guards_hold;

/// Whether a SQLite connection coming back to the pool may be reused.
///
/// sqlx counts each connection's transaction depth itself. SQLite rolls a transaction back on
/// its own after some errors (`SQLITE_FULL`, `SQLITE_IOERR`, …); sqlx's `ROLLBACK` then fails
/// and its count stays one too high, so the connection's next `begin` becomes a `SAVEPOINT`
/// whose rollback leaves a real transaction open: it holds the write lock (every other writer
/// waits out its busy timeout) and swallows later writes on that connection uncommitted. Such
/// a connection is closed instead (closing rolls back whatever is open); a clean one costs
/// nothing here.
async fn left_clean(connection: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !connection.is_in_transaction() {
        return Ok(true);
    }
    // The rollback of a dropped transaction may still be queued: let it run first.
    connection.ping().await?;
    Ok(!connection.is_in_transaction())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite rolls back a transaction itself when the disk is full (here: the connection's
    /// page limit); a failed transaction later on the same connection must still leave no
    /// transaction open behind it, or the next plain write is swallowed uncommitted.
    #[tokio::test]
    async fn a_transaction_sqlite_rolled_back_itself_leaves_nothing_open() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("switchboard-store-{nanos}"));
        let path = dir.join("full.db");
        let config = DatabaseConfig::Sqlite {
            path: path.clone(),
            max_connections: 1,
        };
        let database = Database::connect(&config).await.expect("database");
        let Database::Sqlite(pool) = &database else {
            unreachable!("a SQLite configuration")
        };
        sqlx::query("create table t (v blob)")
            .execute(pool)
            .await
            .expect("table");
        let pages: i64 = sqlx::query_scalar("pragma page_count")
            .fetch_one(pool)
            .await
            .expect("pages");
        sqlx::query(&format!("pragma max_page_count = {}", pages + 2))
            .execute(pool)
            .await
            .expect("limit");
        {
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query("insert into t values (zeroblob(100000))")
                .execute(&mut *tx)
                .await
                .expect_err("the disk is full");
        }
        sqlx::query("pragma max_page_count = 1000000")
            .execute(pool)
            .await
            .expect("room again");
        {
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query("insert into t values (x'01')")
                .execute(&mut *tx)
                .await
                .expect("insert");
            sqlx::query("insert into nowhere values (1)")
                .execute(&mut *tx)
                .await
                .expect_err("no such table");
        }
        sqlx::query("insert into t values (x'02')")
            .execute(pool)
            .await
            .expect("a plain write");
        let other = SqlitePoolOptions::new()
            .connect_with(SqliteConnectOptions::new().filename(&path))
            .await
            .expect("another connection");
        let seen: Vec<Vec<u8>> = sqlx::query_scalar("select v from t")
            .fetch_all(&other)
            .await
            .expect("read");
        assert_eq!(seen, vec![vec![2u8]], "only the plain write is committed");
        other.close().await;
        database.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
