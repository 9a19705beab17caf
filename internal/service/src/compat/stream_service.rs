//! Seed 002's `proto.StreamService`: List (server streaming), Record (client streaming) and
//! Route (bidirectional).

use std::time::Duration;

use futures_util::StreamExt as _;
use streamhub_api::proto::{StreamPoint, StreamRequest, StreamResponse, stream_service_server};
use streamhub_biz::compat::{self, Point, RouteReplies};
use tonic::{Request, Response, Status, Streaming};

use super::{paced, read_to_half_close};
use crate::{
    Shutdown,
    stream::{ResponseStream, until_stopped},
};

/// The handlers of `proto.StreamService`.
#[derive(Debug, Clone)]
pub struct StreamService {
    pace: Duration,
    shutdown: Shutdown,
}

impl StreamService {
    pub(crate) fn new(pace: Duration, shutdown: &Shutdown) -> Self {
        Self {
            pace,
            shutdown: shutdown.clone(),
        }
    }
}

/// The point of a List request. The seed's server dereferences `r.Pt` and would crash
/// without one; here a missing `pt` is the client's mistake, named as such.
fn requested_point(request: StreamRequest) -> Result<Point, Status> {
    let pt = request
        .pt
        .ok_or_else(|| Status::invalid_argument("pt is required: List repeats this point"))?;
    Ok(Point {
        name: pt.name,
        value: pt.value,
    })
}

fn response(point: Point) -> StreamResponse {
    StreamResponse {
        pt: Some(StreamPoint {
            name: point.name,
            value: point.value,
        }),
    }
}

#[tonic::async_trait]
impl stream_service_server::StreamService for StreamService {
    type ListStream = ResponseStream<StreamResponse>;

    async fn list(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let point = requested_point(request.into_inner())?;
        let points = paced(compat::list_points(&point), self.pace).map(|p| Ok(response(p)));
        Ok(Response::new(until_stopped(
            points,
            self.shutdown.stopping.clone(),
        )))
    }

    async fn record(
        &self,
        request: Request<Streaming<StreamRequest>>,
    ) -> Result<Response<StreamResponse>, Status> {
        // The seed's reply does not depend on what was recorded; reading to the half-close
        // is what the client waits for.
        read_to_half_close(request.into_inner(), &self.shutdown.stopping, |_| Ok(())).await?;
        Ok(Response::new(response(compat::record_reply())))
    }

    type RouteStream = ResponseStream<StreamResponse>;

    async fn route(
        &self,
        request: Request<Streaming<StreamRequest>>,
    ) -> Result<Response<Self::RouteStream>, Status> {
        let mut replies = RouteReplies::default();
        // Each request is answered as soon as it arrives; the half-close ends the call OK.
        let answers = request
            .into_inner()
            .map(move |request| request.map(|_| response(replies.next_reply())));
        Ok(Response::new(until_stopped(
            answers,
            self.shutdown.stopping.clone(),
        )))
    }
}
