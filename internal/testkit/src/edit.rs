//! [`open_edit`]: a CollaborativeEdit stream opened with its first operation (the JOIN)
//! already queued, as a benchmark or a crash test drives it.

use streamhub_api::streaming::{
    DocumentUpdate, EditOperation, streaming_service_client::StreamingServiceClient,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Streaming, transport::Channel};

/// Opens a CollaborativeEdit stream on `channel` whose first operation is `first`, with room
/// for `queue` operations; returns the operation sender and the updates. Waits on nothing but
/// the call itself: callers bound it.
pub async fn open_edit(
    channel: Channel,
    first: EditOperation,
    queue: usize,
) -> (mpsc::Sender<EditOperation>, Streaming<DocumentUpdate>) {
    let (outbound, requests) = mpsc::channel(queue);
    // Queued before the call starts: the join is on its way as soon as the call is.
    outbound
        .send(first)
        .await
        .expect("queue the first operation");
    let inbound = StreamingServiceClient::new(channel)
        .collaborative_edit(ReceiverStream::new(requests))
        .await
        .expect("CollaborativeEdit opens")
        .into_inner();
    (outbound, inbound)
}
