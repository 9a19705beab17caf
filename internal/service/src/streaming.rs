//! `streaming.StreamingService`: seed 001's service and streamhub's extensions.
//!
//! Every method delegates to the module of its feature; this one only holds them together.

use streamhub_api::streaming::{
    BatchItem, BatchResult, ChatMessage, DeleteFileRequest, DeleteFileResponse, DocumentUpdate,
    EditOperation, FileChunk, FileRequest, GameAction, GameState, ListFilesRequest,
    ListFilesResponse, LogEntry, LogRequest, PushLogsResult, SensorData, SensorSummary, StockPrice,
    StockRequest, StreamData, StreamRequest, UploadResult, UploadStatus, UploadStatusRequest,
    streaming_service_server,
};
use streamhub_biz::{
    auth::Caller, batch::BatchLimits, chat::RoomHub, edit::EditHub, files::FileHub, game::GameHub,
    logs::LogHub, market::Market, sensors::SensorLimits,
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    Shutdown, edit,
    files::FileHandlers,
    logs::LogHandlers,
    request_stream::{OnShutdown, request_stream},
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
    /// Cancelled when shutdown starts; every long-lived stream ends on it.
    stopping: CancellationToken,
    market: Market,
    sensor_limits: SensorLimits,
    batch_limits: BatchLimits,
    edits: EditHub,
    logs: LogHandlers,
    rooms: RoomHub,
    games: GameHub,
    files: FileHandlers,
}

impl StreamingService {
    /// Builds the handlers; `shutdown` carries the server's shutdown signals.
    pub fn new(shutdown: &Shutdown, domain: StreamingDomain) -> Self {
        let stopping = shutdown.stopping.clone();
        let StreamingDomain {
            market,
            sensor_limits,
            batch_limits,
            edits,
            logs,
            rooms,
            games,
            files,
        } = domain;
        Self {
            logs: LogHandlers::new(logs, stopping.clone()),
            files: FileHandlers::new(files, shutdown.clone()),
            stopping,
            market,
            sensor_limits,
            batch_limits,
            edits,
            rooms,
            games,
        }
    }
}

/// The caller the server's authentication layer put on the request; anonymous when
/// authentication is off.
fn caller_of<T>(request: &Request<T>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default()
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
        crate::market::get_stock_prices(&self.market, &self.stopping, request.into_inner())
            .map(Response::new)
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
        let (readings, half_close) = request_stream(
            request.into_inner(),
            OnShutdown::EndWhenIdle(self.stopping.clone()),
        );
        half_close
            .confirm_while(crate::sensors::collect_sensor_data(
                &self.sensor_limits,
                readings,
            ))
            .await
            .map(Response::new)
    }

    async fn process_batch(
        &self,
        request: Request<Streaming<BatchItem>>,
    ) -> Result<Response<BatchResult>, Status> {
        let (items, half_close) = request_stream(
            request.into_inner(),
            OnShutdown::EndWhenIdle(self.stopping.clone()),
        );
        half_close
            .confirm_while(crate::batch::process_batch(&self.batch_limits, items))
            .await
            .map(Response::new)
    }

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        Ok(Response::new(crate::chat::chat(
            self.rooms.clone(),
            caller_of(&request),
            request.into_inner(),
            self.stopping.clone(),
        )))
    }

    async fn game_session(
        &self,
        request: Request<Streaming<GameAction>>,
    ) -> Result<Response<Self::GameSessionStream>, Status> {
        Ok(Response::new(crate::game::game_session(
            self.games.clone(),
            caller_of(&request),
            request.into_inner(),
            self.stopping.clone(),
        )))
    }

    async fn collaborative_edit(
        &self,
        request: Request<Streaming<EditOperation>>,
    ) -> Result<Response<Self::CollaborativeEditStream>, Status> {
        let caller = caller_of(&request);
        let updates =
            edit::collaborative_edit(&self.edits, &self.stopping, caller, request.into_inner());
        Ok(Response::new(updates))
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
