//! One agent's socket: who is behind it, until when its token holds, and the signal that stops
//! its delivery when it goes away.

use std::sync::{Mutex, MutexGuard, PoisonError};

use switchboard_domain::{Actor, AgentId, Timestamp};
use tokio::sync::watch;

use crate::http::extract::AuthAgent;

/// The agent behind a socket, with the rights and token expiry of their latest token.
pub struct Session {
    agent_id: AgentId,
    state: Mutex<State>,
    closed: watch::Sender<bool>,
}

struct State {
    actor: Actor,
    family: String,
    expires_at: Timestamp,
    warned: bool,
}

/// What the expiry sweep should do about a session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing.
    Valid,
    /// Warn the client: its token expires at this time.
    Warn(Timestamp),
    /// Close the socket: the token expired.
    Expired,
}

impl Session {
    /// A session for an authenticated agent.
    pub fn new(auth: AuthAgent) -> Self {
        Self {
            agent_id: auth.actor.agent_id,
            state: Mutex::new(State {
                actor: auth.actor,
                family: auth.session_id,
                expires_at: auth.expires_at,
                warned: false,
            }),
            closed: watch::Sender::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The agent.
    pub fn agent_id(&self) -> AgentId {
        self.agent_id
    }

    /// Runs `check` against the current rights without copying them.
    pub fn with_actor<T>(&self, check: impl FnOnce(&Actor) -> T) -> T {
        check(&self.state().actor)
    }

    /// A refreshed token (`auth:refresh`): new rights, new expiry, a new warning to come.
    pub fn refresh(&self, auth: AuthAgent) {
        let mut state = self.state();
        state.actor = auth.actor;
        state.family = auth.session_id;
        state.expires_at = auth.expires_at;
        state.warned = false;
    }

    /// Rights reloaded after a change to the agent's account.
    pub fn set_actor(&self, actor: Actor) {
        self.state().actor = actor;
    }

    /// The login (session family) of the current token.
    pub fn family(&self) -> String {
        self.state().family.clone()
    }

    /// Whether to warn about or end this session at `now`, `warning` ahead of expiry. A
    /// warning is given once per token.
    pub fn expiry(&self, now: Timestamp, warning_seconds: i64) -> Expiry {
        let mut state = self.state();
        if now >= state.expires_at {
            Expiry::Expired
        } else if !state.warned && now.plus_seconds(warning_seconds) >= state.expires_at {
            state.warned = true;
            Expiry::Warn(state.expires_at)
        } else {
            Expiry::Valid
        }
    }

    /// Marks the socket gone: its delivery stops.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Fires when the socket is gone.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}
