//! Conversation rooms and presence: `conversation:join` / `conversation:leave` put a socket in
//! and out of `conversation:{id}`, whose members are told who is viewing it (collision
//! warnings). Presence is per instance; it is not in the log.
//!
//! A socket is in a conversation's room only while its agent may read the conversation at the
//! point its stream has reached: joining is checked there, and the stream takes the socket out
//! (the others are told) when an event takes the conversation out of the agent's read scope:
//! an assignment elsewhere, a change of the agent's groups or read scope, a deactivation.

use std::sync::Arc;

use serde_json::{json, Value};
use socketioxide::extract::SocketRef;

use super::as_of;
use super::session::{Session, Standing};
use super::{error_reply, invalid, ConversationBody, Hub};

/// The room of a conversation.
fn room(conversation_id: &str) -> String {
    format!("conversation:{conversation_id}")
}

impl Hub {
    /// `conversation:join`: into the conversation's room, if the agent may read it at the point
    /// the socket's stream has reached (a conversation the stream has not reached yet is not
    /// found). That point is the fan-out's head once the socket has passed every batch handed
    /// to it.
    pub(super) async fn join(&self, socket: &SocketRef, body: Option<ConversationBody>) -> Value {
        let Some(body) = body else {
            return invalid("expected {conversation_id}");
        };
        let Some(session) = socket.extensions.get::<Arc<Session>>() else {
            return invalid("not connected");
        };
        let id = body.conversation_id.as_str();
        {
            // Held until the socket is in the room: an event that takes the conversation away
            // is passed either before the check or after the join, when the socket is found
            // in the room and taken out.
            let standing = session.standing().await;
            // The events between the last one the socket's task passed and the fan-out's head
            // that were not handed to it concern it not: checked at the head.
            let passed = self.fanout.index().passed(socket.id, standing.cursor);
            let found = as_of::assignments_at(self.fanout.log(), &[id], passed).await;
            let assignment = match found.map(|found| found.get(id).copied()) {
                Ok(Some(assignment)) => assignment,
                Ok(None) => return error_reply("not_found", "no such conversation"),
                Err(error) => {
                    tracing::warn!(%error, "conversation:join lookup failed");
                    return error_reply("service_unavailable", "try again");
                }
            };
            if !standing.rights.reader().may_read(assignment) {
                return error_reply("forbidden", "you may not read this conversation");
            }
            socket.join(room(id));
        }
        let viewers = self.announce_viewers(id);
        json!({ "ok": true, "viewers": viewers })
    }

    /// `conversation:leave`: out of the conversation's room.
    pub(super) fn leave(&self, socket: &SocketRef, body: Option<ConversationBody>) -> Value {
        let Some(body) = body else {
            return invalid("expected {conversation_id}");
        };
        socket.leave(room(&body.conversation_id));
        self.announce_viewers(&body.conversation_id);
        json!({ "ok": true })
    }

    /// Takes the socket out of a conversation's room; `true` if it was in it. The caller
    /// announces the viewers once it no longer holds the standing.
    pub(super) fn leave_room(&self, socket: &SocketRef, conversation_id: &str) -> bool {
        let room = room(conversation_id);
        let member = socket.rooms().iter().any(|r| *r == room);
        if member {
            socket.leave(room);
        }
        member
    }

    /// After a change of the agent's rights: takes the socket out of the rooms of the
    /// conversations it may no longer read at `standing`, and returns them. If their
    /// assignments cannot be looked up, it leaves every conversation room (the client may
    /// join again).
    pub(super) async fn leave_rooms_out_of_scope(
        &self,
        socket: &SocketRef,
        standing: &Standing,
    ) -> Vec<String> {
        let joined: Vec<String> = socket
            .rooms()
            .iter()
            .filter_map(|r| r.strip_prefix("conversation:").map(str::to_owned))
            .collect();
        if joined.is_empty() {
            return joined;
        }
        let ids: Vec<&str> = joined.iter().map(String::as_str).collect();
        let found = as_of::assignments_at(self.fanout.log(), &ids, standing.cursor).await;
        let found = found.unwrap_or_else(|error| {
            tracing::warn!(%error, "checking a socket's rooms failed; leaving them all");
            Default::default()
        });
        let reader = standing.rights.reader();
        let mut left = Vec::new();
        for id in joined {
            if !found.get(&id).is_some_and(|a| reader.may_read(*a)) {
                socket.leave(room(&id));
                left.push(id);
            }
        }
        left
    }

    /// Tells a conversation's room who is viewing it (on this instance); returns the list.
    pub(super) fn announce_viewers(&self, conversation_id: &str) -> Vec<String> {
        let room = room(conversation_id);
        let mut viewers: Vec<String> = self
            .io
            .within(room.clone())
            .sockets()
            .iter()
            .filter_map(|s| s.extensions.get::<Arc<Session>>())
            .map(|s| s.agent_id().to_string())
            .collect();
        viewers.sort_unstable();
        viewers.dedup();
        let presence = json!({
            "position": null,
            "type": "ConversationViewers",
            "conversation_id": conversation_id,
            "data": { "viewers": viewers },
            "at": self.app.clock.now().to_string(),
        });
        let io = self.io.clone();
        tokio::spawn(async move {
            if let Err(error) = io.to(room).emit("presence", &presence).await {
                tracing::debug!(%error, "presence not delivered");
            }
        });
        viewers
    }
}
