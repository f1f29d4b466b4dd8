//! Live updates for agents over Socket.IO (socketioxide, at `/socket.io/`, for socket.io-client 4).
//!
//! - **Handshake**: `auth: {token, last_position?}`. A bad, expired or revoked token, or a
//!   negative or unknown position, is refused at connect; the client's `connect_error` message
//!   is `"<code>: <message>"`.
//! - **Events**: every log event the agent may see arrives as `event` with one [`Envelope`]
//!   (`position`, `type`, `conversation_id`, `data`, `at`, …), in log order. Conversation and
//!   message events follow the agent's read scope as the conversation was assigned before or
//!   after the event (so an agent sees the event that takes a conversation away); account
//!   events go to the agent concerned and to agent managers.
//! - **Replay = live**: who receives an event is a function of the log up to that event: the
//!   conversation's assignment there, and the agent's rights there (their own account events
//!   are in the log; the stream applies them where they lie). So a change of rights applies to
//!   an open socket as soon as its stream reaches it, and a socket replaying the log from any
//!   earlier position receives exactly what a live one did (modules `stamp`, `as_of`).
//! - **Resume**: with `last_position` the socket first receives, from the log, everything after
//!   it that the agent may see, then live events: no gap, and positions reveal any duplicate.
//! - **Rooms**: `agent:{id}` and `broadcasts` on connect; `conversation:join` /
//!   `conversation:leave {conversation_id}` (read scope checked) put the socket in
//!   `conversation:{id}`, whose members receive `presence` (who is viewing, for collision
//!   warnings). A socket whose agent loses the conversation is taken out (module `presence`).
//! - **Tokens**: `auth:refresh {token}` swaps the token in place (acknowledged);
//!   `session:expiring` comes ahead of expiry; an expired socket gets `session:expired` and is
//!   disconnected, as is one whose login ended (logout, revocation) or whose agent is
//!   deactivated.
//! - **Several instances**: each tails the log itself (module `fanout`); no broker. Presence
//!   is per instance (it is not in the log).
//! - **Scoped fan-out**: each event is serialized once per instance, and a batch wakes only
//!   the sockets it concerns, found through an index of the sockets by what their agents may
//!   see (module `index`).

mod as_of;
mod audience;
mod deliver;
mod envelope;
mod fanout;
mod index;
mod presence;
mod session;
mod slots;
mod stamp;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::{DisconnectReason, Sid};
use socketioxide::SocketIo;
use tokio::sync::watch;

pub use envelope::{conversation_of, Envelope, EnvelopeOf};

use crate::config::RealtimeSettings;
use crate::http::extract::authenticate;
use crate::http::{ApiError, AppState};
use as_of::Rights;
use fanout::Fanout;
use session::{Expiry, Session, Standing};

/// Why the realtime side could not do something.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    /// The event log failed.
    #[error("event log")]
    Store(#[from] switchboard_store::StoreError),
    /// A read model failed.
    #[error("read model")]
    Projection(#[from] switchboard_projections::ProjectionError),
    /// An event could not be serialized.
    #[error("serialization")]
    Json(#[from] serde_json::Error),
}

/// The Socket.IO side of one server instance.
#[derive(Clone)]
pub struct Realtime {
    hub: Arc<Hub>,
}

/// What every socket handler shares.
pub(crate) struct Hub {
    app: AppState,
    io: SocketIo,
    fanout: Arc<Fanout>,
    sockets: Mutex<HashMap<Sid, (SocketRef, Arc<Session>)>>,
    slots: Arc<slots::Slots>,
    settings: RealtimeSettings,
}

/// The handshake's `auth` object.
#[derive(Deserialize)]
struct Handshake {
    token: String,
    #[serde(default)]
    last_position: Option<i64>,
}

/// A refused connection: the client sees `"<code>: <message>"`.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self(format!("{}: {error}", error.code()))
    }
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

#[derive(Deserialize)]
struct ConversationBody {
    conversation_id: String,
}

impl Realtime {
    /// The Socket.IO layer to put in front of the HTTP router, and the handle that runs the
    /// fan-out and the token-expiry sweep.
    pub fn new(app: AppState, settings: RealtimeSettings) -> (SocketIoLayer, Self) {
        let (layer, io) = SocketIo::builder()
            .ping_interval(settings.ping_interval)
            .ping_timeout(settings.ping_timeout)
            .max_buffer_size(settings.max_buffered_packets)
            .build_layer();
        let hub = Arc::new(Hub {
            fanout: Fanout::new(app.log.clone()),
            app,
            io: io.clone(),
            sockets: Mutex::new(HashMap::new()),
            slots: Arc::default(),
            settings,
        });
        // Handlers hold the hub weakly: sockets are owned by the hub's map and the hub must
        // not be kept alive by its own sockets once the server stops.
        let on_connect = {
            let hub = Arc::downgrade(&hub);
            async move |socket: SocketRef| {
                if let Some(hub) = hub.upgrade() {
                    hub.connected(socket);
                }
            }
        };
        let authenticate = {
            let hub = Arc::downgrade(&hub);
            async move |socket: SocketRef, TryData(handshake): TryData<Handshake>| match hub
                .upgrade()
            {
                Some(hub) => hub.authenticate(&socket, handshake.ok()).await,
                None => Err(Refusal("shutting_down: the server is stopping".to_owned())),
            }
        };
        io.ns("/", on_connect.with(authenticate));
        (layer, Self { hub })
    }

    /// Tails the log and feeds this instance's sockets until `shutdown` fires.
    pub async fn run_fanout(self, shutdown: watch::Receiver<bool>) {
        Arc::clone(&self.hub.fanout).run(shutdown).await;
    }

    /// Warns sockets whose token is about to expire and closes those whose token has, until
    /// `shutdown` fires.
    pub async fn run_expiry(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.hub.settings.sweep_interval) => {
                    self.hub.sweep();
                    self.hub.close_ended_logins().await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// How many sockets each agent has open on this instance (by agent id).
    pub fn agents_connected(&self) -> HashMap<String, usize> {
        self.hub
            .slots
            .by_agent()
            .into_iter()
            .map(|(agent, count)| (agent.to_string(), count))
            .collect()
    }

    /// Disconnects every socket (at shutdown).
    /// Each socket first gets `server:closing {reconnect: true, retry_after_ms}`: the server is
    /// stopping (a deploy or a restart), not refusing the agent, so a client reconnects, to
    /// this instance once it is back or to another, and resumes from its last position.
    pub async fn close(&self) {
        let hint = json!({"reconnect": true, "retry_after_ms": 1000});
        if let Err(error) = self
            .hub
            .io
            .to("broadcasts")
            .emit("server:closing", &hint)
            .await
        {
            tracing::debug!(%error, "closing hint not sent to every socket");
        }
        self.hub.io.close().await;
    }
}

impl Hub {
    /// The connect middleware: a valid token, and a valid position if one is given.
    async fn authenticate(
        &self,
        socket: &SocketRef,
        handshake: Option<Handshake>,
    ) -> Result<(), Refusal> {
        let refuse = |code: &str, message: &str| Refusal(format!("{code}: {message}"));
        let handshake = handshake.ok_or_else(|| {
            refuse(
                "invalid_handshake",
                "the handshake auth must be {token, last_position?}",
            )
        })?;
        let auth = authenticate(&self.app, &handshake.token)
            .await
            .inspect_err(|error| {
                metrics::counter!(crate::metrics::AUTH_FAILURES, "reason" => error.code())
                    .increment(1);
            })?;
        let cap = self.app.edge.sockets_per_agent;
        let Some(slot) = self.slots.take(auth.actor.agent_id, cap) else {
            metrics::counter!(crate::metrics::RATE_LIMITED, "limit" => "sockets_per_agent")
                .increment(1);
            return Err(refuse(
                "too_many_sockets",
                &format!("an agent may hold {cap} live sockets on one server: close one first"),
            ));
        };
        let start = match handshake.last_position {
            Some(position) if position < 0 => {
                return Err(refuse(
                    "invalid_handshake",
                    &format!(
                        "last_position must be a position the server sent, or 0 for the \
                         start of the log, not {position}"
                    ),
                ))
            }
            Some(position) => match self.app.log.cursor_after(position).await {
                Ok(cursor) => cursor,
                Err(switchboard_store::StoreError::UnknownPosition(_)) => {
                    return Err(refuse(
                        "unknown_position",
                        &format!("no event at position {position}"),
                    ))
                }
                Err(error) => return Err(ApiError::from(error).into()),
            },
            None => self.fanout.head(),
        };
        // The stream decides with the agent's rights where it starts, not with those of now.
        let rights = Rights::at(&self.app.log, auth.actor.agent_id, start)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "loading an agent's rights for a socket failed");
                refuse("service_unavailable", "try again")
            })?;
        let standing = Standing {
            cursor: start,
            rights,
        };
        socket
            .extensions
            .insert(Arc::new(Session::new(auth, standing, slot)));
        Ok(())
    }

    /// A socket passed the handshake: rooms, handlers, and its stream of events.
    fn connected(self: Arc<Self>, socket: SocketRef) {
        let Some(session) = socket.extensions.get::<Arc<Session>>() else {
            let _ = socket.disconnect();
            return;
        };
        socket.join(vec![
            format!("agent:{}", session.agent_id()),
            "broadcasts".to_owned(),
        ]);
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(socket.id, (socket.clone(), Arc::clone(&session)));
        self.app.sockets_connected.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(crate::metrics::SOCKETS_CONNECTED).increment(1.0);

        let hub = Arc::downgrade(&self);
        socket.on(
            "auth:refresh",
            async move |socket: SocketRef, TryData(body): TryData<TokenBody>, ack: AckSender| {
                let Some(hub) = hub.upgrade() else { return };
                let reply = hub.refresh(&socket, body.ok()).await;
                let _ = ack.send(&reply);
            },
        );
        let hub = Arc::downgrade(&self);
        socket.on(
            "conversation:join",
            async move |socket: SocketRef,
                        TryData(body): TryData<ConversationBody>,
                        ack: AckSender| {
                let Some(hub) = hub.upgrade() else { return };
                let reply = hub.join(&socket, body.ok()).await;
                let _ = ack.send(&reply);
            },
        );
        let hub = Arc::downgrade(&self);
        socket.on(
            "conversation:leave",
            async move |socket: SocketRef,
                        TryData(body): TryData<ConversationBody>,
                        ack: AckSender| {
                let Some(hub) = hub.upgrade() else { return };
                let reply = hub.leave(&socket, body.ok());
                let _ = ack.send(&reply);
            },
        );
        let hub = Arc::downgrade(&self);
        socket.on_disconnect(async move |socket: SocketRef, reason: DisconnectReason| {
            tracing::debug!(?reason, sid = %socket.id, "socket disconnected");
            let Some(hub) = hub.upgrade() else { return };
            hub.disconnected(&socket);
        });
        // Closed before its disconnect handler was registered: nothing else would remove it.
        if !socket.connected() {
            self.disconnected(&socket);
            return;
        }
        tokio::spawn(deliver::deliver(self, socket, session));
    }

    fn disconnected(&self, socket: &SocketRef) {
        let removed = self
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&socket.id);
        if let Some((_, session)) = removed {
            session.close();
            self.app.sockets_connected.fetch_sub(1, Ordering::Relaxed);
            metrics::gauge!(crate::metrics::SOCKETS_CONNECTED).decrement(1.0);
        }
        for room in socket.rooms() {
            if let Some(conversation) = room.strip_prefix("conversation:") {
                let conversation = conversation.to_owned();
                socket.leave(room.to_string());
                self.announce_viewers(&conversation);
            }
        }
    }

    /// `auth:refresh`: a new token of the same agent replaces the old one in place.
    async fn refresh(&self, socket: &SocketRef, body: Option<TokenBody>) -> Value {
        let Some(body) = body else {
            return invalid("expected {token}");
        };
        let Some(session) = socket.extensions.get::<Arc<Session>>() else {
            return invalid("not connected");
        };
        match authenticate(&self.app, &body.token).await {
            Ok(auth) if auth.actor.agent_id == session.agent_id() => {
                let expires_at = auth.expires_at.to_string();
                session.refresh(auth);
                json!({ "ok": true, "expires_at": expires_at })
            }
            Ok(_) => error_reply("wrong_agent", "the token belongs to another agent"),
            Err(error) => error_reply(error.code(), &error.to_string()),
        }
    }

    /// Every socket of this instance with its session, copied out of the lock.
    fn sockets(&self) -> Vec<(SocketRef, Arc<Session>)> {
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Tells the client why, then disconnects it.
    fn close(&self, socket: SocketRef, session: &Session, code: &'static str, message: &str) {
        let _ = socket.emit(
            "session:expired",
            &json!({ "code": code, "message": message }),
        );
        metrics::counter!(crate::metrics::SOCKETS_CLOSED, "reason" => code).increment(1);
        session.close();
        let _ = socket.disconnect();
    }

    /// Closes the sockets whose login ended (logout, revocation after a reused refresh token,
    /// deactivation): one query for all of them.
    async fn close_ended_logins(&self) {
        let sockets = self.sockets();
        if sockets.is_empty() {
            return;
        }
        let mut families: Vec<String> = sockets.iter().map(|(_, s)| s.family()).collect();
        families.sort_unstable();
        families.dedup();
        let now = self.app.clock.now().unix_millis();
        let ended = match crate::auth::sessions::ended(&self.app.database, &families, now).await {
            Ok(ended) => ended,
            Err(error) => {
                tracing::warn!(%error, "checking sockets' logins failed; retrying");
                return;
            }
        };
        for (socket, session) in sockets {
            if ended.contains(&session.family()) {
                self.close(
                    socket,
                    &session,
                    "session_revoked",
                    "this session has ended; log in again",
                );
            }
        }
    }

    /// One pass of the token-expiry check over every socket.
    fn sweep(&self) {
        let now = self.app.clock.now();
        let warning = i64::try_from(self.settings.expiry_warning.as_secs()).unwrap_or(60);
        let sockets = self.sockets();
        for (socket, session) in sockets {
            match session.expiry(now, warning) {
                Expiry::Valid => {}
                Expiry::Warn(expires_at) => {
                    let _ = socket.emit(
                        "session:expiring",
                        &json!({
                            "expires_at": expires_at.to_string(),
                            "seconds_left": (expires_at.unix_millis() - now.unix_millis()) / 1000,
                        }),
                    );
                }
                Expiry::Expired => self.close(
                    socket,
                    &session,
                    "token_expired",
                    "the access token expired without auth:refresh",
                ),
            }
        }
    }
}

fn error_reply(code: &str, message: &str) -> Value {
    json!({ "ok": false, "error": { "code": code, "message": message } })
}

fn invalid(message: &str) -> Value {
    error_reply("invalid_input", message)
}
