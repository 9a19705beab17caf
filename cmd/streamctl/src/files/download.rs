//! `streamctl download`: fetches a stored file into `PATH.part`, continuing from what an
//! earlier run left there, and renames it to `PATH` only once its SHA-256 matches the
//! server's.
//!
//! The steps, one function each: resume the local partial file (its length and the hash of
//! what it holds), ask the server for the rest, append the chunks as they come, verify the
//! whole file's checksum (a mismatch removes `PATH.part`, so the next run starts over), and
//! move it into place.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use streamhub_api::streaming::{FileChunk, FileRequest};
use tokio::{
    fs::{File, OpenOptions},
    io::AsyncWriteExt as _,
};
use tonic::{Code, Streaming};

use super::{
    MAX_CHUNK,
    checksum::{hash_prefix, hex},
    pace::Pace,
    to_i64,
};
use crate::{
    Failure, Outcome,
    connect::Connection,
    output::Output,
    progress::{Progress, bytes},
};

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

pub(crate) async fn download(
    connection: &Connection,
    output: &Output,
    args: DownloadArgs,
) -> Outcome {
    let (partial, hasher) = Partial::resume(&args).await?;
    let chunks = request_rest(connection, &args, &partial).await?;
    let received = receive(chunks, &args, &partial, hasher).await?;
    verify(&received, &partial).await?;
    move_into_place(&partial, &args.output).await?;
    let Received {
        checksum,
        name,
        written,
        ..
    } = received;
    let have = partial.have;
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

/// `PATH.part` as this run finds it.
struct Partial {
    path: PathBuf,
    /// Bytes it held before this run: where the download resumes.
    have: u64,
}

impl Partial {
    /// Finds what an earlier run left in `PATH.part` and hashes it, so that the checksum at
    /// the end covers the whole file.
    async fn resume(args: &DownloadArgs) -> Result<(Self, Sha256), Failure> {
        let mut part_name = args.output.clone().into_os_string();
        part_name.push(".part");
        let path = PathBuf::from(part_name);
        let have = match tokio::fs::metadata(&path).await {
            Ok(metadata) => metadata.len(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(err) => return Err(Failure::Usage(format!("{}: {err}", path.display()))),
        };
        let mut hasher = Sha256::new();
        if have > 0 {
            eprintln!(
                "streamctl: resuming download of {} at byte {have} from {}",
                args.file,
                path.display()
            );
            let mut earlier = File::open(&path)
                .await
                .with_context(|| format!("reading {}", path.display()))?;
            hash_prefix(&mut earlier, have, &mut hasher)
                .await
                .with_context(|| format!("reading {}", path.display()))?;
        }
        Ok((Self { path, have }, hasher))
    }
}

/// Asks the server for the file from the byte `partial` ends at.
async fn request_rest(
    connection: &Connection,
    args: &DownloadArgs,
    partial: &Partial,
) -> Result<Streaming<FileChunk>, Failure> {
    let have = partial.have;
    let mut client = connection.streaming().await?;
    match client
        .download_file(FileRequest {
            // The server resolves an id or a name, the id first.
            file_path: args.file.clone(),
            chunk_size: args.chunk_size.map_or(0, |size| size as i32),
            offset: to_i64(have),
            ..FileRequest::default()
        })
        .await
    {
        Ok(chunks) => Ok(chunks.into_inner()),
        Err(status) if status.code() == Code::OutOfRange && have > 0 => {
            Err(Failure::Local(anyhow!(
                "{} holds {have} bytes, more than the server has ({}); remove it to download \
                 the file anew",
                partial.path.display(),
                status.message()
            )))
        }
        Err(status) => Err(status.into()),
    }
}

/// What the download came to, once the server's last chunk arrived.
struct Received {
    /// The server's SHA-256 of the file, its size and its name, from the last chunk.
    checksum: String,
    total: i64,
    name: String,
    /// Bytes in `PATH.part` now, and their SHA-256.
    written: u64,
    computed: String,
}

/// Appends the server's chunks to `PATH.part` (created with the first chunk, so a refused
/// download leaves no empty file behind) up to the last one, then makes it durable.
async fn receive(
    mut chunks: Streaming<FileChunk>,
    args: &DownloadArgs,
    partial: &Partial,
    mut hasher: Sha256,
) -> Result<Received, Failure> {
    let part_path = &partial.path;
    let have = partial.have;
    let mut progress = Progress::start(&format!("download {}", args.file), None);
    let pace = Pace::new(args.limit_rate);
    let mut written = have;
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
                    .open(part_path)
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
    Ok(Received {
        checksum,
        total,
        name,
        written,
        computed: hex(&hasher.finalize()),
    })
}

/// Checks the whole file against the server's size and SHA-256; on a mismatch removes
/// `PATH.part`, so that the next run starts over.
async fn verify(received: &Received, partial: &Partial) -> Result<(), Failure> {
    let Received {
        checksum,
        total,
        written,
        computed,
        ..
    } = received;
    if computed != checksum || u64::try_from(*total).ok() != Some(*written) {
        let _ = tokio::fs::remove_file(&partial.path).await;
        return Err(Failure::Local(anyhow!(
            "SHA-256 mismatch: the server's file has {total} bytes with SHA-256 {checksum}, \
             the download has {written} bytes with SHA-256 {computed}; removed {} so that the \
             next run starts over",
            partial.path.display()
        )));
    }
    Ok(())
}

/// Renames the verified `PATH.part` to `PATH`.
async fn move_into_place(partial: &Partial, output: &Path) -> Result<(), Failure> {
    tokio::fs::rename(&partial.path, output)
        .await
        .with_context(|| {
            format!(
                "renaming {} to {}",
                partial.path.display(),
                output.display()
            )
        })?;
    Ok(())
}
