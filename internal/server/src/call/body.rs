//! The body wrappers: the response body that ends a call at its deadline or at the end of
//! the shutdown grace and records its final status, and the request body that counts the
//! bytes the handler reads.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use streamhub_service::shutting_down;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Status, body::Body};

use super::{record::CallRecord, status::spec_status};

/// Applies the status rules to a trailers-only response and wraps the body of any other.
pub(super) fn observe(
    mut response: http::Response<Body>,
    mut record: CallRecord,
    deadline: Option<Instant>,
    grace_over: Option<CancellationToken>,
) -> http::Response<Body> {
    if let Some(code) = spec_status(response.headers_mut()) {
        record.code = Some(code);
    }
    response.map(|inner| {
        Body::new(CallBody {
            inner,
            deadline: deadline.map(tokio::time::sleep_until),
            grace_over: grace_over.map(CancellationToken::cancelled_owned),
            record,
            finished: false,
        })
    })
}

pin_project_lite::pin_project! {
    /// A response body that ends the call at its deadline or when the shutdown grace is
    /// over, and records its final status.
    struct CallBody {
        #[pin]
        inner: Body,
        #[pin]
        deadline: Option<Sleep>,
        #[pin]
        grace_over: Option<WaitForCancellationFutureOwned>,
        record: CallRecord,
        finished: bool,
    }
}

impl http_body::Body for CallBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        if *this.finished {
            return Poll::Ready(None);
        }
        // What runs while the body is polled (a server stream reading the database) belongs
        // to the call's span.
        let span = this
            .record
            .observed
            .as_ref()
            .and_then(|observed| observed.span.clone());
        let _entered = span.as_ref().map(tracing::Span::enter);
        let ended_by = if let Some(deadline) = this.deadline.as_pin_mut()
            && deadline.poll(cx).is_ready()
        {
            Some(Status::deadline_exceeded("deadline exceeded"))
        } else if let Some(grace_over) = this.grace_over.as_pin_mut()
            && grace_over.poll(cx).is_ready()
        {
            Some(shutting_down())
        } else {
            None
        };
        if let Some(status) = ended_by {
            *this.finished = true;
            this.record.code = Some(status.code());
            let mut trailers = HeaderMap::new();
            // A fixed, valid status always encodes; the error case cannot happen.
            let _ = status.add_header(&mut trailers);
            this.record.finish();
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let frame = match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(status)) => {
                this.record.code = Some(status.code());
                return Poll::Ready(Some(Err(status)));
            }
            None => {
                *this.finished = true;
                this.record.finish();
                return Poll::Ready(None);
            }
        };
        match frame.into_trailers() {
            Ok(mut trailers) => {
                *this.finished = true;
                this.record.code = spec_status(&mut trailers);
                this.record.finish();
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Err(data) => {
                if let (Some(observed), Some(bytes)) =
                    (this.record.observed.as_mut(), data.data_ref())
                {
                    observed.sent += bytes.len() as u64;
                }
                Poll::Ready(Some(Ok(data)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A request body that counts the bytes the handler reads.
    pub(super) struct CountingBody {
        #[pin]
        pub(super) inner: Body,
        pub(super) count: Arc<AtomicU64>,
    }
}

impl http_body::Body for CountingBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(bytes) = frame.data_ref()
        {
            this.count.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
