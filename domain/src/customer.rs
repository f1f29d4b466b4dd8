//! Who the customer is, as far as Meta tells us.

use serde::{Deserialize, Serialize};

/// A customer's identity: a phone-based `wa_id`, a business-scoped user id (BSUID), or both.
///
/// Since 2026 Meta may omit the phone number (username users), so neither part is required,
/// but at least one is: [`Customer::new`] refuses a customer with neither.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Customer {
    /// The WhatsApp id (phone number digits), when Meta shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    /// The business-scoped user id (`US.…`), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Customer {
    /// A customer known by at least one identifier; `None` when both are missing or empty.
    pub fn new(wa_id: Option<String>, user_id: Option<String>) -> Option<Self> {
        let wa_id = wa_id.filter(|v| !v.is_empty());
        let user_id = user_id.filter(|v| !v.is_empty());
        if wa_id.is_none() && user_id.is_none() {
            return None;
        }
        Some(Self { wa_id, user_id })
    }

    /// The customer as an erasure leaves them (and as the log reads once their key is gone):
    /// each known identifier `[erased]`.
    pub fn erased(&self) -> Self {
        let erased = |v: &Option<String>| v.as_ref().map(|_| crate::privacy::ERASED.to_owned());
        Self {
            wa_id: erased(&self.wa_id),
            user_id: erased(&self.user_id),
        }
    }

    /// The identifiers of `self` that are still known, completed by `other`'s (an erased one
    /// is not known: the customer writing again after an erasure is learnt again).
    pub fn merged_with(&self, other: Customer) -> Self {
        let known = |v: &Option<String>| v.clone().filter(|v| v != crate::privacy::ERASED);
        Self {
            wa_id: known(&self.wa_id).or(other.wa_id),
            user_id: known(&self.user_id).or(other.user_id),
        }
    }

    /// The key a conversation is derived from: the `wa_id` when known, else the BSUID.
    ///
    /// The phone-based id comes first because every payload before 2026 carries only it; a
    /// customer seen with both keeps the conversation their phone number started.
    pub fn key(&self) -> &str {
        self.wa_id
            .as_deref()
            .or(self.user_id.as_deref())
            .unwrap_or_default()
    }
}
