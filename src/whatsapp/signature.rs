//! `X-Hub-Signature-256`: HMAC-SHA256 of the exact request bytes with the app secret.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    Missing,
    /// The header is not `sha256=<hex>`, or matches no configured secret.
    Mismatch,
}

/// Checks `header` against the HMAC of `body` under each secret, in constant time per secret.
///
/// Several secrets are allowed because every Meta app subscribed to the business account
/// signs its own copy with its own secret.
pub fn verify(
    secrets: &[SecretString],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Mismatch)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Mismatch)?;
    let matches = secrets.iter().any(|secret| {
        HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
            .map(|mut mac| {
                mac.update(body);
                mac.verify_slice(&expected).is_ok()
            })
            .unwrap_or(false)
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header value Meta would send for `body` signed with `secret` (for tests and the simulator).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[&str]) -> Vec<SecretString> {
        values.iter().map(|v| SecretString::from(*v)).collect()
    }

    #[test]
    fn a_body_signed_with_any_configured_secret_is_accepted() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let header = sign("second", body);
        assert_eq!(
            verify(&secrets(&["first", "second"]), body, Some(&header)),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_or_wrong_header_is_refused() {
        let header = sign("s", b"original");
        assert_eq!(
            verify(&secrets(&["s"]), b"changed", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secrets(&["s"]), b"x", Some("sha1=abc")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secrets(&["s"]), b"x", Some("sha256=zz")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secrets(&["s"]), b"x", None),
            Err(SignatureError::Missing)
        );
    }
}
