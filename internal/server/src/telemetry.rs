//! What every RPC records for operators: [`RpcMetrics`] (calls started and finished by method
//! and status code, durations, calls open now, bytes in and out) and, when traces are
//! exported, one span per call that continues the caller's `traceparent`.
//!
//! The per-call layer ([`crate::call`]) does the recording; this module owns the instruments
//! and the labels. Both are optional ([`RpcTelemetry::default`] records nothing), so a server
//! without metrics or trace export pays only for the log line it always wrote.
//!
//! Method labels come from a fixed set (the methods of the served descriptors); any other path
//! is labelled `unknown`, so a client sending made-up paths cannot grow the label set.

use std::{collections::HashMap, sync::Arc};

use http::HeaderMap;
use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, UpDownCounter},
    propagation::{Extractor, TextMapPropagator as _},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::Code;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Attribute (and Prometheus label) naming the RPC: `package.Service/Method`.
pub const METHOD_KEY: &str = "rpc.method";
/// Attribute (and Prometheus label) naming the final status code: `OK`, `NOT_FOUND`, ...
pub const CODE_KEY: &str = "rpc.grpc.status_code";
/// The method label of paths that name no served method.
pub const UNKNOWN_METHOD: &str = "unknown";

/// Upper bounds (seconds) of the call duration histogram: from sub-millisecond unary calls to
/// streams that stay open for minutes.
const DURATION_BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// The instruments of the per-call layer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RpcMetrics {
    started: Counter<u64>,
    finished: Counter<u64>,
    duration: Histogram<f64>,
    active: UpDownCounter<i64>,
    received: Counter<u64>,
    sent: Counter<u64>,
}

impl RpcMetrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        Self {
            started: meter
                .u64_counter("streamhub.rpc.started")
                .with_description("RPCs started, by method")
                .build(),
            finished: meter
                .u64_counter("streamhub.rpc.finished")
                .with_description("RPCs finished, by method and status code")
                .build(),
            duration: meter
                .f64_histogram("streamhub.rpc.duration")
                .with_description("RPC duration from request to final status, by method and code")
                .with_unit("s")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            active: meter
                .i64_up_down_counter("streamhub.rpc.active")
                .with_description("RPCs open now (streams stay open until their status)")
                .build(),
            received: meter
                .u64_counter("streamhub.rpc.received")
                .with_description("Request body bytes received (gRPC frames), by method")
                .with_unit("By")
                .build(),
            sent: meter
                .u64_counter("streamhub.rpc.sent")
                .with_description("Response body bytes sent (gRPC frames), by method")
                .with_unit("By")
                .build(),
        }
    }

    pub(crate) fn call_started(&self, method: &KeyValue) {
        let labels = std::slice::from_ref(method);
        self.started.add(1, labels);
        self.active.add(1, labels);
    }

    pub(crate) fn call_finished(&self, finished: &FinishedCall<'_>) {
        let method = std::slice::from_ref(finished.method);
        let with_code = [
            finished.method.clone(),
            KeyValue::new(CODE_KEY, streamhub_api::code_name(finished.code)),
        ];
        self.finished.add(1, &with_code);
        self.duration.record(finished.seconds, &with_code);
        self.active.add(-1, method);
        self.received.add(finished.received, method);
        self.sent.add(finished.sent, method);
    }
}

/// The facts of a finished call that metrics and its span record.
#[derive(Debug)]
pub(crate) struct FinishedCall<'a> {
    pub(crate) method: &'a KeyValue,
    pub(crate) code: Code,
    pub(crate) seconds: f64,
    pub(crate) received: u64,
    pub(crate) sent: u64,
}

/// What the per-call layer records besides its log line.
#[derive(Debug, Clone, Default)]
pub struct RpcTelemetry {
    /// Call metrics; `None` records none.
    pub metrics: Option<RpcMetrics>,
    /// Open a span per call (exported by whatever OpenTelemetry layer the process installed).
    pub traces: bool,
}

impl RpcTelemetry {
    /// Whether the layer must count bytes and time calls for more than its log line.
    pub(crate) fn is_on(&self) -> bool {
        self.metrics.is_some() || self.traces
    }
}

/// Method labels of the served methods, ready to attach.
#[derive(Debug, Clone)]
pub(crate) struct MethodLabels {
    known: Arc<HashMap<String, KeyValue>>,
    unknown: KeyValue,
}

impl MethodLabels {
    /// Labels for every method of `descriptor_sets` (their `/package.Service/Method` paths).
    pub(crate) fn new<'a>(
        descriptor_sets: impl IntoIterator<Item = &'a prost_types::FileDescriptorSet>,
    ) -> Self {
        let mut known = HashMap::new();
        for file in descriptor_sets.into_iter().flat_map(|set| &set.file) {
            for service in &file.service {
                for method in &service.method {
                    let label = match file.package() {
                        "" => format!("{}/{}", service.name(), method.name()),
                        package => format!("{package}.{}/{}", service.name(), method.name()),
                    };
                    known.insert(
                        format!("/{label}"),
                        KeyValue::new(METHOD_KEY, Arc::<str>::from(label)),
                    );
                }
            }
        }
        Self {
            known: Arc::new(known),
            unknown: KeyValue::new(METHOD_KEY, UNKNOWN_METHOD),
        }
    }

    /// The label of request path `path`.
    pub(crate) fn of(&self, path: &str) -> KeyValue {
        self.known.get(path).unwrap_or(&self.unknown).clone()
    }
}

/// The span of one call, child of the caller's span when the request carries a valid
/// `traceparent`.
pub(crate) fn call_span(
    method: &KeyValue,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
) -> tracing::Span {
    let label = method.value.as_str();
    let (service, name) = label.split_once('/').unwrap_or((&label, ""));
    let span = tracing::info_span!(
        target: "streamhub::rpc",
        "rpc",
        otel.name = %label,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %name,
        rpc.grpc.status_code = tracing::field::Empty,
        network.peer.address = tracing::field::Empty,
        rpc.request.bytes = tracing::field::Empty,
        rpc.response.bytes = tracing::field::Empty,
    );
    if let Some(peer) = peer {
        span.record("network.peer.address", tracing::field::display(peer));
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    // Fails only when no OpenTelemetry layer is installed; the span then has no parent to set.
    let _ = span.set_parent(parent);
    span
}

/// Records a finished call's outcome on its span.
pub(crate) fn finish_span(span: &tracing::Span, finished: &FinishedCall<'_>) {
    span.record("rpc.grpc.status_code", finished.code as i64);
    // As i64: tracing-opentelemetry exports a u64 field as a string.
    span.record(
        "rpc.request.bytes",
        i64::try_from(finished.received).unwrap_or(i64::MAX),
    );
    span.record(
        "rpc.response.bytes",
        i64::try_from(finished.sent).unwrap_or(i64::MAX),
    );
    // The server-side error codes of the OpenTelemetry gRPC conventions.
    if matches!(
        finished.code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    ) {
        span.record("otel.status_code", "ERROR");
    }
}

/// Reads propagation headers (`traceparent`, `tracestate`) from request metadata.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_methods_get_their_name_and_anything_else_is_unknown() {
        let set = prost_types::FileDescriptorSet {
            file: vec![prost_types::FileDescriptorProto {
                package: Some("streaming".to_owned()),
                service: vec![prost_types::ServiceDescriptorProto {
                    name: Some("StreamingService".to_owned()),
                    method: vec![prost_types::MethodDescriptorProto {
                        name: Some("Chat".to_owned()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let labels = MethodLabels::new([&set]);
        let chat = labels.of("/streaming.StreamingService/Chat");
        assert_eq!(chat.value.as_str(), "streaming.StreamingService/Chat");
        for path in ["/streaming.StreamingService/Nope", "/x/y", ""] {
            assert_eq!(labels.of(path).value.as_str(), UNKNOWN_METHOD, "{path:?}");
        }
    }
}
