//! `streamctl upload`, `download`, `files` and `rm`: the file store, with transfers that
//! resume where they stopped and end with a SHA-256 check.
//!
//! Upload resume: the upload id is derived from the file's absolute path, size and
//! modification time (`sc-` + 40 hex digits of their SHA-256), so re-running the same
//! command on the same, unchanged file names the same upload without any state on disk
//! beside the file; a changed file is a new upload (the server drops the stale partial one
//! after `storage.resume_ttl`). The command asks GetUploadStatus how many bytes the server
//! holds durably and sends the rest.
//!
//! Download resume: data goes to `PATH.part`; a later run continues from its length. Only
//! after the whole file's SHA-256 matches the server's is it renamed to `PATH`; on a
//! mismatch `PATH.part` is removed so the next run starts clean (which is also what happens
//! when a download by name resumes after a newer file of that name was uploaded).
//!
//! Ids and names: `download` and `rm` take either. The server's rule, which `rm` follows on
//! this side (DeleteFile takes only an id), is that an id wins: an argument that is the id of
//! a stored file means that file, anything else the newest file of that name.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant, UNIX_EPOCH},
};

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use streamhub_api::streaming::{
    DeleteFileRequest, FileChunk, FileInfo, FileRequest, ListFilesRequest, UploadResult,
    UploadStatusRequest,
};
use tokio::{
    fs::{File, OpenOptions},
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    sync::mpsc,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::{
    Failure, Outcome,
    connect::Connection,
    input::send_while,
    output::{Output, human_time, json_time},
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
/// Largest chunk the server accepts for a download, and a sensible cap for uploads.
const MAX_CHUNK: u32 = 1024 * 1024;
/// Files listed per ListFiles call.
const LIST_PAGE: i32 = 100;

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

#[derive(clap::Args)]
pub(crate) struct DownloadArgs {
    /// The file's id (as `upload` printed it) or its name (the newest file of that name);
    /// an id wins when both match.
    #[arg(value_name = "ID_OR_NAME")]
    file: String,
    /// Where to write the file; the partial download lives in PATH.part meanwhile.
    #[arg(short, long, value_name = "PATH")]
    output: PathBuf,
    /// Bytes per chunk (the server clamps to 1 KiB..1 MiB); the server's default when absent.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CHUNK)))]
    chunk_size: Option<u32>,
    /// Receive at most this many bytes per second.
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    limit_rate: Option<u64>,
}

#[derive(clap::Args)]
pub(crate) struct RemoveArgs {
    /// The file's id or its name (the newest file of that name, so that removing it makes
    /// the name mean the previous one); an id wins when both match.
    #[arg(value_name = "ID_OR_NAME")]
    file: String,
}

#[derive(clap::Args)]
pub(crate) struct ListArgs {
    /// Only files whose name starts with this, e.g. `reports/`.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
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

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Feeds the first `length` bytes of `file` to `hasher`, leaving the file positioned there.
async fn hash_prefix(file: &mut File, length: u64, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut buffer = vec![0; 64 * 1024];
    let mut left = length;
    while left > 0 {
        let want = usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
        let read = file.read(&mut buffer[..want]).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file is shorter than expected",
            ));
        }
        hasher.update(&buffer[..read]);
        left -= read as u64;
    }
    Ok(())
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

fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
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

/// Keeps a transfer under `--limit-rate` by sleeping when it runs ahead of the allowance.
struct Pace {
    bytes_per_second: Option<u64>,
    started: Instant,
}

impl Pace {
    fn new(bytes_per_second: Option<u64>) -> Self {
        Self {
            bytes_per_second,
            started: Instant::now(),
        }
    }

    /// Waits until `moved` bytes are within the allowance.
    async fn after(&self, moved: u64) {
        let Some(rate) = self.bytes_per_second else {
            return;
        };
        let due = Duration::from_secs_f64(moved as f64 / rate as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

pub(crate) async fn download(
    connection: &Connection,
    output: &Output,
    args: DownloadArgs,
) -> Outcome {
    let mut part_name = args.output.clone().into_os_string();
    part_name.push(".part");
    let part_path = PathBuf::from(part_name);
    let have = match tokio::fs::metadata(&part_path).await {
        Ok(metadata) => metadata.len(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
        Err(err) => return Err(Failure::Usage(format!("{}: {err}", part_path.display()))),
    };
    let mut hasher = Sha256::new();
    if have > 0 {
        eprintln!(
            "streamctl: resuming download of {} at byte {have} from {}",
            args.file,
            part_path.display()
        );
        let mut earlier = File::open(&part_path)
            .await
            .with_context(|| format!("reading {}", part_path.display()))?;
        hash_prefix(&mut earlier, have, &mut hasher)
            .await
            .with_context(|| format!("reading {}", part_path.display()))?;
    }

    let mut client = connection.streaming().await?;
    let mut chunks = match client
        .download_file(FileRequest {
            // The server resolves an id or a name, the id first.
            file_path: args.file.clone(),
            chunk_size: args.chunk_size.map_or(0, |size| size as i32),
            offset: to_i64(have),
            ..FileRequest::default()
        })
        .await
    {
        Ok(chunks) => chunks.into_inner(),
        Err(status) if status.code() == Code::OutOfRange && have > 0 => {
            return Err(Failure::Local(anyhow!(
                "{} holds {have} bytes, more than the server has ({}); remove it to download \
                 the file anew",
                part_path.display(),
                status.message()
            )));
        }
        Err(status) => return Err(status.into()),
    };
    let mut progress = Progress::start(&format!("download {}", args.file), None);
    let pace = Pace::new(args.limit_rate);
    let mut written = have;
    // Created with the first chunk, so a refused download leaves no empty file behind.
    let mut part: Option<File> = None;
    let (checksum, total, name) = loop {
        let Some(chunk) = chunks.message().await? else {
            return Err(Failure::Local(anyhow!(
                "the server ended the download at byte {written} before the last chunk; \
                 run the same command again to resume"
            )));
        };
        if u64::try_from(chunk.offset).ok() != Some(written) {
            return Err(Failure::Local(anyhow!(
                "the server sent a chunk for byte {}, expected byte {written}",
                chunk.offset
            )));
        }
        let part = match &mut part {
            Some(part) => part,
            None => part.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&part_path)
                    .await
                    .with_context(|| format!("creating {}", part_path.display()))?,
            ),
        };
        if !chunk.data.is_empty() {
            part.write_all(&chunk.data)
                .await
                .with_context(|| format!("writing {}", part_path.display()))?;
            hasher.update(&chunk.data);
            written += chunk.data.len() as u64;
        }
        if let Some(progress) = &mut progress {
            if chunk.total_bytes > 0 {
                progress.set_total(u64::try_from(chunk.total_bytes).unwrap_or_default());
            }
            progress.update(written);
        }
        if chunk.is_last {
            break (chunk.checksum, chunk.total_bytes, chunk.file_name);
        }
        pace.after(written - have).await;
    };
    if let Some(progress) = progress {
        progress.finish(written);
    }
    if let Some(part) = part {
        part.sync_all()
            .await
            .with_context(|| format!("writing {}", part_path.display()))?;
    }
    let computed = hex(&hasher.finalize());
    if computed != checksum || u64::try_from(total).ok() != Some(written) {
        let _ = tokio::fs::remove_file(&part_path).await;
        return Err(Failure::Local(anyhow!(
            "SHA-256 mismatch: the server's file has {total} bytes with SHA-256 {checksum}, \
             the download has {written} bytes with SHA-256 {computed}; removed {} so that the \
             next run starts over",
            part_path.display()
        )));
    }
    tokio::fs::rename(&part_path, &args.output)
        .await
        .with_context(|| {
            format!(
                "renaming {} to {}",
                part_path.display(),
                args.output.display()
            )
        })?;
    output.record(
        || {
            format!(
                "downloaded {} to {}: {} ({written} bytes), sha256 {checksum}",
                args.file,
                args.output.display(),
                bytes(written)
            )
        },
        || {
            json!({
                "file": args.file,
                "file_name": name,
                "path": args.output.display().to_string(),
                "total_bytes": written,
                "checksum": checksum,
                "resumed_from": have,
            })
        },
    )
}

pub(crate) async fn list(connection: &Connection, output: &Output, args: ListArgs) -> Outcome {
    let prefix = args.prefix.unwrap_or_default();
    each_file(connection, &prefix, |file| {
        output.record(|| file_human(file), || file_json(file))
    })
    .await
}

/// Calls `visit` with every file whose name starts with `prefix`, in upload order, page by
/// page.
async fn each_file(
    connection: &Connection,
    prefix: &str,
    mut visit: impl FnMut(&FileInfo) -> Outcome,
) -> Outcome {
    let mut client = connection.streaming().await?;
    let mut page_token = String::new();
    loop {
        let page = client
            .list_files(ListFilesRequest {
                page_size: LIST_PAGE,
                page_token: page_token.clone(),
                name_prefix: prefix.to_owned(),
            })
            .await?
            .into_inner();
        for file in &page.files {
            visit(file)?;
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        page_token = page.next_page_token;
    }
}

fn file_human(file: &FileInfo) -> String {
    format!(
        "{}  {:>10}  {}  {}  sha256 {}",
        file.file_id,
        bytes(u64::try_from(file.total_bytes).unwrap_or_default()),
        human_time(file.uploaded_at.as_ref()),
        file.file_name,
        file.checksum
    )
}

fn file_json(file: &FileInfo) -> Value {
    json!({
        "file_id": file.file_id,
        "file_name": file.file_name,
        "total_bytes": file.total_bytes,
        "checksum": file.checksum,
        "uploaded_at": json_time(file.uploaded_at.as_ref()),
    })
}

pub(crate) async fn remove(connection: &Connection, output: &Output, args: RemoveArgs) -> Outcome {
    let mut client = connection.streaming().await?;
    if looks_like_id(&args.file) {
        match client
            .delete_file(DeleteFileRequest {
                file_id: args.file.clone(),
            })
            .await
        {
            Ok(_) => {
                return output.record(
                    || format!("deleted {}", args.file),
                    || json!({ "deleted": args.file }),
                );
            }
            // No file has this id: it may still be a name.
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => return Err(status.into()),
        }
    }
    let Some(newest) = newest_named(connection, &args.file).await? else {
        return Err(Failure::Server(tonic::Status::not_found(format!(
            "no stored file has the id or name {:?}",
            args.file
        ))));
    };
    client
        .delete_file(DeleteFileRequest {
            file_id: newest.file_id.clone(),
        })
        .await?;
    output.record(
        || format!("deleted {} (file id {})", newest.file_name, newest.file_id),
        || json!({ "deleted": newest.file_id, "file_name": newest.file_name }),
    )
}

/// Whether `text` has the form of a file id: 32 hex digits.
fn looks_like_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The newest file named exactly `name`: the last one in upload order among those whose name
/// starts with it.
async fn newest_named(connection: &Connection, name: &str) -> Result<Option<FileInfo>, Failure> {
    let mut newest = None;
    each_file(connection, name, |file| {
        if file.file_name == name {
            newest = Some(file.clone());
        }
        Ok(())
    })
    .await?;
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_32_hex_digits_look_like_an_id() {
        assert!(looks_like_id("0123456789abcdefABCDEF0123456789"));
        assert!(!looks_like_id("0123456789abcdef0123456789abcde"));
        assert!(!looks_like_id("0123456789abcdef0123456789abcdeg"));
        assert!(!looks_like_id("report.txt"));
    }

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
