//! Serving the files customers sent: `GET /api/media/{id}` (the message's id) to agents who may
//! read its conversation (others get 404, as for an absent file), with its type, length,
//! `ETag` (the SHA-256), byte ranges for audio and video, the original name of documents, and
//! headers that keep a browser from running it as a page.

use axum::extract::{Path, State};
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RANGE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_projections::media::{self, MediaView};
use switchboard_projections::{conversations, ReadScope};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::AuthAgent;
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(file))
        .routes(routes!(link))
        .routes(routes!(signed))
}

/// The file `id`, if the caller may see it: a message's to those who may read its
/// conversation; an upload to its uploader and to those who read every conversation.
async fn visible(state: &AppState, auth: &AuthAgent, id: &str) -> Result<MediaView, ApiError> {
    let media = media::get(&state.database, id)
        .await?
        .ok_or(ApiError::NotFound("media"))?;
    let scope = ReadScope::of(&auth.actor);
    let allowed = match &media.conversation_id {
        Some(conversation) => conversations::get(&state.database, &scope, conversation)
            .await?
            .is_some(),
        None => {
            media.uploaded_by.as_deref() == Some(auth.actor.agent_id.to_string().as_str())
                || matches!(scope, ReadScope::All)
        }
    };
    if !allowed {
        return Err(ApiError::NotFound("media"));
    }
    Ok(media)
}

/// A message's file (its id is the message's). `pending` while it is being fetched (409
/// `media_pending`); a file that could not be kept answers 409 `media_unavailable` with the
/// reason. `Range: bytes=a-b` answers 206 with that slice.
#[utoipa::path(get, path = "/api/media/{id}", operation_id = "getMedia", tag = "media",
    params(("id" = String, Path, description = "Message id")), security(("bearer" = [])),
    responses((status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "A byte range of it", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 416, description = "The range lies outside the file"), Errors))]
async fn file(
    State(state): State<AppState>,
    auth: AuthAgent,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let media = visible(&state, &auth, &id).await?;
    serve(&state, media, &headers).await
}

/// How long a media link lives.
const LINK_SECONDS: i64 = 300;

/// A link to the file for `<img>`, `<audio>` or `<video>` (which cannot send a bearer header):
/// valid five minutes, for this file only.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct MediaLink {
    /// Path of the file with its token (`/api/media/{id}/signed?token=…`).
    url: String,
    /// When it stops working.
    expires_at: String,
}

/// A short-lived link to the file, for agents who may read its conversation.
#[utoipa::path(get, path = "/api/media/{id}/link", operation_id = "getMediaLink", tag = "media",
    params(("id" = String, Path, description = "Message id")), security(("bearer" = [])),
    responses((status = 200, body = MediaLink), Errors))]
async fn link(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<axum::Json<MediaLink>, ApiError> {
    let media = visible(&state, &auth, &id).await?;
    stored(&media)?;
    let (token, expires_at) = state
        .auth
        .keys
        .issue_media_link(&media.id, state.clock.now(), LINK_SECONDS)
        .map_err(|error| ApiError::Internal(Box::new(error)))?;
    let path: String = form_urlencoded::byte_serialize(media.id.as_bytes()).collect();
    Ok(axum::Json(MediaLink {
        url: format!("/api/media/{path}/signed?token={token}"),
        expires_at: expires_at.to_string(),
    }))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LinkToken {
    /// The token of a link from `/api/media/{id}/link`.
    token: String,
}

/// The file through a link from `/api/media/{id}/link` (no bearer header); an expired or
/// foreign token answers 404.
#[utoipa::path(get, path = "/api/media/{id}/signed", operation_id = "getSignedMedia", tag = "media",
    params(("id" = String, Path, description = "Message id"), LinkToken),
    responses((status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "A byte range of it", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 416, description = "The range lies outside the file"), Errors))]
async fn signed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    crate::http::extract::Query(link): crate::http::extract::Query<LinkToken>,
) -> Result<Response, ApiError> {
    if !state
        .auth
        .keys
        .verify_media_link(&link.token, &id, state.clock.now())
    {
        return Err(ApiError::NotFound("media"));
    }
    let media = media::get(&state.database, &id)
        .await?
        .ok_or(ApiError::NotFound("media"))?;
    serve(&state, media, &headers).await
}

/// The stored file as an HTTP answer (whole, a range, or 304).
async fn serve(
    state: &AppState,
    media: MediaView,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let (sha256, size) = stored(&media)?;
    let etag = format!("\"{sha256}\"");
    if headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag)]).into_response());
    }
    let range = match headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(text) => match byte_range(text, size) {
            Ok(range) => range,
            Err(()) => {
                let bounds = format!("bytes */{size}");
                return Ok(
                    (StatusCode::RANGE_NOT_SATISFIABLE, [(CONTENT_RANGE, bounds)]).into_response(),
                );
            }
        },
    };
    let bytes = state
        .media
        .get(sha256, range.clone())
        .await
        .map_err(|error| ApiError::Internal(Box::new(error)))?;
    let mut response = bytes.into_response();
    let out = response.headers_mut();
    let value = |text: &str| HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""));
    out.insert(
        CONTENT_TYPE,
        value(
            media
                .mime_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
        ),
    );
    out.insert(ETAG, value(&etag));
    out.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    // A file is never a page of ours: no script, no plugin, a sandbox, whatever its type says.
    out.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    out.insert(CONTENT_DISPOSITION, value(&disposition(&media)));
    let status = match range {
        Some(range) => {
            out.insert(
                CONTENT_RANGE,
                value(&format!("bytes {}-{}/{size}", range.start, range.end - 1)),
            );
            out.insert(
                CONTENT_LENGTH,
                value(&(range.end - range.start).to_string()),
            );
            StatusCode::PARTIAL_CONTENT
        }
        None => {
            out.insert(CONTENT_LENGTH, value(&size.to_string()));
            StatusCode::OK
        }
    };
    *response.status_mut() = status;
    Ok(response)
}

/// The stored file's SHA-256 and size; 409 `media_pending` while it is fetched, 409
/// `media_unavailable` with the reason when it could not be kept.
fn stored(media: &MediaView) -> Result<(&str, u64), ApiError> {
    match (media.sha256.as_deref(), media.size) {
        (Some(sha256), Some(size)) if media.status == "stored" => {
            Ok((sha256, u64::try_from(size).unwrap_or(0)))
        }
        _ if media.status == "unavailable" || media.status == "deleted" => {
            Err(ApiError::Conflict {
                code: "media_unavailable",
                message: media.reason.clone().unwrap_or_default(),
            })
        }
        _ => Err(ApiError::Conflict {
            code: "media_pending",
            message: "the file is still being fetched from Meta".to_owned(),
        }),
    }
}

/// `attachment` with the original name for documents (RFC 6266: an ASCII fallback and the
/// UTF-8 name), `inline` for the rest.
fn disposition(media: &MediaView) -> String {
    let Some(name) = media
        .filename
        .as_deref()
        .filter(|_| media.kind == "document")
    else {
        return "inline".to_owned();
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The one byte range `Range: bytes=…` asks for (`a-b`, `a-`, `-n`), as `start..end`; `None`
/// for a header that names several ranges or another unit (the whole file is served then, as
/// RFC 9110 allows); `Err` when the range lies outside the file (416).
///
/// Written here rather than taken from a crate: serving needs only this one form, and the
/// range crates bring a header framework we do not otherwise use.
fn byte_range(header: &str, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let number = |t: &str| t.trim().parse::<u64>().map_err(|_| ());
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, false) => {
            let suffix = number(last)?.min(size);
            size - suffix..size
        }
        (false, true) => number(first)?..size,
        (false, false) => number(first)?..number(last)?.saturating_add(1).min(size),
        (true, true) => return Ok(None),
    };
    if range.start >= range.end || range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges_of_one_kind_are_served_and_others_ignored_or_refused() {
        assert_eq!(byte_range("bytes=0-99", 1000), Ok(Some(0..100)));
        assert_eq!(byte_range("bytes=900-", 1000), Ok(Some(900..1000)));
        assert_eq!(byte_range("bytes=-100", 1000), Ok(Some(900..1000)));
        assert_eq!(byte_range("bytes=990-2000", 1000), Ok(Some(990..1000)));
        assert_eq!(byte_range("bytes=0-1,5-6", 1000), Ok(None));
        assert_eq!(byte_range("items=0-1", 1000), Ok(None));
        assert_eq!(byte_range("bytes=1000-", 1000), Err(()));
        assert_eq!(byte_range("bytes=5-2", 1000), Err(()));
        assert_eq!(byte_range("bytes=x-2", 1000), Err(()));
    }
}
