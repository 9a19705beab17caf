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
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use streamhub_api::streaming::{
    FileChunk, FileRequest, streaming_service_client::StreamingServiceClient,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

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

    let server = start_server(dir.path(), size);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let channel = Endpoint::from_shared(format!("http://{}", server.addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");

        let started = Instant::now();
        let (file_id, checksum) = bounded("the upload", upload(channel.clone(), &source)).await;
        let upload_rate = rate(size, started.elapsed());
        assert_eq!(checksum, expected, "the server's checksum matches");
        println!("files: UploadFile {upload_rate:.0} MiB/s");

        let started = Instant::now();
        let (received, checksum) = bounded("the download", download(channel, &file_id)).await;
        let download_rate = rate(size, started.elapsed());
        assert_eq!(received, size, "every byte came back");
        assert_eq!(checksum, expected, "the final chunk's checksum matches");
        println!("files: DownloadFile {download_rate:.0} MiB/s");

        let peak = peak_rss_kib(server.child.id());
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
    server.stop();
}

fn rate(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / MIB / elapsed.as_secs_f64()
}

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP_LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {STEP_LIMIT:?}"))
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

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts the release binary on 127.0.0.1:0 with its data under `dir`.
fn start_server(dir: &Path, size: u64) -> Server {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  grpc:\n    addr: 127.0.0.1:0\n\
             data:\n  database:\n    source: sqlite://{db}\n  storage:\n    root: {files}\n    max_file_bytes: {max}\n\
             log:\n  level: info\n",
            db = dir.join("streamhub.db").display(),
            files = dir.join("files").display(),
            max = size.max(DEFAULT_SIZE),
        ),
    )
    .expect("write the config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamhub"))
        .arg("-conf")
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server binary");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (found, addr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                let _ = found.send(addr.to_owned());
                sent = true;
            }
            // Keep draining so the server never blocks on a full pipe.
        }
    });
    let addr = addr
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs `listening on ADDR`");
    Server { child, addr }
}
