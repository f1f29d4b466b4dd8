//! `customer_keys`: one row per data key, wrapped by a master key; destroying the row erases
//! everything the key sealed. Not part of the log (the log must not hold them) and not a read
//! model (a rebuild cannot reproduce a random key). `switchboard-replay import` (and `move`)
//! seals what it imports with fresh keys.

use std::collections::HashMap;
use std::sync::Arc;

use ring::aead::LessSafeKey;
use ring::rand::{SecureRandom, SystemRandom};
use switchboard_domain::privacy::Destroys;

use super::master::data_key;
use super::MasterKeys;
use crate::{with_pool, Database, SqlValue, Statement, StoreError};

/// Rows per statement.
pub(crate) const CHUNK: usize = 400;

type KeyRow = (String, String, i64, Vec<u8>, String);

/// A data key generated for a `(conversation, scope)`, not stored yet.
pub(crate) struct Fresh {
    pub(crate) scope: (String, i64),
    pub(crate) id: String,
    pub(crate) wrapped: Vec<u8>,
    pub(crate) key: Arc<LessSafeKey>,
    /// The master key that wrapped it.
    pub(crate) master_id: String,
}

/// Fresh keys for `scopes`.
pub(super) fn generate(
    master: &MasterKeys,
    scopes: Vec<(String, i64)>,
) -> Result<Vec<Fresh>, StoreError> {
    scopes
        .into_iter()
        .map(|scope| {
            let id = random_id()?;
            let (bytes, wrapped) = master.generate(&id)?;
            Ok(Fresh {
                scope,
                id,
                wrapped,
                key: Arc::new(data_key(&bytes)?),
                master_id: master.current_id().to_owned(),
            })
        })
        .collect()
}

/// Inserts fresh keys `($fresh: &[Fresh])` with `$executor`, keeping a concurrent creator's
/// key where there is one; evaluates to the rows inserted.
macro_rules! insert_fresh {
    ($executor:expr, $fresh:expr) => {{
        let mut inserted = 0u64;
        for chunk in $fresh.chunks($crate::vault::KEYS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::new(
                "insert into customer_keys (id, conversation_id, scope, wrapped, master_key) ",
            );
            insert.push_values(chunk, |mut row, fresh: &$crate::vault::Fresh| {
                row.push_bind(fresh.id.as_str())
                    .push_bind(fresh.scope.0.as_str())
                    .push_bind(fresh.scope.1)
                    .push_bind(fresh.wrapped.as_slice())
                    .push_bind(fresh.master_id.as_str());
            });
            insert.push(" on conflict (conversation_id, scope) do nothing");
            inserted += insert.build().execute($executor).await?.rows_affected();
        }
        inserted
    }};
}
pub(crate) use insert_fresh;

/// The keys of `scopes`, creating the missing ones (a concurrent creator's key wins).
pub(super) async fn ensure(
    database: &Database,
    master: &MasterKeys,
    scopes: &[(String, i64)],
) -> Result<Vec<((String, i64), String, Arc<LessSafeKey>)>, StoreError> {
    let fresh = generate(master, scopes.to_vec())?;
    let _: u64 = with_pool!(database, pool => insert_fresh!(pool, &fresh));
    find(database, master, scopes).await
}

/// The stored keys of those of `scopes` that have one.
pub(super) async fn find(
    database: &Database,
    master: &MasterKeys,
    scopes: &[(String, i64)],
) -> Result<Vec<((String, i64), String, Arc<LessSafeKey>)>, StoreError> {
    let mut found = Vec::with_capacity(scopes.len());
    for chunk in scopes.chunks(CHUNK) {
        let rows: Vec<KeyRow> = match database {
            // Arrays joined on the unique index: a list of row values takes PostgreSQL's
            // planner about a quarter of a second at 400 pairs.
            Database::Postgres(pool) => {
                let (conversations, hours): (Vec<&str>, Vec<i64>) =
                    chunk.iter().map(|(c, s)| (c.as_str(), *s)).unzip();
                sqlx::query_as(
                    "select k.id, k.conversation_id, k.scope, k.wrapped, k.master_key
                     from unnest($1::text[], $2::bigint[]) as wanted (conversation_id, scope)
                     join customer_keys k using (conversation_id, scope)",
                )
                .bind(conversations)
                .bind(hours)
                .fetch_all(pool)
                .await?
            }
            Database::Sqlite(pool) => {
                let mut select = sqlx::QueryBuilder::new(
                    "select id, conversation_id, scope, wrapped, master_key from customer_keys where (conversation_id, scope) in (",
                );
                let mut list = select.separated(", ");
                for (conversation, scope) in chunk {
                    list.push("(");
                    list.push_bind_unseparated(conversation.as_str());
                    list.push_unseparated(", ");
                    list.push_bind_unseparated(*scope);
                    list.push_unseparated(")");
                }
                select.push(")");
                select.build_query_as().fetch_all(pool).await?
            }
        };
        for (id, conversation, scope, wrapped, master_id) in rows {
            let key = unwrap(master, &master_id, &id, &wrapped)?;
            found.push(((conversation, scope), id, key));
        }
    }
    Ok(found)
}

/// The keys named `ids` that still exist.
pub(super) async fn load(
    database: &Database,
    master: &MasterKeys,
    ids: &[String],
) -> Result<HashMap<String, Arc<LessSafeKey>>, StoreError> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<(String, Vec<u8>, String)> = with_pool!(database, pool => {
            let mut select = sqlx::QueryBuilder::new(
                "select id, wrapped, master_key from customer_keys where id in (",
            );
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            select.push(")");
            select.build_query_as().fetch_all(pool).await?
        });
        for (id, wrapped, master_id) in rows {
            let key = unwrap(master, &master_id, &id, &wrapped)?;
            found.insert(id, key);
        }
    }
    Ok(found)
}

/// The statements that destroy the keys `destroys` names (run in the appending transaction).
pub(crate) fn destroying(destroys: &Destroys) -> Vec<Statement> {
    match destroys {
        Destroys::All { conversation } => vec![
            Statement::new(
                "delete from customer_keys where conversation_id = $1",
                vec![SqlValue::from(conversation.as_str())],
            ),
            Statement::new(
                "delete from snapshots where aggregate_type = 'Conversation' and aggregate_id = $1",
                vec![SqlValue::from(conversation.as_str())],
            ),
        ],
        Destroys::ContentBefore { conversation, hour } => vec![Statement::new(
            "delete from customer_keys where conversation_id = $1 and scope >= 0 and scope < $2",
            vec![SqlValue::from(conversation.as_str()), SqlValue::from(*hour)],
        )],
    }
}

/// Wraps every data key still wrapped by an earlier master key with the current one, a few
/// hundred at a time, while the server runs; returns how many. Afterwards the earlier master
/// keys are no longer needed.
///
/// # Errors
/// Database failures; [`StoreError::MasterKeyMissing`] when a key's master key is unknown.
pub async fn rewrap_all(database: &Database, master: &MasterKeys) -> Result<u64, StoreError> {
    let mut done = 0;
    loop {
        let rows: Vec<(String, Vec<u8>, String)> = with_pool!(database, pool => sqlx::query_as(
            "select id, wrapped, master_key from customer_keys where master_key <> $1 limit 400",
        ).bind(master.current_id()).fetch_all(pool).await?);
        if rows.is_empty() {
            return Ok(done);
        }
        for (id, wrapped, master_id) in rows {
            let bytes = master
                .unwrap(&master_id, &id, &wrapped)
                .ok_or_else(|| StoreError::MasterKeyMissing(master_id.clone()))?;
            let rewrapped = master.wrap(&id, &bytes)?;
            with_pool!(database, pool => sqlx::query(
                "update customer_keys set wrapped = $1, master_key = $2 where id = $3 and master_key = $4",
            )
            .bind(rewrapped)
            .bind(master.current_id())
            .bind(id.as_str())
            .bind(master_id.as_str())
            .execute(pool)
            .await
            .map(|_| ())?);
            done += 1;
        }
    }
}

/// How many data keys are wrapped by a master key other than the current one.
///
/// # Errors
/// Database failures.
pub async fn wrapped_by_others(
    database: &Database,
    master: &MasterKeys,
) -> Result<i64, StoreError> {
    Ok(with_pool!(database, pool => sqlx::query_scalar(
        "select count(*) from customer_keys where master_key <> $1")
        .bind(master.current_id()).fetch_one(pool).await?))
}

fn unwrap(
    master: &MasterKeys,
    master_id: &str,
    id: &str,
    wrapped: &[u8],
) -> Result<Arc<LessSafeKey>, StoreError> {
    let bytes = master
        .unwrap(master_id, id, wrapped)
        .ok_or_else(|| StoreError::MasterKeyMissing(master_id.to_owned()))?;
    Ok(Arc::new(data_key(&bytes)?))
}

fn random_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Crypto("no randomness"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
