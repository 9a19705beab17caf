//! Seed 003's Chatify `service.v1.Service`: bidirectional `Chat`, one reply per request.

use futures_util::StreamExt as _;
use streamhub_api::service::v1::{ChatReq, ChatRsp, service_server};
use streamhub_biz::compat;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Shutdown,
    stream::{ResponseStream, until_stopped},
};

/// The handler of `service.v1.Service`.
#[derive(Debug, Clone)]
pub struct ChatifyService {
    shutdown: Shutdown,
}

impl ChatifyService {
    pub(crate) fn new(shutdown: &Shutdown) -> Self {
        Self {
            shutdown: shutdown.clone(),
        }
    }
}

#[tonic::async_trait]
impl service_server::Service for ChatifyService {
    type ChatStream = ResponseStream<ChatRsp>;

    async fn chat(
        &self,
        request: Request<Streaming<ChatReq>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let replies = request.into_inner().map(|request| {
            request.map(|request| ChatRsp {
                message: compat::chatify_reply(&request.name),
            })
        });
        Ok(Response::new(until_stopped(
            replies,
            self.shutdown.stopping.clone(),
        )))
    }
}
