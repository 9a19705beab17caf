//! `streaming.StreamingService`: seed 001's service and streamhub's extensions.
//!
//! Every method delegates to the handlers of its feature, which all have one shape: a struct
//! holding its biz hub and the server's [`Shutdown`], built with `new(hub, &shutdown)`, with a
//! method per RPC that takes the tonic request and returns the tonic response. This file only
//! holds them together.

use streamhub_api::streaming::{
    BatchItem, BatchResult, ChatMessage, DeleteFileRequest, DeleteFileResponse, DocumentUpdate,
    EditOperation, FileChunk, FileRequest, GameAction, GameState, ListFilesRequest,
    ListFilesResponse, LogEntry, LogRequest, PushLogsResult, SensorData, SensorSummary, StockPrice,
    StockRequest, StreamData, StreamRequest, UploadResult, UploadStatus, UploadStatusRequest,
    streaming_service_server,
};
use streamhub_biz::{
    batch::BatchLimits, chat::RoomHub, edit::EditHub, files::FileHub, game::GameHub, logs::LogHub,
    market::Market, sensors::SensorLimits,
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Shutdown, batch::BatchHandlers, chat::ChatHandlers, edit::EditHandlers, files::FileHandlers,
    game::GameHandlers, logs::LogHandlers, market::MarketHandlers, sensors::SensorHandlers,
    stream::ResponseStream,
};

/// The domain objects the handlers translate to, built by the binary from data and config.
#[derive(Debug, Clone)]
pub struct StreamingDomain {
    /// The shared simulated market behind GetStockPrices.
    pub market: Market,
    /// Plausible readings and the sensor cap of CollectSensorData.
    pub sensor_limits: SensorLimits,
    /// Limits of ProcessBatch.
    pub batch_limits: BatchLimits,
    /// The open documents of CollaborativeEdit.
    pub edits: EditHub,
    /// The log store and its live followers (logs and feeds).
    pub logs: LogHub,
    /// The chat rooms.
    pub rooms: RoomHub,
    /// The game sessions.
    pub games: GameHub,
    /// The file store: uploads, downloads, listing.
    pub files: FileHub,
}

/// The handler set of `streaming.StreamingService`.
#[derive(Debug, Clone)]
pub struct StreamingService {
    market: MarketHandlers,
    sensors: SensorHandlers,
    batch: BatchHandlers,
    chat: ChatHandlers,
    game: GameHandlers,
    edit: EditHandlers,
    logs: LogHandlers,
    files: FileHandlers,
}

impl StreamingService {
    /// Builds the handlers; `shutdown` carries the server's shutdown signals.
    pub fn new(shutdown: &Shutdown, domain: StreamingDomain) -> Self {
        Self {
            market: MarketHandlers::new(domain.market, shutdown),
            sensors: SensorHandlers::new(domain.sensor_limits, shutdown),
            batch: BatchHandlers::new(domain.batch_limits, shutdown),
            chat: ChatHandlers::new(domain.rooms, shutdown),
            game: GameHandlers::new(domain.games, shutdown),
            edit: EditHandlers::new(domain.edits, shutdown),
            logs: LogHandlers::new(domain.logs, shutdown),
            files: FileHandlers::new(domain.files, shutdown),
        }
    }
}

#[tonic::async_trait]
impl streaming_service_server::StreamingService for StreamingService {
    type GetStockPricesStream = ResponseStream<StockPrice>;
    type StreamLogsStream = ResponseStream<LogEntry>;
    type DownloadFileStream = ResponseStream<FileChunk>;
    type ChatStream = ResponseStream<ChatMessage>;
    type GameSessionStream = ResponseStream<GameState>;
    type CollaborativeEditStream = ResponseStream<DocumentUpdate>;
    type GetDataStreamStream = ResponseStream<StreamData>;
    type ControlledStreamStream = ResponseStream<StreamData>;
    type BufferedStreamStream = ResponseStream<StreamData>;

    async fn get_stock_prices(
        &self,
        request: Request<StockRequest>,
    ) -> Result<Response<Self::GetStockPricesStream>, Status> {
        self.market.get_stock_prices(request)
    }

    async fn stream_logs(
        &self,
        request: Request<LogRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        self.logs.stream_logs(request)
    }

    async fn download_file(
        &self,
        request: Request<FileRequest>,
    ) -> Result<Response<Self::DownloadFileStream>, Status> {
        self.files.download_file(request).await
    }

    async fn upload_file(
        &self,
        request: Request<Streaming<FileChunk>>,
    ) -> Result<Response<UploadResult>, Status> {
        self.files.upload_file(request).await
    }

    async fn collect_sensor_data(
        &self,
        request: Request<Streaming<SensorData>>,
    ) -> Result<Response<SensorSummary>, Status> {
        self.sensors.collect_sensor_data(request).await
    }

    async fn process_batch(
        &self,
        request: Request<Streaming<BatchItem>>,
    ) -> Result<Response<BatchResult>, Status> {
        self.batch.process_batch(request).await
    }

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        self.chat.chat(request)
    }

    async fn game_session(
        &self,
        request: Request<Streaming<GameAction>>,
    ) -> Result<Response<Self::GameSessionStream>, Status> {
        self.game.game_session(request)
    }

    async fn collaborative_edit(
        &self,
        request: Request<Streaming<EditOperation>>,
    ) -> Result<Response<Self::CollaborativeEditStream>, Status> {
        self.edit.collaborative_edit(request)
    }

    async fn get_data_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::GetDataStreamStream>, Status> {
        self.logs.get_data_stream(request)
    }

    async fn controlled_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::ControlledStreamStream>, Status> {
        self.logs.controlled_stream(request)
    }

    async fn buffered_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::BufferedStreamStream>, Status> {
        self.logs.buffered_stream(request)
    }

    async fn push_logs(
        &self,
        request: Request<Streaming<LogEntry>>,
    ) -> Result<Response<PushLogsResult>, Status> {
        self.logs.push_logs(request).await
    }

    async fn get_upload_status(
        &self,
        request: Request<UploadStatusRequest>,
    ) -> Result<Response<UploadStatus>, Status> {
        self.files.get_upload_status(request).await
    }

    async fn list_files(
        &self,
        request: Request<ListFilesRequest>,
    ) -> Result<Response<ListFilesResponse>, Status> {
        self.files.list_files(request).await
    }

    async fn delete_file(
        &self,
        request: Request<DeleteFileRequest>,
    ) -> Result<Response<DeleteFileResponse>, Status> {
        self.files.delete_file(request).await
    }
}
