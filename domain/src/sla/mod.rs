//! Service-level agreements: how soon customers must be answered and conversations resolved.
//!
//! An [`SlaPolicy`] sets thresholds (first response, next response, resolution), optional
//! business hours, and which conversations it covers. The conversation aggregate decides, from
//! its own history, whether a threshold was met or breached ([`SlaOutcome`]), once per
//! conversation, threshold and cycle (a wait, or the stretch to a resolution).

mod business_hours;
mod policy;

use serde::{Deserialize, Serialize};

use crate::agent::WorkingHours;
use crate::conversation::Tag;
use crate::{GroupId, PhoneNumberId, Timestamp};

pub use policy::{SlaPolicy, SlaPolicyCommand, SlaPolicyError, SlaPolicyEvent, MAX_NAME_CHARS};

/// The longest threshold, in seconds (a year).
pub const MAX_THRESHOLD_SECONDS: u32 = 366 * 24 * 3_600;

/// What an SLA measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaTarget {
    /// From the customer's first message to the first agent reply.
    FirstResponse,
    /// From the customer's first message since an agent's reply to the next reply.
    NextResponse,
    /// From the start (or a reopening) of the conversation to its resolution.
    Resolution,
}

impl SlaTarget {
    /// Every target.
    pub const ALL: [Self; 3] = [Self::FirstResponse, Self::NextResponse, Self::Resolution];

    /// The name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstResponse => "first_response",
            Self::NextResponse => "next_response",
            Self::Resolution => "resolution",
        }
    }
}

/// Whether a threshold was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaOutcome {
    /// Answered (resolved) by the due time.
    Met,
    /// Not by the due time.
    Breached,
}

/// Which conversations a policy covers: every criterion set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaScope {
    /// Conversations assigned to this group.
    #[serde(default, rename = "group_id", skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupId>,
    /// Conversations carrying this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Tag>,
    /// Conversations on this business number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<PhoneNumberId>,
}

impl SlaScope {
    /// How many criteria are set: the more, the more specific.
    pub fn specificity(&self) -> usize {
        usize::from(self.group.is_some())
            + usize::from(self.tag.is_some())
            + usize::from(self.phone_number_id.is_some())
    }

    /// Whether a conversation with this group, these tags and this number is covered.
    pub fn covers(
        &self,
        group: Option<GroupId>,
        tags: &[Tag],
        phone_number_id: Option<&PhoneNumberId>,
    ) -> bool {
        self.group.is_none_or(|g| group == Some(g))
            && self.tag.as_ref().is_none_or(|t| tags.contains(t))
            && self
                .phone_number_id
                .as_ref()
                .is_none_or(|p| phone_number_id == Some(p))
    }
}

/// A policy's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTerms {
    /// Display name.
    pub name: String,
    /// Seconds to the first response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_seconds: Option<u32>,
    /// Seconds to each next response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_response_seconds: Option<u32>,
    /// Seconds to the resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_seconds: Option<u32>,
    /// Only time within these hours counts (none: every hour counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<WorkingHours>,
    /// Which conversations it covers.
    #[serde(default)]
    pub applies_to: SlaScope,
}

impl SlaTerms {
    /// The threshold for `target`, in seconds.
    pub fn threshold(&self, target: SlaTarget) -> Option<u32> {
        match target {
            SlaTarget::FirstResponse => self.first_response_seconds,
            SlaTarget::NextResponse => self.next_response_seconds,
            SlaTarget::Resolution => self.resolution_seconds,
        }
    }

    /// When `target` falls due for a cycle that began at `since`; `None` without a threshold
    /// (or business hours that never come).
    pub fn due(&self, target: SlaTarget, since: Timestamp) -> Option<Timestamp> {
        let millis = i64::from(self.threshold(target)?) * 1000;
        match &self.business_hours {
            Some(hours) => hours.after_business_millis(since, millis),
            None => Timestamp::from_unix_millis(since.unix_millis() + millis),
        }
    }

    /// How long `[from, to)` counts under this policy (business time when it has hours).
    pub fn measured_millis(&self, from: Timestamp, to: Timestamp) -> i64 {
        match &self.business_hours {
            Some(hours) => hours.business_millis(from, to),
            None => (to.unix_millis() - from.unix_millis()).max(0),
        }
    }
}

/// A policy as a conversation sees it: its id and terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicyRef {
    /// The policy's id.
    pub id: String,
    /// Its terms.
    pub terms: SlaTerms,
}

/// Of `policies` (oldest first), the one covering a conversation: the most specific; of
/// equally specific ones, the oldest.
pub fn choose<'a>(
    policies: &'a [SlaPolicyRef],
    group: Option<GroupId>,
    tags: &[Tag],
    phone_number_id: Option<&PhoneNumberId>,
) -> Option<&'a SlaPolicyRef> {
    let mut best: Option<&SlaPolicyRef> = None;
    for policy in policies {
        let scope = &policy.terms.applies_to;
        if scope.covers(group, tags, phone_number_id)
            && best.is_none_or(|b| scope.specificity() > b.terms.applies_to.specificity())
        {
            best = Some(policy);
        }
    }
    best
}
