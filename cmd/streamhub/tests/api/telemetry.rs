//! Telemetry: the `/metrics` endpoint scraped and parsed while calls run, and the bytes of file
//! transfers counted. OTLP export is tested in `tests/otlp.rs`, a process of its own.

use std::collections::HashMap;

use streamhub_api::streaming::{FileChunk, FileRequest};
use streamhub_testkit::{ChatMember, TestApp, spawn_app_with, within};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tonic_health::pb::HealthCheckRequest;

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
    let mut ann = ChatMember::join(&app.channel, "lobby", "ann", 0).await;
    let joined = ann.next().await;
    assert_eq!(joined.user_id, "ann", "{joined:?}");

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
    ann.half_close();
    while within("the chat stream to end", ann.inbound.message())
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
