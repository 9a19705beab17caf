//! Limits: the spec points where tonic differs (message size status, deadlines on open
//! streams), and the bounds on calls, chat rates and open documents, each exceeded once.

use std::time::Duration;

use streamhub_api::streaming::UploadStatusRequest;
use streamhub_testkit::{next, spawn_app, spawn_app_with, within};
use tonic::{Code, Request};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

#[tokio::test]
async fn a_message_over_the_receive_limit_is_resource_exhausted() {
    let app = spawn_app_with(|config| {
        config.server.grpc.max_decoding_message_size = 1024;
    })
    .await;
    let err = app
        .streaming()
        .get_upload_status(UploadStatusRequest {
            upload_id: "x".repeat(4096),
        })
        .await
        .expect_err("an oversized message must be refused");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("1024"), "{}", err.message());

    // A message under the limit still reaches the handler.
    let err = app
        .streaming()
        .get_upload_status(UploadStatusRequest {
            upload_id: "small".to_owned(),
        })
        .await
        .expect_err("GetUploadStatus is not implemented yet");
    assert_ne!(err.code(), Code::ResourceExhausted, "{err}");
}

#[tokio::test]
async fn a_client_deadline_ends_an_open_stream_with_deadline_exceeded() {
    let app = spawn_app().await;
    let mut request = Request::new(HealthCheckRequest::default());
    request.set_timeout(Duration::from_millis(300));
    let mut updates = app
        .health()
        .watch(request)
        .await
        .expect("Watch starts")
        .into_inner();
    let first = next("the first update", &mut updates).await;
    assert_eq!(first.status(), ServingStatus::Serving);
    let err = within("the deadline to end the stream", updates.message())
        .await
        .expect_err("the stream ends with a status");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
}

#[tokio::test]
async fn a_generous_deadline_does_not_disturb_a_call() {
    let app = spawn_app().await;
    let mut request = Request::new(HealthCheckRequest::default());
    request.set_timeout(Duration::from_secs(30));
    let status = app
        .health()
        .check(request)
        .await
        .expect("Check succeeds")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
}

/// A `StreamLogs` follow on `channel`: a call that stays open until dropped.
async fn open_follow(
    channel: tonic::transport::Channel,
) -> Result<tonic::Streaming<streamhub_api::streaming::LogEntry>, tonic::Status> {
    streamhub_api::streaming::streaming_service_client::StreamingServiceClient::new(channel)
        .stream_logs(streamhub_api::streaming::LogRequest {
            follow: true,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_connection_holds_at_most_max_concurrent_streams_calls() {
    let app = spawn_app_with(|config| config.server.grpc.max_concurrent_streams = 2).await;
    let channel = app.connect().await;
    let first = within("the first follow", open_follow(channel.clone()))
        .await
        .expect("first call");
    let _second = within("the second follow", open_follow(channel.clone()))
        .await
        .expect("second call");
    // The server's SETTINGS_MAX_CONCURRENT_STREAMS holds a third call back in the client.
    let held = tokio::time::timeout(Duration::from_millis(500), open_follow(channel.clone())).await;
    assert!(
        held.is_err(),
        "a third call on the connection must wait for a free stream, got {held:?}"
    );
    // Another connection is not affected.
    within(
        "a follow on another connection",
        open_follow(app.connect().await),
    )
    .await
    .expect("another connection has streams of its own");
    drop(first);
    within(
        "the third call once a stream is free",
        open_follow(channel.clone()),
    )
    .await
    .expect("a freed stream is used");
}

#[tokio::test]
async fn calls_per_method_over_all_connections_are_capped_with_resource_exhausted() {
    let app = spawn_app_with(|config| config.server.limits.max_streams_per_method = 2).await;
    let first = open_follow(app.connect().await).await.expect("first");
    let _second = open_follow(app.connect().await).await.expect("second");
    let err = open_follow(app.connect().await)
        .await
        .expect_err("a third StreamLogs is one too many");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("StreamLogs")
            && err
                .message()
                .contains("server.limits.max_streams_per_method"),
        "{}",
        err.message()
    );
    // Other methods and health checks keep their own counts.
    app.streaming()
        .get_data_stream(streamhub_api::streaming::StreamRequest::default())
        .await
        .expect("another method is not affected");
    let status = app
        .health()
        .check(HealthCheckRequest::default())
        .await
        .expect("health is never refused")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);

    // A call that ends frees its place; the server learns of the cancel asynchronously.
    drop(first);
    within("a place to free up", async {
        loop {
            match open_follow(app.connect().await).await {
                Ok(stream) => break stream,
                Err(err) if err.code() == Code::ResourceExhausted => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("unexpected {err}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_chat_member_over_its_message_rate_is_removed_with_resource_exhausted() {
    use streamhub_api::streaming::ChatMessage;
    let app = spawn_app_with(|config| config.chat.max_messages_per_second = 5).await;
    let say = |user: &str, text: &str| ChatMessage {
        room_id: "r".to_owned(),
        user_id: user.to_owned(),
        message: text.to_owned(),
        ..ChatMessage::default()
    };
    let (watcher_tx, watcher_rx) = tokio::sync::mpsc::channel(4);
    watcher_tx.send(say("watcher", "")).await.expect("queue");
    let mut watcher = app
        .streaming()
        .chat(tokio_stream::wrappers::ReceiverStream::new(watcher_rx))
        .await
        .expect("watcher joins")
        .into_inner();
    // 200 messages at once: at 5 per second (burst 5) that would need 39 s to be allowed.
    let flood: Vec<ChatMessage> = (0..200).map(|i| say("flooder", &format!("m{i}"))).collect();
    let mut flooder = app
        .streaming()
        .chat(tokio_stream::iter(flood))
        .await
        .expect("flooder joins")
        .into_inner();
    let err = within("the flooder to be removed", async {
        loop {
            match flooder.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the flooder's stream ended OK"),
                Err(err) => break err,
            }
        }
    })
    .await;
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("chat.max_messages_per_second"),
        "{}",
        err.message()
    );
    let mut messages = 0;
    within("the watcher to see the flooder leave", async {
        loop {
            let event = watcher.message().await.expect("no error").expect("open");
            match (event.kind.as_str(), event.user_id.as_str()) {
                ("message", "flooder") => messages += 1,
                ("leave", "flooder") => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        (5..200).contains(&messages),
        "the burst got through and the rest did not: {messages} messages"
    );
}

#[tokio::test]
async fn opening_more_documents_than_edit_max_open_documents_is_resource_exhausted() {
    use streamhub_api::streaming::EditOperation;
    let app = spawn_app_with(|config| config.edit.max_open_documents = 1).await;
    let join = |doc: &str| EditOperation {
        user_id: "ann".to_owned(),
        document_id: doc.to_owned(),
        operation_type: "JOIN".to_owned(),
        ..EditOperation::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(join("a")).await.expect("queue");
    let mut open = app
        .streaming()
        .collaborative_edit(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("first document opens")
        .into_inner();
    next("the snapshot", &mut open).await;
    let mut refused = app
        .streaming()
        .collaborative_edit(tokio_stream::iter([join("b")]))
        .await
        .expect("the call opens")
        .into_inner();
    let err = within("the refusal", refused.message())
        .await
        .expect_err("a second document is one too many");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("open documents"),
        "{}",
        err.message()
    );
}
