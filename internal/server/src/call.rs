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
//! - Status messages are cut to [`MAX_STATUS_MESSAGE_BYTES`](status::MAX_STATUS_MESSAGE_BYTES):
//!   handlers quote the values they refuse, and a huge value must not come back as a huge
//!   trailer.
//! - One log line per finished call: method, status code, duration, peer.
//! - When telemetry is on ([`RpcTelemetry`]): call metrics and a span per call, with the bytes
//!   each call received and sent.
//!
//! This file is the layer and its service; beside it are [`status`] (the rewriting of
//! `grpc-status`), [`body`] (the response and request body wrappers) and [`record`] (what is
//! logged and recorded when a call is over).

mod body;
mod record;
mod status;

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::AtomicU64},
    task::{Context, Poll},
    time::Duration,
};

use streamhub_service::{Shutdown, shutting_down};
use tokio::time::Instant;
use tonic::{Code, Status, body::Body, transport::server::TcpConnectInfo};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;

use self::{
    body::{CountingBody, observe},
    record::{CallRecord, Observed},
};
use crate::{
    grpc_timeout,
    telemetry::{MethodLabels, RpcTelemetry, call_span},
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::HeaderValue;

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
}
