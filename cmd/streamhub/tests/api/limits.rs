//! The spec points where tonic differs: message size status and deadlines on open streams.

use std::time::Duration;

use streamhub_api::streaming::UploadStatusRequest;
use tonic::{Code, Request};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::helpers::{spawn_app, spawn_app_with, within};

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
    let first = within("the first update", updates.message())
        .await
        .expect("no error")
        .expect("open");
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
