//! [`Application`]: a bound listener plus everything built from the configuration.

use std::{future::Future, net::SocketAddr, sync::Arc};

use crate::telemetry::{DomainHubs, Telemetry};

use anyhow::Context as _;
use streamhub_biz::{
    Lifecycle, TransferStats,
    batch::BatchLimits,
    chat::{ChatLimits, RoomHub},
    compat::ConversationHub,
    edit::{DocumentLimits, EditHub, EditLimits},
    files::{FileHub, FileLimits},
    game::{Board, GameHub, GameLimits},
    logs::{LogHub, RetentionPolicy},
    market::{Market, MarketLimits},
    sensors::SensorLimits,
};
use streamhub_conf::{BatchConf, ChatConf, Config, EditConf, GameConf, MarketConf, SensorsConf};
use streamhub_data::{Data, SqliteDocumentRepo, SqliteFileStore, SqliteLogRepo, SqliteRoomRepo};
use streamhub_server::Services;
use streamhub_service::{Shutdown, StreamingDomain, StreamingService, compat::CompatServices};
use tokio::net::TcpListener;

/// A resumable upload makes its bytes durable (and GetUploadStatus's offset advance) at least
/// this often, besides whenever its stream breaks: one fsync per 16 MiB costs little.
const CHECKPOINT_BYTES: u64 = 16 * 1024 * 1024;

/// How long background tasks get to end once every call has ended.
const TASKS_AFTER_CALLS: std::time::Duration = std::time::Duration::from_millis(500);

/// Room a download chunk's other fields take besides its data, so a chunk never exceeds
/// `server.grpc.max_encoding_message_size`.
const CHUNK_FRAMING_BYTES: usize = 256;

/// The whole server, built and bound but not yet serving.
#[derive(Debug)]
pub struct Application {
    config: Config,
    listener: TcpListener,
    data: Data,
    services: Services,
    /// The server's shutdown signals, as calls see them.
    shutdown: Shutdown,
    /// The background work of the hubs and repositories; it stops when shutdown starts.
    lifecycle: Lifecycle,
    /// The `/metrics` listener, when `server.metrics.addr` is set.
    metrics_listener: Option<TcpListener>,
    telemetry: Telemetry,
}

impl Application {
    /// Binds `server.grpc.addr`, opens the data layer and builds every service, with the
    /// telemetry `config` asks for. Must run inside a Tokio runtime.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let telemetry = Telemetry::start(&config)?;
        Self::build_with(config, telemetry).await
    }

    /// Like [`Application::build`], with telemetry the caller started (the binary starts it
    /// first so that its tracer can join the log subscriber).
    pub async fn build_with(config: Config, telemetry: Telemetry) -> anyhow::Result<Self> {
        let addr = config.server.grpc.addr;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("server.grpc.addr: cannot listen on {addr}"))?;
        let metrics_listener = match config.server.metrics.addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("server.metrics.addr: cannot listen on {addr}"))?,
            ),
            None => None,
        };
        let data = Data::open(&config.data).await?;
        let lifecycle = Lifecycle::new();
        let shutdown = Shutdown::of(&lifecycle);
        let transfers = TransferStats::default();
        let domain = StreamingDomain {
            market: Market::new(
                config.market.seed,
                market_limits(&config.market),
                &lifecycle,
            ),
            sensor_limits: sensor_limits(&config.sensors),
            batch_limits: batch_limits(&config.batch),
            edits: EditHub::new(
                Arc::new(SqliteDocumentRepo::new(data.database())),
                edit_limits(&config.edit, config.server.grpc.max_encoding_message_size),
                &lifecycle,
            ),
            logs: log_hub(&config, &data, &lifecycle),
            rooms: RoomHub::in_process(
                Arc::new(SqliteRoomRepo::new(data.database().clone())),
                chat_limits(&config.chat),
                &lifecycle,
            ),
            games: GameHub::in_process(game_limits(&config.game)),
            files: file_hub(&config, &data, transfers.clone(), &lifecycle).await?,
        };
        let compat_chat = config
            .compat
            .enabled
            .then(|| ConversationHub::new(config.compat.chat_queue));
        telemetry.register_domain(DomainHubs {
            rooms: &domain.rooms,
            games: &domain.games,
            edits: &domain.edits,
            logs: &domain.logs,
            compat_chat: compat_chat.as_ref(),
            transfers: &transfers,
        });
        let mut services =
            Services::new(StreamingService::new(&shutdown, domain)).with_telemetry(telemetry.rpc());
        if let Some(chat) = compat_chat {
            services = services.with_compat(CompatServices::new(
                chat,
                config.compat.pace,
                config.server.grpc.max_encoding_message_size,
                &shutdown,
            ));
        }
        Ok(Self {
            config,
            listener,
            data,
            services,
            shutdown,
            lifecycle,
            metrics_listener,
            telemetry,
        })
    }

    /// The address the server listens on (useful when the config asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the `/metrics` endpoint, when `server.metrics.addr` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown` completes, shuts down gracefully, closes the database and
    /// flushes the telemetry exporters.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        if let (Some(listener), Some(scraper)) =
            (self.metrics_listener.take(), self.telemetry.scraper())
        {
            let stopping = self.shutdown.stopping.clone();
            self.lifecycle.spawn(async move {
                if let Err(err) = streamhub_server::serve_metrics(listener, scraper, stopping).await
                {
                    tracing::error!(%err, "the /metrics endpoint failed");
                }
            });
        }
        let served = streamhub_server::run(
            self.listener,
            &self.config.server,
            &self.config.auth,
            self.services,
            self.shutdown.clone(),
            shutdown,
        )
        .await;
        // The server cancels both signals as shutdown goes on; make sure they are cancelled on
        // an error path too. Every call has ended by now: what is left (hub tasks, an upload
        // making its last bytes durable) gets a moment, not another grace, so the process
        // exits promptly after its last call.
        self.shutdown.grace_over.cancel();
        if !self.lifecycle.stop_and_wait(TASKS_AFTER_CALLS).await {
            tracing::warn!(
                wait = ?TASKS_AFTER_CALLS,
                "background tasks did not end in time after the last call"
            );
        }
        self.data.close().await;
        self.telemetry.shutdown().await;
        served?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The log store over SQLite; its retention runs on `lifecycle`.
fn log_hub(config: &Config, data: &Data, lifecycle: &Lifecycle) -> LogHub {
    let logs = LogHub::new(
        Arc::new(SqliteLogRepo::new(data.database().clone())),
        config.logs.live_buffer,
        lifecycle,
    );
    logs.spawn_retention(RetentionPolicy {
        max_age: config.logs.retention,
        max_entries: config.logs.max_entries,
        interval: config.logs.retention_interval,
    });
    logs
}

/// The file store under `data.storage.root`, cleaned of what the last run left; its sweeper
/// runs on `lifecycle`.
async fn file_hub(
    config: &Config,
    data: &Data,
    transfers: TransferStats,
    lifecycle: &Lifecycle,
) -> anyhow::Result<FileHub> {
    let (file_store, recovered) =
        SqliteFileStore::open(data.database().clone(), data.storage_root(), lifecycle).await?;
    tracing::info!(?recovered, "file store opened");
    let storage = &config.data.storage;
    let files = FileHub::new(
        Arc::new(file_store),
        FileLimits {
            max_file_bytes: storage.max_file_bytes,
            resume_ttl: storage.resume_ttl,
            checkpoint_bytes: CHECKPOINT_BYTES,
            max_chunk_bytes: config
                .server
                .grpc
                .max_encoding_message_size
                .saturating_sub(CHUNK_FRAMING_BYTES),
        },
        transfers,
        lifecycle,
    );
    files.spawn_sweeper(storage.sweep_interval);
    Ok(files)
}

fn chat_limits(conf: &ChatConf) -> ChatLimits {
    ChatLimits {
        history: conf.history,
        member_queue: conf.member_queue,
        max_message_bytes: conf.max_message_bytes,
        max_rooms: conf.max_rooms,
        max_messages_per_second: conf.max_messages_per_second,
    }
}

fn game_limits(conf: &GameConf) -> GameLimits {
    GameLimits {
        board: Board {
            width: conf.board_width,
            height: conf.board_height,
        },
        max_sessions: conf.max_sessions,
    }
}

/// `max_update_bytes` is `server.grpc.max_encoding_message_size`: no document may produce an
/// update the transport would refuse to encode.
fn edit_limits(conf: &EditConf, max_update_bytes: usize) -> EditLimits {
    EditLimits {
        document: DocumentLimits {
            op_log: conf.op_log,
            max_chars: conf.max_document_chars,
        },
        max_open_documents: conf.max_open_documents,
        subscriber_queue: conf.subscriber_queue,
        subscriber_queue_bytes: conf.subscriber_queue_bytes,
        max_update_bytes,
    }
}

fn market_limits(conf: &MarketConf) -> MarketLimits {
    MarketLimits {
        default_interval: conf.default_interval,
        min_interval: conf.min_interval,
        max_symbols_per_request: conf.max_symbols_per_request,
        max_symbols: conf.max_symbols,
    }
}

fn sensor_limits(conf: &SensorsConf) -> SensorLimits {
    SensorLimits {
        temperature: conf.temperature_min..=conf.temperature_max,
        humidity: conf.humidity_min..=conf.humidity_max,
        pressure: conf.pressure_min..=conf.pressure_max,
        max_sensors: conf.max_sensors,
    }
}

fn batch_limits(conf: &BatchConf) -> BatchLimits {
    BatchLimits {
        max_item_bytes: conf.max_item_bytes,
        max_items: conf.max_items,
        max_reported_errors: conf.max_reported_errors,
    }
}
