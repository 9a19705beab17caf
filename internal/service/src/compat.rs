//! The seeds' other services, served beside `streaming.StreamingService` on the same
//! port so clients generated from the seeds' protos work unchanged: seed 000's
//! `chat.ChatService`, seed 002's `proto.StreamService`, seed 003's `service.v1.Service`
//! (Chatify) and seed 004's three `helloworld` services. One file per seed; each only
//! translates protobuf to the rules in `streamhub_biz::compat` and back.

mod chat;
mod chatify;
mod helloworld;
mod stream_service;

use std::time::Duration;

use futures_util::{Stream, StreamExt as _, stream};
use streamhub_biz::compat::ConversationHub;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use crate::{
    Shutdown,
    request_stream::{OnShutdown, request_stream},
};

pub use chat::ChatService;
pub use chatify::ChatifyService;
pub use helloworld::HelloworldService;
pub use stream_service::StreamService;

/// The compat handlers, served together or not at all (`compat.enabled`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompatServices {
    pub chat: ChatService,
    pub stream: StreamService,
    pub chatify: ChatifyService,
    pub helloworld: HelloworldService,
}

impl CompatServices {
    /// Builds the handlers. `hub` is seed 000's conversation; `pace` separates the messages a
    /// server stream generates by itself; `max_message_bytes` is the largest message the
    /// server sends (a reply built from many requests must fit in it); `shutdown` ends the
    /// streams.
    pub fn new(
        hub: ConversationHub,
        pace: Duration,
        max_message_bytes: usize,
        shutdown: &Shutdown,
    ) -> Self {
        Self {
            chat: ChatService::new(hub, shutdown),
            stream: StreamService::new(pace, shutdown),
            chatify: ChatifyService::new(shutdown),
            helloworld: HelloworldService::new(pace, max_message_bytes, shutdown),
        }
    }
}

/// `items` as a stream with `pace` between consecutive items (none before the first). The
/// seeds sleep a second here for demonstration; streamhub only pauses when configured to.
fn paced<T: Send + 'static>(
    items: impl Iterator<Item = T> + Send + 'static,
    pace: Duration,
) -> impl Stream<Item = T> + Send + 'static {
    stream::iter(items.enumerate()).then(move |(index, item)| async move {
        if index > 0 && !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
        item
    })
}

/// Reads a client stream to its confirmed half-close, handing each message to `on_message`;
/// ends with `UNAVAILABLE` if shutdown starts while it waits, so a client that never
/// half-closes cannot hold the server open, and with `CANCELLED` if the client cancelled.
async fn read_to_half_close<T, F>(
    inbound: Streaming<T>,
    stopping: &CancellationToken,
    mut on_message: F,
) -> Result<(), Status>
where
    T: Send + 'static,
    F: FnMut(T) -> Result<(), Status>,
{
    let (messages, half_close) = request_stream(inbound, OnShutdown::EndWhenIdle(stopping.clone()));
    half_close
        .confirm_while(async {
            let mut messages = std::pin::pin!(messages);
            while let Some(message) = messages.next().await.transpose()? {
                on_message(message)?;
            }
            Ok(())
        })
        .await
}
