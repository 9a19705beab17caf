//! The whole streamhub application in-process on `127.0.0.1:0`, for streamctl to talk to;
//! like the server's own `spawn_app`, plus restarting on the same address.

use std::{net::SocketAddr, time::Duration};

use streamhub::Application;
use streamhub_api::streaming::streaming_service_client::StreamingServiceClient;
use streamhub_conf::Config;
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::{Channel, Endpoint};

use crate::streamctl::within;

/// A running application.
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    channel: Channel,
    /// Holds the database and file store; removed when the test ends.
    data_dir: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the application with a fresh data directory.
pub(crate) async fn spawn_app() -> TestApp {
    let data_dir = tempfile::tempdir().expect("create a temporary data directory");
    spawn_app_in(data_dir, "127.0.0.1:0".parse().expect("valid address")).await
}

/// Starts the application on `data_dir`, listening on `addr` (a restart reuses both).
pub(crate) async fn spawn_app_in(data_dir: TempDir, addr: SocketAddr) -> TestApp {
    spawn_configured(data_dir, addr, |_| {}).await
}

/// Starts the application after `configure` has adjusted its configuration.
pub(crate) async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("create a temporary data directory");
    spawn_configured(
        data_dir,
        "127.0.0.1:0".parse().expect("valid address"),
        configure,
    )
    .await
}

async fn spawn_configured(
    data_dir: TempDir,
    addr: SocketAddr,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = Config::default();
    config.server.grpc.addr = addr;
    config.server.grpc.shutdown_grace = Duration::from_secs(5);
    config.data.database.source = format!(
        "sqlite://{}",
        data_dir.path().join("streamhub.db").display()
    );
    config.data.storage.root = data_dir.path().join("files");
    configure(&mut config);
    let app = Application::build(config)
        .await
        .expect("build the application");
    let addr = app.local_addr().expect("listener address");
    let (shutdown, signal) = oneshot::channel::<()>();
    let serving = tokio::spawn(app.run(async {
        let _ = signal.await;
    }));
    // Lazy: a TLS server would refuse this plaintext channel, which only some tests use.
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid endpoint")
        .connect_lazy();
    TestApp {
        addr,
        channel,
        data_dir: Some(data_dir),
        shutdown: Some(shutdown),
        serving: Some(serving),
    }
}

impl TestApp {
    /// The address to give streamctl's `--addr`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn streaming(&self) -> StreamingServiceClient<Channel> {
        StreamingServiceClient::new(self.channel.clone())
    }

    /// Shuts the application down, waits for it, and hands back its data directory.
    pub(crate) async fn stop(mut self) -> TempDir {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let serving = self.serving.take().expect("stopped once");
        within("the application to stop", serving)
            .await
            .expect("server task")
            .expect("the server stops cleanly");
        self.data_dir.take().expect("data directory")
    }
}
