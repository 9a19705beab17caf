//! `server.limits.max_streams_per_method`: how many calls of one RPC method may be open at
//! once over all connections.
//!
//! HTTP/2's `max_concurrent_streams` bounds one connection; a client opening many connections
//! would still pile up calls (and the rooms, followers and buffers behind them). This layer
//! counts the open calls of each method and refuses one more with `RESOURCE_EXHAUSTED`. A call
//! counts from its arrival until its response body is dropped, so a long-lived stream holds
//! its place until it ends. Health is never refused: probes must see a busy server.
//!
//! The count map holds only methods with open calls (an entry leaves with its last call), so
//! paths a client makes up cannot grow it beyond the number of open calls.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tonic::{Status, body::Body};
use tower_layer::Layer;
use tower_service::Service;

use crate::mutex::lock;

/// Paths never counted nor refused.
const UNLIMITED: &str = "/grpc.health.v1.Health/";

/// Open calls per method path.
#[derive(Debug, Default)]
struct OpenCalls {
    by_method: Mutex<HashMap<Box<str>, usize>>,
}

impl OpenCalls {
    /// Counts one more call of `method` unless `max` are open already.
    fn enter(self: &Arc<Self>, method: &str, max: usize) -> Option<OpenCall> {
        let mut counts = lock(&self.by_method);
        let count = counts.entry(method.into()).or_insert(0);
        if *count >= max {
            if *count == 0 {
                counts.remove(method);
            }
            return None;
        }
        *count += 1;
        Some(OpenCall {
            calls: Arc::clone(self),
            method: method.into(),
        })
    }
}

/// One open call; dropping it frees its place.
#[derive(Debug)]
struct OpenCall {
    calls: Arc<OpenCalls>,
    method: Box<str>,
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        let mut counts = lock(&self.calls.by_method);
        if let Some(count) = counts.get_mut(&self.method) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.method);
            }
        }
    }
}

/// Installs [`MethodLimitService`] around the router.
#[derive(Debug, Clone)]
pub(crate) struct MethodLimitLayer {
    max: usize,
    calls: Arc<OpenCalls>,
}

impl MethodLimitLayer {
    /// At most `max` open calls per method.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            calls: Arc::default(),
        }
    }
}

impl<S> Layer<S> for MethodLimitLayer {
    type Service = MethodLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MethodLimitService {
            inner,
            max: self.max,
            calls: Arc::clone(&self.calls),
        }
    }
}

/// The service [`MethodLimitLayer`] builds.
#[derive(Debug, Clone)]
pub(crate) struct MethodLimitService<S> {
    inner: S,
    max: usize,
    calls: Arc<OpenCalls>,
}

type LimitFuture<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S> Service<http::Request<Body>> for MethodLimitService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = LimitFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = request.uri().path();
        if method.starts_with(UNLIMITED) {
            return Box::pin(self.inner.call(request));
        }
        let Some(open) = self.calls.enter(method, self.max) else {
            let status = Status::resource_exhausted(format!(
                "{method}: {} calls are open already, the limit \
                 (server.limits.max_streams_per_method); try again later",
                self.max
            ));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| Body::new(HeldBody { inner, _open: open })))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its call's place until it is dropped.
    struct HeldBody {
        #[pin]
        inner: Body,
        _open: OpenCall,
    }
}

impl http_body::Body for HeldBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_method_and_freed_on_drop() {
        let calls = Arc::new(OpenCalls::default());
        let first = calls.enter("/a/X", 2).expect("first");
        let second = calls.enter("/a/X", 2).expect("second");
        assert!(calls.enter("/a/X", 2).is_none(), "third refused");
        let other = calls
            .enter("/a/Y", 2)
            .expect("another method has its own count");
        drop(first);
        let again = calls
            .enter("/a/X", 2)
            .expect("a freed place is taken again");
        drop((second, other, again));
        assert!(
            calls.by_method.lock().expect("lock").is_empty(),
            "no entry outlives its calls"
        );
    }
}
