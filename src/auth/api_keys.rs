//! API key secrets: `sbk_<key id>_<secret>` (the id in 32 hex digits, the secret 256 random bits
//! in hex). Only the SHA-256 of the secret is kept (in the key's `ApiKeyCreated` event); a
//! request's key is checked against its aggregate in the log, so a revocation holds from the
//! very next request, on every instance.

use rand::RngCore;
use sha2::{Digest, Sha256};
use switchboard_domain::api_key::ApiKey;
use switchboard_domain::AgentId;

use crate::http::extract::AuthAgent;
use crate::http::{ApiError, AppState};

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

/// The actor of a request bearing an API key.
///
/// # Errors
/// 401 `invalid_token` for a malformed, unknown, revoked or expired key (one answer for all:
/// a caller learns nothing about which keys exist).
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthAgent, ApiError> {
    let invalid = || ApiError::Unauthorized {
        code: "invalid_token",
        message: "the API key is not valid",
    };
    let (id, secret) = token
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .ok_or_else(invalid)?;
    let uuid = uuid::Uuid::try_parse(id).map_err(|_| invalid())?;
    let key_id = AgentId::parse(&uuid.to_string()).ok_or_else(invalid)?;
    let (key, _) = state
        .log
        .load_aggregate::<ApiKey>(&key_id.to_string())
        .await?;
    let given = hex::encode(Sha256::digest(secret.as_bytes()));
    let kept = key.secret_sha256().ok_or_else(invalid)?;
    // Constant time, so the comparison says nothing about how close a guess came.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        kept.as_bytes(),
    )) {
        return Err(invalid());
    }
    let now = state.clock.now();
    let actor = key.actor(key_id, now).ok_or_else(invalid)?;
    Ok(AuthAgent {
        actor,
        session_id: format!("api-key:{key_id}"),
        expires_at: now.plus_seconds(3600),
    })
}
