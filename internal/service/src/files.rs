//! Files over gRPC: UploadFile, DownloadFile, GetUploadStatus, ListFiles and DeleteFile, all
//! backed by one [`FileHub`].
//!
//! Translation only: chunks become [`UploadChunk`]s (their `Bytes` passed through, not
//! copied), the hub's download parts become [`FileChunk`]s, errors become statuses.

use futures_util::StreamExt as _;
use streamhub_api::streaming::{
    DeleteFileRequest, DeleteFileResponse, FileChunk, FileInfo, FileRequest, ListFilesRequest,
    ListFilesResponse, UploadResult, UploadStatus, UploadStatusRequest,
};
use streamhub_biz::files::{
    DownloadPart, DownloadRequest, FileHub, StoredFile, UploadChunk, UploadFailure,
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    ResponseStream, Shutdown,
    request_stream::{OnShutdown, request_stream},
    timestamp, to_status,
};

/// The file handlers: the hub plus the shutdown signals that end uploads.
///
/// Both directions are transfers: on shutdown they may finish within the grace, after which
/// the server ends whatever is still open (a download needs nothing of its own for that).
#[derive(Debug, Clone)]
pub(crate) struct FileHandlers {
    hub: FileHub,
    shutdown: Shutdown,
}

impl FileHandlers {
    pub(crate) fn new(hub: FileHub, shutdown: Shutdown) -> Self {
        Self { hub, shutdown }
    }

    /// Commits only after the client's half-close; a cancelled upload stores nothing (a
    /// resumable one keeps what arrived).
    pub(crate) async fn upload_file(
        &self,
        request: Request<Streaming<FileChunk>>,
    ) -> Result<Response<UploadResult>, Status> {
        let (chunks, half_close) = request_stream(
            request.into_inner(),
            OnShutdown::Transfer(self.shutdown.clone()),
        );
        let chunks = chunks.map(|chunk| chunk.map(upload_chunk));
        match half_close.confirm_while(self.hub.upload(chunks)).await {
            Ok(file) => Ok(Response::new(UploadResult {
                file_id: file.id.to_string(),
                total_bytes: size(file.size),
                checksum: file.sha256.to_string(),
                uploaded_at: Some(timestamp(file.created_at)),
                file_name: file.name.as_str().to_owned(),
            })),
            Err(UploadFailure::Domain(err)) => Err(to_status(err)),
            Err(UploadFailure::Stream(status)) => Err(status),
        }
    }

    pub(crate) async fn download_file(
        &self,
        request: Request<FileRequest>,
    ) -> Result<Response<ResponseStream<FileChunk>>, Status> {
        let request = request.into_inner();
        let request = DownloadRequest::new(
            &request.file_id,
            &request.file_path,
            request.chunk_size,
            request.offset,
        )
        .map_err(to_status)?;
        let download = self.hub.download(request).await.map_err(to_status)?;
        let name = download.file.name.as_str().to_owned();
        let chunks = download
            .parts
            .map(move |part| part.map(|part| file_chunk(part, &name)).map_err(to_status));
        Ok(Response::new(Box::pin(chunks)))
    }

    pub(crate) async fn get_upload_status(
        &self,
        request: Request<UploadStatusRequest>,
    ) -> Result<Response<UploadStatus>, Status> {
        let upload_id = request.into_inner().upload_id;
        let offset = self
            .hub
            .upload_status(&upload_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(UploadStatus {
            upload_id,
            offset: size(offset),
        }))
    }

    pub(crate) async fn list_files(
        &self,
        request: Request<ListFilesRequest>,
    ) -> Result<Response<ListFilesResponse>, Status> {
        let request = request.into_inner();
        let page = self
            .hub
            .list(request.page_size, &request.page_token, &request.name_prefix)
            .await
            .map_err(to_status)?;
        Ok(Response::new(ListFilesResponse {
            files: page.files.iter().map(file_info).collect(),
            next_page_token: page.next_token.unwrap_or_default(),
        }))
    }

    pub(crate) async fn delete_file(
        &self,
        request: Request<DeleteFileRequest>,
    ) -> Result<Response<DeleteFileResponse>, Status> {
        self.hub
            .delete(&request.into_inner().file_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(DeleteFileResponse {}))
    }
}

/// Sizes fit `int64` (they are bounded by `data.storage.max_file_bytes`); saturate anyway.
fn size(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

fn upload_chunk(chunk: FileChunk) -> UploadChunk {
    UploadChunk {
        data: chunk.data,
        chunk_number: chunk.chunk_number,
        is_last: chunk.is_last,
        offset: chunk.offset,
        checksum: chunk.checksum,
        file_name: chunk.file_name,
        upload_id: chunk.upload_id,
        total_bytes: chunk.total_bytes,
    }
}

/// A download part on the wire. Chunk numbers count from 0 per stream; `int32` holds them
/// for any file within the size limit at the smallest chunk size (1 TiB / 1 KiB = 2^30).
fn file_chunk(part: DownloadPart, name: &str) -> FileChunk {
    match part {
        DownloadPart::Data {
            number,
            offset,
            data,
        } => FileChunk {
            data,
            chunk_number: i32::try_from(number).unwrap_or(i32::MAX),
            offset: size(offset),
            file_name: if number == 0 {
                name.to_owned()
            } else {
                String::new()
            },
            ..FileChunk::default()
        },
        DownloadPart::End {
            number,
            offset,
            size: total,
            sha256,
        } => FileChunk {
            chunk_number: i32::try_from(number).unwrap_or(i32::MAX),
            is_last: true,
            offset: size(offset),
            checksum: sha256.to_string(),
            file_name: name.to_owned(),
            total_bytes: size(total),
            ..FileChunk::default()
        },
    }
}

fn file_info(file: &StoredFile) -> FileInfo {
    FileInfo {
        file_id: file.id.to_string(),
        file_name: file.name.as_str().to_owned(),
        total_bytes: size(file.size),
        checksum: file.sha256.to_string(),
        uploaded_at: Some(timestamp(file.created_at)),
    }
}
