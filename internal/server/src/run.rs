//! Serving: the router with every service, the HTTP/2 limits from config, and shutdown.

use std::{future::Future, time::Duration};

use prost::Message as _;
use streamhub_api::{
    chat::chat_service_server::ChatServiceServer,
    helloworld::{
        all_stream_server_server::AllStreamServerServer,
        client_stream_server_server::ClientStreamServerServer,
        server_stream_server_server::ServerStreamServerServer,
    },
    proto::stream_service_server::StreamServiceServer,
    service::v1::service_server::ServiceServer,
    streaming::streaming_service_server::StreamingServiceServer,
};
use streamhub_conf::{AuthConf, GrpcConf, ServerConf, TlsConf};
use streamhub_service::{
    Shutdown, StreamingService,
    compat::{ChatService, ChatifyService, CompatServices, HelloworldService, StreamService},
};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::{
    server::NamedService,
    transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::pb::{health_check_response::ServingStatus, health_server::HealthServer};

use crate::{
    HealthService,
    auth::{AuthLayer, Tokens},
    call::CallLayer,
    method_limit::MethodLimitLayer,
    telemetry::{MethodLabels, RpcTelemetry},
};

/// The handlers the server routes to, built by the binary from data and biz.
#[derive(Debug)]
#[non_exhaustive]
pub struct Services {
    pub streaming: StreamingService,
    /// The seeds' other services; `None` when `compat.enabled` is false.
    pub compat: Option<CompatServices>,
    /// What every call records besides its log line (nothing by default).
    pub telemetry: RpcTelemetry,
}

impl Services {
    /// Bundles the handlers.
    pub fn new(streaming: StreamingService) -> Self {
        Self {
            streaming,
            compat: None,
            telemetry: RpcTelemetry::default(),
        }
    }

    /// Records call metrics and spans as `telemetry` says.
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: RpcTelemetry) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Also serves the seeds' other services.
    #[must_use]
    pub fn with_compat(mut self, compat: CompatServices) -> Self {
        self.compat = Some(compat);
        self
    }
}

/// Names of the compat services, as health and reflection list them.
const COMPAT_SERVICE_NAMES: [&str; 6] = [
    ChatServiceServer::<ChatService>::NAME,
    StreamServiceServer::<StreamService>::NAME,
    ServiceServer::<ChatifyService>::NAME,
    ServerStreamServerServer::<HelloworldService>::NAME,
    ClientStreamServerServer::<HelloworldService>::NAME,
    AllStreamServerServer::<HelloworldService>::NAME,
];

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("reading the built-in descriptor set: {0}")]
    Descriptors(#[from] prost::DecodeError),
    #[error("reading the listener address: {0}")]
    Listener(#[from] std::io::Error),
    #[error("serving: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("{key}: {reason}")]
    Tls { key: &'static str, reason: String },
}

/// How long, after the grace ran out and every open call was told `UNAVAILABLE`, the server
/// waits for those statuses to reach the clients before it closes their connections.
const FLUSH_AFTER_GRACE: Duration = Duration::from_secs(1);

/// Serves `services` on `listener` until `stop_when` completes, then shuts down gracefully:
/// health goes `NOT_SERVING` at once and `signals.stopping` is cancelled (new calls are
/// refused; idle and long-lived calls end with `UNAVAILABLE`). Transfers still moving bytes
/// get `server.grpc.shutdown_grace`; when it runs out, `signals.grace_over` is cancelled and
/// every call still open ends with `UNAVAILABLE`, which gets [`FLUSH_AFTER_GRACE`] to reach
/// its client. With `auth` tokens, every call but health and reflection needs one.
pub async fn run(
    listener: TcpListener,
    server: &ServerConf,
    auth: &AuthConf,
    services: Services,
    signals: Shutdown,
    stop_when: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let stopping = signals.stopping.clone();
    let conf = &server.grpc;
    let streaming = StreamingServiceServer::new(services.streaming)
        .max_decoding_message_size(conf.max_decoding_message_size)
        .max_encoding_message_size(conf.max_encoding_message_size);

    let compat_enabled = services.compat.is_some();
    let compat = CompatRoutes::new(services.compat, conf);

    let mut served = vec![
        StreamingServiceServer::<StreamingService>::NAME,
        HealthServer::<HealthService>::NAME,
        tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME,
        tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME,
    ];
    if compat_enabled {
        served.extend(COMPAT_SERVICE_NAMES);
    }
    let health = HealthService::new(served, stopping.clone());
    // Reflection lists every service of the descriptors it holds, so unserved compat
    // packages are taken out rather than advertised.
    let descriptors = served_descriptors(compat_enabled)?;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_file_descriptor_set(descriptors.clone())
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // Each version registers only itself; both are served, so both are described.
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
    };

    let methods = method_labels(&descriptors)?;
    let mut builder = Server::builder();
    if conf.tls.enabled() {
        builder = builder.tls_config(tls_config(&conf.tls)?)?;
    }
    let router = builder
        .max_concurrent_streams(conf.max_concurrent_streams)
        .http2_keepalive_interval(Some(conf.keepalive_interval))
        .http2_keepalive_timeout(Some(conf.keepalive_timeout))
        // Outermost first: the call record sees every refusal of the layers inside it.
        .layer(CallLayer::new(signals.clone()).with_telemetry(services.telemetry, methods))
        .layer(AuthLayer::new(Tokens::from_conf(auth)))
        .layer(MethodLimitLayer::new(server.limits.max_streams_per_method))
        .add_service(HealthServer::new(health.clone()))
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(streaming)
        .add_optional_service(compat.chat)
        .add_optional_service(compat.stream)
        .add_optional_service(compat.chatify)
        .add_optional_service(compat.server_stream)
        .add_optional_service(compat.client_stream)
        .add_optional_service(compat.all_stream);

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
        () = stop_when => {}
    }

    tracing::info!(grace = ?conf.shutdown_grace, "shutting down");
    health.set_all(ServingStatus::NotServing);
    stopping.cancel();
    let _ = graceful_tx.send(());
    // tonic's graceful shutdown waits for every open call without limit; the grace bounds it.
    if let Ok(result) = tokio::time::timeout(conf.shutdown_grace, &mut server).await {
        return result.map_err(ServerError::from);
    }
    tracing::warn!(
        grace = ?conf.shutdown_grace,
        "open calls outlived server.grpc.shutdown_grace; ending them with UNAVAILABLE"
    );
    signals.grace_over.cancel();
    match tokio::time::timeout(FLUSH_AFTER_GRACE, server).await {
        Ok(result) => result?,
        // Only a client that reads nothing (its flow-control window is full) can be left.
        Err(_elapsed) => tracing::warn!("closing the connections of calls that did not end"),
    }
    Ok(())
}

/// The listener's TLS settings, read from the PEM files `conf` names.
fn tls_config(conf: &TlsConf) -> Result<ServerTlsConfig, ServerError> {
    let read = |key: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|err| ServerError::Tls {
            key,
            reason: format!("cannot read {}: {err}", path.display()),
        })
    };
    let cert = read("server.grpc.tls.cert", &conf.cert)?;
    let key = read("server.grpc.tls.key", &conf.key)?;
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if !conf.client_ca.as_os_str().is_empty() {
        // Without client_auth_optional, a client that presents no certificate is refused.
        let ca = read("server.grpc.tls.client_ca", &conf.client_ca)?;
        tls = tls.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(tls)
}

/// The generated servers of the compat services, with the message size limits applied.
struct CompatRoutes {
    chat: Option<ChatServiceServer<ChatService>>,
    stream: Option<StreamServiceServer<StreamService>>,
    chatify: Option<ServiceServer<ChatifyService>>,
    server_stream: Option<ServerStreamServerServer<HelloworldService>>,
    client_stream: Option<ClientStreamServerServer<HelloworldService>>,
    all_stream: Option<AllStreamServerServer<HelloworldService>>,
}

impl CompatRoutes {
    fn new(compat: Option<CompatServices>, conf: &GrpcConf) -> Self {
        let decode = conf.max_decoding_message_size;
        let encode = conf.max_encoding_message_size;
        let Some(compat) = compat else {
            return Self {
                chat: None,
                stream: None,
                chatify: None,
                server_stream: None,
                client_stream: None,
                all_stream: None,
            };
        };
        Self {
            chat: Some(
                ChatServiceServer::new(compat.chat)
                    .max_decoding_message_size(decode)
                    .max_encoding_message_size(encode),
            ),
            stream: Some(
                StreamServiceServer::new(compat.stream)
                    .max_decoding_message_size(decode)
                    .max_encoding_message_size(encode),
            ),
            chatify: Some(
                ServiceServer::new(compat.chatify)
                    .max_decoding_message_size(decode)
                    .max_encoding_message_size(encode),
            ),
            server_stream: Some(
                ServerStreamServerServer::new(compat.helloworld.clone())
                    .max_decoding_message_size(decode)
                    .max_encoding_message_size(encode),
            ),
            client_stream: Some(
                ClientStreamServerServer::new(compat.helloworld.clone())
                    .max_decoding_message_size(decode)
                    .max_encoding_message_size(encode),
            ),
            all_stream: Some(
                AllStreamServerServer::new(compat.helloworld)
                    .max_decoding_message_size(decode)
                    .max_encoding_message_size(encode),
            ),
        }
    }
}

/// Metric labels for every served method: streamhub's, health's and reflection's.
fn method_labels(served: &prost_types::FileDescriptorSet) -> Result<MethodLabels, ServerError> {
    let mut sets = vec![served.clone()];
    for encoded in [
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        sets.push(prost_types::FileDescriptorSet::decode(encoded)?);
    }
    Ok(MethodLabels::new(&sets))
}

/// streamhub's descriptor set, without the compat packages unless they are served.
fn served_descriptors(compat_enabled: bool) -> Result<prost_types::FileDescriptorSet, ServerError> {
    let mut set = prost_types::FileDescriptorSet::decode(streamhub_api::FILE_DESCRIPTOR_SET)?;
    if !compat_enabled {
        set.file
            .retain(|file| !streamhub_api::COMPAT_PACKAGES.contains(&file.package()));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages(set: &prost_types::FileDescriptorSet) -> Vec<&str> {
        set.file.iter().map(|file| file.package()).collect()
    }

    #[test]
    fn compat_packages_are_described_only_when_served() {
        let served = served_descriptors(true).expect("the built-in set decodes");
        for package in streamhub_api::COMPAT_PACKAGES {
            assert!(
                packages(&served).contains(&package),
                "{package} missing from {:?}",
                packages(&served)
            );
        }
        let unserved = served_descriptors(false).expect("the built-in set decodes");
        let left = packages(&unserved);
        assert!(left.contains(&"streaming"), "{left:?}");
        for package in streamhub_api::COMPAT_PACKAGES {
            assert!(!left.contains(&package), "{package} still in {left:?}");
        }
    }
}
