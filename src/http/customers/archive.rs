//! The access request as one download: `customer.json` (the JSON export) and every file kept
//! for the customer under `files/`, zipped (stored, not compressed: media is compressed
//! already). Written to an anonymous temporary file and streamed, so that memory holds one
//! file at a time however much the customer sent.

use std::io::{Read, Seek, SeekFrom, Write};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use switchboard_projections::media;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::{collect, CustomerExport};
use crate::http::extract::AuthAgent;
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

/// Bytes streamed per read.
const CHUNK: usize = 64 * 1024;

/// [`super::export`] with the files themselves: a zip of `customer.json` and `files/<message
/// id>-<name>`; needs `can_export_data`; recorded with who asked.
#[utoipa::path(get, path = "/api/customers/{id}/export.zip", operation_id = "exportCustomerZip",
    tag = "conversations",
    params(("id" = String, Path, description = "The customer's WhatsApp number (any spelling) or business-scoped user id")),
    security(("bearer" = [])),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>), Errors))]
pub(super) async fn export_zip(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    zipped(&state, &auth, &id).await
}

/// The export of customer `id` as a zip response.
pub(super) async fn zipped(
    state: &AppState,
    auth: &AuthAgent,
    id: &str,
) -> Result<Response, ApiError> {
    let export = collect(state, auth, id).await?;
    let file = archive(state, &export).await?;
    let body = futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            let mut chunk = vec![0u8; CHUNK];
            let read = file.read(&mut chunk).map(|n| {
                chunk.truncate(n);
                chunk
            });
            (read, file)
        })
        .await;
        match read {
            Ok((Ok(chunk), _)) if chunk.is_empty() => None,
            Ok((Ok(chunk), file)) => Some((Ok(chunk), Some(file))),
            Ok((Err(error), _)) => Some((Err(error), None)),
            Err(error) => Some((Err(std::io::Error::other(error)), None)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"customer-{}.zip\"", export.customer),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The zip of `export` and its files, in an anonymous temporary file read from the start.
async fn archive(state: &AppState, export: &CustomerExport) -> Result<std::fs::File, ApiError> {
    let json = serde_json::to_vec_pretty(export).map_err(|e| ApiError::Internal(e.into()))?;
    let mut zip = blocking(move || {
        let mut zip = ZipWriter::new(tempfile::tempfile()?);
        zip.start_file("customer.json", options())?;
        zip.write_all(&json)?;
        Ok(zip)
    })
    .await?;
    let messages = export.conversations.iter().flat_map(|c| &c.messages);
    for message in messages {
        let Some(kept) = media::get(&state.database, &message.id).await? else {
            continue;
        };
        let Some(sha256) = kept.sha256.clone().filter(|_| kept.status == "stored") else {
            continue;
        };
        let bytes = match state.media.get(&sha256, None).await {
            Ok(bytes) => bytes,
            // Deleted since (retention, an erasure): not in the archive.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(error) => return Err(ApiError::Internal(error.into())),
        };
        let name = format!("files/{}-{}", safe(&message.id), safe(&file_name(&kept)));
        zip = blocking(move || {
            zip.start_file(name, options())?;
            zip.write_all(&bytes)?;
            Ok(zip)
        })
        .await?;
    }
    blocking(move || {
        let mut file = zip.finish()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(file)
    })
    .await
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(true)
}

/// The document's own name, else the kind and the subtype of its media type.
fn file_name(media: &media::MediaView) -> String {
    media.filename.clone().unwrap_or_else(|| {
        let extension = media
            .mime_type
            .as_deref()
            .and_then(|m| m.split(['/', ';']).nth(1))
            .unwrap_or("bin");
        format!("{}.{}", media.kind, extension.trim())
    })
}

/// `name` with only characters safe in any unzip tool's file system.
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

/// Runs zip writing (blocking file I/O) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, zip::result::ZipError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn names_in_the_archive_cannot_climb_out_of_it() {
        assert_eq!(safe("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe("Factura março.pdf"), "Factura_março.pdf");
    }
}
