//! One agent's socket: who is behind it, until when its token holds, where its stream stands
//! in the log (with the agent's rights at that point), and the signal that stops its delivery
//! when it goes away.

use std::sync::{Mutex, MutexGuard, PoisonError};

use switchboard_domain::{AgentId, Timestamp};
use switchboard_store::LogCursor;
use tokio::sync::watch;

use super::as_of::Rights;
use crate::http::extract::AuthAgent;

/// The agent behind a socket and the token they connected (or last refreshed) with.
pub struct Session {
    agent_id: AgentId,
    state: Mutex<State>,
    standing: tokio::sync::Mutex<Standing>,
    closed: watch::Sender<bool>,
    /// The agent's share of the instance's sockets, given back when the session is dropped.
    _slot: super::slots::Slot,
}

struct State {
    family: String,
    expires_at: Timestamp,
    warned: bool,
}

/// Where a socket's stream stands: the last event it has passed (sent or not), and the
/// agent's rights as the log stood there.
///
/// What the socket receives and which conversation rooms it may be in are decided from this,
/// never from the agent's rights now: a change of rights applies when the stream reaches it
/// in the log, which is at once for a socket that is up to date, and at the same place for a
/// socket replaying the log later.
pub struct Standing {
    /// The last event passed.
    pub cursor: LogCursor,
    /// The agent's rights at `cursor`.
    pub rights: Rights,
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
    /// A session for an authenticated agent whose stream starts at `standing`.
    pub fn new(auth: AuthAgent, standing: Standing, slot: super::slots::Slot) -> Self {
        Self {
            agent_id: auth.actor.agent_id,
            state: Mutex::new(State {
                family: auth.session_id,
                expires_at: auth.expires_at,
                warned: false,
            }),
            standing: tokio::sync::Mutex::new(standing),
            closed: watch::Sender::new(false),
            _slot: slot,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The agent.
    pub fn agent_id(&self) -> AgentId {
        self.agent_id
    }

    /// The stream's standing, locked: the delivery task moves it event by event; joining a
    /// conversation holds it while checking the read scope and entering the room, so that no
    /// event taking the conversation away can pass in between.
    pub async fn standing(&self) -> tokio::sync::MutexGuard<'_, Standing> {
        self.standing.lock().await
    }

    /// A refreshed token (`auth:refresh`): new expiry, a new warning to come. The rights it
    /// carries are not taken: they are the rights now, and the stream follows the log.
    pub fn refresh(&self, auth: AuthAgent) {
        let mut state = self.state();
        state.family = auth.session_id;
        state.expires_at = auth.expires_at;
        state.warned = false;
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
