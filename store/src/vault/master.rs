//! The master keys that wrap customers' data keys: the current one wraps new keys, earlier ones
//! are still accepted for unwrapping until every key they wrapped was wrapped again
//! ([`super::rewrap_all`]), so that the master key is rotated without downtime.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::StoreError;

/// The shortest master key accepted (a 256-bit secret, e.g. 64 hex digits).
pub const MIN_MASTER_KEY_BYTES: usize = 32;

/// One master key and its public id (stored beside each key it wrapped).
struct MasterKey {
    id: String,
    key: LessSafeKey,
}

/// The current master key and the earlier ones still accepted.
pub struct MasterKeys {
    current: MasterKey,
    previous: Vec<MasterKey>,
    /// `false` only for benchmarks measuring what sealing costs.
    seals: bool,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl MasterKeys {
    /// From the configured secrets: `current` wraps new keys, `previous` (rotated out) only
    /// unwrap.
    ///
    /// # Errors
    /// [`StoreError::MasterKey`] when a secret is shorter than [`MIN_MASTER_KEY_BYTES`].
    pub fn new(current: &str, previous: &[String]) -> Result<Self, StoreError> {
        Ok(Self {
            current: MasterKey::from_secret(current)?,
            previous: previous
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty() && *s != current.trim())
                .map(MasterKey::from_secret)
                .collect::<Result<_, _>>()?,
            seals: true,
        })
    }

    /// The same keys, but a store using them writes personal data in clear (and still opens
    /// what is sealed). Only for benchmarks measuring the cost of sealing in the same run.
    #[doc(hidden)]
    #[must_use]
    pub fn in_clear_for_benchmarks(mut self) -> Self {
        self.seals = false;
        self
    }

    /// Whether a store using these keys seals personal data (always, outside benchmarks).
    pub(crate) fn seals(&self) -> bool {
        self.seals
    }

    /// The id of the current master key.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// A fresh random data key for key `id`, and the same wrapped by the current master key.
    pub(crate) fn generate(&self, id: &str) -> Result<([u8; 32], Vec<u8>), StoreError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StoreError::Crypto("no randomness"))?;
        let wrapped = self.wrap(id, &bytes)?;
        Ok((bytes, wrapped))
    }

    /// Unwraps data key `id` wrapped by master key `master_id`; `None` when that master key is
    /// not configured or the bytes were tampered with (or belong to another key).
    pub(crate) fn unwrap(&self, master_id: &str, id: &str, wrapped: &[u8]) -> Option<Vec<u8>> {
        let master = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == master_id)?;
        open(&master.key, &wrapping_context(id), wrapped)
    }

    /// Data key `id`'s `bytes` wrapped by the current master key.
    pub(crate) fn wrap(&self, id: &str, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
        seal(&self.current.key, &wrapping_context(id), bytes)
    }
}

/// What a wrapped data key is bound to: its own id.
fn wrapping_context(id: &str) -> Vec<u8> {
    format!("switchboard data key {id}").into_bytes()
}

/// An HKDF output length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl MasterKey {
    /// The wrapping key and the public id, both derived from the secret by HKDF-SHA256.
    fn from_secret(secret: &str) -> Result<Self, StoreError> {
        let secret = secret.trim();
        if secret.len() < MIN_MASTER_KEY_BYTES {
            return Err(StoreError::MasterKey);
        }
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"switchboard master key");
        let prk = salt.extract(secret.as_bytes());
        let derive = |info: &[u8], len: usize| -> Result<Vec<u8>, StoreError> {
            let mut out = vec![0u8; len];
            let info = [info];
            prk.expand(&info, Len(len))
                .and_then(|okm| okm.fill(&mut out))
                .map_err(|_| StoreError::Crypto("key derivation failed"))?;
            Ok(out)
        };
        Ok(Self {
            id: derive(b"id", 8)?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            key: data_key(&derive(b"wrapping", 32)?)?,
        })
    }
}

/// A data key from its 32 bytes.
pub(crate) fn data_key(bytes: &[u8]) -> Result<LessSafeKey, StoreError> {
    let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| StoreError::Crypto("bad key"))?;
    Ok(LessSafeKey::new(key))
}

/// `nonce || ciphertext || tag` of `plain` under `key`, bound to `aad`; a random nonce each
/// time (a key seals far fewer than the 2^32 messages random nonces allow).
pub(crate) fn seal(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| StoreError::Crypto("no randomness"))?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + plain.len() + 16);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(plain);
    let mut body = sealed.split_off(NONCE_LEN);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .map_err(|_| StoreError::Crypto("sealing failed"))?;
    sealed.extend_from_slice(&body);
    Ok(sealed)
}

/// The plain bytes of [`seal`]'s output; `None` when it does not open under `key` and `aad`.
pub(crate) fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = body.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut body).ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a-master-key-of-at-least-32-bytes-long";
    const B: &str = "another-master-key-of-at-least-32-bytes";

    #[test]
    fn a_key_wrapped_by_a_rotated_out_master_key_still_unwraps_until_it_is_dropped() {
        let old = MasterKeys::new(A, &[]).unwrap();
        let (_, wrapped) = old.generate("k1").unwrap();
        let rotated = MasterKeys::new(B, &[A.to_owned()]).unwrap();
        let bytes = rotated
            .unwrap(old.current_id(), "k1", &wrapped)
            .expect("old master");
        assert_eq!(
            rotated.unwrap(old.current_id(), "k2", &wrapped),
            None,
            "bound to its id"
        );
        let rewrapped = rotated.wrap("k1", &bytes).unwrap();
        let only_new = MasterKeys::new(B, &[]).unwrap();
        assert_eq!(only_new.unwrap(old.current_id(), "k1", &wrapped), None);
        assert_eq!(
            only_new.unwrap(only_new.current_id(), "k1", &rewrapped),
            Some(bytes)
        );
    }

    #[test]
    fn sealed_bytes_open_only_with_their_key_and_context() {
        let key = data_key(&[7; 32]).unwrap();
        let sealed = seal(&key, b"m1", b"hola").unwrap();
        assert_eq!(open(&key, b"m1", &sealed).as_deref(), Some(&b"hola"[..]));
        assert_eq!(open(&key, b"m2", &sealed), None);
        assert_eq!(open(&data_key(&[8; 32]).unwrap(), b"m1", &sealed), None);
        assert!(MasterKeys::new("short", &[]).is_err());
    }
}
