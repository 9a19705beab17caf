//! [`spawn_app`]: the application in-process on `127.0.0.1:0` with a fresh data directory
//! (zero-to-production's `spawn_app`), and the [`TestApp`] handle that talks to it and stops it.

use std::{net::SocketAddr, path::Path};

use streamhub::Application;
use streamhub_api::streaming::streaming_service_client::StreamingServiceClient;
use streamhub_conf::Config;
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

use crate::{init_test_log, within};

/// A running application and what a test needs to talk to it.
#[derive(Debug)]
pub struct TestApp {
    /// A connection to the application, shared by the clients [`TestApp::streaming`] and
    /// [`TestApp::health`] hand out. Lazy when the application serves TLS, which refuses it.
    pub channel: Channel,
    /// Where the application listens, for tests that need a connection of their own.
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when the test configured `server.metrics.addr`.
    pub metrics_addr: Option<SocketAddr>,
    /// Holds the database and file store; removed when the test ends.
    data_dir: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the application with [`Config::for_tests`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the application after `configure` has adjusted [`Config::for_tests`] on a new
/// temporary directory.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("create a temporary data directory");
    spawn_app_in(data_dir, configure).await
}

/// Starts the application on an existing data directory (to test what survives a restart;
/// `configure` may set `server.grpc.addr` to the address of the run before).
pub async fn spawn_app_in(data_dir: TempDir, configure: impl FnOnce(&mut Config)) -> TestApp {
    init_test_log();
    let mut config = Config::for_tests(data_dir.path());
    configure(&mut config);
    let tls = config.server.grpc.tls.enabled();
    let app = Application::build(config)
        .await
        .expect("build the application");
    TestApp::start(app, data_dir, tls).await
}

impl TestApp {
    /// Serves an application the test built itself (`tests/otlp.rs` builds one with its own
    /// telemetry), plaintext, with its data in `data_dir`.
    pub async fn serve(app: Application, data_dir: TempDir) -> Self {
        Self::start(app, data_dir, false).await
    }

    /// Runs a built application until the test stops it, and connects to it (lazily when it
    /// serves `tls`).
    async fn start(app: Application, data_dir: TempDir, tls: bool) -> Self {
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
        Self {
            channel,
            addr,
            metrics_addr,
            data_dir: Some(data_dir),
            shutdown: Some(shutdown),
            serving: Some(serving),
        }
    }

    /// `http://ADDR`: what a client (streamctl's `--addr`, [`crate::connect`]) dials.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `StreamingService` client on the shared [`TestApp::channel`].
    pub fn streaming(&self) -> StreamingServiceClient<Channel> {
        StreamingServiceClient::new(self.channel.clone())
    }

    /// A health client on the shared [`TestApp::channel`].
    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// A new connection, with HTTP/2 flow control of its own (`channel` is shared).
    pub async fn connect(&self) -> Channel {
        crate::connect(&self.url()).await
    }

    /// The data directory (database and, under `files/`, the file store).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.as_ref().expect("not stopped yet").path()
    }

    /// Shuts the application down, waits for it (at most [`crate::WAIT`]), and hands back its
    /// data directory for a restart.
    pub async fn stop(mut self) -> TempDir {
        let stopped = self.begin_shutdown();
        within("the application to stop", stopped)
            .await
            .expect("server task")
            .expect("the server stops cleanly");
        self.data_dir.take().expect("stopped once")
    }

    /// Sends the shutdown signal; returns the server's completion, which the test awaits.
    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.serving.take().expect("shutdown requested twice")
    }
}
