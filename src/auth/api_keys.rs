//! API key secrets: `sbk_<key id>_<secret>` (the id in 32 hex digits, the secret 256 random bits
//! in hex). Only the SHA-256 of the secret is kept (in the key's `ApiKeyCreated` event); a
//! request's key is checked against its aggregate in the log, so a revocation holds from the
//! very next request, on every instance.

use rand::RngCore;
use sha2::{Digest, Sha256};
use switchboard_domain::api_key::ApiKey;
use switchboard_domain::AgentId;

use std::collections::HashMap;

use switchboard_domain::{Actor, Timestamp};
use switchboard_store::{with_pool, Database, EventRepository, StoreError};

/// What every key starts with (so a key is told from an access token, and secret scanners
/// recognise one).
pub const PREFIX: &str = "sbk_";

/// A new key: its id, the token shown once, the hash kept, and the prefix shown in lists.
pub struct NewKey {
    /// Key id.
    pub id: AgentId,
    /// The whole token, shown to the admin once.
    pub token: String,
    /// SHA-256 of the secret part, hex.
    pub secret_sha256: String,
    /// The token's first characters.
    pub prefix: String,
}

/// A fresh key.
pub fn generate() -> NewKey {
    let uuid = uuid::Uuid::new_v4();
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    let token = format!("{PREFIX}{}_{secret}", uuid.simple());
    NewKey {
        id: AgentId::parse(&uuid.to_string()).unwrap_or_else(|| unreachable!("a UUID parses")),
        prefix: token.chars().take(PREFIX.len() + 8).collect(),
        secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
        token,
    }
}

/// The actor a request bearing the API key `token` acts as: `None` for a malformed, unknown,
/// revoked or expired key (one answer for all: a caller learns nothing about which keys
/// exist).
///
/// # Errors
/// Storage failures.
pub async fn actor(
    log: &EventRepository,
    token: &str,
    now: Timestamp,
) -> Result<Option<Actor>, StoreError> {
    let Some((id, secret)) = token
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return Ok(None);
    };
    let Some(key_id) = uuid::Uuid::try_parse(id)
        .ok()
        .and_then(|uuid| AgentId::parse(&uuid.to_string()))
    else {
        return Ok(None);
    };
    let (key, _) = log.load_aggregate::<ApiKey>(&key_id.to_string()).await?;
    let given = hex::encode(Sha256::digest(secret.as_bytes()));
    let Some(kept) = key.secret_sha256() else {
        return Ok(None);
    };
    // Constant time, so the comparison says nothing about how close a guess came.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        kept.as_bytes(),
    )) {
        return Ok(None);
    }
    Ok(key.actor(key_id, now))
}

/// How often a key's "last used" time is written: at most once a minute per key, so that an
/// integration's traffic does not become one write per request.
const USE_RECORDED_EVERY_MILLIS: i64 = 60_000;

/// Records that the key `id` authenticated a request at `now` (authentication state in
/// `api_key_usage`, not an event: it changes with every minute of use and no rebuild needs
/// it). Throttled per instance: the last time written per key is kept in memory, at most
/// 10,000 keys (forgotten wholesale beyond that, which only costs a write).
///
/// # Errors
/// Storage failures.
pub async fn record_use(db: &Database, id: AgentId, now: Timestamp) -> Result<(), StoreError> {
    static WRITTEN: std::sync::Mutex<Option<HashMap<AgentId, i64>>> = std::sync::Mutex::new(None);
    let at = now.unix_millis();
    {
        let mut written = WRITTEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = written.get_or_insert_with(HashMap::new);
        if written
            .get(&id)
            .is_some_and(|last| at - last < USE_RECORDED_EVERY_MILLIS && at >= *last)
        {
            return Ok(());
        }
        if written.len() >= 10_000 {
            written.clear();
        }
        written.insert(id, at);
    }
    const SQL: &str = "insert into api_key_usage (key_id, last_used_at) values ($1, $2)
        on conflict (key_id) do update set last_used_at = excluded.last_used_at";
    with_pool!(db, pool => { sqlx::query(SQL).bind(id.to_string()).bind(at).execute(pool).await?; });
    Ok(())
}
