//! `streaming.StreamingService`: seed 001's service and streamhub's extensions.
//!
//! Each method lands with the issue that builds its feature; until then it answers
//! `UNIMPLEMENTED` naming the method, so clients generated against the full contract get a
//! clear answer instead of a transport error.

use streamhub_api::streaming::{
    BatchItem, BatchResult, ChatMessage, DeleteFileRequest, DeleteFileResponse, DocumentUpdate,
    EditOperation, FileChunk, FileRequest, GameAction, GameState, ListFilesRequest,
    ListFilesResponse, LogEntry, LogRequest, PushLogsResult, SensorData, SensorSummary, StockPrice,
    StockRequest, StreamData, StreamRequest, UploadResult, UploadStatus, UploadStatusRequest,
    streaming_service_server,
};
use streamhub_biz::{chat::RoomHub, game::GameHub};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::stream::ResponseStream;

/// The handler set of `streaming.StreamingService`.
#[derive(Debug, Clone)]
pub struct StreamingService {
    /// Cancelled when shutdown starts; every long-lived stream ends on it.
    stopping: CancellationToken,
    rooms: RoomHub,
    games: GameHub,
}

impl StreamingService {
    /// Builds the handlers; `stopping` is the server's shutdown signal.
    pub fn new(stopping: CancellationToken, rooms: RoomHub, games: GameHub) -> Self {
        Self {
            stopping,
            rooms,
            games,
        }
    }
}

fn not_yet(method: &str) -> Status {
    Status::unimplemented(format!(
        "streaming.StreamingService/{method} is not available in this streamhub build yet"
    ))
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
        _request: Request<StockRequest>,
    ) -> Result<Response<Self::GetStockPricesStream>, Status> {
        Err(not_yet("GetStockPrices"))
    }

    async fn stream_logs(
        &self,
        _request: Request<LogRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        Err(not_yet("StreamLogs"))
    }

    async fn download_file(
        &self,
        _request: Request<FileRequest>,
    ) -> Result<Response<Self::DownloadFileStream>, Status> {
        Err(not_yet("DownloadFile"))
    }

    async fn upload_file(
        &self,
        _request: Request<Streaming<FileChunk>>,
    ) -> Result<Response<UploadResult>, Status> {
        Err(not_yet("UploadFile"))
    }

    async fn collect_sensor_data(
        &self,
        _request: Request<Streaming<SensorData>>,
    ) -> Result<Response<SensorSummary>, Status> {
        Err(not_yet("CollectSensorData"))
    }

    async fn process_batch(
        &self,
        _request: Request<Streaming<BatchItem>>,
    ) -> Result<Response<BatchResult>, Status> {
        Err(not_yet("ProcessBatch"))
    }

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        Ok(Response::new(crate::chat::chat(
            self.rooms.clone(),
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
            request.into_inner(),
            self.stopping.clone(),
        )))
    }

    async fn collaborative_edit(
        &self,
        _request: Request<Streaming<EditOperation>>,
    ) -> Result<Response<Self::CollaborativeEditStream>, Status> {
        Err(not_yet("CollaborativeEdit"))
    }

    async fn get_data_stream(
        &self,
        _request: Request<StreamRequest>,
    ) -> Result<Response<Self::GetDataStreamStream>, Status> {
        Err(not_yet("GetDataStream"))
    }

    async fn controlled_stream(
        &self,
        _request: Request<StreamRequest>,
    ) -> Result<Response<Self::ControlledStreamStream>, Status> {
        Err(not_yet("ControlledStream"))
    }

    async fn buffered_stream(
        &self,
        _request: Request<StreamRequest>,
    ) -> Result<Response<Self::BufferedStreamStream>, Status> {
        Err(not_yet("BufferedStream"))
    }

    async fn push_logs(
        &self,
        _request: Request<Streaming<LogEntry>>,
    ) -> Result<Response<PushLogsResult>, Status> {
        Err(not_yet("PushLogs"))
    }

    async fn get_upload_status(
        &self,
        _request: Request<UploadStatusRequest>,
    ) -> Result<Response<UploadStatus>, Status> {
        Err(not_yet("GetUploadStatus"))
    }

    async fn list_files(
        &self,
        _request: Request<ListFilesRequest>,
    ) -> Result<Response<ListFilesResponse>, Status> {
        Err(not_yet("ListFiles"))
    }

    async fn delete_file(
        &self,
        _request: Request<DeleteFileRequest>,
    ) -> Result<Response<DeleteFileResponse>, Status> {
        Err(not_yet("DeleteFile"))
    }
}
