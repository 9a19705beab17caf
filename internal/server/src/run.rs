//! Serving: the router with every service, the HTTP/2 limits from config, and shutdown.

use std::future::Future;

use streamhub_api::streaming::streaming_service_server::StreamingServiceServer;
use streamhub_conf::GrpcConf;
use streamhub_service::StreamingService;
use tokio::{net::TcpListener, sync::oneshot};
use tokio_util::sync::CancellationToken;
use tonic::{
    server::NamedService,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::pb::{health_check_response::ServingStatus, health_server::HealthServer};

use crate::{HealthService, call::CallLayer};

/// The handlers the server routes to, built by the binary from data and biz.
#[derive(Debug)]
#[non_exhaustive]
pub struct Services {
    pub streaming: StreamingService,
}

impl Services {
    /// Bundles the handlers.
    pub fn new(streaming: StreamingService) -> Self {
        Self { streaming }
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("reading the listener address: {0}")]
    Listener(#[from] std::io::Error),
    #[error("serving: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serves `services` on `listener` until `shutdown` completes, then shuts down gracefully:
/// health goes `NOT_SERVING` at once, `stopping` is cancelled (new calls are refused and every
/// long-lived stream ends with `UNAVAILABLE`), and open calls get `conf.shutdown_grace` to
/// finish before they are dropped.
pub async fn run(
    listener: TcpListener,
    conf: &GrpcConf,
    services: Services,
    stopping: CancellationToken,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let streaming = StreamingServiceServer::new(services.streaming)
        .max_decoding_message_size(conf.max_decoding_message_size)
        .max_encoding_message_size(conf.max_encoding_message_size);

    let served = [
        StreamingServiceServer::<StreamingService>::NAME,
        HealthServer::<HealthService>::NAME,
        tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME,
        tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME,
    ];
    let health = HealthService::new(served, stopping.clone());
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(streamhub_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // Each version registers only itself; both are served, so both are described.
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
    };

    let router = Server::builder()
        .max_concurrent_streams(conf.max_concurrent_streams)
        .http2_keepalive_interval(Some(conf.keepalive_interval))
        .http2_keepalive_timeout(Some(conf.keepalive_timeout))
        .layer(CallLayer::new(stopping.clone()))
        .add_service(HealthServer::new(health.clone()))
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(streaming);

    tracing::info!("listening on {}", listener.local_addr()?);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (graceful_tx, graceful_rx) = oneshot::channel::<()>();
    let server = router.serve_with_incoming_shutdown(incoming, async {
        // A dropped sender also means "stop": run() is going away.
        let _ = graceful_rx.await;
    });
    tokio::pin!(server);

    tokio::select! {
        result = &mut server => return result.map_err(ServerError::from),
        () = shutdown => {}
    }

    tracing::info!(grace = ?conf.shutdown_grace, "shutting down");
    health.set_all(ServingStatus::NotServing);
    stopping.cancel();
    let _ = graceful_tx.send(());
    // tonic's graceful shutdown waits for every open call without limit; the grace bounds it.
    match tokio::time::timeout(conf.shutdown_grace, server).await {
        Ok(result) => result?,
        Err(_elapsed) => tracing::warn!(
            grace = ?conf.shutdown_grace,
            "open calls outlived server.grpc.shutdown_grace; closing them"
        ),
    }
    Ok(())
}
