//! A chat client: [`ChatMember`] joins a room and reads its events within bounded waits;
//! [`open_chat`] is the unbounded core a benchmark's hot loop uses.

use streamhub_api::streaming::{ChatMessage, streaming_service_client::StreamingServiceClient};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming, transport::Channel};

use crate::within;

/// Requests a [`ChatMember`] may have queued before sending waits.
const QUEUE: usize = 16;

/// Opens a Chat stream on `channel` whose first message is `first` (the join), with room for
/// `queue` requests; returns the request sender and the events. Waits on nothing but the call
/// itself: callers bound it.
pub async fn open_chat(
    channel: Channel,
    first: ChatMessage,
    queue: usize,
) -> (mpsc::Sender<ChatMessage>, Streaming<ChatMessage>) {
    let (outbound, requests) = mpsc::channel(queue);
    // Queued before the call starts: the join is on its way as soon as the call is.
    outbound.send(first).await.expect("queue the first message");
    let inbound = StreamingServiceClient::new(channel)
        .chat(ReceiverStream::new(requests))
        .await
        .expect("Chat opens")
        .into_inner();
    (outbound, inbound)
}

/// One client stream in a chat room.
#[derive(Debug)]
pub struct ChatMember {
    pub user: String,
    pub room: String,
    /// The requests; `None` once the client has half-closed.
    pub outbound: Option<mpsc::Sender<ChatMessage>>,
    /// The room's events.
    pub inbound: Streaming<ChatMessage>,
}

impl ChatMember {
    /// Opens a stream on `channel` whose first message joins `room` as `user`, resuming after
    /// `last_seen_id` (0: a new member).
    pub async fn join(channel: &Channel, room: &str, user: &str, last_seen_id: i64) -> Self {
        Self::open(
            channel,
            ChatMessage {
                room_id: room.to_owned(),
                user_id: user.to_owned(),
                last_seen_id,
                ..ChatMessage::default()
            },
        )
        .await
    }

    /// Opens a stream whose first message is `first`, whatever it holds (tests of bad joins).
    pub async fn open(channel: &Channel, first: ChatMessage) -> Self {
        let user = first.user_id.clone();
        let room = first.room_id.clone();
        let (outbound, inbound) = within(
            "the chat stream to open",
            open_chat(channel.clone(), first, QUEUE),
        )
        .await;
        Self {
            user,
            room,
            outbound: Some(outbound),
            inbound,
        }
    }

    /// Sends `message` as it is.
    pub async fn send_raw(&self, message: ChatMessage) {
        self.outbound
            .as_ref()
            .expect("not half-closed")
            .send(message)
            .await
            .expect("the request stream is open");
    }

    /// Says `text` in the room, naming the room and user as a client does.
    pub async fn say(&self, text: &str) {
        self.send_raw(ChatMessage {
            room_id: self.room.clone(),
            user_id: self.user.clone(),
            message: text.to_owned(),
            ..ChatMessage::default()
        })
        .await;
    }

    /// Ends the requests: the client's half-close, a normal leave.
    pub fn half_close(&mut self) {
        self.outbound = None;
    }

    /// The next event, which must come within [`crate::WAIT`].
    pub async fn next(&mut self) -> ChatMessage {
        within(
            &format!("{}'s next chat event", self.user),
            self.inbound.message(),
        )
        .await
        .unwrap_or_else(|err| panic!("{} got {err} instead of an event", self.user))
        .unwrap_or_else(|| panic!("{}'s stream ended instead of an event", self.user))
    }

    /// Skips events until one of `kind` from `user` comes; returns it.
    pub async fn next_matching(&mut self, kind: &str, user: &str) -> ChatMessage {
        loop {
            let event = self.next().await;
            if event.kind == kind && event.user_id == user {
                return event;
            }
        }
    }

    /// Reads events up to and including the first of `kind` from `user`; returns them all.
    pub async fn until(&mut self, kind: &str, user: &str) -> Vec<ChatMessage> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await;
            let found = event.kind == kind && event.user_id == user;
            seen.push(event);
            if found {
                return seen;
            }
        }
    }

    /// Reads until the stream ends with an error, which it returns.
    pub async fn error(&mut self) -> Status {
        loop {
            match within("the stream to end", self.inbound.message()).await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("{}'s stream ended OK instead of with an error", self.user),
                Err(status) => return status,
            }
        }
    }
}
