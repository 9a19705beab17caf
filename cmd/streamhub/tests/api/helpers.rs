//! `spawn_app`: starts the application on `127.0.0.1:0` with a fresh data directory and hands
//! out connected clients. Every feature's tests start here.

use std::{future::Future, net::SocketAddr, time::Duration};

use streamhub::Application;
use streamhub_api::streaming::streaming_service_client::StreamingServiceClient;
use streamhub_conf::Config;
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

/// How long a test waits for an event before it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A running application and what a test needs to talk to it.
pub(crate) struct TestApp {
    pub(crate) channel: Channel,
    /// Where the application listens, for tests that need a connection of their own.
    pub(crate) addr: SocketAddr,
    /// Where `/metrics` is served, when the test configured `server.metrics.addr`.
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// Holds the database and file store; removed when the test ends.
    _data_dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the application with the default configuration.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the application after `configure` has adjusted a test configuration whose data
/// lives in a temporary directory.
pub(crate) async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("create a temporary data directory");
    spawn_app_in(data_dir, configure).await
}

/// Starts the application on an existing data directory (to test what survives a restart).
pub(crate) async fn spawn_app_in(
    data_dir: TempDir,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let config = test_config(&data_dir, configure);
    let tls = config.server.grpc.tls.enabled();
    let app = Application::build(config)
        .await
        .expect("build the application");
    serve(app, data_dir, tls).await
}

/// The configuration of a test application whose data lives in `data_dir`, adjusted by
/// `configure`.
pub(crate) fn test_config(data_dir: &TempDir, configure: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    config.server.grpc.addr = "127.0.0.1:0".parse().expect("valid address");
    config.server.grpc.shutdown_grace = Duration::from_secs(5);
    config.data.database.source = format!(
        "sqlite://{}",
        data_dir.path().join("streamhub.db").display()
    );
    config.data.storage.root = data_dir.path().join("files");
    configure(&mut config);
    config
}

/// Runs a built application until the test stops it, and connects to it (lazily when it
/// serves `tls`).
pub(crate) async fn serve(app: Application, data_dir: TempDir, tls: bool) -> TestApp {
    let addr = app.local_addr().expect("listener address");
    let metrics_addr = app.metrics_addr();
    let (shutdown, signal) = oneshot::channel::<()>();
    let serving = tokio::spawn(app.run(async {
        let _ = signal.await;
    }));
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("valid endpoint");
    // A TLS server refuses this plaintext channel; its tests make their own connections.
    let channel = if tls {
        endpoint.connect_lazy()
    } else {
        endpoint
            .connect()
            .await
            .expect("connect to the application")
    };
    TestApp {
        channel,
        addr,
        metrics_addr,
        _data_dir: data_dir,
        shutdown: Some(shutdown),
        serving: Some(serving),
    }
}

impl TestApp {
    pub(crate) fn streaming(&self) -> StreamingServiceClient<Channel> {
        StreamingServiceClient::new(self.channel.clone())
    }

    /// A new connection, with HTTP/2 flow control of its own (`channel` is shared).
    pub(crate) async fn connect(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("valid endpoint")
            .connect()
            .await
            .expect("connect to the application")
    }

    /// The data directory (database and, under `files/`, the file store).
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }

    pub(crate) fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// Shuts the application down, waits for it, and hands back its data directory.
    pub(crate) async fn stop(mut self) -> TempDir {
        let stopped = self.begin_shutdown();
        within("the application to stop", stopped)
            .await
            .expect("server task")
            .expect("the server stops cleanly");
        self.channel = Endpoint::from_static("http://[::1]:1").connect_lazy();
        std::mem::replace(
            &mut self._data_dir,
            tempfile::tempdir().expect("placeholder directory"),
        )
    }

    /// Sends the shutdown signal; returns the server's completion, which the test awaits.
    pub(crate) fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.serving.take().expect("shutdown requested twice")
    }
}

/// Awaits `future`, failing the test with `what` if it takes longer than [`WAIT`].
pub(crate) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}
