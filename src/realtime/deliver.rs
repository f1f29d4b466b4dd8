//! One socket's stream of log events: first what it missed (from the log, from its position),
//! then the live batches the fan-out hands it, each event once and in log order. A socket
//! that falls too far behind the live stream catches up from the log again, so it never sees
//! a gap.
//!
//! Catch-up and live delivery decide alike: the catch-up stamps events with its own
//! [`Stamper`] started at the socket's position, the fan-out with one started where it began
//! tailing; both rebuild what they do not know from the log at their cursor. Every event
//! passed moves the socket's [`Standing`]: the agent's own account events move their rights
//! (and the keys the fan-out's index files the socket under), and an event that takes a
//! conversation out of their read scope takes the socket out of that conversation's room.
//! The live stream holds only the batches that concern the socket (module `index`); the
//! events in between concern it not.

use std::sync::Arc;
use std::time::Duration;

use socketioxide::extract::SocketRef;
use switchboard_domain::agent::Agent;

use super::audience::Audience;
use super::fanout::BATCH;
use super::session::{Session, Standing};
use super::stamp::{Delivery, Stamper};
use super::Hub;

/// The Socket.IO event that carries log events.
pub const EVENT: &str = "event";

/// How long a socket's full send buffer is waited on before the socket is dropped as too slow
/// (the client reconnects with its last position and misses nothing).
const SLOW_CONSUMER_GRACE: Duration = Duration::from_secs(5);

/// Conversation assignments one catching-up socket remembers (see [`Stamper`]).
const CATCH_UP_KEPT: usize = 10_000;

/// Streams the events after the session's standing to `socket` until it goes away.
pub async fn deliver(hub: Arc<Hub>, socket: SocketRef, session: Arc<Session>) {
    // Registered before catching up: what the catch-up does not read is queued.
    let mut live = hub.fanout.subscribe(socket.id, session.agent_id());
    let mut closed = session.closed();
    let mut cursor = session.standing().await.cursor;
    let log = hub.fanout.log().clone();
    loop {
        let mut stamper = Stamper::at(cursor, CATCH_UP_KEPT);
        loop {
            if *closed.borrow() {
                return;
            }
            let events: Vec<_> = match log.read_all(cursor, BATCH).await {
                Ok(events) if events.is_empty() => break,
                Ok(events) => events.into_iter().map(Arc::new).collect(),
                Err(error) => {
                    tracing::warn!(%error, "socket catch-up read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match stamper.stamp(&log, &events).await {
                Ok(deliveries) => {
                    for delivery in &deliveries {
                        if !pass(&hub, &socket, &session, delivery).await {
                            return;
                        }
                        cursor = delivery.cursor;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "socket catch-up failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        {
            let standing = session.standing().await;
            let index = hub.fanout.index();
            index.caught_up(socket.id, standing.rights.reader(), standing.cursor);
        }
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Some(batch) => {
                        for delivery in batch.iter() {
                            if delivery.cursor <= cursor {
                                continue;
                            }
                            if !pass(&hub, &socket, &session, delivery).await {
                                return;
                            }
                            cursor = delivery.cursor;
                        }
                        live.passed();
                    }
                    // Fell too far behind: catch up from the log again.
                    None => {
                        live.renew(session.agent_id());
                        break;
                    }
                },
                _ = closed.changed() => return,
            }
        }
    }
}

/// Moves the socket's standing over one delivery, then sends it if the agent may see it.
/// `false` when the socket is gone.
async fn pass(hub: &Hub, socket: &SocketRef, session: &Session, delivery: &Delivery) -> bool {
    let (admitted, left, deactivated) = {
        let mut standing = session.standing().await;
        let step = advance(hub, socket, session, &mut standing, delivery).await;
        (
            delivery.audience.admits(standing.rights.reader()),
            step.left,
            step.deactivated,
        )
    };
    for conversation in &left {
        hub.announce_viewers(conversation);
    }
    if deactivated && deactivated_now(hub, session).await {
        hub.close(
            socket.clone(),
            session,
            "agent_deactivated",
            "this agent is deactivated",
        );
        return false;
    }
    if !admitted {
        return true;
    }
    send(hub, socket, session, delivery).await
}

/// What passing one event changed beyond the standing itself.
#[derive(Default)]
struct Step {
    /// Conversations whose room the socket left.
    left: Vec<String>,
    /// The agent was deactivated at this point of the log.
    deactivated: bool,
}

/// Moves `standing` over `delivery`: the agent's rights, and the conversation rooms the
/// socket may stay in.
async fn advance(
    hub: &Hub,
    socket: &SocketRef,
    session: &Session,
    standing: &mut Standing,
    delivery: &Delivery,
) -> Step {
    standing.cursor = delivery.cursor;
    let mut step = Step::default();
    match (&delivery.audience, &delivery.account) {
        (Audience::Agent(agent), Some(event)) if *agent == session.agent_id() => {
            let was_active = standing.rights.is_active();
            if standing.rights.apply(event.clone()) {
                step.left = hub.leave_rooms_out_of_scope(socket, standing).await;
            }
            let index = hub.fanout.index();
            index.rights_passed(socket.id, standing.rights.reader(), standing.cursor);
            step.deactivated = was_active && !standing.rights.is_active();
        }
        (
            Audience::Conversation {
                id, after, before, ..
            },
            _,
        ) if after != before => {
            let lost = !standing.rights.reader().may_read(*after);
            if lost && hub.leave_room(socket, id) {
                step.left.push(id.clone());
            }
        }
        _ => {}
    }
    step
}

/// Whether the agent is deactivated now (not only at the point the stream has reached): a
/// socket replaying a deactivation that was undone since stays open.
async fn deactivated_now(hub: &Hub, session: &Session) -> bool {
    let id = session.agent_id().to_string();
    match hub.app.log.load_aggregate::<Agent>(&id).await {
        Ok((agent, _)) => !agent.is_active(),
        Err(error) => {
            tracing::warn!(%error, "checking whether an agent is deactivated failed");
            false
        }
    }
}

/// The socket event that tells an agent a note mentions them.
const MENTION: &str = "mention";

/// Whether `delivery` is a note mentioning the socket's agent.
fn mentions(delivery: &Delivery, session: &Session) -> bool {
    matches!(&delivery.audience, Audience::Conversation { mentioned, .. }
        if mentioned.contains(&session.agent_id()))
}

/// Sends one delivery. `false` when the socket is gone.
///
/// A note mentioning the socket's agent goes out twice: first as `mention` (the same envelope,
/// for notifications), then as `event`. In that order a socket that drops between the two
/// resumes before the event and receives both again; positions reveal the duplicate.
async fn send(hub: &Hub, socket: &SocketRef, session: &Session, delivery: &Delivery) -> bool {
    if mentions(delivery, session) && !emit(hub, socket, session, MENTION, delivery).await {
        return false;
    }
    if !emit(hub, socket, session, EVENT, delivery).await {
        return false;
    }
    metrics::counter!(crate::metrics::SOCKET_EVENTS_SENT).increment(1);
    true
}

/// Emits `delivery` as `name`, waiting out a full channel for a while; a socket that stays
/// behind is closed. `false` when the socket is gone.
async fn emit(
    hub: &Hub,
    socket: &SocketRef,
    session: &Session,
    name: &'static str,
    delivery: &Delivery,
) -> bool {
    let started = tokio::time::Instant::now();
    loop {
        match socket.emit(name, &*delivery.json) {
            Ok(()) => return true,
            Err(socketioxide::SendError::Socket(
                socketioxide::SocketError::InternalChannelFull,
            )) if started.elapsed() < SLOW_CONSUMER_GRACE => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(socketioxide::SendError::Socket(
                socketioxide::SocketError::InternalChannelFull,
            )) => {
                hub.close(
                    socket.clone(),
                    session,
                    "slow_consumer",
                    "the socket fell too far behind; reconnect with last_position",
                );
                return false;
            }
            Err(error) => {
                tracing::debug!(%error, "socket gone");
                return false;
            }
        }
    }
}
