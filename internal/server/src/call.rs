//! Per-call policies wrapped around every RPC, where tonic falls short of the gRPC spec.
//!
//! - Once shutdown has started, new calls (but health checks) get `UNAVAILABLE`; once its
//!   grace is over, every call still open ends with `UNAVAILABLE` (a status, never a cut
//!   connection), whether its handler is still working or its response is streaming.
//! - A client deadline (`grpc-timeout`) ends the whole call with `DEADLINE_EXCEEDED`, an open
//!   response stream included; tonic only times the handler's future and calls it `CANCELLED`.
//! - A message over the size limit gets `RESOURCE_EXHAUSTED`; tonic says `OUT_OF_RANGE`.
//! - A message that is not valid protobuf for its type (a string field holding invalid
//!   UTF-8, a truncated field), a unary call without its message and a stream cut inside a
//!   message are bad input, `INVALID_ARGUMENT`; tonic says `INTERNAL`.
//! - Status messages are cut to [`MAX_STATUS_MESSAGE_BYTES`]: handlers quote the values they
//!   refuse, and a huge value must not come back as a huge trailer.
//! - One log line per finished call: method, status code, duration, peer.
//! - When telemetry is on ([`RpcTelemetry`]): call metrics and a span per call, with the bytes
//!   each call received and sent.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Frame, SizeHint};
use streamhub_service::{Shutdown, shutting_down};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Code, Status, body::Body, transport::server::TcpConnectInfo};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;

use crate::{
    grpc_timeout,
    telemetry::{FinishedCall, MethodLabels, RpcMetrics, RpcTelemetry, call_span, finish_span},
};

/// Installs [`CallService`] around the router.
#[derive(Debug, Clone)]
pub(crate) struct CallLayer {
    shutdown: Shutdown,
    telemetry: Option<Arc<CallTelemetry>>,
}

/// Telemetry as the layer applies it: what to record, and the method labels to record with.
#[derive(Debug)]
struct CallTelemetry {
    rpc: RpcTelemetry,
    methods: MethodLabels,
}

impl CallLayer {
    pub(crate) fn new(shutdown: Shutdown) -> Self {
        Self {
            shutdown,
            telemetry: None,
        }
    }

    /// Records `telemetry` for every call, labelling methods with `methods`.
    pub(crate) fn with_telemetry(mut self, telemetry: RpcTelemetry, methods: MethodLabels) -> Self {
        self.telemetry = telemetry.is_on().then(|| {
            Arc::new(CallTelemetry {
                rpc: telemetry,
                methods,
            })
        });
        self
    }
}

impl<S> Layer<S> for CallLayer {
    type Service = CallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService {
            inner,
            shutdown: self.shutdown.clone(),
            telemetry: self.telemetry.clone(),
        }
    }
}

/// The service [`CallLayer`] builds.
#[derive(Debug, Clone)]
pub(crate) struct CallService<S> {
    inner: S,
    shutdown: Shutdown,
    telemetry: Option<Arc<CallTelemetry>>,
}

/// tonic starts its own `grpc-timeout` timer just before ours and turns its expiry into
/// `CANCELLED`; ours ends this much earlier so that the spec's `DEADLINE_EXCEEDED` wins.
const DEADLINE_LEAD: Duration = Duration::from_millis(1);

type CallFuture<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S> Service<http::Request<Body>> for CallService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = CallFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let peer = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr);
        let mut record = CallRecord::new(request.uri().path().to_owned(), peer);
        let mut span = None;
        if let Some(telemetry) = &self.telemetry {
            let method = telemetry.methods.of(request.uri().path());
            if let Some(metrics) = &telemetry.rpc.metrics {
                metrics.call_started(&method);
            }
            if telemetry.rpc.traces {
                span = Some(call_span(&method, request.headers(), peer));
            }
            let received = Arc::new(AtomicU64::new(0));
            let count = Arc::clone(&received);
            request = request.map(|inner| Body::new(CountingBody { inner, count }));
            record.observed = Some(Observed {
                method,
                metrics: telemetry.rpc.metrics.clone(),
                span: span.clone(),
                received,
                sent: 0,
            });
        }
        let deadline = grpc_timeout::parse(request.headers())
            .map(|timeout| Instant::now() + timeout.saturating_sub(DEADLINE_LEAD));

        if self.shutdown.stopping.is_cancelled()
            && !record.method.starts_with("/grpc.health.v1.Health/")
        {
            record.code = Some(Code::Unavailable);
            let response = shutting_down().into_http();
            return Box::pin(std::future::ready(Ok(observe(
                response, record, None, None,
            ))));
        }

        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let grace_over = self.shutdown.grace_over.clone();
        let call = async move {
            let handler = async {
                match deadline {
                    None => inner.call(request).await,
                    Some(deadline) => {
                        match tokio::time::timeout_at(deadline, inner.call(request)).await {
                            Ok(response) => response,
                            Err(_elapsed) => {
                                Ok(Status::deadline_exceeded("deadline exceeded").into_http())
                            }
                        }
                    }
                }
            };
            let response = tokio::select! {
                response = handler => response?,
                () = grace_over.cancelled() => shutting_down().into_http(),
            };
            Ok(observe(response, record, deadline, Some(grace_over)))
        };
        // The handler runs inside the call's span, so its own spans (database work) are
        // children of it.
        match span {
            Some(span) => Box::pin(call.instrument(span)),
            None => Box::pin(call),
        }
    }
}

/// Applies the status rules to a trailers-only response and wraps the body of any other.
fn observe(
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

/// Longest status message sent, in bytes; longer ones are cut and end with `…`.
pub(crate) const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

/// Reads the `grpc-status` of `headers` (trailers, or the headers of a trailers-only
/// response) and rewrites it where tonic differs from the spec: an oversized message is
/// `RESOURCE_EXHAUSTED` (tonic: `OUT_OF_RANGE`), an undecodable one `INVALID_ARGUMENT`
/// (tonic: `INTERNAL`), and a message over [`MAX_STATUS_MESSAGE_BYTES`] is cut.
fn spec_status(headers: &mut HeaderMap) -> Option<Code> {
    let status = Status::from_header_map(headers)?;
    let message = status.message();
    let over_limit = status.code() == Code::OutOfRange
        && (message.starts_with("Error, decoded message length too large")
            || message.starts_with("Error, encoded message length too large"));
    // The client's own fault, however tonic files it: bytes that are not the message type,
    // a unary call without its message, a stream cut inside a message.
    let undecodable = status.code() == Code::Internal
        && (message.starts_with("failed to decode Protobuf message")
            || message == "Missing request message."
            || message == "Unexpected EOF decoding stream.");
    let code = if over_limit {
        Code::ResourceExhausted
    } else if undecodable {
        Code::InvalidArgument
    } else {
        status.code()
    };
    if code != status.code() {
        headers.insert("grpc-status", HeaderValue::from(code as i32));
    }
    if message.len() > MAX_STATUS_MESSAGE_BYTES {
        let cut = Status::new(code, truncated(message, MAX_STATUS_MESSAGE_BYTES));
        headers.remove("grpc-message");
        // A status built from a valid code and a UTF-8 message always encodes.
        let _ = cut.add_header(headers);
    }
    Some(code)
}

/// `message` cut to at most `max` bytes on a char boundary, marked with `…` when cut.
fn truncated(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    let mark = "…";
    let mut end = max - mark.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{mark}", &message[..end])
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
    struct CountingBody {
        #[pin]
        inner: Body,
        count: Arc<AtomicU64>,
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

/// One call's facts, logged once when the call is over: when its final status goes out, or
/// when its body or future is dropped before that.
#[derive(Debug)]
struct CallRecord {
    method: String,
    peer: Option<SocketAddr>,
    started: std::time::Instant,
    code: Option<Code>,
    finished: bool,
    /// Present when telemetry is on.
    observed: Option<Observed>,
}

/// What telemetry needs of a call beyond the log line.
#[derive(Debug)]
struct Observed {
    method: opentelemetry::KeyValue,
    metrics: Option<RpcMetrics>,
    span: Option<tracing::Span>,
    /// Request body bytes, counted by the request's [`CountingBody`].
    received: Arc<AtomicU64>,
    /// Response body bytes.
    sent: u64,
}

impl CallRecord {
    fn new(method: String, peer: Option<SocketAddr>) -> Self {
        Self {
            method,
            peer,
            started: std::time::Instant::now(),
            code: None,
            finished: false,
            observed: None,
        }
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.finish();
    }
}

impl CallRecord {
    /// Logs the call and records its telemetry, once. The call's span ends here, with the
    /// status, not whenever the transport gets round to dropping the body.
    fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        // No status seen means the client went away before the server finished.
        let code = self.code.unwrap_or(Code::Cancelled);
        let elapsed = self.started.elapsed();
        let peer = self
            .peer
            .map_or_else(|| "-".to_owned(), |peer| peer.to_string());
        tracing::info!(
            target: "streamhub::rpc",
            method = %self.method,
            code = ?code,
            duration_ms = elapsed.as_secs_f64() * 1e3,
            peer = %peer,
            "rpc finished"
        );
        if let Some(mut observed) = self.observed.take() {
            let finished = FinishedCall {
                method: &observed.method,
                code,
                seconds: elapsed.as_secs_f64(),
                received: observed.received.load(Ordering::Relaxed),
                sent: observed.sent,
            };
            if let Some(metrics) = &observed.metrics {
                metrics.call_finished(&finished);
            }
            if let Some(span) = observed.span.take() {
                finish_span(&span, &finished);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// A router stand-in that answers every call with OK.
    #[derive(Clone)]
    struct AlwaysOk;

    impl Service<http::Request<Body>> for AlwaysOk {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<http::Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: http::Request<Body>) -> Self::Future {
            let mut response = http::Response::new(Body::empty());
            response
                .headers_mut()
                .insert("grpc-status", HeaderValue::from(0));
            std::future::ready(Ok(response))
        }
    }

    async fn status_of(shutdown: &Shutdown, path: &str) -> Code {
        let mut service = CallLayer::new(shutdown.clone()).layer(AlwaysOk);
        let request = http::Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("valid request");
        let response = service.call(request).await.expect("infallible");
        Status::from_header_map(response.headers())
            .expect("trailers-only response")
            .code()
    }

    #[tokio::test]
    async fn calls_are_refused_once_shutdown_started_except_health() {
        let shutdown = Shutdown::new();
        let listing = "/streaming.StreamingService/ListFiles";
        let check = "/grpc.health.v1.Health/Check";
        assert_eq!(status_of(&shutdown, listing).await, Code::Ok);
        shutdown.stopping.cancel();
        assert_eq!(status_of(&shutdown, listing).await, Code::Unavailable);
        assert_eq!(status_of(&shutdown, check).await, Code::Ok);
    }

    #[test]
    fn oversized_message_status_becomes_resource_exhausted() {
        let mut headers = HeaderMap::new();
        Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
        )
        .add_header(&mut headers)
        .expect("encodable status");
        assert_eq!(spec_status(&mut headers), Some(Code::ResourceExhausted));
        assert_eq!(
            Status::from_header_map(&headers).map(|s| s.code()),
            Some(Code::ResourceExhausted)
        );
    }

    #[test]
    fn undecodable_messages_are_invalid_argument() {
        let mut headers = HeaderMap::new();
        Status::internal(
            "failed to decode Protobuf message: ChatMessage.user_id: invalid string value: data is not UTF-8 encoded",
        )
        .add_header(&mut headers)
        .expect("encodable status");
        assert_eq!(spec_status(&mut headers), Some(Code::InvalidArgument));
        let status = Status::from_header_map(&headers).expect("a status");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("user_id"), "{}", status.message());
    }

    #[test]
    fn long_status_messages_are_cut_on_a_char_boundary() {
        let mut headers = HeaderMap::new();
        let long = format!("room_id {:?} is too long", "é".repeat(5000));
        Status::invalid_argument(long.clone())
            .add_header(&mut headers)
            .expect("encodable status");
        assert_eq!(spec_status(&mut headers), Some(Code::InvalidArgument));
        let status = Status::from_header_map(&headers).expect("a status");
        assert!(
            status.message().len() <= MAX_STATUS_MESSAGE_BYTES,
            "{} bytes",
            status.message().len()
        );
        assert!(status.message().ends_with('…'), "{}", status.message());
        assert!(long.starts_with(status.message().trim_end_matches('…')));
    }

    #[test]
    fn other_out_of_range_statuses_are_kept() {
        let mut headers = HeaderMap::new();
        Status::out_of_range("offset 10 is beyond the file size 4")
            .add_header(&mut headers)
            .expect("encodable status");
        assert_eq!(spec_status(&mut headers), Some(Code::OutOfRange));
    }
}
