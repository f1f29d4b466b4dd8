//! Files customers send (and, later, files agents attach): where they are kept.
//!
//! A file is kept once, under the SHA-256 of its bytes (`sha256/ab/abcdef…`), whichever message
//! brought it; the `media_files` read model says which message carries which file. The store is
//! an [`object_store::ObjectStore`]: a directory on this machine by default.

pub mod fetch;
pub mod outbound;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

/// Media settings.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// The directory files are kept in.
    pub dir: PathBuf,
    /// The largest file fetched (Meta's documents reach 100 MB).
    pub max_bytes: u64,
    /// How often the fetcher looks for files to fetch.
    pub fetch_interval: std::time::Duration,
    /// Attempts before a file is given up as unavailable.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles after each.
    pub retry_delay: std::time::Duration,
}

impl MediaSettings {
    /// Defaults, keeping files in `dir`.
    pub fn in_dir(dir: PathBuf) -> Self {
        Self {
            dir,
            max_bytes: 100 * 1024 * 1024,
            fetch_interval: std::time::Duration::from_millis(200),
            max_attempts: 5,
            retry_delay: std::time::Duration::from_secs(2),
        }
    }
}

/// Where files are kept.
#[derive(Debug, Clone)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
}

/// A storage failure.
pub type StoreError = object_store::Error;

impl MediaStore {
    /// Files in the directory `dir` (created if missing).
    ///
    /// # Errors
    /// When the directory cannot be created or used.
    pub fn local(dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Generic {
            store: "local",
            source: Box::new(source),
        })?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new_with_prefix(dir)?),
        })
    }

    fn key(sha256: &str) -> Path {
        let shard = sha256.get(..2).unwrap_or("00");
        Path::from(format!("sha256/{shard}/{sha256}"))
    }

    /// Keeps `bytes` under `sha256` (hex); a file kept already is not written again.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn put(&self, sha256: &str, bytes: Bytes) -> Result<(), StoreError> {
        let key = Self::key(sha256);
        match self.store.head(&key).await {
            Ok(_) => return Ok(()),
            Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        self.store.put(&key, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// The bytes of the file `sha256`, or of `range` of it.
    ///
    /// # Errors
    /// Storage failures; [`StoreError::NotFound`] when no such file is kept.
    pub async fn get(
        &self,
        sha256: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Bytes, StoreError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        self.store
            .get_opts(&Self::key(sha256), options)
            .await?
            .bytes()
            .await
    }
}
