//! Files: round trips checked against a SHA-256 computed here, atomic visibility (cancel,
//! checksum mismatch, size limit, SIGKILL of the real binary), resume in both directions,
//! ListFiles pagination, DeleteFile, files by name (newest wins, ids win over names, name
//! prefixes), hostile paths, and malformed input for every file RPC.

use std::{
    net::{Shutdown, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use streamhub_api::streaming::{
    DeleteFileRequest, FileChunk, FileRequest, ListFilesRequest, UploadResult, UploadStatusRequest,
    streaming_service_client::StreamingServiceClient,
};
use streamhub_testkit::{TestApp, WAIT, spawn_app, spawn_app_in, spawn_app_with, within};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Code, Status,
    transport::{Channel, Endpoint},
};

use crate::binary::{local_config, start_binary};

const CHUNK: usize = 64 * 1024;

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Deterministic, non-repeating test content.
pub(crate) fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// `data` as upload chunks of `chunk` bytes numbered from 0, `offset`s from `start`.
pub(crate) fn chunks_of(
    data: &[u8],
    chunk: usize,
    start: usize,
    upload_id: &str,
) -> Vec<FileChunk> {
    let mut chunks: Vec<FileChunk> = data
        .chunks(chunk)
        .enumerate()
        .map(|(number, piece)| FileChunk {
            data: Bytes::copy_from_slice(piece),
            chunk_number: number as i32,
            offset: (start + number * chunk) as i64,
            upload_id: upload_id.to_owned(),
            ..FileChunk::default()
        })
        .collect();
    if let Some(first) = chunks.first_mut() {
        first.file_name = "data.bin".to_owned();
    }
    if let Some(last) = chunks.last_mut() {
        last.is_last = true;
    }
    chunks
}

pub(crate) async fn upload(
    client: &mut StreamingServiceClient<Channel>,
    chunks: Vec<FileChunk>,
) -> Result<UploadResult, Status> {
    client
        .upload_file(tokio_stream::iter(chunks))
        .await
        .map(tonic::Response::into_inner)
}

/// Downloads a whole response: the bytes, and the final chunk.
pub(crate) async fn download(
    client: &mut StreamingServiceClient<Channel>,
    request: FileRequest,
) -> Result<(Vec<u8>, FileChunk), Status> {
    let mut stream = client.download_file(request).await?.into_inner();
    let mut bytes = Vec::new();
    let mut expected_number = 0;
    loop {
        let chunk = within("the next download chunk", stream.message())
            .await?
            .expect("the stream ends with an is_last chunk, not before");
        assert_eq!(chunk.chunk_number, expected_number, "consecutive numbers");
        expected_number += 1;
        if chunk.is_last {
            assert!(chunk.data.is_empty(), "the last chunk carries no data");
            assert!(
                within("the end", stream.message())
                    .await
                    .expect("no error")
                    .is_none(),
                "nothing after is_last"
            );
            return Ok((bytes, chunk));
        }
        bytes.extend_from_slice(&chunk.data);
    }
}

/// A connection the test can cut like a network failure (or a client process dying): the
/// server sees the TCP connection close under the open call. Dropping a tonic call is not
/// enough: its request body keeps the HTTP/2 stream open while the body's sender lives.
async fn breakable_channel(addr: SocketAddr) -> (Channel, TcpStream) {
    let (handles, handle) = std::sync::mpsc::channel();
    let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
        let handles = handles.clone();
        async move {
            let socket = tokio::net::TcpStream::connect(addr).await?.into_std()?;
            let _ = handles.send(socket.try_clone()?);
            let socket = tokio::net::TcpStream::from_std(socket)?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(socket))
        }
    });
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_with_connector(connector)
        .await
        .expect("connect");
    let handle = handle.recv_timeout(WAIT).expect("the connector ran");
    (channel, handle)
}

/// Starts an upload whose chunks the test sends one by one on a connection it can cut.
async fn open_upload(
    addr: SocketAddr,
) -> (
    mpsc::Sender<FileChunk>,
    TcpStream,
    tokio::task::JoinHandle<Result<tonic::Response<UploadResult>, Status>>,
) {
    let (channel, connection) = breakable_channel(addr).await;
    let (sender, receiver) = mpsc::channel(4);
    let mut client = StreamingServiceClient::new(channel);
    let call = tokio::spawn(async move { client.upload_file(ReceiverStream::new(receiver)).await });
    (sender, connection, call)
}

pub(crate) fn by_id(file_id: &str) -> FileRequest {
    FileRequest {
        file_id: file_id.to_owned(),
        ..FileRequest::default()
    }
}

pub(crate) fn storage_root(app: &TestApp) -> PathBuf {
    app.data_dir().join("files")
}

/// Every regular file under `root` (partial uploads included), relative to it.
pub(crate) fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.map_while(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    found.sort();
    found
}

pub(crate) async fn listed_ids(client: &mut StreamingServiceClient<Channel>) -> Vec<String> {
    client
        .list_files(ListFilesRequest::default())
        .await
        .expect("ListFiles")
        .into_inner()
        .files
        .into_iter()
        .map(|file| file.file_id)
        .collect()
}

/// Waits until `condition` holds, polling the file system or the server.
pub(crate) async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    within(what, async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Uploads `chunks`, which continue a resumable upload, once the stream that broke off has let
/// go of it (until then the server answers that the upload is in progress).
pub(crate) async fn resume_upload(
    client: &mut StreamingServiceClient<Channel>,
    chunks: Vec<FileChunk>,
) -> Result<UploadResult, Status> {
    within("the resumed upload", async {
        loop {
            match upload(client, chunks.clone()).await {
                Err(status) if status.message().contains("in progress") => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                other => return other,
            }
        }
    })
    .await
}

/// Sends `data` as the beginning of resumable upload `upload_id` (no chunk says it is the last)
/// and waits until the server's partial file holds all of it.
async fn send_partial(
    sender: &mpsc::Sender<FileChunk>,
    root: &std::path::Path,
    data: &[u8],
    chunk_size: usize,
    upload_id: &str,
) {
    let mut chunks = chunks_of(data, chunk_size, 0, upload_id);
    chunks.last_mut().expect("chunks").is_last = false;
    for chunk in chunks {
        sender.send(chunk).await.expect("queue");
    }
    until_partial_holds(root, data.len()).await;
}

/// Waits until the one partial upload under `root` holds `sent` bytes: the server wrote
/// everything the test sent.
pub(crate) async fn until_partial_holds(root: &std::path::Path, sent: usize) {
    until("the partial file to hold what was sent", || async {
        files_under(root)
            .first()
            .and_then(|file| std::fs::metadata(root.join(file)).ok())
            .is_some_and(|meta| meta.len() == sent as u64)
    })
    .await;
}

/// The call failed with `code`, its message names `needle` and leaks no internals.
fn assert_status(result: Result<impl std::fmt::Debug, Status>, code: Code, needle: &str) {
    let status = result.expect_err("the call must fail");
    crate::hostile::assert_clean(needle, &status, code, &[needle]);
}

#[tokio::test]
async fn round_trips_keep_every_byte_and_the_checksum() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    // An empty stream is a zero-byte file too.
    let empty = upload(&mut client, Vec::new()).await.expect("empty upload");
    assert_eq!(empty.total_bytes, 0);
    assert_eq!(empty.checksum, sha256_hex(b""));
    assert_eq!(empty.file_name, "upload.bin");

    for (len, seed) in [
        (0, 1),
        (1, 2),
        (1000, 3),
        (3 * CHUNK + 7, 4),
        (3 * 1024 * 1024 + 1, 5),
    ] {
        let data = content(len, seed);
        let mut chunks = chunks_of(&data, CHUNK, 0, "");
        if chunks.is_empty() {
            chunks.push(FileChunk {
                is_last: true,
                ..FileChunk::default()
            });
        }
        chunks
            .last_mut()
            .expect("one chunk")
            .checksum
            .clone_from(&sha256_hex(&data));
        let result = upload(&mut client, chunks).await.expect("upload");
        assert_eq!(result.total_bytes, len as i64, "size of {len}");
        assert_eq!(result.checksum, sha256_hex(&data), "checksum of {len}");
        assert_eq!(result.file_id.len(), 32);
        assert!(result.uploaded_at.is_some());

        for chunk_size in [0, 1000, 4096, 2 * 1024 * 1024] {
            let (bytes, last) = download(
                &mut client,
                FileRequest {
                    chunk_size,
                    ..by_id(&result.file_id)
                },
            )
            .await
            .expect("download");
            assert_eq!(bytes.len(), len, "downloaded size, chunk_size {chunk_size}");
            assert!(bytes == data, "downloaded bytes of {len} differ");
            assert_eq!(last.checksum, sha256_hex(&data));
            assert_eq!(last.total_bytes, len as i64);
            assert_eq!(last.offset, len as i64);
        }
    }
    assert_eq!(listed_ids(&mut client).await.len(), 6);
    app.stop().await;
}

#[tokio::test]
async fn download_chunks_are_clamped_and_carry_their_offsets() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let data = content(5000, 9);
    let file = upload(&mut client, chunks_of(&data, CHUNK, 0, ""))
        .await
        .expect("upload");
    // 10 is clamped up to 1 KiB: 5 chunks (4 of 1024, 1 of 904), then the end.
    let mut stream = client
        .download_file(FileRequest {
            chunk_size: 10,
            ..by_id(&file.file_id)
        })
        .await
        .expect("download")
        .into_inner();
    let mut offsets = Vec::new();
    while let Some(chunk) = within("a chunk", stream.message()).await.expect("ok") {
        offsets.push((chunk.offset, chunk.data.len(), chunk.is_last));
    }
    assert_eq!(
        offsets,
        [
            (0, 1024, false),
            (1024, 1024, false),
            (2048, 1024, false),
            (3072, 1024, false),
            (4096, 904, false),
            (5000, 0, true)
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn download_chunks_fit_the_servers_message_limit() {
    let limit = 64 * 1024;
    let app = spawn_app_with(|config| config.server.grpc.max_encoding_message_size = limit).await;
    let mut client = app.streaming();
    let data = content(300_000, 13);
    let file = upload(&mut client, chunks_of(&data, 16 * 1024, 0, ""))
        .await
        .expect("upload");
    let mut stream = client
        .download_file(FileRequest {
            chunk_size: 1024 * 1024,
            ..by_id(&file.file_id)
        })
        .await
        .expect("download")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = within("a chunk", stream.message()).await.expect("no error") {
        assert!(chunk.data.len() < limit, "{} bytes", chunk.data.len());
        bytes.extend_from_slice(&chunk.data);
    }
    assert!(bytes == data);
    app.stop().await;
}

#[tokio::test]
async fn a_download_resumes_from_an_offset() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let data = content(200_000, 11);
    let file = upload(&mut client, chunks_of(&data, CHUNK, 0, ""))
        .await
        .expect("upload");
    for offset in [1, 65_536, 123_457, 199_999] {
        let (bytes, last) = download(
            &mut client,
            FileRequest {
                offset,
                ..by_id(&file.file_id)
            },
        )
        .await
        .expect("download from offset");
        assert!(bytes == data[offset as usize..], "bytes from {offset}");
        assert_eq!(last.checksum, sha256_hex(&data), "whole-file checksum");
    }
    let (bytes, last) = download(
        &mut client,
        FileRequest {
            offset: 200_000,
            ..by_id(&file.file_id)
        },
    )
    .await
    .expect("offset at the end");
    assert!(bytes.is_empty() && last.is_last && last.chunk_number == 0);
    assert_status(
        download(
            &mut client,
            FileRequest {
                offset: 200_001,
                ..by_id(&file.file_id)
            },
        )
        .await,
        Code::OutOfRange,
        "200000 bytes",
    );
    app.stop().await;
}

#[tokio::test]
async fn failed_uploads_leave_nothing_visible_and_no_bytes() {
    let app = spawn_app_with(|config| config.data.storage.max_file_bytes = 100_000).await;
    let mut client = app.streaming();
    let root = storage_root(&app);
    let data = content(90_000, 21);

    let mut wrong = chunks_of(&data, CHUNK, 0, "");
    wrong.last_mut().expect("chunks").checksum = sha256_hex(b"something else");
    assert_status(
        upload(&mut client, wrong).await,
        Code::DataLoss,
        "checksum mismatch",
    );

    let mut short = chunks_of(&data, CHUNK, 0, "");
    short[0].total_bytes = 90_001;
    assert_status(upload(&mut client, short).await, Code::DataLoss, "90001");

    let big = content(100_001, 22);
    assert_status(
        upload(&mut client, chunks_of(&big, CHUNK, 0, "")).await,
        Code::ResourceExhausted,
        "100000 bytes",
    );
    let mut declared = chunks_of(&data, CHUNK, 0, "");
    declared[0].total_bytes = 1 << 40;
    assert_status(
        upload(&mut client, declared).await,
        Code::ResourceExhausted,
        "100000 bytes",
    );
    // Resumable ones with bad content are not kept either.
    let mut resumable = chunks_of(&data, CHUNK, 0, "bad-sum");
    resumable.last_mut().expect("chunks").checksum = sha256_hex(b"other");
    assert_status(
        upload(&mut client, resumable).await,
        Code::DataLoss,
        "checksum",
    );
    assert_status(
        client
            .get_upload_status(UploadStatusRequest {
                upload_id: "bad-sum".into(),
            })
            .await,
        Code::NotFound,
        "bad-sum",
    );

    // A cancelled one-shot upload: once the server holds some of it, the client goes away.
    let (sender, connection, call) = open_upload(app.addr).await;
    for chunk in chunks_of(&data, 1000, 0, "").into_iter().take(5) {
        sender.send(chunk).await.expect("queue");
    }
    until("the partial upload to appear", || {
        let root = root.clone();
        async move { !files_under(&root).is_empty() }
    })
    .await;
    connection
        .shutdown(Shutdown::Both)
        .expect("cut the connection");
    let _ = within("the cut call", call).await;
    until("the cancelled upload to be cleaned up", || {
        let root = root.clone();
        async move { files_under(&root).is_empty() }
    })
    .await;

    assert!(listed_ids(&mut client).await.is_empty(), "nothing visible");
    assert_eq!(files_under(&root), Vec::<PathBuf>::new(), "no bytes left");
    // The server still serves.
    upload(&mut client, chunks_of(&data, CHUNK, 0, ""))
        .await
        .expect("a good upload after the failures");
    app.stop().await;
}

#[tokio::test]
async fn an_upload_resumes_after_a_broken_stream() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let root = storage_root(&app);
    let data = content(1_000_000, 31);
    let sent = 300_000;

    let (sender, connection, call) = open_upload(app.addr).await;
    // Once the server wrote all of it, the stream breaks.
    send_partial(&sender, &root, &data[..sent], 10_000, "resume-1").await;
    connection
        .shutdown(Shutdown::Both)
        .expect("cut the connection");
    let _ = within("the cut call", call).await;
    let status = |client: &mut StreamingServiceClient<Channel>| {
        let mut client = client.clone();
        async move {
            client
                .get_upload_status(UploadStatusRequest {
                    upload_id: "resume-1".into(),
                })
                .await
                .map(|status| status.into_inner().offset)
        }
    };
    until("the durable offset to cover what was sent", || {
        let status = status(&mut client);
        async move { status.await.is_ok_and(|offset| offset == sent as i64) }
    })
    .await;
    assert!(listed_ids(&mut client).await.is_empty(), "not visible yet");

    // Resuming from the wrong place is refused, naming the right one; the upload is kept.
    let wrong = chunks_of(&data[..1000], 1000, 0, "resume-1");
    assert_status(
        upload(&mut client, wrong).await,
        Code::FailedPrecondition,
        "continues at byte 300000",
    );
    let mut rest = chunks_of(&data[sent..], 64 * 1024, sent, "resume-1");
    rest.last_mut().expect("chunks").checksum = sha256_hex(&data);
    let result = resume_upload(&mut client, rest)
        .await
        .expect("resumed upload");
    assert_eq!(result.total_bytes, data.len() as i64);
    assert_eq!(result.checksum, sha256_hex(&data));
    assert_eq!(result.file_name, "data.bin", "the first stream's name");
    let (bytes, _) = download(&mut client, by_id(&result.file_id))
        .await
        .expect("download");
    assert!(bytes == data, "byte-identical to an uninterrupted upload");
    assert_status(status(&mut client).await, Code::NotFound, "resume-1");
    assert_eq!(files_under(&root).len(), 1, "only the committed file");
    app.stop().await;
}

#[tokio::test]
async fn one_upload_id_is_written_by_one_stream_at_a_time() {
    let app = spawn_app().await;
    let (sender, receiver) = mpsc::channel(4);
    let mut first = app.streaming();
    let call = tokio::spawn(async move { first.upload_file(ReceiverStream::new(receiver)).await });
    sender
        .send(chunks_of(b"abc", 10, 0, "busy-1").remove(0))
        .await
        .expect("queue");
    let root = storage_root(&app);
    until("the first stream to start", || {
        let root = root.clone();
        async move { !files_under(&root).is_empty() }
    })
    .await;
    let mut second = app.streaming();
    assert_status(
        upload(&mut second, chunks_of(b"abc", 10, 0, "busy-1")).await,
        Code::FailedPrecondition,
        "in progress on another stream",
    );
    drop(sender);
    call.await.expect("task").expect("the first upload commits");
    app.stop().await;
}

#[tokio::test]
async fn expired_uploads_are_swept() {
    let app = spawn_app_with(|config| {
        config.data.storage.resume_ttl = Duration::from_millis(200);
        config.data.storage.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let mut client = app.streaming();
    let mut chunk = chunks_of(b"partial", 10, 0, "expiring").remove(0);
    chunk.is_last = false;
    let (sender, connection, call) = open_upload(app.addr).await;
    sender.send(chunk).await.expect("queue");
    let root = storage_root(&app);
    until("the partial upload to appear", || {
        let root = root.clone();
        async move { !files_under(&root).is_empty() }
    })
    .await;
    connection
        .shutdown(Shutdown::Both)
        .expect("cut the connection");
    let _ = within("the cut call", call).await;
    until("the expired upload to be swept", || {
        let root = root.clone();
        let mut client = client.clone();
        async move {
            let gone = client
                .get_upload_status(UploadStatusRequest {
                    upload_id: "expiring".into(),
                })
                .await
                .is_err_and(|status| status.code() == Code::NotFound);
            gone && files_under(&root).is_empty()
        }
    })
    .await;
    assert!(listed_ids(&mut client).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn list_files_pages_through_every_file_in_upload_order() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let mut uploaded = Vec::new();
    for n in 0..5 {
        let data = content(100 + n, n as u64);
        uploaded.push(
            upload(&mut client, chunks_of(&data, CHUNK, 0, ""))
                .await
                .expect("upload")
                .file_id,
        );
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_files(ListFilesRequest {
                page_size: 2,
                page_token: token.clone(),
                ..ListFilesRequest::default()
            })
            .await
            .expect("ListFiles")
            .into_inner();
        pages += 1;
        assert!(page.files.len() <= 2);
        for file in &page.files {
            assert_eq!(file.file_name, "data.bin");
            assert_eq!(file.checksum.len(), 64);
            assert!(file.uploaded_at.is_some());
        }
        seen.extend(page.files.into_iter().map(|file| file.file_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, uploaded);
    for (page_size, page_token, needle) in [
        (-1, "", "page_size"),
        (0, "nonsense", "page_token"),
        (0, "-5", "page_token"),
    ] {
        assert_status(
            client
                .list_files(ListFilesRequest {
                    page_size,
                    page_token: page_token.into(),
                    ..ListFilesRequest::default()
                })
                .await,
            Code::InvalidArgument,
            needle,
        );
    }
    app.stop().await;
}

/// `data` as one upload named `name`.
fn named(name: &str, data: &[u8]) -> Vec<FileChunk> {
    let mut chunks = chunks_of(data, CHUNK, 0, "");
    if let Some(first) = chunks.first_mut() {
        first.file_name = name.to_owned();
    }
    chunks
}

fn by_path(file_path: &str) -> FileRequest {
    FileRequest {
        file_path: file_path.to_owned(),
        ..FileRequest::default()
    }
}

/// The bytes DownloadFile sends for `request`, or its status.
async fn bytes_of(
    client: &mut StreamingServiceClient<Channel>,
    request: FileRequest,
) -> Result<Vec<u8>, Status> {
    download(client, request).await.map(|(bytes, _)| bytes)
}

async fn delete(client: &mut StreamingServiceClient<Channel>, file_id: &str) {
    client
        .delete_file(DeleteFileRequest {
            file_id: file_id.to_owned(),
        })
        .await
        .expect("DeleteFile");
}

#[tokio::test]
async fn a_file_is_downloaded_by_the_name_it_was_uploaded_under() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let first = upload(&mut client, named("report.txt", b"first version"))
        .await
        .expect("upload");
    assert_eq!(first.file_name, "report.txt");
    let (bytes, last) = download(&mut client, by_path("report.txt"))
        .await
        .expect("a seed client downloads by the name it uploaded under");
    assert_eq!(bytes, b"first version");
    assert_eq!(last.file_name, "report.txt");
    assert_eq!(last.checksum, sha256_hex(b"first version"));

    // A new upload under the name is what the name means now; ids keep naming one file.
    let second = upload(&mut client, named("report.txt", b"second version"))
        .await
        .expect("upload");
    assert_ne!(first.file_id, second.file_id);
    let by_name = bytes_of(&mut client, by_path("report.txt")).await;
    assert_eq!(by_name.expect("by name"), b"second version");
    let by_first_id = bytes_of(&mut client, by_id(&first.file_id)).await;
    assert_eq!(by_first_id.expect("by id"), b"first version");
    // file_path takes the id too, bare and in the store's own `ab/cd/<id>` form.
    let id = &first.file_id;
    for path in [id.clone(), format!("{}/{}/{id}", &id[0..2], &id[2..4])] {
        let bytes = bytes_of(&mut client, by_path(&path)).await;
        assert_eq!(
            bytes.expect("by id as file_path"),
            b"first version",
            "{path}"
        );
    }

    // Deleting the newest makes the name mean the previous file; deleting that, nothing.
    delete(&mut client, &second.file_id).await;
    let by_name = bytes_of(&mut client, by_path("report.txt")).await;
    assert_eq!(by_name.expect("the previous version"), b"first version");
    delete(&mut client, &first.file_id).await;
    assert_status(
        bytes_of(&mut client, by_path("report.txt")).await,
        Code::NotFound,
        "file_path: no stored file has this name or id",
    );
    app.stop().await;
}

#[tokio::test]
async fn names_keep_their_folders_and_are_sanitised_once_at_upload() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let cases = [
        ("reports/2026/q1.txt", "reports/2026/q1.txt"),
        ("../../inbox\\notes.txt", "inbox/notes.txt"),
        ("C:\\Users\\ana\\todo list.md", "Users/ana/todo list.md"),
        ("/abs/./100%.txt", "abs/100%.txt"),
        ("dir/", "dir/upload.bin"),
    ];
    for (n, (given, kept)) in cases.into_iter().enumerate() {
        let data = content(50, n as u64);
        let result = upload(&mut client, named(given, &data))
            .await
            .expect("upload");
        assert_eq!(result.file_name, kept, "{given:?}");
        let bytes = bytes_of(&mut client, by_path(kept)).await;
        assert_eq!(bytes.expect(kept), data, "{given:?} is found as {kept:?}");
    }
    // What was given is not a name; only what was kept is.
    for path in ["../../inbox/notes.txt", "/abs/100%.txt", "inbox\\notes.txt"] {
        assert_status(
            bytes_of(&mut client, by_path(path)).await,
            Code::InvalidArgument,
            "file_path",
        );
    }
    assert_status(
        bytes_of(&mut client, by_path("notes.txt")).await,
        Code::NotFound,
        "file_path",
    );
    app.stop().await;
}

#[tokio::test]
async fn an_id_in_file_path_wins_over_a_file_named_like_it() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let genuine = upload(&mut client, named("genuine.bin", b"genuine"))
        .await
        .expect("upload");
    let impostor = upload(&mut client, named(&genuine.file_id, b"impostor"))
        .await
        .expect("a name may look like an id");
    assert_eq!(impostor.file_name, genuine.file_id);
    let bytes = bytes_of(&mut client, by_path(&genuine.file_id)).await;
    assert_eq!(bytes.expect("by id"), b"genuine", "the id wins");
    // Once no file has that id, the name is all that is left.
    delete(&mut client, &genuine.file_id).await;
    let bytes = bytes_of(&mut client, by_path(&genuine.file_id)).await;
    assert_eq!(bytes.expect("by name"), b"impostor");
    app.stop().await;
}

#[tokio::test]
async fn list_files_filters_by_a_name_prefix_page_by_page() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let names = [
        "reports/jan.txt",
        "reports.txt",
        "other/reports/feb.txt",
        "reports/2026/mar.txt",
        "reportsX.txt",
        "reports/jan.txt",
        "reports/äpr.txt",
    ];
    let mut expected = Vec::new();
    for (n, name) in names.into_iter().enumerate() {
        let result = upload(&mut client, named(name, &content(10, n as u64)))
            .await
            .expect("upload");
        if name.starts_with("reports/") {
            expected.push((result.file_id, name.to_owned()));
        }
    }
    let list = |page_token: String, name_prefix: &str| {
        let mut client = client.clone();
        let request = ListFilesRequest {
            page_size: 2,
            page_token,
            name_prefix: name_prefix.to_owned(),
        };
        async move {
            client
                .list_files(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(token, "reports/").await.expect("ListFiles");
        pages += 1;
        assert!(page.files.len() <= 2, "{page:?}");
        seen.extend(page.files.into_iter().map(|f| (f.file_id, f.file_name)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, expected, "every match once, in upload order");
    assert_eq!(pages, 2);
    let page = list(String::new(), "reports/ä").await.expect("ListFiles");
    let found: Vec<_> = page.files.iter().map(|f| f.file_name.as_str()).collect();
    assert_eq!(found, ["reports/äpr.txt"]);
    let page = list(String::new(), "nothing/").await.expect("ListFiles");
    assert!(page.files.is_empty() && page.next_page_token.is_empty());

    for (prefix, needle) in [
        (
            "r".repeat(300),
            "name_prefix: is 300 bytes; no name is longer than 255",
        ),
        ("/reports".to_owned(), "name_prefix: starts with '/'"),
        ("reports\\".to_owned(), "name_prefix: contains a backslash"),
        (
            "reports//".to_owned(),
            "name_prefix: has an empty component",
        ),
        ("../".to_owned(), "name_prefix: has a \"..\" component"),
        (
            "a\u{7}".to_owned(),
            "name_prefix: contains a control character",
        ),
    ] {
        assert_status(
            list(String::new(), &prefix).await,
            Code::InvalidArgument,
            needle,
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn delete_file_removes_the_file_and_its_bytes() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let root = storage_root(&app);
    let keep = upload(&mut client, chunks_of(b"keep", 10, 0, ""))
        .await
        .expect("upload");
    let doomed = upload(&mut client, chunks_of(b"doomed", 10, 0, ""))
        .await
        .expect("upload");
    assert_eq!(files_under(&root).len(), 2);
    client
        .delete_file(DeleteFileRequest {
            file_id: doomed.file_id.clone(),
        })
        .await
        .expect("DeleteFile");
    assert_eq!(
        listed_ids(&mut client).await,
        std::slice::from_ref(&keep.file_id)
    );
    assert_eq!(files_under(&root).len(), 1, "the bytes went too");
    assert_status(
        download(&mut client, by_id(&doomed.file_id)).await,
        Code::NotFound,
        &doomed.file_id,
    );
    assert_status(
        client
            .delete_file(DeleteFileRequest {
                file_id: doomed.file_id.clone(),
            })
            .await,
        Code::NotFound,
        &doomed.file_id,
    );
    download(&mut client, by_id(&keep.file_id))
        .await
        .expect("the other file stays");
    app.stop().await;
}

#[tokio::test]
async fn no_file_path_yields_a_byte_from_outside_the_root() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let root = storage_root(&app);
    let secret_text = b"TOP SECRET: outside the storage root";
    let secret = app.data_dir().join("secret.txt");
    std::fs::write(&secret, secret_text).expect("write the secret");
    std::os::unix::fs::symlink(&secret, root.join("link")).expect("symlink in the root");
    std::os::unix::fs::symlink(app.data_dir(), root.join("up")).expect("dir symlink");

    // A stored file whose bytes are replaced by a link to the secret.
    let victim = upload(&mut client, chunks_of(&content(36, 1), 10, 0, ""))
        .await
        .expect("upload");
    let id = victim.file_id.clone();
    let stored = root.join(&id[0..2]).join(&id[2..4]).join(&id);
    std::fs::remove_file(&stored).expect("remove the stored bytes");
    std::os::unix::fs::symlink(&secret, &stored).expect("plant a link");

    let absolute = secret.display().to_string();
    let hostile = [
        absolute.as_str(),
        "/etc/passwd",
        "../secret.txt",
        "../../secret.txt",
        "a/../../secret.txt",
        "./../secret.txt",
        "%2e%2e/secret.txt",
        "%2E%2E%2Fsecret.txt",
        "..%2fsecret.txt",
        "..\\secret.txt",
        "a\\..\\..\\secret.txt",
        "secret.txt\0.bin",
        "link",
        "up/secret.txt",
        "up/files/link",
        "tmp",
        "",
    ];
    let stored_path = format!("{}/{}/{id}", &id[0..2], &id[2..4]);
    for path in hostile
        .iter()
        .copied()
        .chain([id.as_str(), stored_path.as_str()])
    {
        let result = download(
            &mut client,
            FileRequest {
                file_path: path.to_owned(),
                ..FileRequest::default()
            },
        )
        .await;
        let status = match result {
            Ok((bytes, _)) => panic!("{path:?} yielded {} bytes", bytes.len()),
            Err(status) => status,
        };
        assert!(
            matches!(status.code(), Code::InvalidArgument | Code::NotFound),
            "{path:?}: {status:?}"
        );
        assert!(
            !status.message().contains(&*root.to_string_lossy())
                && !status.message().contains("secret"),
            "{path:?}: the message leaks a path: {:?}",
            status.message()
        );
    }
    let status = download(&mut client, by_id(&id))
        .await
        .expect_err("a planted link is refused by id too");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    app.stop().await;
}

#[tokio::test]
async fn malformed_input_gets_a_precise_status_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let status_of = |upload_id: &str| UploadStatusRequest {
        upload_id: upload_id.to_owned(),
    };
    for (upload_id, code, needle) in [
        ("", Code::InvalidArgument, "upload_id: is empty"),
        ("a/b", Code::InvalidArgument, "upload_id"),
        (&"a".repeat(65), Code::InvalidArgument, "upload_id"),
        ("never-started", Code::NotFound, "never-started"),
    ] {
        assert_status(
            client.get_upload_status(status_of(upload_id)).await,
            code,
            needle,
        );
    }
    for file_id in ["", "xyz", &"g".repeat(32), "../../etc/passwd"] {
        assert_status(
            client
                .delete_file(DeleteFileRequest {
                    file_id: file_id.to_owned(),
                })
                .await,
            Code::InvalidArgument,
            "file_id",
        );
    }
    let id = "0".repeat(32);
    let downloads = [
        (FileRequest::default(), "file_id"),
        (
            FileRequest {
                file_id: id.clone(),
                file_path: "x".into(),
                ..FileRequest::default()
            },
            "file_path",
        ),
        (
            FileRequest {
                offset: -1,
                ..by_id(&id)
            },
            "offset",
        ),
        (
            FileRequest {
                chunk_size: -1,
                ..by_id(&id)
            },
            "chunk_size",
        ),
        (
            FileRequest {
                file_path: "a".repeat(5000),
                ..FileRequest::default()
            },
            "file_path",
        ),
    ];
    for (request, needle) in downloads {
        assert_status(
            download(&mut client, request).await,
            Code::InvalidArgument,
            needle,
        );
    }
    assert_status(download(&mut client, by_id(&id)).await, Code::NotFound, &id);

    let good = || chunks_of(&content(3000, 7), 1000, 0, "");
    let mut gap = good();
    gap[1].chunk_number = 2;
    let mut negative_offset = good();
    negative_offset[1].offset = -1;
    let mut wrong_offset = good();
    wrong_offset[1].offset = 5;
    let mut negative_size = good();
    negative_size[0].total_bytes = -1;
    let mut huge_name = good();
    huge_name[0].file_name = "n".repeat(300);
    let mut bad_checksum = good();
    bad_checksum[2].checksum = "not-hex".into();
    let mut bad_upload_id = good();
    bad_upload_id[0].upload_id = "no spaces".into();
    let mut after_last = good();
    after_last[0].is_last = true;
    let cases = [
        (
            gap,
            Code::InvalidArgument,
            "chunk_number: expected 1, got 2",
        ),
        (negative_offset, Code::InvalidArgument, "negative offset"),
        (
            wrong_offset,
            Code::FailedPrecondition,
            "continues at byte 1000",
        ),
        (negative_size, Code::InvalidArgument, "total_bytes"),
        (huge_name, Code::InvalidArgument, "file_name: is 300 bytes"),
        (bad_checksum, Code::InvalidArgument, "checksum"),
        (bad_upload_id, Code::InvalidArgument, "upload_id"),
        (
            after_last,
            Code::InvalidArgument,
            "after the chunk marked is_last",
        ),
    ];
    for (chunks, code, needle) in cases {
        assert_status(upload(&mut client, chunks).await, code, needle);
    }
    assert!(listed_ids(&mut client).await.is_empty(), "nothing kept");
    assert!(
        files_under(&storage_root(&app)).is_empty(),
        "no bytes left behind"
    );
    upload(&mut client, good())
        .await
        .expect("still serving uploads");
    app.stop().await;
}

#[tokio::test]
async fn a_sigkill_mid_upload_leaves_nothing_after_the_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("files");
    let config = local_config(dir.path(), dir.path());
    let start = || start_binary(&config);
    let server = start();
    let channel = server.connect().await;
    let data = content(400_000, 41);
    let (sender, receiver) = mpsc::channel(4);
    let mut client = StreamingServiceClient::new(channel.clone());
    let call = tokio::spawn(async move { client.upload_file(ReceiverStream::new(receiver)).await });
    let mut chunks = chunks_of(&data, 10_000, 0, "").into_iter();
    for chunk in chunks.by_ref().take(10) {
        sender.send(chunk).await.expect("queue");
    }
    until("the partial upload to hold bytes", || {
        let root = root.clone();
        async move {
            files_under(&root)
                .first()
                .and_then(|file| std::fs::metadata(root.join(file)).ok())
                .is_some_and(|meta| meta.len() > 0)
        }
    })
    .await;
    server.kill();
    let _ = within("the cut-off call", call).await;
    assert!(
        !files_under(&root).is_empty(),
        "the kill left a partial file"
    );

    let server = start();
    let mut client = server.streaming().await;
    assert!(listed_ids(&mut client).await.is_empty(), "nothing visible");
    assert_eq!(
        files_under(&root),
        Vec::<PathBuf>::new(),
        "no orphaned bytes"
    );
    let result = upload(&mut client, chunks_of(&data, CHUNK, 0, ""))
        .await
        .expect("uploads work after the restart");
    assert_eq!(result.checksum, sha256_hex(&data));
    server.kill();
}

#[tokio::test]
async fn a_shutdown_keeps_a_resumable_upload_for_the_next_start() {
    let app = spawn_app().await;
    let root = storage_root(&app);
    let data = content(50_000, 51);
    let sent = 20_000;
    let (sender, _connection, call) = open_upload(app.addr).await;
    send_partial(&sender, &root, &data[..sent], 5_000, "across-restart").await;
    let stopped = tokio::spawn(app.stop());
    let status = within("the upload to end", call)
        .await
        .expect("task")
        .expect_err("shutdown ends the upload");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let data_dir = stopped.await.expect("stop task");

    let app = spawn_app_in(data_dir, |_| {}).await;
    let mut client = app.streaming();
    let offset = client
        .get_upload_status(UploadStatusRequest {
            upload_id: "across-restart".into(),
        })
        .await
        .expect("the upload survived the restart")
        .into_inner()
        .offset;
    assert_eq!(offset, sent as i64);
    let result = upload(
        &mut client,
        chunks_of(&data[sent..], 5_000, sent, "across-restart"),
    )
    .await
    .expect("resumed after the restart");
    assert_eq!(result.checksum, sha256_hex(&data));
    let (bytes, _) = download(&mut client, by_id(&result.file_id))
        .await
        .expect("download");
    assert!(bytes == data, "byte-identical");
    app.stop().await;
}

/// A commit that the database refuses for a while (another writer holds the lock past the
/// busy timeout) fails with UNAVAILABLE and throws nothing away: the resumable upload is
/// finished by the next stream once the database is free.
#[tokio::test]
async fn a_busy_database_at_commit_keeps_a_resumable_upload_resumable() {
    use sqlx::Connection as _;

    let app = spawn_app_with(|config| {
        config.data.database.busy_timeout = Duration::from_millis(200);
    })
    .await;
    let mut client = app.streaming();
    let root = storage_root(&app);
    let data = content(500_000, 51);
    let (sender, receiver) = mpsc::channel(64);
    let mut caller = client.clone();
    let call = tokio::spawn(async move { caller.upload_file(ReceiverStream::new(receiver)).await });
    let mut chunks = chunks_of(&data, CHUNK, 0, "busy-commit");
    let mut last = chunks.pop().expect("chunks");
    for chunk in chunks {
        sender.send(chunk).await.expect("queued");
    }
    until_partial_holds(&root, data.len() - last.data.len()).await;

    // Another writer takes the database's write lock and keeps it.
    let database = app.data_dir().join("streamhub.db");
    let mut writer = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display()))
        .await
        .expect("a second connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .expect("the write lock");
    last.checksum = sha256_hex(&data);
    sender.send(last).await.expect("queued");
    drop(sender);
    let refused = within("the refused commit", call).await.expect("call task");
    assert_status(refused, Code::Unavailable, "try again");
    sqlx::query("ROLLBACK")
        .execute(&mut writer)
        .await
        .expect("release the lock");
    assert!(
        listed_ids(&mut client).await.is_empty(),
        "nothing committed"
    );

    let offset = client
        .get_upload_status(UploadStatusRequest {
            upload_id: "busy-commit".into(),
        })
        .await
        .expect("the upload is still resumable")
        .into_inner()
        .offset;
    let offset = usize::try_from(offset).expect("an offset");
    let mut rest = chunks_of(&data[offset..], CHUNK, offset, "busy-commit");
    if rest.is_empty() {
        rest.push(FileChunk {
            upload_id: "busy-commit".into(),
            offset: offset as i64,
            is_last: true,
            ..FileChunk::default()
        });
    }
    rest.last_mut().expect("a chunk").checksum = sha256_hex(&data);
    let finished = upload(&mut client, rest).await.expect("the resumed upload");
    assert_eq!(finished.checksum, sha256_hex(&data));
    assert_eq!(finished.total_bytes, data.len() as i64);
    app.stop().await;
}
