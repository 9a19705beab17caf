//! `streamctl upload`: sends a file, resuming where the server's durable copy ends.
//!
//! The upload id names the file as it is (absolute path, size, modification time), so the
//! same command on the same file resumes the same upload; an attempt the server refuses
//! because the interrupted stream still holds the upload is retried after asking again where
//! it stands.

use std::{
    path::{Path, PathBuf},
    time::{Duration, UNIX_EPOCH},
};

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use streamhub_api::streaming::{FileChunk, UploadResult, UploadStatusRequest};
use tokio::{fs::File, io::AsyncReadExt as _, sync::mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use super::{
    MAX_CHUNK,
    checksum::{hash_prefix, hex},
    pace::Pace,
    to_i64,
};
use crate::{
    Failure, Outcome,
    connect::Connection,
    input::send_while,
    output::{Output, json_time},
    progress::{Progress, bytes},
    reconnect::Backoff,
};

/// Chunks queued towards the server.
const SEND_QUEUE: usize = 4;
/// Attempts of an upload that the server refuses with `FAILED_PRECONDITION` (busy, or
/// not where we thought), each after asking GetUploadStatus again.
const UPLOAD_ATTEMPTS: u32 = 5;
/// Upload chunk size when none is given (the server's download default too).
const DEFAULT_CHUNK: u32 = 64 * 1024;

#[derive(clap::Args)]
pub(crate) struct UploadArgs {
    /// The file to upload.
    file: PathBuf,
    /// Name to store it under; its own file name by default.
    #[arg(long)]
    name: Option<String>,
    /// Bytes per chunk.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_CHUNK,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CHUNK)))]
    chunk_size: u32,
    /// Send at most this many bytes per second (to spare a slow link).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    limit_rate: Option<u64>,
}

pub(crate) async fn upload(connection: &Connection, output: &Output, args: UploadArgs) -> Outcome {
    let source = Source::inspect(&args).await?;
    let mut backoff = Backoff::new();
    let mut attempt = 1;
    let (result, offset, checksum) = loop {
        match upload_once(connection, &source, &args).await {
            // The stream just interrupted may still hold the upload until the server notices
            // it is gone, or the upload moved on since we asked: ask again where it stands.
            Err(Failure::Server(status))
                if status.code() == Code::FailedPrecondition && attempt < UPLOAD_ATTEMPTS =>
            {
                backoff
                    .wait_after(&status, ", asking the server where to resume")
                    .await;
                attempt += 1;
            }
            outcome => break outcome?,
        }
    };
    if result.checksum != checksum || u64::try_from(result.total_bytes).ok() != Some(source.size) {
        return Err(Failure::Local(anyhow!(
            "the server stored {} bytes with SHA-256 {}, but {} has {} bytes with SHA-256 {checksum}",
            result.total_bytes,
            result.checksum,
            args.file.display(),
            source.size
        )));
    }
    output.record(
        || uploaded_human(&result),
        || uploaded_json(&result, offset),
    )
}

/// The file to upload, as found before the first attempt.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    size: u64,
    upload_id: String,
    name: String,
}

impl Source {
    async fn inspect(args: &UploadArgs) -> Result<Self, Failure> {
        let unusable =
            |err: std::io::Error| Failure::Usage(format!("{}: {err}", args.file.display()));
        let path = std::path::absolute(&args.file).map_err(unusable)?;
        let metadata = tokio::fs::metadata(&path).await.map_err(unusable)?;
        if !metadata.is_file() {
            return Err(Failure::Usage(format!(
                "{}: not a regular file",
                args.file.display()
            )));
        }
        let size = metadata.len();
        let modified = metadata
            .modified()
            .ok()
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let name = match &args.name {
            Some(name) => name.clone(),
            None => path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        Ok(Self {
            upload_id: upload_id(&path, size, modified),
            path,
            size,
            name,
        })
    }
}

/// One attempt: asks where the upload stands and sends the rest. Returns the server's
/// result, the offset it resumed from and the checksum computed here.
async fn upload_once(
    connection: &Connection,
    source: &Source,
    args: &UploadArgs,
) -> Result<(UploadResult, u64, String), Failure> {
    let shown = args.file.display();
    let size = source.size;
    let upload_id = &source.upload_id;
    let mut client = connection.streaming().await?;
    let offset = match client
        .get_upload_status(UploadStatusRequest {
            upload_id: upload_id.clone(),
        })
        .await
    {
        Ok(status) => status.into_inner().offset,
        // Nothing kept under this id: a fresh upload.
        Err(status) if status.code() == Code::NotFound => 0,
        Err(status) => return Err(status.into()),
    };
    let offset = u64::try_from(offset)
        .ok()
        .filter(|offset| *offset <= size)
        .ok_or_else(|| {
            anyhow!("the server holds {offset} bytes of upload {upload_id}, but {shown} has {size} bytes")
        })?;
    if offset > 0 {
        eprintln!(
            "streamctl: resuming upload {upload_id} at byte {offset} of {size} ({})",
            bytes(size)
        );
    } else {
        eprintln!("streamctl: starting upload {upload_id} ({})", bytes(size));
    }

    // The checksum covers the whole file: hash what the server already has first.
    let mut file = File::open(&source.path)
        .await
        .with_context(|| format!("reading {shown}"))?;
    let mut hasher = Sha256::new();
    hash_prefix(&mut file, offset, &mut hasher)
        .await
        .with_context(|| format!("reading {shown}"))?;

    let (chunks, requests) = mpsc::channel(SEND_QUEUE);
    let call = client.upload_file(ReceiverStream::new(requests));
    let sending = Sending {
        file,
        path: args.file.clone(),
        name: source.name.clone(),
        upload_id: upload_id.clone(),
        offset,
        size,
        chunk_size: args.chunk_size,
        pace: Pace::new(args.limit_rate),
        progress: Progress::start(&format!("upload {shown}"), Some(size)),
    };
    let (result, checksum) = send_while(call, sending.send(chunks, hasher)).await?;
    Ok((result, offset, checksum))
}

/// `sc-` + 40 hex digits: within the contract's 64 characters of `[A-Za-z0-9_-]`.
fn upload_id(path: &Path, size: u64, modified: Duration) -> String {
    let mut hasher = Sha256::new();
    hasher.update(path.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    hasher.update(size.to_be_bytes());
    hasher.update(modified.as_nanos().to_be_bytes());
    let digest = hex(&hasher.finalize());
    format!("sc-{}", &digest[..40])
}

/// One upload stream, from the resume offset to the end of the file.
struct Sending {
    file: File,
    path: PathBuf,
    name: String,
    upload_id: String,
    offset: u64,
    size: u64,
    chunk_size: u32,
    pace: Pace,
    progress: Option<Progress>,
}

impl Sending {
    /// Sends the rest of the file, then a last empty chunk with the checksum and size; returns
    /// the checksum.
    async fn send(
        mut self,
        chunks: mpsc::Sender<FileChunk>,
        mut hasher: Sha256,
    ) -> Result<String, Failure> {
        let mut buffer = vec![0; self.chunk_size as usize];
        let mut offset = self.offset;
        let mut chunk_number = 0_i32;
        loop {
            let read = read_full(&mut self.file, &mut buffer)
                .await
                .with_context(|| format!("reading {}", self.path.display()))?;
            if read == 0 {
                break;
            }
            let data = Bytes::copy_from_slice(&buffer[..read]);
            hasher.update(&data);
            let chunk = FileChunk {
                data,
                chunk_number,
                offset: to_i64(offset),
                upload_id: self.upload_id.clone(),
                file_name: if chunk_number == 0 {
                    self.name.clone()
                } else {
                    String::new()
                },
                ..FileChunk::default()
            };
            if chunks.send(chunk).await.is_err() {
                // The call has ended; its answer says why.
                return Ok(String::new());
            }
            offset += read as u64;
            chunk_number += 1;
            if let Some(progress) = &mut self.progress {
                progress.update(offset);
            }
            self.pace.after(offset - self.offset).await;
        }
        if offset != self.size {
            return Err(Failure::Local(anyhow!(
                "{} changed while it was being uploaded ({} bytes, then {offset})",
                self.path.display(),
                self.size
            )));
        }
        let checksum = hex(&hasher.finalize());
        let last = FileChunk {
            chunk_number,
            is_last: true,
            offset: to_i64(offset),
            checksum: checksum.clone(),
            upload_id: self.upload_id.clone(),
            file_name: if chunk_number == 0 {
                self.name.clone()
            } else {
                String::new()
            },
            total_bytes: to_i64(self.size),
            ..FileChunk::default()
        };
        let _ = chunks.send(last).await;
        if let Some(progress) = self.progress.take() {
            progress.finish(offset);
        }
        Ok(checksum)
    }
}

/// Fills `buffer` unless the file ends first; returns how many bytes were read.
async fn read_full(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let read = file.read(&mut buffer[filled..]).await?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(filled)
}

fn uploaded_human(result: &UploadResult) -> String {
    format!(
        "uploaded {}: file id {}, {} ({} bytes), sha256 {}",
        result.file_name,
        result.file_id,
        bytes(u64::try_from(result.total_bytes).unwrap_or_default()),
        result.total_bytes,
        result.checksum
    )
}

fn uploaded_json(result: &UploadResult, resumed_from: u64) -> Value {
    json!({
        "file_id": result.file_id,
        "file_name": result.file_name,
        "total_bytes": result.total_bytes,
        "checksum": result.checksum,
        "uploaded_at": json_time(result.uploaded_at.as_ref()),
        "resumed_from": resumed_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_id_is_stable_and_changes_with_the_file() {
        let path = Path::new("/data/report.csv");
        let id = upload_id(path, 10, Duration::from_secs(5));
        assert_eq!(id, upload_id(path, 10, Duration::from_secs(5)));
        assert_eq!(id.len(), 43);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(id, upload_id(path, 11, Duration::from_secs(5)), "size");
        assert_ne!(id, upload_id(path, 10, Duration::from_secs(6)), "mtime");
        assert_ne!(
            id,
            upload_id(Path::new("/data/other.csv"), 10, Duration::from_secs(5)),
            "path"
        );
    }
}
