//! Access tokens (JWT, HS256) and refresh tokens (opaque, stored hashed).

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_domain::Timestamp;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The agent id.
    pub sub: String,
    /// The session family (login) it belongs to.
    pub sid: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, another algorithm (including `none`), or a bad signature.
    #[error("invalid access token")]
    Invalid,
    /// Past its expiry.
    #[error("access token expired")]
    Expired,
}

/// What a media link says: this file, until then. Its audience (`media`) keeps it from ever
/// passing as an access token, and an access token from passing as a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MediaLinkClaims {
    sub: String,
    aud: String,
    exp: i64,
}

/// The audience of media links.
const MEDIA_AUDIENCE: &str = "media";

/// The keys that sign and verify access tokens (and media links).
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    media_validation: Validation,
}

impl JwtKeys {
    /// Keys from the shared secret.
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the application clock (tests control it), not here.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "sub"].iter().map(|c| (*c).to_owned()).collect();
        let mut media_validation = Validation::new(Algorithm::HS256);
        media_validation.validate_exp = false;
        media_validation.set_audience(&[MEDIA_AUDIENCE]);
        media_validation.required_spec_claims = ["exp", "sub", "aud"]
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            media_validation,
        }
    }

    /// A link token for the file `media_id`, valid for `ttl_seconds` from `now` (for `<img
    /// src>` and `<audio src>`, which cannot send a bearer header).
    ///
    /// # Errors
    /// When signing fails (it does not for HMAC keys).
    pub fn issue_media_link(
        &self,
        media_id: &str,
        now: Timestamp,
        ttl_seconds: i64,
    ) -> Result<(String, Timestamp), jsonwebtoken::errors::Error> {
        let claims = MediaLinkClaims {
            sub: media_id.to_owned(),
            aud: MEDIA_AUDIENCE.to_owned(),
            exp: now.unix_millis() / 1000 + ttl_seconds,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, now.plus_seconds(ttl_seconds)))
    }

    /// Whether `token` is a live link to the file `media_id`.
    pub fn verify_media_link(&self, token: &str, media_id: &str, now: Timestamp) -> bool {
        decode::<MediaLinkClaims>(token, &self.decoding, &self.media_validation)
            .is_ok_and(|d| d.claims.sub == media_id && d.claims.exp * 1000 > now.unix_millis())
    }

    /// Signs an access token for `agent` in session `family`, valid for `ttl_seconds` from `now`.
    ///
    /// # Errors
    /// When signing fails (it does not for HMAC keys).
    pub fn issue(
        &self,
        agent: &str,
        family: &str,
        now: Timestamp,
        ttl_seconds: i64,
    ) -> Result<(String, Timestamp), jsonwebtoken::errors::Error> {
        let issued = now.unix_millis() / 1000;
        let expires_at = now.plus_seconds(ttl_seconds);
        let claims = Claims {
            sub: agent.to_owned(),
            sid: family.to_owned(),
            iat: issued,
            exp: issued + ttl_seconds,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, expires_at))
    }

    /// Checks signature, algorithm and expiry (against `now`).
    ///
    /// # Errors
    /// [`TokenError`] saying why the token is refused.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if claims.exp * 1000 <= now.unix_millis() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A new refresh token: 256 random bits, hex-encoded.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What is stored for a refresh token: its SHA-256 (a database leak yields no usable token).
pub fn refresh_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random id (session families).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_780_000_000).expect("valid")
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let keys = JwtKeys::new(&SecretString::from("k".repeat(32)));
        let (token, _) = keys.issue("a", "f", now(), 60).expect("signed");
        assert_eq!(
            keys.verify(&token, now().plus_seconds(59)).map(|c| c.sub),
            Ok("a".to_owned())
        );
        assert_eq!(
            keys.verify(&token, now().plus_seconds(60)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn another_key_or_alg_none_is_refused() {
        let keys = JwtKeys::new(&SecretString::from("k".repeat(32)));
        let other = JwtKeys::new(&SecretString::from("x".repeat(32)));
        let (token, _) = other.issue("a", "f", now(), 60).expect("signed");
        assert_eq!(keys.verify(&token, now()), Err(TokenError::Invalid));
        let (token, _) = keys.issue("a", "f", now(), 60).expect("signed");
        let payload = token.split('.').nth(1).expect("payload");
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(keys.verify(&unsigned, now()), Err(TokenError::Invalid));
    }
}
