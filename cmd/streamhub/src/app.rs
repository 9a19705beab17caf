//! [`Application`]: a bound listener plus everything built from the configuration.

use std::{future::Future, net::SocketAddr};

use anyhow::Context as _;
use streamhub_biz::{
    chat::{ChatLimits, RoomHub},
    game::{Board, GameHub, GameLimits},
};
use streamhub_conf::Config;
use streamhub_data::Data;
use streamhub_server::Services;
use streamhub_service::StreamingService;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The whole server, built and bound but not yet serving.
#[derive(Debug)]
pub struct Application {
    config: Config,
    listener: TcpListener,
    data: Data,
    services: Services,
    stopping: CancellationToken,
    /// Background tasks of the hubs and repositories; they end when `stopping` fires.
    tasks: TaskTracker,
}

impl Application {
    /// Binds `server.grpc.addr`, opens the data layer and builds every service.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let addr = config.server.grpc.addr;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("server.grpc.addr: cannot listen on {addr}"))?;
        let data = Data::open(&config.data).await?;
        // Cancelled by the server when shutdown starts; everything long-lived watches it.
        let stopping = CancellationToken::new();
        let tasks = TaskTracker::new();
        let rooms = RoomHub::in_process(ChatLimits {
            history: config.chat.history,
            member_queue: config.chat.member_queue,
            max_message_bytes: config.chat.max_message_bytes,
            max_rooms: config.chat.max_rooms,
        });
        let games = GameHub::in_process(GameLimits {
            board: Board {
                width: config.game.board_width,
                height: config.game.board_height,
            },
            max_sessions: config.game.max_sessions,
        });
        let services = Services::new(StreamingService::new(stopping.clone(), rooms, games));
        Ok(Self {
            config,
            listener,
            data,
            services,
            stopping,
            tasks,
        })
    }

    /// The address the server listens on (useful when the config asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, shuts down gracefully and closes the database.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let grace = self.config.server.grpc.shutdown_grace;
        let served = streamhub_server::run(
            self.listener,
            &self.config.server.grpc,
            self.services,
            self.stopping.clone(),
            shutdown,
        )
        .await;
        // The server cancels `stopping` when it shuts down; make sure it is cancelled on an
        // error path too, then give background tasks the same grace as open calls.
        self.stopping.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(?grace, "background tasks outlived the shutdown grace");
        }
        self.data.close().await;
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}
