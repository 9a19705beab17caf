//! A stand-in server for the five file RPCs (UploadFile, DownloadFile, GetUploadStatus,
//! ListFiles, DeleteFile), written from API.md, in memory, for as long as the real ones are
//! not on this branch. Every other method answers `UNIMPLEMENTED`.
//!
//! It models what streamctl relies on: chunk numbers from 0 on every stream, resumable
//! uploads whose received bytes are kept when the stream breaks (and only visible to
//! GetUploadStatus as durable from then on), the final chunk's checksum (`DATA_LOSS` on a
//! mismatch), downloads from an offset ending with an empty last chunk carrying the
//! checksum and size, and `NOT_FOUND` for unknown ids.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

use sha2::{Digest as _, Sha256};
use streamhub_api::streaming::{
    BatchItem, BatchResult, ChatMessage, DeleteFileRequest, DeleteFileResponse, DocumentUpdate,
    EditOperation, FileChunk, FileInfo, FileRequest, GameAction, GameState, ListFilesRequest,
    ListFilesResponse, LogEntry, LogRequest, PushLogsResult, SensorData, SensorSummary, StockPrice,
    StockRequest, StreamData, StreamRequest, UploadResult, UploadStatus, UploadStatusRequest,
    streaming_service_client::StreamingServiceClient,
    streaming_service_server::{StreamingService, StreamingServiceServer},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::{Stream, wrappers::TcpListenerStream};
use tonic::{
    Request, Response, Status, Streaming,
    transport::{Channel, Endpoint, Server},
};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The stand-in, listening on `127.0.0.1:0`; it stops when dropped.
pub(crate) struct FileServer {
    pub(crate) addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    _serving: JoinHandle<()>,
}

impl FileServer {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            let _ = Server::builder()
                .add_service(StreamingServiceServer::new(FileStandIn::default()))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            _stop: stop,
            _serving: serving,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn streaming(&self) -> StreamingServiceClient<Channel> {
        let channel = Endpoint::from_shared(self.url())
            .expect("valid endpoint")
            .connect_lazy();
        StreamingServiceClient::new(channel)
    }
}

#[derive(Debug, Default, Clone)]
struct FileStandIn {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<String, Stored>,
    /// Resumable uploads: the bytes durably kept so far.
    uploads: HashMap<String, Vec<u8>>,
    next_id: u64,
}

#[derive(Debug)]
struct Stored {
    name: String,
    data: Vec<u8>,
    checksum: String,
    uploaded_at: SystemTime,
}

fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl FileStandIn {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("stand-in state")
    }

    fn info(id: &str, file: &Stored) -> FileInfo {
        FileInfo {
            file_id: id.to_owned(),
            file_name: file.name.clone(),
            total_bytes: file.data.len() as i64,
            checksum: file.checksum.clone(),
            uploaded_at: Some(file.uploaded_at.into()),
        }
    }
}

/// What one UploadFile stream has received; a broken resumable stream leaves it as the
/// upload's durable bytes when dropped.
struct Receiving {
    state: Arc<Mutex<State>>,
    upload_id: Option<String>,
    data: Vec<u8>,
    committed: bool,
}

impl Drop for Receiving {
    fn drop(&mut self) {
        if let (false, Some(id)) = (self.committed, &self.upload_id) {
            let data = std::mem::take(&mut self.data);
            self.state
                .lock()
                .expect("stand-in state")
                .uploads
                .insert(id.clone(), data);
        }
    }
}

fn unimplemented<T>(method: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{method} is not part of the file stand-in"
    )))
}

#[tonic::async_trait]
impl StreamingService for FileStandIn {
    type GetStockPricesStream = ResponseStream<StockPrice>;
    type StreamLogsStream = ResponseStream<LogEntry>;
    type DownloadFileStream = ResponseStream<FileChunk>;
    type ChatStream = ResponseStream<ChatMessage>;
    type GameSessionStream = ResponseStream<GameState>;
    type CollaborativeEditStream = ResponseStream<DocumentUpdate>;
    type GetDataStreamStream = ResponseStream<StreamData>;
    type ControlledStreamStream = ResponseStream<StreamData>;
    type BufferedStreamStream = ResponseStream<StreamData>;

    async fn upload_file(
        &self,
        request: Request<Streaming<FileChunk>>,
    ) -> Result<Response<UploadResult>, Status> {
        let mut chunks = request.into_inner();
        let mut receiving = Receiving {
            state: Arc::clone(&self.state),
            upload_id: None,
            data: Vec::new(),
            committed: false,
        };
        let mut next = 0;
        let mut name = String::new();
        let mut declared = String::new();
        while let Some(chunk) = chunks.message().await? {
            if chunk.chunk_number != next {
                return Err(Status::invalid_argument(format!(
                    "chunk_number: expected {next}, got {}",
                    chunk.chunk_number
                )));
            }
            if next == 0 {
                name = if chunk.file_name.is_empty() {
                    "upload.bin".to_owned()
                } else {
                    chunk.file_name.clone()
                };
                if !chunk.upload_id.is_empty() {
                    // Known (at its durable offset) from the first chunk on; what this
                    // stream adds becomes durable when it breaks.
                    receiving.data = self
                        .state()
                        .uploads
                        .entry(chunk.upload_id.clone())
                        .or_default()
                        .clone();
                    receiving.upload_id = Some(chunk.upload_id.clone());
                }
            }
            if receiving.upload_id.is_some() && chunk.offset != receiving.data.len() as i64 {
                return Err(Status::failed_precondition(format!(
                    "chunk {} starts at offset {}, the upload stands at {}",
                    chunk.chunk_number,
                    chunk.offset,
                    receiving.data.len()
                )));
            }
            receiving.data.extend_from_slice(&chunk.data);
            if !chunk.checksum.is_empty() {
                declared = chunk.checksum.clone();
            }
            next += 1;
        }
        let checksum = hex_sha256(&receiving.data);
        receiving.committed = true;
        if !declared.is_empty() && declared != checksum {
            return Err(Status::data_loss(format!(
                "checksum {declared} differs from the received data's {checksum}"
            )));
        }
        let mut state = self.state();
        if let Some(id) = &receiving.upload_id {
            state.uploads.remove(id);
        }
        state.next_id += 1;
        let file_id = format!("f{}", state.next_id);
        let stored = Stored {
            name,
            data: std::mem::take(&mut receiving.data),
            checksum,
            uploaded_at: SystemTime::now(),
        };
        let info = Self::info(&file_id, &stored);
        state.files.insert(file_id, stored);
        Ok(Response::new(UploadResult {
            file_id: info.file_id,
            total_bytes: info.total_bytes,
            checksum: info.checksum,
            uploaded_at: info.uploaded_at,
            file_name: info.file_name,
        }))
    }

    async fn download_file(
        &self,
        request: Request<FileRequest>,
    ) -> Result<Response<Self::DownloadFileStream>, Status> {
        let request = request.into_inner();
        let state = self.state();
        let file = state
            .files
            .get(&request.file_id)
            .ok_or_else(|| Status::not_found(format!("no file {:?}", request.file_id)))?;
        let size = file.data.len();
        let offset = usize::try_from(request.offset)
            .ok()
            .filter(|offset| *offset <= size)
            .ok_or_else(|| {
                Status::out_of_range(format!(
                    "offset {} is beyond the file's {size} bytes",
                    request.offset
                ))
            })?;
        let chunk_size = match request.chunk_size {
            0 => 64 * 1024,
            asked => usize::try_from(asked).unwrap_or(0).clamp(1024, 1024 * 1024),
        };
        let mut chunks = Vec::new();
        let mut at = offset;
        for (number, data) in file.data[offset..].chunks(chunk_size).enumerate() {
            chunks.push(Ok(FileChunk {
                data: data.to_vec(),
                chunk_number: number as i32,
                offset: at as i64,
                ..FileChunk::default()
            }));
            at += data.len();
        }
        chunks.push(Ok(FileChunk {
            chunk_number: chunks.len() as i32,
            is_last: true,
            offset: size as i64,
            checksum: file.checksum.clone(),
            file_name: file.name.clone(),
            total_bytes: size as i64,
            ..FileChunk::default()
        }));
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn get_upload_status(
        &self,
        request: Request<UploadStatusRequest>,
    ) -> Result<Response<UploadStatus>, Status> {
        let upload_id = request.into_inner().upload_id;
        let state = self.state();
        let kept = state
            .uploads
            .get(&upload_id)
            .ok_or_else(|| Status::not_found(format!("no upload {upload_id:?}")))?;
        Ok(Response::new(UploadStatus {
            offset: kept.len() as i64,
            upload_id,
        }))
    }

    async fn list_files(
        &self,
        request: Request<ListFilesRequest>,
    ) -> Result<Response<ListFilesResponse>, Status> {
        let request = request.into_inner();
        let page = usize::try_from(request.page_size).unwrap_or(0).max(1);
        let state = self.state();
        // The token is the last id of the previous page.
        let mut rest = state
            .files
            .iter()
            .filter(|(id, _)| request.page_token.is_empty() || **id > request.page_token);
        let files: Vec<FileInfo> = rest
            .by_ref()
            .take(page)
            .map(|(id, file)| Self::info(id, file))
            .collect();
        let next_page_token = match (rest.next(), files.last()) {
            (Some(_), Some(last)) => last.file_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(ListFilesResponse {
            files,
            next_page_token,
        }))
    }

    async fn delete_file(
        &self,
        request: Request<DeleteFileRequest>,
    ) -> Result<Response<DeleteFileResponse>, Status> {
        let file_id = request.into_inner().file_id;
        match self.state().files.remove(&file_id) {
            Some(_) => Ok(Response::new(DeleteFileResponse {})),
            None => Err(Status::not_found(format!("no file {file_id:?}"))),
        }
    }

    async fn get_stock_prices(
        &self,
        _: Request<StockRequest>,
    ) -> Result<Response<Self::GetStockPricesStream>, Status> {
        unimplemented("GetStockPrices")
    }

    async fn stream_logs(
        &self,
        _: Request<LogRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        unimplemented("StreamLogs")
    }

    async fn collect_sensor_data(
        &self,
        _: Request<Streaming<SensorData>>,
    ) -> Result<Response<SensorSummary>, Status> {
        unimplemented("CollectSensorData")
    }

    async fn process_batch(
        &self,
        _: Request<Streaming<BatchItem>>,
    ) -> Result<Response<BatchResult>, Status> {
        unimplemented("ProcessBatch")
    }

    async fn chat(
        &self,
        _: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        unimplemented("Chat")
    }

    async fn game_session(
        &self,
        _: Request<Streaming<GameAction>>,
    ) -> Result<Response<Self::GameSessionStream>, Status> {
        unimplemented("GameSession")
    }

    async fn collaborative_edit(
        &self,
        _: Request<Streaming<EditOperation>>,
    ) -> Result<Response<Self::CollaborativeEditStream>, Status> {
        unimplemented("CollaborativeEdit")
    }

    async fn get_data_stream(
        &self,
        _: Request<StreamRequest>,
    ) -> Result<Response<Self::GetDataStreamStream>, Status> {
        unimplemented("GetDataStream")
    }

    async fn controlled_stream(
        &self,
        _: Request<StreamRequest>,
    ) -> Result<Response<Self::ControlledStreamStream>, Status> {
        unimplemented("ControlledStream")
    }

    async fn buffered_stream(
        &self,
        _: Request<StreamRequest>,
    ) -> Result<Response<Self::BufferedStreamStream>, Status> {
        unimplemented("BufferedStream")
    }

    async fn push_logs(
        &self,
        _: Request<Streaming<LogEntry>>,
    ) -> Result<Response<PushLogsResult>, Status> {
        unimplemented("PushLogs")
    }
}
