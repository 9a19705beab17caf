//! Seed 000's `chat.ChatService`: one bidirectional `Chat` whose every message goes to every
//! connected client.
//!
//! The seed's bug was a server that stopped reading and closed the stream while its client
//! still waited for replies. Here one response stream both reads the client's messages and
//! delivers the conversation, so neither side waits for the other; a half-close leaves the
//! conversation, and the call ends OK once every line already queued for this client
//! (the echoes of its own messages included) has been delivered.

use std::sync::Arc;

use futures_util::{StreamExt as _, stream};
use streamhub_api::chat::{Message, chat_service_server};
use streamhub_biz::{
    auth::Caller,
    compat::{ChatLine, ChatMember, ConversationHub},
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Shutdown,
    status::to_status,
    stream::{ResponseStream, until_stopped},
};

/// The handler of `chat.ChatService`.
#[derive(Debug, Clone)]
pub struct ChatService {
    hub: ConversationHub,
    shutdown: Shutdown,
}

impl ChatService {
    pub(crate) fn new(hub: ConversationHub, shutdown: &Shutdown) -> Self {
        Self {
            hub,
            shutdown: shutdown.clone(),
        }
    }
}

fn line_of(message: Message) -> ChatLine {
    ChatLine {
        user: message.user,
        text: message.text,
        timestamp: message.timestamp,
    }
}

fn message_of(line: &ChatLine) -> Message {
    Message {
        user: line.user.clone(),
        text: line.text.clone(),
        timestamp: line.timestamp,
    }
}

/// One client's call: its requests and its place in the conversation.
struct ChatCall {
    requests: Streaming<Message>,
    member: ChatMember,
    /// Who the call authenticated as; a message's `user` must be that user.
    caller: Caller,
    /// False once the client has half-closed.
    reading: bool,
}

impl ChatCall {
    /// The next message for the client, reading its requests while there is none to send.
    async fn next_reply(&mut self) -> Option<Result<Message, Status>> {
        loop {
            // Unbiased: in a busy conversation neither the client's own messages nor the
            // lines for it may starve the other.
            tokio::select! {
                line = self.member.next_line() => {
                    return line.map(|line| {
                        line.map(|line: Arc<ChatLine>| message_of(&line)).map_err(to_status)
                    });
                }
                request = self.requests.next(), if self.reading => match request {
                    Some(Ok(message)) => {
                        // The seed's clients name themselves in `user`; with tokens, only as
                        // the token's user.
                        if !message.user.is_empty()
                            && let Err(err) = self.caller.check_claim("user", &message.user)
                        {
                            return Some(Err(to_status(err)));
                        }
                        self.member.say(line_of(message));
                    }
                    Some(Err(status)) => return Some(Err(status)),
                    None => {
                        self.reading = false;
                        self.member.leave();
                    }
                },
            }
        }
    }
}

#[tonic::async_trait]
impl chat_service_server::ChatService for ChatService {
    type ChatStream = ResponseStream<Message>;

    async fn chat(
        &self,
        request: Request<Streaming<Message>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        // Joined before the response starts, so a client whose call is open receives every
        // line said from then on.
        let caller = request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_default();
        let call = ChatCall {
            caller,
            requests: request.into_inner(),
            member: self.hub.join(),
            reading: true,
        };
        let replies = stream::unfold(Some(call), |call| async move {
            let mut call = call?;
            let reply = call.next_reply().await?;
            // An error ends the call; dropping it leaves the conversation.
            let next = reply.is_ok().then_some(call);
            Some((reply, next))
        });
        Ok(Response::new(until_stopped(
            replies,
            self.shutdown.stopping.clone(),
        )))
    }
}
