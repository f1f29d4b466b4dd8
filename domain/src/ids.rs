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

/// Namespace for agent ids (UUID v5 of the normalized email): one email, one agent, forever.
const AGENT_NAMESPACE: Uuid = Uuid::from_u128(0x2b8e_7c1d_4f3a_4e9b_8c2d_1a6f_0e5b_3d71);
/// Namespace for group ids (UUID v5 of the lower-cased name).
const GROUP_NAMESPACE: Uuid = Uuid::from_u128(0x9d4c_2e8f_6a1b_4c7d_b3e5_0f9a_8c2d_6e14);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Parses the textual form used in URLs and aggregate ids.
            pub fn parse(text: &str) -> Option<Self> {
                Uuid::parse_str(text).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// An agent (a person who answers customers, or an admin).
    AgentId
);
uuid_id!(
    /// A group (team) of agents that conversations can be assigned to.
    GroupId
);

impl AgentId {
    /// The agent registered with `email`: emails are unique because the id derives from them.
    pub fn for_email(email: &crate::agent::Email) -> Self {
        Self(Uuid::new_v5(&AGENT_NAMESPACE, email.as_str().as_bytes()))
    }
}

impl GroupId {
    /// The group named `name` (case-insensitive): names are unique because the id derives from them.
    pub fn for_name(name: &str) -> Self {
        Self(Uuid::new_v5(
            &GROUP_NAMESPACE,
            name.trim().to_lowercase().as_bytes(),
        ))
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
