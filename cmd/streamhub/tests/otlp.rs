//! OTLP export, in a test process of its own: an in-test collector (a tonic server
//! implementing the collector's trace and metrics services) receives the spans and metrics of a
//! few real calls, including a caller's `traceparent` carried into the RPC span.
//!
//! The span layer is installed as the process's global subscriber, as the binary does. With a
//! thread-local one (`set_default`), a call's span sometimes never ended: tracing-subscriber's
//! registry releases a parent through the default subscriber *of the thread that closes the
//! last child*, and the last holder of a database span is often sqlx's SQLite worker thread,
//! which has no thread-local subscriber. That is why this test is not in `tests/api`.

use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::Span,
};
use streamhub::{Application, Telemetry};
use streamhub_api::streaming::{LogEntry, LogRequest};
use streamhub_conf::Config;
use streamhub_testkit::{TestApp, WAIT, within};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tracing_subscriber::layer::SubscriberExt as _;

/// A collector that forwards every export request it receives to the test.
#[derive(Clone)]
struct Collector {
    spans: mpsc::Sender<ExportTraceServiceRequest>,
    metrics: mpsc::Sender<ExportMetricsServiceRequest>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        // A test that stopped listening no longer cares.
        let _ = self.spans.try_send(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let _ = self.metrics.try_send(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|KeyValue { key: k, .. }| k == key)
        .and_then(|KeyValue { value, .. }| value.as_ref())
        .and_then(|AnyValue { value }| value.as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn otlp_receives_rpc_spans_with_the_callers_trace_and_the_metrics() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the collector");
    let collector_addr = listener.local_addr().expect("collector address");
    let (spans_tx, mut spans) = mpsc::channel(256);
    let (metrics_tx, mut metrics) = mpsc::channel(256);
    let collector = Collector {
        spans: spans_tx,
        metrics: metrics_tx,
    };
    let collecting = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let data_dir = tempfile::tempdir().expect("create a temporary data directory");
    let mut config = Config::for_tests(data_dir.path());
    config.telemetry.otlp.endpoint = format!("http://{collector_addr}");
    config.telemetry.otlp.export_interval = std::time::Duration::from_millis(100);
    config.telemetry.service_name = "streamhub-under-test".to_owned();
    let telemetry = Telemetry::start(&config).expect("start telemetry");
    let tracer = telemetry.tracer().expect("traces are exported");
    // Global, as in the binary: see the module docs.
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(streamhub::trace_export_layer(tracer)),
    )
    .expect("the only test in this process sets the subscriber");
    let app = Application::build_with(config, telemetry)
        .await
        .expect("build the application");
    let app = TestApp::serve(app, data_dir).await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut check = Request::new(HealthCheckRequest::default());
    check.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01")
            .parse()
            .expect("valid metadata"),
    );
    app.health().check(check).await.expect("Check");
    let pushed = app
        .streaming()
        .push_logs(tokio_stream::iter([LogEntry {
            service: "api".to_owned(),
            level: "INFO".to_owned(),
            message: "traced".to_owned(),
            ..LogEntry::default()
        }]))
        .await
        .expect("PushLogs")
        .into_inner();
    assert_eq!(pushed.accepted, 1);
    let reading_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut reading = Request::new(LogRequest::default());
    reading.metadata_mut().insert(
        "traceparent",
        format!("00-{reading_trace}-b7ad6b7169203331-01")
            .parse()
            .expect("valid metadata"),
    );
    let mut stored = app
        .streaming()
        .stream_logs(reading)
        .await
        .expect("StreamLogs")
        .into_inner();
    while within("the stored entries", stored.message())
        .await
        .expect("StreamLogs streams")
        .is_some()
    {}

    let mut received: Vec<Span> = Vec::new();
    let wanted = [
        "grpc.health.v1.Health/Check",
        "streaming.StreamingService/PushLogs",
        "db.logs.append",
        "db.logs.page",
        "streaming.StreamingService/StreamLogs",
    ];
    let collected = tokio::time::timeout(WAIT, async {
        while !wanted
            .iter()
            .all(|name| received.iter().any(|span| span.name == *name))
        {
            let request = spans.recv().await.expect("the collector is running");
            for resource in request.resource_spans {
                for scope in resource.scope_spans {
                    received.extend(scope.spans);
                }
            }
        }
    })
    .await;
    let names: Vec<&str> = received.iter().map(|span| span.name.as_str()).collect();
    assert!(
        collected.is_ok(),
        "timed out after {WAIT:?} waiting for {wanted:?}; received {names:?}"
    );
    // Stopping flushes the exporters; the metrics below arrive either way.
    app.stop().await;
    let check = received
        .iter()
        .find(|span| span.name == "grpc.health.v1.Health/Check")
        .expect("the Check span");
    assert_eq!(
        hex(&check.trace_id),
        trace_id,
        "continues the caller's trace"
    );
    assert_eq!(
        hex(&check.parent_span_id),
        caller_span,
        "child of the caller's span"
    );
    assert_eq!(
        attribute(check, "rpc.system"),
        Some(&Value::StringValue("grpc".to_owned()))
    );
    assert_eq!(
        attribute(check, "rpc.service"),
        Some(&Value::StringValue("grpc.health.v1.Health".to_owned()))
    );
    assert_eq!(
        attribute(check, "rpc.grpc.status_code"),
        Some(&Value::IntValue(0))
    );
    assert!(
        matches!(attribute(check, "network.peer.address"), Some(Value::StringValue(peer)) if peer.starts_with("127.0.0.1:")),
        "{check:?}"
    );
    let push = received
        .iter()
        .find(|span| span.name == "streaming.StreamingService/PushLogs")
        .expect("the PushLogs span");
    assert_ne!(
        hex(&push.trace_id),
        trace_id,
        "a call without traceparent starts a trace"
    );
    assert!(
        matches!(attribute(push, "rpc.request.bytes"), Some(Value::IntValue(bytes)) if *bytes > 0),
        "{push:?}"
    );
    let append = received
        .iter()
        .find(|span| span.name == "db.logs.append")
        .expect("the database span");
    // The commit runs in a task of its own (it must finish even if the caller goes away), so
    // its span starts a trace of its own.
    assert_eq!(
        attribute(append, "db.system"),
        Some(&Value::StringValue("sqlite".to_owned()))
    );
    assert_eq!(attribute(append, "entries"), Some(&Value::IntValue(1)));
    // A server stream reads the store while its response is sent: inside the call's trace.
    let page = received
        .iter()
        .find(|span| span.name == "db.logs.page")
        .expect("a page read");
    assert_eq!(hex(&page.trace_id), reading_trace, "{page:?}");
    let streamed = received
        .iter()
        .find(|span| span.name == "streaming.StreamingService/StreamLogs")
        .expect("the StreamLogs span");
    assert_eq!(hex(&streamed.trace_id), reading_trace, "{streamed:?}");
    assert_eq!(
        hex(&page.parent_span_id),
        hex(&streamed.span_id),
        "{page:?}"
    );
    assert_eq!(
        attribute(streamed, "rpc.grpc.status_code"),
        Some(&Value::IntValue(0))
    );

    let mut names = Vec::new();
    within("the call metrics", async {
        while !names.iter().any(|name| name == "streamhub.rpc.finished") {
            let request = metrics.recv().await.expect("the collector is running");
            for resource in request.resource_metrics {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|resource| &resource.attributes)
                    .find(|attribute| attribute.key == "service.name")
                    .and_then(|attribute| attribute.value.as_ref())
                    .and_then(|value| value.value.clone());
                assert_eq!(
                    service,
                    Some(Value::StringValue("streamhub-under-test".to_owned()))
                );
                for scope in resource.scope_metrics {
                    names.extend(scope.metrics.into_iter().map(|metric| metric.name));
                }
            }
        }
    })
    .await;
    for name in [
        "streamhub.rpc.started",
        "streamhub.rpc.duration",
        "streamhub.chat.rooms",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    collecting.abort();
}
