//! Graceful shutdown: health flips at once; idle and long-lived calls, client streams
//! included, end with `UNAVAILABLE` at once; transfers moving bytes may finish within the
//! grace and then end with `UNAVAILABLE` too (never a cut connection); the process exits
//! promptly after its last call; nothing waits forever.

use std::time::{Duration, Instant};

use streamhub_api::streaming::{
    BatchItem, FileChunk, FileRequest, ListFilesRequest, LogEntry, LogRequest, SensorData,
    UploadStatusRequest, streaming_service_client::StreamingServiceClient,
};
use streamhub_testkit::{
    BinaryServer, next, spawn_app, spawn_app_with, within, write_binary_config,
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest,
};

use crate::{
    binary::start_binary,
    files::{chunks_of, content, sha256_hex, upload},
};

#[tokio::test]
async fn shutdown_flips_health_ends_open_streams_and_stops_the_server() {
    let mut app = spawn_app().await;
    let mut updates = app
        .health()
        .watch(HealthCheckRequest::default())
        .await
        .expect("Watch starts")
        .into_inner();
    let first = next("the first update", &mut updates).await;
    assert_eq!(first.status(), ServingStatus::Serving);

    let stopped = app.begin_shutdown();

    let flipped = next("NOT_SERVING", &mut updates).await;
    assert_eq!(flipped.status(), ServingStatus::NotServing);
    let err = within("the Watch to end", updates.message())
        .await
        .expect_err("the Watch ends with a status");
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.message(), "server is shutting down");

    within("the server to stop within the grace period", stopped)
        .await
        .expect("server task")
        .expect("the server stops without error");
}

#[tokio::test]
async fn shutdown_refuses_new_calls_and_bounds_a_stream_that_never_ends() {
    let mut app = spawn_app_with(|config| {
        config.server.grpc.shutdown_grace = Duration::from_millis(500);
    })
    .await;

    // A reflection stream the client never half-closes: nothing ends it but the grace period.
    let (requests, request_stream) = mpsc::channel::<ServerReflectionRequest>(1);
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let mut responses = reflection
        .server_reflection_info(ReceiverStream::new(request_stream))
        .await
        .expect("reflection stream opens")
        .into_inner();
    requests
        .send(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        })
        .await
        .expect("request queued");
    within("the reflection answer", responses.next())
        .await
        .expect("one answer")
        .expect("not an error");

    let mut updates = app
        .health()
        .watch(HealthCheckRequest::default())
        .await
        .expect("Watch starts")
        .into_inner();
    next("SERVING", &mut updates).await;

    let stopped = app.begin_shutdown();
    let flipped = next("NOT_SERVING", &mut updates).await;
    assert_eq!(flipped.status(), ServingStatus::NotServing);

    // Shutdown has started: a new call never reaches its handler (which would answer
    // UNIMPLEMENTED). The refusal is the server's UNAVAILABLE, or the client's CANCELLED when
    // the connection's GOAWAY gets there first; the unit tests of the call layer pin the former.
    let refused = app
        .streaming()
        .list_files(ListFilesRequest::default())
        .await
        .expect_err("a call after shutdown started must be refused");
    assert!(
        matches!(refused.code(), Code::Unavailable | Code::Cancelled),
        "expected the call to be refused, got {refused}"
    );

    // The stuck reflection stream must not keep the server alive past the grace period, and
    // it ends with a status, not a cut connection.
    within("the server to stop despite the open stream", stopped)
        .await
        .expect("server task")
        .expect("the server stops without error");
    let ended = within("the reflection stream's status", responses.next())
        .await
        .expect("a status, not the end of the stream");
    assert_shutting_down("ServerReflectionInfo", ended);
    drop(requests);
}

/// Starts the real binary with `grace` for open calls; returns it, a channel to it and its
/// config (which keeps the data under `dir`, so a restart finds it again).
async fn start_with_grace(
    dir: &std::path::Path,
    grace: &str,
) -> (BinaryServer, Channel, std::path::PathBuf) {
    let config = write_binary_config(
        dir,
        &dir.join("data"),
        &format!("server:\n  grpc:\n    shutdown_grace: {grace}\n"),
    );
    let server = start_binary(&config);
    let channel = server.connect().await;
    (server, channel, config)
}

/// The call ended with the shutdown status: a status, not a cut connection.
fn assert_shutting_down<T: std::fmt::Debug>(what: &str, result: Result<T, Status>) {
    let status = result.expect_err("the call must end with a status");
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "server is shutting down"),
        "{what}: {status:?}"
    );
}

/// Waits for the process to exit after its last call ended and checks that it exited
/// cleanly within a second.
async fn assert_exits_promptly(server: BinaryServer, last_call_ended: Instant) {
    let status = server.exit().await;
    let after_last_call = last_call_ended.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        after_last_call < Duration::from_secs(1),
        "the process exited {after_last_call:?} after its last call ended"
    );
}

#[tokio::test]
async fn sigterm_ends_idle_client_streams_and_follows_at_once_with_unavailable() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A grace far longer than the test waits: only an immediate end passes.
    let (server, channel, _) = start_with_grace(dir.path(), "60s").await;
    let client = StreamingServiceClient::new(channel);

    // Each client stream sends one message and then waits, never half-closing.
    let (sensor_tx, sensor_rx) = mpsc::channel(1);
    sensor_tx
        .send(SensorData {
            sensor_id: "s1".into(),
            temperature: 20.0,
            humidity: 50.0,
            pressure: 1000.0,
            timestamp: None,
        })
        .await
        .expect("queued");
    let mut sensors = client.clone();
    let sensors = tokio::spawn(async move {
        sensors
            .collect_sensor_data(ReceiverStream::new(sensor_rx))
            .await
    });
    let (batch_tx, batch_rx) = mpsc::channel(1);
    batch_tx
        .send(BatchItem {
            id: "a".into(),
            r#type: "text".into(),
            data: b"hello".to_vec(),
        })
        .await
        .expect("queued");
    let mut batch = client.clone();
    let batch =
        tokio::spawn(async move { batch.process_batch(ReceiverStream::new(batch_rx)).await });
    let (logs_tx, logs_rx) = mpsc::channel(1);
    logs_tx
        .send(LogEntry {
            service: "api".into(),
            level: "INFO".into(),
            message: "one".into(),
            ..LogEntry::default()
        })
        .await
        .expect("queued");
    let mut push = client.clone();
    let push = tokio::spawn(async move { push.push_logs(ReceiverStream::new(logs_rx)).await });
    let (upload_tx, upload_rx) = mpsc::channel(1);
    upload_tx
        .send(FileChunk {
            data: vec![7; 1000].into(),
            upload_id: "idle-upload".into(),
            ..FileChunk::default()
        })
        .await
        .expect("queued");
    let mut uploader = client.clone();
    let upload =
        tokio::spawn(async move { uploader.upload_file(ReceiverStream::new(upload_rx)).await });
    let mut follow = client
        .clone()
        .stream_logs(LogRequest {
            follow: true,
            ..LogRequest::default()
        })
        .await
        .expect("StreamLogs")
        .into_inner();
    next("the pushed entry, live", &mut follow).await;

    server.terminate();

    assert_shutting_down(
        "CollectSensorData",
        within("CollectSensorData to end", sensors)
            .await
            .expect("task"),
    );
    assert_shutting_down(
        "ProcessBatch",
        within("ProcessBatch to end", batch).await.expect("task"),
    );
    assert_shutting_down(
        "PushLogs",
        within("PushLogs to end", push).await.expect("task"),
    );
    assert_shutting_down(
        "UploadFile",
        within("UploadFile to end", upload).await.expect("task"),
    );
    assert_shutting_down(
        "StreamLogs follow",
        within("the follow to end", follow.message()).await,
    );
    let last_call_ended = Instant::now();
    drop((sensor_tx, batch_tx, logs_tx, upload_tx));
    assert_exits_promptly(server, last_call_ended).await;
}

#[tokio::test]
async fn sigterm_lets_moving_transfers_run_until_the_grace_then_ends_them_with_unavailable() {
    const CHUNK: usize = 64 * 1024;
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, channel, config) = start_with_grace(dir.path(), "2s").await;
    let mut client = StreamingServiceClient::new(channel);
    let file = content(16 * 1024 * 1024, 41);
    let stored = upload(&mut client, chunks_of(&file, CHUNK, 0, ""))
        .await
        .expect("the file to download");

    // A download read at about 3 MiB/s: it lasts far longer than the grace.
    let mut download = client
        .download_file(FileRequest {
            file_id: stored.file_id.clone(),
            chunk_size: CHUNK as i32,
            ..FileRequest::default()
        })
        .await
        .expect("DownloadFile")
        .into_inner();
    next("the first chunk", &mut download).await;
    let (progress_tx, mut progress_rx) = mpsc::channel::<()>(1);
    let reader = tokio::spawn(async move {
        let mut chunks_after_first = 0_usize;
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            match download.message().await {
                Ok(Some(chunk)) if !chunk.is_last => {
                    chunks_after_first += 1;
                    let _ = progress_tx.try_send(());
                }
                Ok(other) => panic!("the download ended before the grace: {other:?}"),
                Err(status) => return (chunks_after_first, status),
            }
        }
    });

    // A resumable upload sending a chunk every 20 ms.
    let (upload_tx, upload_rx) = mpsc::channel(1);
    let mut uploader = client.clone();
    let upload_call =
        tokio::spawn(async move { uploader.upload_file(ReceiverStream::new(upload_rx)).await });
    let sender = tokio::spawn(async move {
        let mut sent = 0_usize;
        for chunk in chunks_of(&file, CHUNK, 0, "busy-upload") {
            if upload_tx.send(chunk).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    });
    within("the download to move", progress_rx.recv()).await;

    let terminated = Instant::now();
    server.terminate();
    let (chunks_read, status) = within("the download to end", reader).await.expect("task");
    assert_shutting_down("DownloadFile", Err::<(), _>(status));
    assert!(
        terminated.elapsed() >= Duration::from_millis(1500),
        "a download that moves bytes may go on until the grace; it ended after {:?} ({chunks_read} chunks)",
        terminated.elapsed()
    );
    assert_shutting_down(
        "UploadFile",
        within("the upload to end", upload_call)
            .await
            .expect("task"),
    );
    let last_call_ended = Instant::now();
    let chunks_sent = within("the sender to stop", sender).await.expect("task");
    assert!(
        chunks_sent < 256,
        "the upload was cut short ({chunks_sent} chunks)"
    );
    assert_exits_promptly(server, last_call_ended).await;

    // The upload cut by the grace was kept: it resumes after a restart.
    let restarted = start_binary(&config);
    let mut client = restarted.streaming().await;
    let offset = client
        .get_upload_status(UploadStatusRequest {
            upload_id: "busy-upload".into(),
        })
        .await
        .expect("the cut upload is kept")
        .into_inner()
        .offset;
    assert!(offset > 0, "bytes of the cut upload are durable");
    let file = content(16 * 1024 * 1024, 41);
    let offset = usize::try_from(offset).expect("offset");
    let mut rest = chunks_of(&file[offset..], CHUNK, offset, "busy-upload");
    rest.last_mut().expect("chunks").checksum = sha256_hex(&file);
    let resumed = upload(&mut client, rest).await.expect("the resumed upload");
    assert_eq!(resumed.checksum, sha256_hex(&file));
    restarted.terminate();
    assert_exits_promptly(restarted, Instant::now()).await;
}
