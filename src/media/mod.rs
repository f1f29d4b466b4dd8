//! Files customers send and files agents upload: where they are kept.
//!
//! A file is kept once, under the SHA-256 of its bytes (`sha256/ab/abcdef…`), whichever message
//! brought it; the `media_files` read model says which message carries which file. The store is
//! an [`object_store::ObjectStore`]: a directory on this machine by default, or an
//! S3-compatible bucket shared by several instances.

pub mod fetch;
pub mod outbound;
pub mod retention;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

/// An S3-compatible bucket.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// The service's address when it is not AWS (MinIO, …); `None`: AWS.
    pub endpoint: Option<String>,
    /// Region (AWS); any name for other services.
    pub region: Option<String>,
    /// Access key; `None`: from the environment (`AWS_ACCESS_KEY_ID`, instance roles…).
    pub access_key_id: Option<String>,
    /// Secret key.
    pub secret_access_key: Option<String>,
    /// Allow `http://` endpoints (a local service).
    pub allow_http: bool,
}

/// Media settings.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// The directory files are kept in (without `s3`).
    pub dir: PathBuf,
    /// Keep files in this bucket instead.
    pub s3: Option<S3Settings>,
    /// The largest file fetched (Meta's documents reach 100 MB).
    pub max_bytes: u64,
    /// How often the fetcher looks for files to fetch.
    pub fetch_interval: std::time::Duration,
    /// Attempts before a file is given up as unavailable.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles after each.
    pub retry_delay: std::time::Duration,
    /// How long files are kept (`None`: for ever).
    pub retention: Option<std::time::Duration>,
}

impl MediaSettings {
    /// Defaults, keeping files in `dir`.
    pub fn in_dir(dir: PathBuf) -> Self {
        Self {
            dir,
            s3: None,
            max_bytes: 100 * 1024 * 1024,
            fetch_interval: std::time::Duration::from_millis(200),
            max_attempts: 5,
            retry_delay: std::time::Duration::from_secs(2),
            retention: None,
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
    /// The store `settings` name: the bucket, else the directory.
    ///
    /// # Errors
    /// When the store cannot be set up (a bad URL, a directory that cannot be created).
    pub fn open(settings: &MediaSettings) -> Result<Self, StoreError> {
        match &settings.s3 {
            Some(s3) => Self::s3(s3),
            None => Self::local(&settings.dir),
        }
    }

    /// Files in an S3-compatible bucket (credentials from `settings`, else the `AWS_…`
    /// environment variables).
    ///
    /// # Errors
    /// When the URL is not `s3://bucket[/prefix]` or the client cannot be built.
    pub fn s3(settings: &S3Settings) -> Result<Self, StoreError> {
        let invalid = |message: String| StoreError::Generic {
            store: "S3",
            source: message.into(),
        };
        let rest = settings
            .url
            .strip_prefix("s3://")
            .ok_or_else(|| invalid(format!("{:?} is not s3://bucket[/prefix]", settings.url)))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("the URL names no bucket".to_owned()));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let (Some(key), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        if settings.allow_http {
            builder = builder.with_allow_http(true);
        }
        let s3 = builder.build()?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(Self { store })
    }

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

    /// Keeps `bytes` under `sha256` (hex): one copy per content. Written every time (the same
    /// bytes under the same key), so a copy deleted by retention a moment before comes back.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn put(&self, sha256: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.store
            .put(&Self::key(sha256), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Deletes the file `sha256` (gone already is fine).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete(&self, sha256: &str) -> Result<(), StoreError> {
        match self.store.delete(&Self::key(sha256)).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
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
