//! Errors as Meta reports them inside webhooks and API answers.

use serde::{Deserialize, Serialize};

/// One error object from Meta (`{code, title, message, error_data.details, href}`), kept as
/// sent so that agents and auditors see Meta's own words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaError {
    /// Meta's numeric error code (e.g. 131047).
    pub code: i64,
    /// Short title; Meta says titles will be deprecated, so branch on `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `error_data.details`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// Link to Meta's documentation of the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}
