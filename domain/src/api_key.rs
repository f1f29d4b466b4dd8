//! API keys: credentials for integrations, not people. An admin creates one with some of their
//! own rights (nobody grants what they do not hold); the key then acts as its own actor, so the
//! log shows which integration did what. Only the SHA-256 of its secret is kept.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::agent::{Permissions, Role};
use crate::{Actor, AgentId, Timestamp};

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Requests to an [`ApiKey`].
#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    /// Create the key.
    Create {
        /// What it is for (`CRM sync`).
        name: String,
        /// What it may do.
        permissions: Permissions,
        /// When it stops working, if ever.
        expires_at: Option<Timestamp>,
        /// The `bot` scope: it writes only to conversations that are with the bot.
        bot: bool,
        /// SHA-256 of its secret, hex.
        secret_sha256: String,
        /// The start of the secret, to recognise it in lists.
        prefix: String,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// Revoke it: it stops working at once.
    Revoke {
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
}

/// Events of an [`ApiKey`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApiKeyEvent {
    /// Created.
    Created {
        /// Name.
        name: String,
        /// Rights.
        permissions: Permissions,
        /// Expiry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<Timestamp>,
        /// The `bot` scope.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bot: bool,
        /// SHA-256 of the secret (the secret itself is never stored).
        secret_sha256: String,
        /// The secret's first characters.
        prefix: String,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// Revoked.
    Revoked {
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for ApiKeyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "ApiKeyCreated",
            Self::Revoked { .. } => "ApiKeyRevoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why an API key command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// Only admins manage keys.
    #[error("only admins manage API keys")]
    NotPermitted,
    /// A right the creator does not hold.
    #[error("you cannot grant {0}, which you do not hold")]
    Ungranted(&'static str),
    /// No such key.
    #[error("no such API key")]
    NotFound,
    /// The id is taken.
    #[error("an API key with this id exists")]
    AlreadyExists,
    /// A bad name or expiry.
    #[error("invalid API key: {0}")]
    Invalid(&'static str),
}

/// One API key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    permissions: Option<Permissions>,
    expires_at: Option<Timestamp>,
    secret_sha256: String,
    revoked: bool,
    #[serde(default)]
    bot: bool,
}

impl ApiKey {
    /// The SHA-256 of its secret (hex), while it exists.
    pub fn secret_sha256(&self) -> Option<&str> {
        self.permissions
            .as_ref()
            .map(|_| self.secret_sha256.as_str())
    }

    /// The key as an actor at `now` (its id is `id`): `None` once revoked or expired.
    pub fn actor(&self, id: AgentId, now: Timestamp) -> Option<Actor> {
        let permissions = self.permissions?;
        if self.revoked || self.expires_at.is_some_and(|e| e <= now) {
            return None;
        }
        Some(Actor {
            agent_id: id,
            role: Role::Agent,
            groups: Vec::new(),
            permissions,
            on_duty: true,
            bot: self.bot,
        })
    }

    fn decide(&self, command: ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        let by = match &command {
            ApiKeyCommand::Create { by, .. } | ApiKeyCommand::Revoke { by, .. } => by,
        };
        if by.role != Role::Admin {
            return Err(ApiKeyError::NotPermitted);
        }
        match command {
            ApiKeyCommand::Create {
                name,
                permissions,
                expires_at,
                bot,
                secret_sha256,
                prefix,
                by,
                at,
            } => {
                if self.permissions.is_some() {
                    return Err(ApiKeyError::AlreadyExists);
                }
                let name = name.trim().to_owned();
                if name.is_empty()
                    || name.chars().count() > MAX_NAME_CHARS
                    || name.chars().any(char::is_control)
                {
                    return Err(ApiKeyError::Invalid(
                        "the name must have 1 to 100 characters, without control characters",
                    ));
                }
                if expires_at.is_some_and(|e| e <= at) {
                    return Err(ApiKeyError::Invalid("expires_at must lie ahead"));
                }
                if let Some(right) = permissions.ungranted(None, &by.permissions) {
                    return Err(ApiKeyError::Ungranted(right));
                }
                permissions.consistent().map_err(ApiKeyError::Invalid)?;
                Ok(vec![ApiKeyEvent::Created {
                    name,
                    permissions,
                    expires_at,
                    bot,
                    secret_sha256,
                    prefix,
                    by: by.agent_id,
                    at,
                }])
            }
            ApiKeyCommand::Revoke { by, at } => match (&self.permissions, self.revoked) {
                (None, _) => Err(ApiKeyError::NotFound),
                (Some(_), true) => Ok(vec![]),
                (Some(_), false) => Ok(vec![ApiKeyEvent::Revoked {
                    by: by.agent_id,
                    at,
                }]),
            },
        }
    }
}

impl Aggregate for ApiKey {
    const TYPE: &'static str = "ApiKey";
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;
    type Error = ApiKeyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ApiKeyEvent::Created {
                permissions,
                expires_at,
                secret_sha256,
                bot,
                ..
            } => {
                self.bot = bot;
                self.permissions = Some(permissions);
                self.expires_at = expires_at;
                self.secret_sha256 = secret_sha256;
            }
            ApiKeyEvent::Revoked { .. } => self.revoked = true,
        }
    }
}
