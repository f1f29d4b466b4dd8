//! One socket's stream of log events: first what it missed (from the log, from its position),
//! then live batches from the fan-out, each event once and in log order. A socket that falls
//! too far behind the live stream catches up from the log again, so it never sees a gap.

use std::sync::Arc;
use std::time::Duration;

use socketioxide::extract::SocketRef;
use switchboard_store::LogCursor;
use tokio::sync::broadcast::error::RecvError;

use super::fanout::Delivery;
use super::session::Session;
use super::Hub;

/// The Socket.IO event that carries log events.
pub const EVENT: &str = "event";

/// How long a socket's full send buffer is waited on before the socket is dropped as too slow
/// (the client reconnects with its last position and misses nothing).
const SLOW_CONSUMER_GRACE: Duration = Duration::from_secs(5);

/// Streams events after `from` to `socket` until it goes away.
pub async fn deliver(hub: Arc<Hub>, socket: SocketRef, session: Arc<Session>, from: LogCursor) {
    let mut live = hub.fanout.subscribe();
    let mut closed = session.closed();
    let mut cursor = from;
    'catch_up: loop {
        loop {
            if *closed.borrow() {
                return;
            }
            let events = match hub.fanout.log().read_all(cursor, 500).await {
                Ok(events) if events.is_empty() => break,
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(%error, "socket catch-up read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let last = events.last().map_or(cursor, |e| e.cursor);
            match hub.fanout.history(events).await {
                Ok(deliveries) => {
                    for delivery in &deliveries {
                        if !send(&hub, &socket, &session, delivery).await {
                            return;
                        }
                    }
                    cursor = last;
                }
                Err(error) => {
                    tracing::warn!(%error, "socket catch-up failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(batch) => {
                        for delivery in batch.iter() {
                            if delivery.cursor <= cursor {
                                continue;
                            }
                            if !send(&hub, &socket, &session, delivery).await {
                                return;
                            }
                            cursor = delivery.cursor;
                        }
                    }
                    Err(RecvError::Lagged(_)) => continue 'catch_up,
                    Err(RecvError::Closed) => return,
                },
                _ = closed.changed() => return,
            }
        }
    }
}

/// Sends one delivery if the agent may see it. `false` when the socket is gone.
async fn send(hub: &Hub, socket: &SocketRef, session: &Session, delivery: &Delivery) -> bool {
    if let super::audience::Audience::Agent(agent) = &delivery.audience {
        if *agent == session.agent_id() && !hub.reload_rights(socket, session).await {
            return false;
        }
    }
    if !session.with_actor(|actor| delivery.audience.admits(actor)) {
        return true;
    }
    let started = tokio::time::Instant::now();
    loop {
        match socket.emit(EVENT, &*delivery.json) {
            Ok(()) => {
                metrics::counter!(crate::metrics::SOCKET_EVENTS_SENT).increment(1);
                return true;
            }
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
