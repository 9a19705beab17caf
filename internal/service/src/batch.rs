//! ProcessBatch: feeds each `BatchItem` to a biz [`Batch`] and turns its outcome into a
//! `BatchResult`.

use futures_util::{Stream, StreamExt as _};
use streamhub_api::streaming::{BatchItem, BatchResult, ItemError};
use streamhub_biz::batch::{Batch, BatchLimits, Item};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Shutdown,
    request_stream::{OnShutdown, request_stream},
    to_status,
};

/// The ProcessBatch handler: the batch limits plus the shutdown that ends idle streams.
#[derive(Debug, Clone)]
pub(crate) struct BatchHandlers {
    limits: BatchLimits,
    shutdown: Shutdown,
}

impl BatchHandlers {
    pub(crate) fn new(limits: BatchLimits, shutdown: &Shutdown) -> Self {
        Self {
            limits,
            shutdown: shutdown.clone(),
        }
    }

    /// Judges every item of the client stream, then answers with the counts and the
    /// failures; a cancelled stream answers nothing.
    pub(crate) async fn process_batch(
        &self,
        request: Request<Streaming<BatchItem>>,
    ) -> Result<Response<BatchResult>, Status> {
        let (items, half_close) = request_stream(
            request.into_inner(),
            OnShutdown::EndWhenIdle(self.shutdown.stopping.clone()),
        );
        half_close
            .confirm_while(judge(&self.limits, items))
            .await
            .map(Response::new)
    }
}

async fn judge(
    limits: &BatchLimits,
    items: impl Stream<Item = Result<BatchItem, Status>>,
) -> Result<BatchResult, Status> {
    let mut batch = Batch::new(limits.clone());
    let mut items = std::pin::pin!(items);
    while let Some(item) = items.next().await.transpose()? {
        batch
            .process(Item {
                id: &item.id,
                kind: &item.r#type,
                data: &item.data,
            })
            .map_err(to_status)?;
    }
    let outcome = batch.finish();
    let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
    Ok(BatchResult {
        processed_count: count(outcome.processed),
        success_count: count(outcome.succeeded),
        failed_count: count(outcome.failed),
        failed_ids: outcome
            .errors
            .iter()
            .map(|error| error.id.clone())
            .collect(),
        errors: outcome
            .errors
            .into_iter()
            .map(|error| ItemError {
                id: error.id,
                reason: error.reason,
            })
            .collect(),
    })
}
