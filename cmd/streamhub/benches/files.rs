//! File transfer benchmark against the real server binary in a child process (so its peak RSS
//! is its own), over loopback gRPC. Prints its figures; asserts only correctness.
//!
//! - baseline: reading the source file from disk and hashing it with SHA-256, MiB/s;
//! - UploadFile of the file in 1 MiB chunks, MiB/s (the returned checksum is checked);
//! - DownloadFile of it in 1 MiB chunks, MiB/s (size and final checksum checked);
//! - the server's peak RSS (VmHWM) after both, which must stay under 64 MiB;
//! - upload MiB/s / baseline MiB/s.
//!
//! Run with `cargo bench -p streamhub --bench files`. The file is 1 GiB; set
//! `STREAMHUB_BENCH_FILE_BYTES` for a quicker run.

use std::{
    fs::File,
    io::{Read as _, Write as _},
    path::Path,
    time::{Duration, Instant},
};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use streamhub_api::streaming::{
    FileChunk, FileRequest, streaming_service_client::StreamingServiceClient,
};
use streamhub_testkit::{BinaryServer, bounded, write_binary_config};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

const SIZE_ENV: &str = "STREAMHUB_BENCH_FILE_BYTES";
const DEFAULT_SIZE: u64 = 1024 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;
const MIB: f64 = 1024.0 * 1024.0;
const RSS_LIMIT_KIB: u64 = 64 * 1024;
/// Any step that takes longer means the bench is broken, not slow.
const STEP_LIMIT: Duration = Duration::from_secs(600);

fn main() {
    let size = std::env::var(SIZE_ENV)
        .ok()
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(DEFAULT_SIZE);
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = dir.path().join("source.bin");
    write_source(&source, size);

    let started = Instant::now();
    let expected = hash_file(&source);
    let baseline = rate(size, started.elapsed());
    println!(
        "files: {size} bytes; read + SHA-256 baseline {baseline:.0} MiB/s (checksum {expected})"
    );

    // The release binary in a process of its own, its data next to the source file.
    let config = write_binary_config(
        dir.path(),
        dir.path(),
        &format!(
            "data:\n  storage:\n    max_file_bytes: {max}\n",
            max = size.max(DEFAULT_SIZE)
        ),
    );
    let mut server = BinaryServer::start(env!("CARGO_BIN_EXE_streamhub"), &config, &[]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let channel = server.connect().await;

        let started = Instant::now();
        let (file_id, checksum) =
            bounded(STEP_LIMIT, "the upload", upload(channel.clone(), &source)).await;
        let upload_rate = rate(size, started.elapsed());
        assert_eq!(checksum, expected, "the server's checksum matches");
        println!("files: UploadFile {upload_rate:.0} MiB/s");

        let started = Instant::now();
        let (received, checksum) =
            bounded(STEP_LIMIT, "the download", download(channel, &file_id)).await;
        let download_rate = rate(size, started.elapsed());
        assert_eq!(received, size, "every byte came back");
        assert_eq!(checksum, expected, "the final chunk's checksum matches");
        println!("files: DownloadFile {download_rate:.0} MiB/s");

        let peak = peak_rss_kib(server.id());
        println!(
            "files: server peak RSS (VmHWM) {:.1} MiB (limit {} MiB): {}",
            peak as f64 / 1024.0,
            RSS_LIMIT_KIB / 1024,
            if peak < RSS_LIMIT_KIB { "ok" } else { "OVER" }
        );
        println!(
            "files: upload / baseline = {:.2}, download / baseline = {:.2}",
            upload_rate / baseline,
            download_rate / baseline
        );
    });
    server.terminate();
    server.wait_for_exit();
}

fn rate(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / MIB / elapsed.as_secs_f64()
}

/// Writes `size` pseudo-random bytes (xorshift, so compression or dedup cannot help).
fn write_source(path: &Path, size: u64) {
    let mut file = std::io::BufWriter::new(File::create(path).expect("create the source"));
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0_u8; CHUNK];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let take = usize::try_from(left).map_or(CHUNK, |left| left.min(CHUNK));
        file.write_all(&block[..take]).expect("write the source");
        left -= take as u64;
    }
    file.flush().expect("flush the source");
}

fn hash_file(path: &Path) -> String {
    let mut file = File::open(path).expect("open the source");
    let mut hasher = Sha256::new();
    let mut block = vec![0_u8; CHUNK];
    loop {
        let read = file.read(&mut block).expect("read the source");
        if read == 0 {
            break;
        }
        hasher.update(&block[..read]);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Streams the file from disk (a reader thread feeding a bounded queue) as one upload.
async fn upload(channel: Channel, source: &Path) -> (String, String) {
    let (chunks, queue) = mpsc::channel(4);
    let source = source.to_path_buf();
    let reader = std::thread::spawn(move || {
        let mut file = File::open(source).expect("open the source");
        let mut number = 0;
        let mut offset = 0_i64;
        loop {
            let mut block = vec![0_u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                let read = file.read(&mut block[filled..]).expect("read the source");
                if read == 0 {
                    break;
                }
                filled += read;
            }
            if filled == 0 {
                return;
            }
            block.truncate(filled);
            let chunk = FileChunk {
                data: Bytes::from(block),
                chunk_number: number,
                offset,
                file_name: if number == 0 {
                    "bench.bin".into()
                } else {
                    String::new()
                },
                ..FileChunk::default()
            };
            if chunks.blocking_send(chunk).is_err() {
                return;
            }
            number += 1;
            offset += filled as i64;
        }
    });
    let result = StreamingServiceClient::new(channel)
        .max_decoding_message_size(8 * CHUNK)
        .upload_file(ReceiverStream::new(queue))
        .await
        .expect("UploadFile succeeds")
        .into_inner();
    reader.join().expect("reader thread");
    (result.file_id, result.checksum)
}

/// Downloads the file, counting bytes; returns the count and the final chunk's checksum.
async fn download(channel: Channel, file_id: &str) -> (u64, String) {
    let mut stream = StreamingServiceClient::new(channel)
        .max_decoding_message_size(8 * CHUNK)
        .download_file(FileRequest {
            file_id: file_id.to_owned(),
            chunk_size: CHUNK as i32,
            ..FileRequest::default()
        })
        .await
        .expect("DownloadFile starts")
        .into_inner();
    let mut received = 0;
    while let Some(chunk) = stream.message().await.expect("no error mid-download") {
        received += chunk.data.len() as u64;
        if chunk.is_last {
            return (received, chunk.checksum);
        }
    }
    panic!("the download ended without an is_last chunk");
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM in /proc/PID/status")
}
