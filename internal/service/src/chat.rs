//! `Chat`: one bidirectional stream per member of one room.
//!
//! The response stream is the whole handler: it reads the client's messages and the room's
//! events in the same `select!`, so a member that only reads, only writes or half-closes is
//! served alike (the seed read and wrote in turn, and cut clients off at the half-close). The
//! stream owns the membership: when tonic drops it (client gone, shutdown) the member leaves
//! and the room announces it.

use std::sync::Arc;

use futures_util::stream;
use streamhub_api::streaming::ChatMessage;
use streamhub_biz::{
    Result as BizResult,
    auth::Caller,
    chat::{ChatEvent, Membership, RoomHub},
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Shutdown, caller_of,
    status::to_status,
    stream::ResponseStream,
    stream_identity::{IdField, IdentityRule, Ids},
    until_stopped,
};

/// One room and one user per stream.
const ROOM_STREAM: IdentityRule = IdentityRule {
    scope: IdField {
        name: "room_id",
        noun: "room",
    },
    user: IdField {
        name: "user_id",
        noun: "user",
    },
    default_scope: None,
};

/// The Chat handler: the rooms plus the shutdown that ends every member's stream.
#[derive(Debug, Clone)]
pub(crate) struct ChatHandlers {
    rooms: RoomHub,
    shutdown: Shutdown,
}

impl ChatHandlers {
    pub(crate) fn new(rooms: RoomHub, shutdown: &Shutdown) -> Self {
        Self {
            rooms,
            shutdown: shutdown.clone(),
        }
    }

    /// The response stream of one member: it joins with the first message and leaves when
    /// the stream ends.
    pub(crate) fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<ResponseStream<ChatMessage>>, Status> {
        let state = ChatStream {
            hub: self.rooms.clone(),
            caller: caller_of(&request),
            inbound: request.into_inner(),
            membership: None,
            reading: true,
            finished: false,
        };
        Ok(Response::new(until_stopped(
            stream::unfold(state, ChatStream::step),
            self.shutdown.stopping.clone(),
        )))
    }
}

struct ChatStream {
    hub: RoomHub,
    /// Who the call authenticated as; the stream's user_id must be that user.
    caller: Caller,
    inbound: Streaming<ChatMessage>,
    /// Set by the first message.
    membership: Option<Membership>,
    /// False once the client has half-closed.
    reading: bool,
    finished: bool,
}

/// What woke the stream up.
enum Wake {
    Event(Option<BizResult<Arc<ChatEvent>>>),
    Inbound(Result<Option<ChatMessage>, Status>),
}

impl ChatStream {
    async fn step(mut self) -> Option<(Result<ChatMessage, Status>, Self)> {
        if self.finished {
            return None;
        }
        loop {
            let Some(membership) = self.membership.as_mut() else {
                // Nothing to deliver before the first message names the room.
                match self.inbound.message().await {
                    Ok(Some(first)) => match self.join(first).await {
                        Ok(()) => continue,
                        Err(status) => return self.fail(status),
                    },
                    Ok(None) => return None,
                    Err(status) => return self.fail(status),
                }
            };
            // Unbiased: a member flooded with events still gets its own messages read.
            let wake = tokio::select! {
                event = membership.next() => Wake::Event(event),
                message = self.inbound.message(), if self.reading => Wake::Inbound(message),
            };
            match wake {
                Wake::Event(Some(Ok(event))) => return Some((Ok(to_message(&event)), self)),
                Wake::Event(Some(Err(err))) => return self.fail(to_status(err)),
                // Left the room and delivered everything queued before: a clean end.
                Wake::Event(None) => return None,
                Wake::Inbound(Ok(Some(message))) => {
                    if let Err(status) = self.accept(message).await {
                        return self.fail(status);
                    }
                }
                Wake::Inbound(Ok(None)) => {
                    // Half-close: leave now, then drain what was queued before the leave.
                    self.reading = false;
                    membership.leave();
                }
                Wake::Inbound(Err(status)) => return self.fail(status),
            }
        }
    }

    /// The first message: join its room, then post its text if it has one.
    async fn join(&mut self, first: ChatMessage) -> Result<(), Status> {
        let ids = ROOM_STREAM.first(
            &self.caller,
            Ids {
                scope: &first.room_id,
                user: &first.user_id,
            },
        )?;
        if first.last_seen_id < 0 {
            return Err(Status::invalid_argument(format!(
                "last_seen_id {} must not be negative",
                first.last_seen_id
            )));
        }
        // Checked before joining, so a refused text causes no join and leave in the room.
        self.hub.check_text(&first.message).map_err(to_status)?;
        let membership = self
            .hub
            .join(ids.scope, ids.user, first.last_seen_id)
            .await
            .map_err(to_status)?;
        let membership = self.membership.insert(membership);
        if !first.message.is_empty() {
            membership.send(first.message).await.map_err(to_status)?;
        }
        Ok(())
    }

    /// A later message: same room, same user; an empty text posts nothing.
    async fn accept(&mut self, message: ChatMessage) -> Result<(), Status> {
        let Some(membership) = &mut self.membership else {
            return Err(Status::internal("chat message before the join"));
        };
        ROOM_STREAM.later(
            &self.caller,
            Ids {
                scope: membership.room_id(),
                user: membership.user_id(),
            },
            Ids {
                scope: &message.room_id,
                user: &message.user_id,
            },
        )?;
        if message.message.is_empty() {
            return Ok(());
        }
        membership.send(message.message).await.map_err(to_status)
    }

    /// Ends the stream with `status`, leaving the room at once.
    fn fail(mut self, status: Status) -> Option<(Result<ChatMessage, Status>, Self)> {
        self.membership = None;
        self.finished = true;
        Some((Err(status), self))
    }
}

fn to_message(event: &ChatEvent) -> ChatMessage {
    ChatMessage {
        user_id: event.user_id.clone(),
        room_id: event.room_id.clone(),
        message: event.text.clone(),
        timestamp: Some(event.at.into()),
        id: event.id,
        kind: event.kind.as_str().to_owned(),
        last_seen_id: 0,
    }
}
