//! Graceful shutdown: health flips at once, streams are told to finish, nothing waits forever.

use std::time::Duration;

use streamhub_api::streaming::ListFilesRequest;
use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest,
};

use crate::helpers::{spawn_app, spawn_app_with, within};

#[tokio::test]
async fn shutdown_flips_health_ends_open_streams_and_stops_the_server() {
    let mut app = spawn_app().await;
    let mut updates = app
        .health()
        .watch(HealthCheckRequest::default())
        .await
        .expect("Watch starts")
        .into_inner();
    let first = within("the first update", updates.message())
        .await
        .expect("no error")
        .expect("open");
    assert_eq!(first.status(), ServingStatus::Serving);

    let stopped = app.begin_shutdown();

    let flipped = within("NOT_SERVING", updates.message())
        .await
        .expect("no error before NOT_SERVING")
        .expect("the stream is still open");
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
    within("SERVING", updates.message())
        .await
        .expect("no error")
        .expect("open");

    let stopped = app.begin_shutdown();
    let flipped = within("NOT_SERVING", updates.message())
        .await
        .expect("no error")
        .expect("open");
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

    // The stuck reflection stream must not keep the server alive past the grace period.
    within("the server to stop despite the open stream", stopped)
        .await
        .expect("server task")
        .expect("the server stops without error");
    drop(requests);
}
