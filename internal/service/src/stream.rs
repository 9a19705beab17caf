//! Plumbing shared by every streaming handler.
//!
//! A long-lived response stream must end as soon as the server shuts down, with `UNAVAILABLE`
//! "server is shutting down", whether it waits for its next item (an idle follow must not keep
//! the process alive) or always has one ready (a follow replaying a long backlog must not run
//! through the whole grace). [`until_stopped`] adds that to any stream, so handlers write only
//! their own logic. Transfers (DownloadFile) do not use it: they may finish within the grace,
//! after which the server ends every call still open (see [`crate::shutdown`]).

use std::pin::Pin;

use futures_util::{Stream, StreamExt as _, stream};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::shutdown::shutting_down;

/// A stream of responses as tonic wants it from a streaming handler.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Forwards `items` until they end or `stopping` fires; in the latter case the stream ends
/// with `UNAVAILABLE` at once, ready items or not. The inner stream is dropped at once,
/// releasing whatever it holds.
pub fn until_stopped<T, S>(items: S, stopping: CancellationToken) -> ResponseStream<T>
where
    T: Send + 'static,
    S: Stream<Item = Result<T, Status>> + Send + 'static,
{
    let items = Box::pin(items);
    Box::pin(stream::unfold(
        Some((items, stopping)),
        |state| async move {
            let (mut items, stopping) = state?;
            tokio::select! {
                // Shutdown first: a stream whose next item is always ready must still end.
                biased;
                () = stopping.cancelled() => Some((Err(shutting_down()), None)),
                next = items.next() => {
                    let item = next?;
                    Some((item, Some((items, stopping))))
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forwards_items_then_ends_with_the_inner_stream() {
        let stopping = CancellationToken::new();
        let items = stream::iter([Ok(1), Ok(2)]);
        let out: Vec<_> = until_stopped(items, stopping)
            .map(|item| item.expect("ok"))
            .collect()
            .await;
        assert_eq!(out, [1, 2]);
    }

    #[tokio::test]
    async fn a_stream_that_always_has_an_item_ready_still_ends_on_shutdown() {
        let stopping = CancellationToken::new();
        let mut out = until_stopped(stream::repeat(Ok::<u8, Status>(7)), stopping.clone());
        assert_eq!(out.next().await.expect("an item").expect("ok"), 7);
        stopping.cancel();
        let err = out.next().await.expect("one item").expect_err("a status");
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert!(out.next().await.is_none(), "nothing after the status");
    }

    #[tokio::test]
    async fn an_idle_stream_ends_with_unavailable_on_shutdown() {
        let stopping = CancellationToken::new();
        let mut out = until_stopped(stream::pending::<Result<u8, Status>>(), stopping.clone());
        stopping.cancel();
        let err = out.next().await.expect("one item").expect_err("a status");
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert!(out.next().await.is_none(), "nothing after the status");
    }
}
