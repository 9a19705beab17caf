//! DownloadFile: which file a request names, and its parts from an offset in chunks.

use std::fmt;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _, stream};

use super::FileHub;
use crate::{
    Error, Result,
    files::{ByteStream, Checksum, FileId, FilePath, StoredFile},
};

/// DownloadFile's chunk size when the request leaves it 0.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;
/// DownloadFile's chunk size range; requests outside are clamped into it.
pub const MIN_CHUNK_SIZE: usize = 1024;
/// See [`MIN_CHUNK_SIZE`].
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;

/// Which file a download names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileTarget {
    /// `file_id`: exactly this file.
    Id(FileId),
    /// `file_path`: the file whose id it spells, else the newest file of that name.
    Path(FilePath),
}

/// A validated DownloadFile request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRequest {
    pub target: FileTarget,
    pub offset: u64,
    pub chunk_size: usize,
}

impl DownloadRequest {
    /// A download of `target` from byte `offset`, in chunks of `chunk_size` bytes (the
    /// default when `None`, else clamped to the allowed range).
    pub fn new(target: FileTarget, offset: u64, chunk_size: Option<usize>) -> Self {
        let chunk_size = chunk_size.map_or(DEFAULT_CHUNK_SIZE, |size| {
            size.clamp(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
        });
        Self {
            target,
            offset,
            chunk_size,
        }
    }
}

/// One message of a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadPart {
    /// File bytes starting at `offset`.
    Data {
        number: i64,
        offset: u64,
        data: Bytes,
    },
    /// The end: no data; the whole file's size and checksum.
    End {
        number: i64,
        offset: u64,
        size: u64,
        sha256: Checksum,
    },
}

/// A download that passed every check: the file, then its parts.
pub struct Download {
    pub file: StoredFile,
    pub parts: std::pin::Pin<Box<dyn Stream<Item = Result<DownloadPart>> + Send + 'static>>,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl FileHub {
    /// Checks `request` against the file and starts reading it.
    pub async fn download(&self, request: DownloadRequest) -> Result<Download> {
        let file = match &request.target {
            FileTarget::Id(id) => self
                .inner
                .store
                .file(id)
                .await?
                .ok_or_else(|| Error::FileNotFound(id.to_string()))?,
            FileTarget::Path(path) => self.resolve(path).await?.ok_or(Error::NoFileAtPath)?,
        };
        if request.offset > file.size {
            return Err(Error::OffsetBeyondEnd {
                offset: request.offset,
                size: file.size,
            });
        }
        let chunk_size = request
            .chunk_size
            .min(self.inner.limits.max_chunk_bytes)
            .max(1);
        let bytes = self
            .inner
            .store
            .read(&file, request.offset, chunk_size)
            .await?;
        let cursor = DownloadCursor {
            bytes,
            number: 0,
            offset: request.offset,
            end: Some(DownloadEnd {
                size: file.size,
                sha256: file.sha256.clone(),
            }),
        };
        let transfers = self.inner.transfers.clone();
        let parts = stream::unfold(cursor, move |mut cursor| {
            let transfers = transfers.clone();
            async move {
                // `end` is gone after the end part or an error: the stream is over.
                cursor.end.as_ref()?;
                match cursor.bytes.next().await {
                    Some(Ok(data)) => {
                        let len = data.len() as u64;
                        transfers.downloaded_bytes(len);
                        let part = DownloadPart::Data {
                            number: cursor.number,
                            offset: cursor.offset,
                            data,
                        };
                        cursor.number += 1;
                        cursor.offset += len;
                        Some((Ok(part), cursor))
                    }
                    Some(Err(err)) => {
                        cursor.end = None;
                        Some((Err(err), cursor))
                    }
                    None => {
                        let end = cursor.end.take()?;
                        let part = DownloadPart::End {
                            number: cursor.number,
                            offset: cursor.offset,
                            size: end.size,
                            sha256: end.sha256,
                        };
                        Some((Ok(part), cursor))
                    }
                }
            }
        });
        Ok(Download {
            file,
            parts: Box::pin(parts),
        })
    }

    /// The file a `file_path` names. An id wins over a name: ids are the server's and
    /// unambiguous, while anyone may upload a file *named* like another file's id, which
    /// must not hide that file from a client asking for it by id.
    async fn resolve(&self, path: &FilePath) -> Result<Option<StoredFile>> {
        if let Some(id) = path.file_id()
            && let Some(file) = self.inner.store.file(&id).await?
        {
            return Ok(Some(file));
        }
        self.inner.store.newest_named(path.as_str()).await
    }
}

struct DownloadEnd {
    size: u64,
    sha256: Checksum,
}

/// Where a download stands: numbers and offsets of the parts sent so far.
struct DownloadCursor {
    bytes: ByteStream,
    number: i64,
    offset: u64,
    end: Option<DownloadEnd>,
}
