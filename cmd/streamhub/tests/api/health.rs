//! grpc.health.v1: Check and Watch for "" and every served service, per the spec.

use streamhub_testkit::{next, spawn_app, within};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

const SERVED: [&str; 11] = [
    "",
    "streaming.StreamingService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    // compat: the seeds' other services
    "chat.ChatService",
    "proto.StreamService",
    "service.v1.Service",
    "helloworld.ServerStreamServer",
    "helloworld.ClientStreamServer",
    "helloworld.AllStreamServer",
];

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

#[tokio::test]
async fn check_answers_serving_for_the_server_and_every_service() {
    let app = spawn_app().await;
    let mut health = app.health();
    for service in SERVED {
        let status = health
            .check(request(service))
            .await
            .unwrap_or_else(|err| panic!("Check({service:?}) failed: {err}"))
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "Check({service:?})");
    }
}

#[tokio::test]
async fn check_of_an_unknown_service_is_not_found() {
    let app = spawn_app().await;
    let err = app
        .health()
        .check(request("no.such.Service"))
        .await
        .expect_err("unknown service must fail");
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("no.such.Service"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn watch_sends_the_current_status_first() {
    let app = spawn_app().await;
    let mut updates = app
        .health()
        .watch(request("streaming.StreamingService"))
        .await
        .expect("Watch starts")
        .into_inner();
    let first = next("the first Watch update", &mut updates).await;
    assert_eq!(first.status(), ServingStatus::Serving);
}

#[tokio::test]
async fn watch_of_an_unknown_service_sends_service_unknown_and_stays_open() {
    let mut app = spawn_app().await;
    let mut updates = app
        .health()
        .watch(request("no.such.Service"))
        .await
        .expect("Watch of an unknown service starts (spec: not NOT_FOUND)")
        .into_inner();
    let first = next("the first Watch update", &mut updates).await;
    assert_eq!(first.status(), ServingStatus::ServiceUnknown);

    // Still open: only shutdown ends it, and it ends with UNAVAILABLE rather than OK.
    let stopped = app.begin_shutdown();
    let end = within("the Watch to end at shutdown", updates.message()).await;
    let err = end.expect_err("the Watch ends with a status, not a clean end");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    within("the server to stop", stopped)
        .await
        .expect("server task")
        .expect("server stops cleanly");
}
