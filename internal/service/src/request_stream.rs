//! Reading a client's request stream, where only a half-close completes it.
//!
//! tonic's [`Streaming`] ends (`None`) for two different things: the client's half-close
//! (END_STREAM) and an HTTP/2 `RST_STREAM(NO_ERROR)`, which hyper reads as a clean end of the
//! request body (hyper issue #3681; hyper 1.12 passes `CANCEL` and the other codes on as
//! errors). A handler that commits when its stream ends, as UploadFile does, must not commit
//! for a client that cancelled.
//!
//! What tells the two apart is hyper itself. Whenever a call's future is pending, hyper's
//! HTTP/2 stream task asks h2 whether the client reset the stream (`SendResponse::poll_reset`)
//! and, if it did, drops the call. h2 records the reset before the request body reports its
//! end, so a call that is pending once *after* it saw the end is dropped at that moment if, and
//! only if, the stream was reset: an ordering guarantee, not a race against time.
//! [`request_stream`] therefore turns the end of the stream into a question, which
//! [`HalfClose::confirm_while`] answers from inside the call's own future after that one
//! pending poll. A call that was dropped never answers, and the stream ends with `CANCELLED`
//! instead of `None`. That works even where the stream is read by another task (an upload
//! runs in a task of its own so that it can clean up after a cancel).
//!
//! The request stream also carries the shutdown rule of [`crate::shutdown`]: ended with
//! `UNAVAILABLE` when it waits for a message after shutdown started, or, for a transfer, when
//! the client stalls or the grace is over.

use std::{convert::Infallible, future::Future};

use futures_util::{Stream, StreamExt as _, stream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use crate::shutdown::{Shutdown, TRANSFER_STALL_AFTER_STOP, shutting_down};

/// How a request stream ends when the server shuts down.
#[derive(Debug, Clone)]
pub(crate) enum OnShutdown {
    /// As soon as it waits for a message after shutdown started (messages already received
    /// are read first).
    EndWhenIdle(CancellationToken),
    /// A transfer: it goes on while messages keep coming, and ends when one takes longer
    /// than [`TRANSFER_STALL_AFTER_STOP`] or the grace is over.
    Transfer(Shutdown),
}

/// `inbound` as a stream that ends with `None` only after a half-close that
/// [`HalfClose::confirm_while`] confirmed, and after an error or a shutdown status ends.
pub(crate) fn request_stream<T: Send + 'static>(
    inbound: Streaming<T>,
    on_shutdown: OnShutdown,
) -> (
    impl Stream<Item = Result<T, Status>> + Send + 'static,
    HalfClose,
) {
    let (ended_tx, ended_rx) = oneshot::channel();
    let (confirm_tx, confirm_rx) = oneshot::channel();
    let reader = Reader {
        inbound,
        on_shutdown,
        ended: Some(ended_tx),
        confirmed: Some(confirm_rx),
    };
    let messages = stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        match reader.next().await {
            Some(Ok(message)) => Some((Ok(message), Some(reader))),
            // Nothing follows an error.
            Some(Err(status)) => Some((Err(status), None)),
            None => None,
        }
    })
    // Readers may ask again after the end (an empty upload does).
    .fuse();
    let half_close = HalfClose {
        ended: ended_rx,
        confirm: confirm_tx,
    };
    (messages, half_close)
}

struct Reader<T> {
    inbound: Streaming<T>,
    on_shutdown: OnShutdown,
    /// Tells the [`HalfClose`] that the body ended; taken when sent.
    ended: Option<oneshot::Sender<()>>,
    /// Its answer.
    confirmed: Option<oneshot::Receiver<()>>,
}

impl<T> Reader<T> {
    async fn next(&mut self) -> Option<Result<T, Status>> {
        if let OnShutdown::Transfer(shutdown) = &self.on_shutdown
            && shutdown.grace_over.is_cancelled()
        {
            return Some(Err(shutting_down()));
        }
        let next = tokio::select! {
            biased;
            next = self.inbound.message() => next,
            () = interrupted(&self.on_shutdown) => return Some(Err(shutting_down())),
        };
        match next {
            Ok(Some(message)) => Some(Ok(message)),
            Err(status) => Some(Err(status)),
            Ok(None) => self.confirm_half_close().await.err().map(Err),
        }
    }

    async fn confirm_half_close(&mut self) -> Result<(), Status> {
        let (Some(ended), Some(confirmed)) = (self.ended.take(), self.confirmed.take()) else {
            return Ok(());
        };
        let _ = ended.send(());
        confirmed.await.map_err(|_| {
            Status::cancelled("the client cancelled the call before half-closing its stream")
        })
    }
}

/// Completes when shutdown should end a wait for the next message.
async fn interrupted(on_shutdown: &OnShutdown) {
    match on_shutdown {
        OnShutdown::EndWhenIdle(stopping) => stopping.cancelled().await,
        OnShutdown::Transfer(shutdown) => {
            shutdown.stopping.cancelled().await;
            tokio::select! {
                () = shutdown.grace_over.cancelled() => {}
                () = tokio::time::sleep(TRANSFER_STALL_AFTER_STOP) => {}
            }
        }
    }
}

/// The other half of [`request_stream`]: confirms its half-close from inside the call.
#[must_use = "a request stream waits at its end until HalfClose::confirm_while confirms it"]
#[derive(Debug)]
pub(crate) struct HalfClose {
    ended: oneshot::Receiver<()>,
    confirm: oneshot::Sender<()>,
}

impl HalfClose {
    /// Runs `call`, the handler's work on the request stream, and answers the stream's
    /// question at its end. Must be awaited by the call's own future (not a spawned task): the
    /// one pending poll is what lets hyper drop a reset call before the answer goes out.
    pub(crate) async fn confirm_while<F: Future>(self, call: F) -> F::Output {
        let Self { ended, confirm } = self;
        let witness = async move {
            if ended.await.is_ok() {
                tokio::task::yield_now().await;
                let _ = confirm.send(());
            }
            std::future::pending::<Infallible>().await
        };
        tokio::select! {
            biased;
            output = call => output,
            never = witness => match never {},
        }
    }
}
