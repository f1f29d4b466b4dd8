//! Cursor pagination and the time format of views.

use serde::Serialize;
use switchboard_domain::Timestamp;

use crate::ProjectionError;

/// One page of a list, with the cursor of the next page when there is one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A keyset position: a sort key (milliseconds or a position) and a tie-breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key of the last item returned.
    pub key: i64,
    /// The tie-breaker of the last item returned.
    pub tie: String,
}

impl Cursor {
    /// Parses a cursor given by a client.
    ///
    /// # Errors
    /// [`ProjectionError::InvalidCursor`] for anything this module did not produce.
    pub fn parse(text: &str) -> Result<Self, ProjectionError> {
        let (key, tie) = text.split_once('_').ok_or(ProjectionError::InvalidCursor)?;
        let key = key.parse().map_err(|_| ProjectionError::InvalidCursor)?;
        if tie.is_empty() || tie.len() > 512 {
            return Err(ProjectionError::InvalidCursor);
        }
        Ok(Self {
            key,
            tie: tie.to_owned(),
        })
    }

    /// The opaque text handed to clients.
    pub fn encode(key: i64, tie: &str) -> String {
        format!("{key}_{tie}")
    }
}

/// Formats Unix milliseconds as RFC 3339 (what every view shows).
pub fn rfc3339(millis: i64) -> String {
    Timestamp::from_unix_millis(millis).map_or_else(String::new, |t| t.to_string())
}

/// [`rfc3339`] for optional values.
pub fn rfc3339_opt(millis: Option<i64>) -> Option<String> {
    millis.map(rfc3339)
}

/// Clamps a client's page size to `1..=max` (default `default`).
pub fn page_size(requested: Option<u32>, default: u32, max: u32) -> u32 {
    requested.unwrap_or(default).clamp(1, max)
}

/// Splits `limit + 1` fetched rows into a page and the next cursor.
pub(crate) fn paginate<R, V: From<R>>(
    mut rows: Vec<R>,
    limit: u32,
    cursor_of: impl Fn(&R) -> String,
) -> Page<V> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(V::from).collect(),
        next_cursor,
    }
}
