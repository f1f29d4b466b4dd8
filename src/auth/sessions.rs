//! Session families and refresh-token rotation, with reuse detection.

use switchboard_store::{with_pool, Database, Statement, StoreError};

use crate::auth::cache::AuthCache;
use crate::auth::tokens::refresh_token_hash;

/// How a refresh attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid and is now replaced.
    Rotated {
        /// The agent.
        agent_id: String,
        /// The family.
        family_id: String,
    },
    /// The token was already rotated: the family is now revoked.
    Reused,
    /// Unknown token.
    Invalid,
    /// Past its lifetime.
    Expired,
    /// The family was revoked (logout, reuse).
    Revoked,
}

/// A new login: its family and first refresh token, in one transaction.
///
/// # Errors
/// Database failures.
pub async fn start(
    db: &Database,
    family_id: &str,
    agent_id: &str,
    refresh_token: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    db.execute_atomically(&[
        Statement::new(
            "insert into session_families (id, agent_id, created_at, expires_at) values ($1, $2, $3, $4)",
            vec![family_id.into(), agent_id.into(), now.into(), expires_at.into()],
        ),
        insert_token(refresh_token, family_id, now, expires_at),
    ])
    .await
}

fn insert_token(token: &str, family_id: &str, now: i64, expires_at: i64) -> Statement {
    Statement::new(
        "insert into refresh_tokens (token_hash, family_id, issued_at, expires_at) values ($1, $2, $3, $4)",
        vec![refresh_token_hash(token).into(), family_id.into(), now.into(), expires_at.into()],
    )
}

/// Exchanges `presented` for `replacement`.
///
/// The exchange is a compare-and-set on `used_at`, so of two concurrent refreshes with the same
/// token exactly one rotates it. A token used again within `grace_ms` of its rotation (two tabs
/// refreshing at once) gets a sibling in the same family; later reuse revokes the family (and
/// `cache` forgets it).
///
/// # Errors
/// Database failures.
pub async fn rotate(
    db: &Database,
    cache: &AuthCache,
    presented: &str,
    replacement: &str,
    now: i64,
    grace_ms: i64,
) -> Result<Rotation, StoreError> {
    let hash = refresh_token_hash(presented);
    let sql = "select t.family_id, t.expires_at, t.used_at, f.agent_id, f.revoked_at
                 from refresh_tokens t join session_families f on f.id = t.family_id
                where t.token_hash = $1";
    type Row = (String, i64, Option<i64>, String, Option<i64>);
    let found: Option<Row> =
        with_pool!(db, pool => sqlx::query_as(sql).bind(&hash).fetch_optional(pool).await?);
    let Some((family_id, expires_at, used_at, agent_id, revoked_at)) = found else {
        return Ok(Rotation::Invalid);
    };
    if revoked_at.is_some() {
        return Ok(Rotation::Revoked);
    }
    if expires_at <= now {
        return Ok(Rotation::Expired);
    }
    let claim = Statement::new(
        "update refresh_tokens set used_at = $1 where token_hash = $2 and used_at is null",
        vec![now.into(), hash.as_str().into()],
    );
    let replace = insert_token(replacement, &family_id, now, expires_at);
    if db
        .execute_guarded(&[claim], std::slice::from_ref(&replace))
        .await?
    {
        return Ok(Rotation::Rotated {
            agent_id,
            family_id,
        });
    }
    let used_at: Option<i64> = match used_at {
        Some(at) => Some(at),
        None => with_pool!(db, pool => sqlx::query_scalar("select used_at from refresh_tokens where token_hash = $1")
            .bind(&hash).fetch_optional(pool).await?).flatten(),
    };
    if used_at.is_some_and(|at| now - at <= grace_ms) {
        db.execute_atomically(&[replace]).await?;
        return Ok(Rotation::Rotated {
            agent_id,
            family_id,
        });
    }
    revoke(db, cache, &family_id, now, "refresh_token_reused").await?;
    Ok(Rotation::Reused)
}

/// The login (family) a refresh token belongs to, whether or not it is still usable.
///
/// # Errors
/// Database failures.
pub async fn family_of(db: &Database, token: &str) -> Result<Option<String>, StoreError> {
    let sql = "select family_id from refresh_tokens where token_hash = $1";
    let hash = refresh_token_hash(token);
    Ok(with_pool!(db, pool => sqlx::query_scalar(sql).bind(&hash).fetch_optional(pool).await?))
}

/// Revokes a family: every token of that login stops working (on this instance from the
/// next request, as `cache` forgets it once the revocation is committed; see
/// [`crate::auth::cache`] for other instances).
///
/// # Errors
/// Database failures.
pub async fn revoke(
    db: &Database,
    cache: &AuthCache,
    family_id: &str,
    now: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let revoked = db
        .execute_atomically(&[Statement::new(
            "update session_families set revoked_at = $1, revoke_reason = $2 where id = $3 and revoked_at is null",
            vec![now.into(), reason.into(), family_id.into()],
        )])
        .await;
    // Also after a failure: the statement may have been committed all the same.
    cache.session_ended(family_id);
    revoked
}

/// The agent and expiry (Unix ms) of the family, if it exists and is neither revoked nor
/// expired at `now`.
///
/// # Errors
/// Database failures.
pub async fn live(
    db: &Database,
    family_id: &str,
    now: i64,
) -> Result<Option<(String, i64)>, StoreError> {
    let sql = "select agent_id, expires_at from session_families where id = $1 and revoked_at is null and expires_at > $2";
    Ok(
        with_pool!(db, pool => sqlx::query_as(sql).bind(family_id).bind(now).fetch_optional(pool).await?),
    )
}

/// Those of `families` that are no longer active (revoked, expired or unknown), in one query
/// per 500: live sockets are closed when their login ends.
///
/// # Errors
/// Database failures.
pub async fn ended(
    db: &Database,
    families: &[String],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut ended = Vec::new();
    for chunk in families.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "select id from session_families where revoked_at is null and expires_at > $1 and id in ({})",
            placeholders.join(", ")
        );
        let active: Vec<String> = with_pool!(db, pool => {
            let mut query = sqlx::query_scalar(&sql).bind(now);
            for family in chunk {
                query = query.bind(family);
            }
            query.fetch_all(pool).await?
        });
        ended.extend(chunk.iter().filter(|f| !active.contains(f)).cloned());
    }
    Ok(ended)
}

/// Ends every login of an agent but `keep` (the caller's own, when they change their own
/// password): after a password change, whoever held the old one is out (`cache` forgets them
/// once it is committed).
///
/// # Errors
/// Database failures.
pub async fn revoke_all_of(
    db: &Database,
    cache: &AuthCache,
    agent_id: &str,
    keep: Option<&str>,
    now: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let revoked = db
        .execute_atomically(&[Statement::new(
            "update session_families set revoked_at = $1, revoke_reason = $2
              where agent_id = $3 and revoked_at is null and id <> $4",
            vec![
                now.into(),
                reason.into(),
                agent_id.into(),
                keep.unwrap_or_default().into(),
            ],
        )])
        .await;
    cache.sessions_of_agent_ended(agent_id, keep);
    revoked
}
