//! Telemetry: the `/metrics` endpoint scraped and parsed while calls run, and OTLP export of
//! spans and metrics to an in-test collector (a tonic server implementing the collector's
//! trace and metrics services), including a caller's `traceparent` carried into the RPC span.

use std::collections::HashMap;

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
use streamhub_api::streaming::{ChatMessage, FileChunk, FileRequest, LogEntry, LogRequest};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::helpers::{TestApp, WAIT, serve, spawn_app_with, test_config, within};

/// GETs `/metrics` over a plain HTTP/1.1 connection and returns the status line and body.
async fn scrape(app: &TestApp) -> (String, String) {
    let addr = app.metrics_addr.expect("server.metrics.addr is set");
    let mut stream = TcpStream::connect(addr).await.expect("connect to /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: streamhub\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let mut response = String::new();
    within(
        "the /metrics response",
        stream.read_to_string(&mut response),
    )
    .await
    .expect("read the response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a header and a body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// Samples of a Prometheus text body: `name{labels}` exactly as written → value.
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value = match value {
                "+Inf" => f64::INFINITY,
                value => value
                    .parse()
                    .unwrap_or_else(|_| panic!("a number in {line:?}")),
            };
            (normalised(series), value)
        })
        .collect()
}

/// `series` with its labels in key order, so lookups do not depend on the order written.
/// Label values in these tests hold no commas.
fn normalised(series: &str) -> String {
    let Some((name, labels)) = series.split_once('{') else {
        return series.to_owned();
    };
    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
    labels.sort_unstable();
    format!("{name}{{{}}}", labels.join(","))
}

fn sample(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(&normalised(series))
        .unwrap_or_else(|| panic!("{series} missing from {:#?}", sorted(samples)))
}

fn sorted(samples: &HashMap<String, f64>) -> Vec<(&String, &f64)> {
    let mut all: Vec<_> = samples.iter().collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    all
}

async fn join_chat(
    app: &TestApp,
    room: &str,
    user: &str,
) -> (mpsc::Sender<ChatMessage>, tonic::Streaming<ChatMessage>) {
    let (outbound, requests) = mpsc::channel(4);
    outbound
        .send(ChatMessage {
            room_id: room.to_owned(),
            user_id: user.to_owned(),
            ..ChatMessage::default()
        })
        .await
        .expect("queue the join");
    let mut inbound = within(
        "the chat stream to open",
        app.streaming().chat(ReceiverStream::new(requests)),
    )
    .await
    .expect("Chat opens")
    .into_inner();
    let joined = within("the join event", inbound.message())
        .await
        .expect("no error")
        .expect("a join event");
    assert_eq!(joined.user_id, user, "{joined:?}");
    (outbound, inbound)
}

#[tokio::test]
async fn metrics_endpoint_reports_calls_durations_open_streams_and_rooms() {
    let app = spawn_app_with(|config| {
        config.server.metrics.addr = Some("127.0.0.1:0".parse().expect("valid address"));
    })
    .await;
    let mut health = app.health();
    for _ in 0..2 {
        health
            .check(HealthCheckRequest::default())
            .await
            .expect("Check");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope".to_owned(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let (outbound, mut inbound) = join_chat(&app, "lobby", "ann").await;

    let check = r#"rpc_method="grpc.health.v1.Health/Check""#;
    let chat = r#"rpc_method="streaming.StreamingService/Chat""#;
    let ok = format!(r#"{check},rpc_grpc_status_code="OK""#);
    // A call is counted once the server has dropped its response body, which may be just
    // after the client saw the status: scrape until the three Checks are in.
    let (status, body) = within("the Checks to be counted", async {
        loop {
            let (status, body) = scrape(&app).await;
            let found = samples(&body);
            if found.get(&normalised(&format!(
                "streamhub_rpc_finished_total{{{ok}}}"
            ))) == Some(&2.0)
                && found.get(&normalised(&format!("streamhub_rpc_active{{{check}}}"))) == Some(&0.0)
            {
                break (status, body);
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(status.contains("200"), "{status}");
    assert!(
        body.contains("# TYPE streamhub_rpc_finished_total counter"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE streamhub_rpc_duration_seconds histogram"),
        "{body}"
    );
    let found = samples(&body);
    assert_eq!(
        sample(
            &found,
            &format!(r#"streamhub_rpc_finished_total{{{check},rpc_grpc_status_code="OK"}}"#)
        ),
        2.0
    );
    assert_eq!(
        sample(
            &found,
            &format!(r#"streamhub_rpc_finished_total{{{check},rpc_grpc_status_code="NOT_FOUND"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(&found, &format!("streamhub_rpc_started_total{{{check}}}")),
        3.0
    );
    let ok = format!(r#"{check},rpc_grpc_status_code="OK""#);
    assert_eq!(
        sample(
            &found,
            &format!(r#"streamhub_rpc_duration_seconds_bucket{{{ok},le="+Inf"}}"#)
        ),
        2.0
    );
    assert_eq!(
        sample(
            &found,
            &format!("streamhub_rpc_duration_seconds_count{{{ok}}}")
        ),
        2.0
    );
    // Buckets are cumulative: never decreasing up to +Inf.
    let mut buckets: Vec<(f64, f64)> = found
        .iter()
        .filter_map(|(series, value)| {
            // Normalised, `le` sorts first: `..._bucket{le="0.1",rpc_grpc_status_code=...}`.
            let rest = series.strip_prefix("streamhub_rpc_duration_seconds_bucket{le=\"")?;
            let (le, others) = rest.split_once("\",")?;
            if normalised(&format!("x{{{others}")) != normalised(&format!("x{{{ok}}}")) {
                return None;
            }
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, *value))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(
        buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "{buckets:?}"
    );
    // The chat stream is open: one active call, one room with one member.
    assert_eq!(
        sample(&found, &format!("streamhub_rpc_active{{{chat}}}")),
        1.0
    );
    assert_eq!(sample(&found, "streamhub_chat_rooms"), 1.0);
    assert_eq!(sample(&found, "streamhub_chat_members"), 1.0);
    assert_eq!(sample(&found, "streamhub_game_sessions"), 0.0);
    assert_eq!(
        sample(
            &found,
            r#"streamhub_slow_consumer_disconnects_total{hub="chat"}"#
        ),
        0.0
    );
    assert!(
        sample(
            &found,
            &format!("streamhub_rpc_received_bytes_total{{{check}}}")
        ) > 0.0,
        "request bytes counted"
    );

    // Half-close: the stream ends, and with it the active call and the room.
    drop(outbound);
    while within("the chat stream to end", inbound.message())
        .await
        .expect("a clean end")
        .is_some()
    {}
    let found = within("the stream to be counted as finished", async {
        loop {
            let (_, body) = scrape(&app).await;
            let found = samples(&body);
            if found.get(&normalised(&format!("streamhub_rpc_active{{{chat}}}"))) == Some(&0.0) {
                break found;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(sample(&found, "streamhub_chat_rooms"), 0.0);
    assert!(
        sample(&found, &format!("streamhub_rpc_sent_bytes_total{{{chat}}}")) > 0.0,
        "response bytes counted"
    );
    app.stop().await;
}

#[tokio::test]
async fn no_metrics_endpoint_unless_configured() {
    let app = spawn_app_with(|_| {}).await;
    assert_eq!(app.metrics_addr, None);
    app.stop().await;
}

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
    let config = test_config(&data_dir, |config| {
        config.telemetry.otlp.endpoint = format!("http://{collector_addr}");
        config.telemetry.otlp.export_interval = std::time::Duration::from_millis(100);
        config.telemetry.service_name = "streamhub-under-test".to_owned();
    });
    let telemetry = Telemetry::start(&config).expect("start telemetry");
    let tracer = telemetry.tracer().expect("traces are exported");
    // This test's runtime runs on this thread only, so the server's spans reach this layer.
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(streamhub::trace_export_layer(tracer)),
    );
    let app = Application::build_with(config, telemetry)
        .await
        .expect("build the application");
    let app = serve(app, data_dir, false).await;

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

#[tokio::test]
async fn file_bytes_uploaded_and_downloaded_are_counted() {
    let app = spawn_app_with(|config| {
        config.server.metrics.addr = Some("127.0.0.1:0".parse().expect("valid address"));
    })
    .await;
    let mut client = app.streaming();
    let data = vec![7_u8; 3000];
    let chunks: Vec<FileChunk> = data
        .chunks(1000)
        .enumerate()
        .map(|(number, piece)| FileChunk {
            data: piece.to_vec().into(),
            chunk_number: i32::try_from(number).expect("small"),
            offset: i64::try_from(number * 1000).expect("small"),
            is_last: number == 2,
            ..FileChunk::default()
        })
        .collect();
    let stored = client
        .upload_file(tokio_stream::iter(chunks))
        .await
        .expect("UploadFile")
        .into_inner();
    let mut download = client
        .download_file(FileRequest {
            file_id: stored.file_id,
            offset: 1000,
            ..FileRequest::default()
        })
        .await
        .expect("DownloadFile")
        .into_inner();
    while within("the download", download.message())
        .await
        .expect("no error")
        .is_some()
    {}

    let (_, body) = scrape(&app).await;
    let found = samples(&body);
    let total = |prefix: &str| {
        found
            .iter()
            .find(|(series, _)| series.starts_with(prefix))
            .map(|(_, value)| *value)
            .unwrap_or_else(|| panic!("{prefix}* missing from {:#?}", sorted(&found)))
    };
    assert_eq!(total("streamhub_files_uploaded"), 3000.0);
    assert_eq!(total("streamhub_files_downloaded"), 2000.0);
    app.stop().await;
}
