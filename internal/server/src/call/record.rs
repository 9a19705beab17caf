//! The call record: one call's facts, logged once and recorded in telemetry once, when the
//! call is over.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tonic::Code;

use crate::telemetry::{FinishedCall, RpcMetrics, finish_span};
/// One call's facts, logged once when the call is over: when its final status goes out, or
/// when its body or future is dropped before that.
#[derive(Debug)]
pub(super) struct CallRecord {
    pub(super) method: String,
    peer: Option<SocketAddr>,
    started: std::time::Instant,
    pub(super) code: Option<Code>,
    finished: bool,
    /// Present when telemetry is on.
    pub(super) observed: Option<Observed>,
}

/// What telemetry needs of a call beyond the log line.
#[derive(Debug)]
pub(super) struct Observed {
    pub(super) method: opentelemetry::KeyValue,
    pub(super) metrics: Option<RpcMetrics>,
    pub(super) span: Option<tracing::Span>,
    /// Request body bytes, counted by the request's [`CountingBody`](super::body::CountingBody).
    pub(super) received: Arc<AtomicU64>,
    /// Response body bytes.
    pub(super) sent: u64,
}

impl CallRecord {
    pub(super) fn new(method: String, peer: Option<SocketAddr>) -> Self {
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
    pub(super) fn finish(&mut self) {
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
