//! Delivery statuses and the rule that they only move forward.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{MetaError, Timestamp};

/// How far an outbound message got, as Meta reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Left Meta's servers (one tick).
    Sent,
    /// Reached the customer's device (two ticks).
    Delivered,
    /// Displayed in an open chat (blue ticks).
    Read,
    /// A voice message was played.
    Played,
    /// Could not be sent or delivered; errors say why. Sticky.
    Failed,
}

impl DeliveryStatus {
    /// Parses Meta's `statuses[].status`.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
        }
    }

    /// Progress rank of the non-failure statuses: sent < delivered < read < played.
    pub(crate) fn rank(self) -> u8 {
        match self {
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Played => 4,
            Self::Failed => 0,
        }
    }

    /// Whether the customer's device has the message: a later failure cannot undo that.
    pub(crate) fn reached_customer(self) -> bool {
        matches!(self, Self::Delivered | Self::Read | Self::Played)
    }
}

/// One status report from a webhook (`value.statuses[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The reported status.
    pub status: DeliveryStatus,
    /// When Meta says it happened (its `timestamp`).
    pub at: Timestamp,
    /// Errors, for `failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<MetaError>,
    /// The pricing object, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Value>,
    /// Meta's billing conversation object, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_conversation: Option<Value>,
    /// Our own correlation value echoed by Meta (`biz_opaque_callback_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_data: Option<String>,
}
