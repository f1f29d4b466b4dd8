//! Identifiers. Each is a newtype so that a phone number id can never be passed where a
//! message id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::customer::Customer;

/// Namespace for deriving conversation ids (UUID v5), fixed forever: changing it would split
/// every existing conversation in two.
const CONVERSATION_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_1c4e_8e0b_4a53_9d1e_5b0c_2f7a_9e11);

/// A conversation: one customer on one business phone number.
///
/// Derived deterministically from `(phone_number_id, customer key)`, so every webhook about the
/// same customer lands on the same aggregate without a lookup, and duplicates stay idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(Uuid);

impl ConversationId {
    /// The conversation of `customer` on the business number `phone_number_id`.
    pub fn for_customer(phone_number_id: &PhoneNumberId, customer: &Customer) -> Self {
        let name = format!("{}/{}", phone_number_id.as_str(), customer.key());
        Self(Uuid::new_v5(&CONVERSATION_NAMESPACE, name.as_bytes()))
    }

    /// Parses the textual form used in URLs and aggregate ids.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::parse_str(text).ok().map(Self)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps the value as Meta sent it.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value as Meta sent it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// Meta's message id (`wamid.…`), globally unique; the id of inbound message aggregates.
    WaMessageId
);
string_id!(
    /// The Graph id of a business phone number (`metadata.phone_number_id`), the stable key
    /// to route by and to send from.
    PhoneNumberId
);
string_id!(
    /// A WhatsApp Business Account id (`entry[].id`).
    WabaId
);
