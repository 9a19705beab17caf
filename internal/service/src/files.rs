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
    DownloadPart, DownloadRequest, FileHub, FileId, FilePath, FileTarget, ListQuery, NamePrefix,
    PageCursor, StoredFile, UploadChunk, UploadFailure, UploadId,
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
    pub(crate) fn new(hub: FileHub, shutdown: &Shutdown) -> Self {
        Self {
            hub,
            shutdown: shutdown.clone(),
        }
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
        let request = download_request(request.into_inner())?;
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
        let id = UploadId::parse(&upload_id).map_err(to_status)?;
        let offset = self.hub.upload_status(&id).await.map_err(to_status)?;
        Ok(Response::new(UploadStatus {
            upload_id,
            offset: size(offset),
        }))
    }

    pub(crate) async fn list_files(
        &self,
        request: Request<ListFilesRequest>,
    ) -> Result<Response<ListFilesResponse>, Status> {
        let query = list_query(&request.into_inner())?;
        let page = self.hub.list(query).await.map_err(to_status)?;
        Ok(Response::new(ListFilesResponse {
            files: page.files.iter().map(file_info).collect(),
            next_page_token: page
                .next
                .map(|PageCursor(seq)| seq.to_string())
                .unwrap_or_default(),
        }))
    }

    pub(crate) async fn delete_file(
        &self,
        request: Request<DeleteFileRequest>,
    ) -> Result<Response<DeleteFileResponse>, Status> {
        let id = FileId::parse("file_id", &request.into_inner().file_id).map_err(to_status)?;
        self.hub.delete(&id).await.map_err(to_status)?;
        Ok(Response::new(DeleteFileResponse {}))
    }
}

/// A DownloadFile request as the hub takes it: exactly one of `file_id` and `file_path`, a
/// non-negative offset, `chunk_size` 0 for the default.
fn download_request(request: FileRequest) -> Result<DownloadRequest, Status> {
    let target = match (request.file_id.is_empty(), request.file_path.is_empty()) {
        (true, true) => {
            return Err(invalid(
                "file_id",
                "is empty; name the file with file_id or file_path",
            ));
        }
        (false, false) => {
            return Err(invalid(
                "file_path",
                "must be empty when file_id is set; name the file one way",
            ));
        }
        (false, true) => {
            FileTarget::Id(FileId::parse("file_id", &request.file_id).map_err(to_status)?)
        }
        (true, false) => FileTarget::Path(FilePath::parse(&request.file_path).map_err(to_status)?),
    };
    let offset = non_negative("offset", request.offset)?;
    let chunk_size = match non_negative::<usize, _>("chunk_size", request.chunk_size)? {
        0 => None,
        size => Some(size),
    };
    Ok(DownloadRequest::new(target, offset, chunk_size))
}

/// A ListFiles request as the hub takes it: `page_size` 0 for the default, `page_token` empty
/// for the first page or a token an earlier page returned, `name_prefix` empty for all files.
fn list_query(request: &ListFilesRequest) -> Result<ListQuery, Status> {
    let page_size = match non_negative::<u32, _>("page_size", request.page_size)? {
        0 => None,
        size => Some(size),
    };
    let after = if request.page_token.is_empty() {
        None
    } else {
        let seq = request
            .page_token
            .parse::<i64>()
            .ok()
            .filter(|seq| *seq > 0)
            .ok_or_else(|| invalid("page_token", "is not a token ListFiles returned"))?;
        Some(PageCursor(seq))
    };
    Ok(ListQuery {
        page_size,
        after,
        name_prefix: NamePrefix::parse(&request.name_prefix).map_err(to_status)?,
    })
}

fn invalid(field: &str, reason: &str) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

/// `value` of request field `field` as an unsigned number; negative is `INVALID_ARGUMENT`.
fn non_negative<T, N>(field: &str, value: N) -> Result<T, Status>
where
    T: TryFrom<N>,
    N: Copy + std::fmt::Display,
{
    T::try_from(value).map_err(|_| invalid(field, &format!("must not be negative, got {value}")))
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
