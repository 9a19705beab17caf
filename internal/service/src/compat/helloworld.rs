//! Seed 004's package `helloworld`: `ServerStreamServer.ServerStream`,
//! `ClientStreamServer.ClientStream` and `AllStreamServer.AllStream`, one handler set for the
//! three services.

use std::{future::ready, time::Duration};

use futures_util::{StreamExt as _, stream};
use streamhub_api::helloworld::{
    AllStreamReq, AllStreamResp, ClientStreamReq, ClientStreamResp, ServerStreamReq,
    ServerStreamResp, all_stream_server_server, client_stream_server_server,
    server_stream_server_server,
};
use streamhub_biz::compat::{self, CommaJoined};
use tonic::{Request, Response, Status, Streaming};

use super::{paced, read_to_half_close};
use crate::{
    Shutdown,
    status::to_status,
    stream::{ResponseStream, until_stopped},
};

/// Bytes a protobuf `string data = 1` field adds to its text: one tag byte and a length
/// varint of at most ten.
const DATA_FIELD_OVERHEAD: usize = 11;

/// The handlers of the three `helloworld` services.
#[derive(Debug, Clone)]
pub struct HelloworldService {
    pace: Duration,
    /// The most text one `ClientStreamResp` can carry.
    max_joined_bytes: usize,
    shutdown: Shutdown,
}

impl HelloworldService {
    pub(crate) fn new(pace: Duration, max_message_bytes: usize, shutdown: &Shutdown) -> Self {
        Self {
            pace,
            max_joined_bytes: max_message_bytes.saturating_sub(DATA_FIELD_OVERHEAD),
            shutdown: shutdown.clone(),
        }
    }
}

#[tonic::async_trait]
impl server_stream_server_server::ServerStreamServer for HelloworldService {
    type ServerStreamStream = ResponseStream<ServerStreamResp>;

    async fn server_stream(
        &self,
        request: Request<ServerStreamReq>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let data = request.into_inner().data;
        let replies = paced(compat::server_stream_replies(&data), self.pace)
            .map(|data| Ok(ServerStreamResp { data }));
        Ok(Response::new(until_stopped(
            replies,
            self.shutdown.stopping.clone(),
        )))
    }
}

#[tonic::async_trait]
impl client_stream_server_server::ClientStreamServer for HelloworldService {
    async fn client_stream(
        &self,
        request: Request<Streaming<ClientStreamReq>>,
    ) -> Result<Response<ClientStreamResp>, Status> {
        let mut joined = CommaJoined::new(self.max_joined_bytes);
        read_to_half_close(request.into_inner(), &self.shutdown.stopping, |request| {
            joined.push(&request.data).map_err(to_status)
        })
        .await?;
        Ok(Response::new(ClientStreamResp {
            data: joined.finish(),
        }))
    }
}

#[tonic::async_trait]
impl all_stream_server_server::AllStreamServer for HelloworldService {
    type AllStreamStream = ResponseStream<AllStreamResp>;

    async fn all_stream(
        &self,
        request: Request<Streaming<AllStreamReq>>,
    ) -> Result<Response<Self::AllStreamStream>, Status> {
        // As in the seed, the server's messages do not answer the client's: both sides send
        // at once, and the call ends OK when the server has sent its five and the client has
        // half-closed. The requests are read alongside (and dropped) so that the half-close
        // is seen and a broken request stream ends the call.
        let own =
            paced(compat::all_stream_replies(), self.pace).map(|data| Ok(AllStreamResp { data }));
        let requests = request
            .into_inner()
            .filter_map(|request| ready(request.err().map(Err)));
        let replies = stream::select(own, requests);
        Ok(Response::new(until_stopped(
            replies,
            self.shutdown.stopping.clone(),
        )))
    }
}
