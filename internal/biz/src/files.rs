//! Files: streamed, checksummed, atomic and resumable uploads and downloads.
//!
//! The rules live here as plain code: which names and paths are acceptable and what a name
//! means ([`names`]: a name is what the uploader called the file; the newest file of a name
//! is the one the name finds; an id always finds its one file), what
//! each chunk of an upload must say ([`UploadProgress`]), and how an upload moves from a
//! partial file to a committed one ([`FileHub`]). Bytes and rows are behind [`FileStore`],
//! which `streamhub-data` implements; the promise it must keep is that a file is visible only
//! once its bytes are durable in the store and its row is committed.

#[cfg(any(test, feature = "testing"))]
pub mod contract;
mod hub;
#[cfg(test)]
mod hub_tests;
#[cfg(test)]
mod memory_store;
mod names;
mod store;
mod upload;

pub use hub::{
    DEFAULT_CHUNK_SIZE, DEFAULT_PAGE_SIZE, Download, DownloadPart, DownloadRequest, FileHub,
    FileLimits, FilePage, FileTarget, ListQuery, MAX_CHUNK_SIZE, MAX_PAGE_SIZE, MIN_CHUNK_SIZE,
    PageCursor, UploadFailure,
};
pub use names::{
    Checksum, DEFAULT_FILE_NAME, FileId, FileName, FilePath, MAX_FILE_NAME_BYTES,
    MAX_FILE_PATH_BYTES, MAX_FILE_PATH_DEPTH, MAX_PATH_COMPONENT_BYTES, MAX_UPLOAD_ID_CHARS,
    NamePrefix, UploadId,
};
pub use store::{
    ByteStream, FileStore, ListedFile, PartialFile, StoredFile, UploadSession, Written,
};
pub use upload::{UploadChunk, UploadHeader, UploadProgress};
