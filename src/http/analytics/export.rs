//! Analytics as JSON or CSV: `Accept: text/csv` or `?format=csv` asks for CSV, whose rows are
//! the JSON answer's rows, column for column.

use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::http::ApiError;

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (the default).
    Json,
    /// `text/csv`.
    Csv,
}

impl Format {
    /// From `?format=` (`json` or `csv`), else from the `Accept` header.
    pub fn asked(headers: &HeaderMap, format: Option<&str>) -> Result<Self, ApiError> {
        match format {
            Some("csv") => Ok(Self::Csv),
            Some("json") => Ok(Self::Json),
            Some(_) => Err(ApiError::BadRequest("format: json or csv".to_owned())),
            None => {
                let accept = headers
                    .get(ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let csv = accept
                    .split(',')
                    .any(|t| t.split(';').next().unwrap_or_default().trim() == "text/csv");
                Ok(if csv { Self::Csv } else { Self::Json })
            }
        }
    }
}

/// `rows` as a CSV file named `name.csv` (a header line even without rows).
pub fn csv<R: Serialize + Default>(name: &str, rows: &[R]) -> Result<Response, ApiError> {
    let text = csv_text(rows).map_err(|error| ApiError::Internal(Box::new(error)))?;
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        text,
    )
        .into_response())
}

fn csv_text<R: Serialize + Default>(rows: &[R]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        // The header alone: serialize a default row, keep its first line.
        let mut probe = csv::Writer::from_writer(Vec::new());
        probe.serialize(R::default())?;
        let bytes = probe.into_inner().map_err(|e| e.into_error())?;
        let text = String::from_utf8_lossy(&bytes);
        return Ok(text
            .lines()
            .next()
            .map(|l| format!("{l}\n"))
            .unwrap_or_default());
    }
    for row in rows {
        writer.serialize(row)?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
