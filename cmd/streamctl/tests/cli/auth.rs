//! `--token`: the bearer token rides on every call, through the client's interceptor.
//!
//! streamhub's own auth is another feature's; a health server behind a token check stands in
//! for it here, which is all the client side needs.

use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Status, service::interceptor::InterceptedService, transport::Server};

use crate::streamctl::run;

/// Accepts a call only with `authorization: Bearer s3cret`.
fn require_token(request: Request<()>) -> Result<Request<()>, Status> {
    match request.metadata().get("authorization") {
        Some(value) if value == "Bearer s3cret" => Ok(request),
        Some(_) => Err(Status::unauthenticated("wrong token")),
        None => Err(Status::unauthenticated("no token")),
    }
}

#[tokio::test]
async fn the_token_is_sent_as_a_bearer_authorization() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (_reporter, health) = tonic_health::server::health_reporter();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        Server::builder()
            .add_service(InterceptedService::new(health, require_token))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );

    let with_token = run(&url, &["--token", "s3cret", "health"], "").await;
    assert_eq!(with_token.success(), ["server: SERVING"]);
    run(&url, &["health"], "")
        .await
        .failed_with(1, "UNAUTHENTICATED: no token");
    run(&url, &["health", "--token", "guess"], "")
        .await
        .failed_with(1, "UNAUTHENTICATED: wrong token");
}
