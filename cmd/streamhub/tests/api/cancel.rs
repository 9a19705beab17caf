//! Only a half-close completes a client stream: an upload that ends by an HTTP/2 reset
//! (`CANCEL` or `NO_ERROR`, which hyper hands the server as a clean end of body), by a dropped
//! tonic call or by its deadline commits nothing, whether or not it had sent its last chunk;
//! a resumable one keeps its bytes and is finished by a later stream.

use bytes::Bytes;
use streamhub_api::streaming::{
    DeleteFileRequest, FileChunk, UploadStatusRequest,
    streaming_service_client::StreamingServiceClient,
};
use streamhub_testkit::{TestApp, spawn_app, within};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, transport::Channel};

use crate::files::{
    chunks_of, content, files_under, listed_ids, resume_upload, sha256_hex, storage_root, until,
    until_partial_holds,
};

const UPLOAD_FILE: &str = "/streaming.StreamingService/UploadFile";
const CHUNK: usize = 64 * 1024;

/// One call made with raw HTTP/2 frames, so the test decides exactly what ends it.
struct RawCall {
    body: h2::SendStream<Bytes>,
    // Kept so the connection stays open while the server reacts.
    _client: h2::client::SendRequest<Bytes>,
    response: h2::client::ResponseFuture,
    _connection: tokio::task::JoinHandle<()>,
}

/// Opens a call to `path`, with `grpc-timeout: deadline` when given.
async fn raw_call(app: &TestApp, path: &str, deadline: Option<&str>) -> RawCall {
    let tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client
        .ready()
        .await
        .expect("the connection takes a request");
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}{path}", app.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(deadline) = deadline {
        request = request.header("grpc-timeout", deadline);
    }
    let request = request.body(()).expect("a valid request");
    let (response, body) = client
        .send_request(request, false)
        .expect("the request goes out");
    RawCall {
        body,
        _client: client,
        response,
        _connection: connection,
    }
}

/// A gRPC length-prefixed message, uncompressed.
fn grpc_frame(message: &impl prost::Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + encoded.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(encoded.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&encoded);
    frame.into()
}

/// The chunks of `data` as one upload; with `sent_last`, the last one says so and carries
/// the checksum (a client that then cancels has still not half-closed).
fn upload_chunks(data: &[u8], upload_id: &str, sent_last: bool) -> Vec<FileChunk> {
    let mut chunks = chunks_of(data, CHUNK, 0, upload_id);
    let last = chunks.last_mut().expect("data");
    last.is_last = sent_last;
    if sent_last {
        last.checksum = sha256_hex(data);
    }
    chunks
}

async fn durable_offset(client: &mut StreamingServiceClient<Channel>, upload_id: &str) -> i64 {
    client
        .get_upload_status(UploadStatusRequest {
            upload_id: upload_id.to_owned(),
        })
        .await
        .map_or(-1, |status| status.into_inner().offset)
}

/// Waits until the server removed the bytes of a cancelled one-shot upload, then checks that
/// no file was committed for it.
async fn assert_nothing_committed(
    root: &std::path::Path,
    client: &mut StreamingServiceClient<Channel>,
    context: &str,
) {
    until("the cancelled upload's bytes to be removed", || async {
        files_under(root).is_empty()
    })
    .await;
    assert!(
        listed_ids(client).await.is_empty(),
        "{context}: nothing is committed"
    );
}

/// Waits until the server made every byte of `upload_id` durable and kept it resumable, then
/// finishes it with one more stream and checks the file; leaves the store empty again.
async fn finish_kept_upload(
    client: &mut StreamingServiceClient<Channel>,
    upload_id: &str,
    data: &[u8],
    context: &str,
) {
    until(
        "the cancelled upload to be kept, every byte durable",
        || {
            let mut client = client.clone();
            async move { durable_offset(&mut client, upload_id).await == data.len() as i64 }
        },
    )
    .await;
    assert!(
        listed_ids(client).await.is_empty(),
        "{context}: a kept upload is not a file"
    );
    let finish = FileChunk {
        upload_id: upload_id.to_owned(),
        offset: data.len() as i64,
        is_last: true,
        checksum: sha256_hex(data),
        ..FileChunk::default()
    };
    let result = resume_upload(client, vec![finish])
        .await
        .unwrap_or_else(|status| panic!("{context}: finishing the kept upload failed: {status:?}"));
    assert_eq!(result.total_bytes, data.len() as i64, "{context}");
    assert_eq!(result.checksum, sha256_hex(data), "{context}");
    client
        .delete_file(DeleteFileRequest {
            file_id: result.file_id,
        })
        .await
        .expect("DeleteFile");
}

#[tokio::test]
async fn an_upload_reset_without_a_half_close_commits_nothing_whatever_the_code() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let root = storage_root(&app);
    let data = content(200_000, 11);
    for reason in [h2::Reason::CANCEL, h2::Reason::NO_ERROR] {
        for sent_last in [false, true] {
            for resumable in [false, true] {
                let context = format!("RST_STREAM({reason:?}), last chunk sent: {sent_last}");
                let upload_id = if resumable {
                    format!("reset-{}-{sent_last}", u32::from(reason))
                } else {
                    String::new()
                };
                let mut call = raw_call(&app, UPLOAD_FILE, None).await;
                for chunk in upload_chunks(&data, &upload_id, sent_last) {
                    call.body
                        .send_data(grpc_frame(&chunk), false)
                        .expect("DATA goes out");
                }
                until_partial_holds(&root, data.len()).await;
                call.body.send_reset(reason);

                if resumable {
                    finish_kept_upload(&mut client, &upload_id, &data, &context).await;
                } else {
                    assert_nothing_committed(&root, &mut client, &context).await;
                }
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_dropped_tonic_upload_call_commits_nothing() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let root = storage_root(&app);
    let data = content(300_000, 12);
    for upload_id in ["", "dropped-call"] {
        let (sender, receiver) = mpsc::channel(64);
        let mut caller = client.clone();
        let call =
            tokio::spawn(async move { caller.upload_file(ReceiverStream::new(receiver)).await });
        for chunk in upload_chunks(&data, upload_id, true) {
            sender.send(chunk).await.expect("queued");
        }
        until_partial_holds(&root, data.len()).await;
        // Dropping the call's future resets the stream; the request stream is still open.
        call.abort();
        let _ = call.await;
        drop(sender);
        if upload_id.is_empty() {
            assert_nothing_committed(&root, &mut client, "a dropped call").await;
        } else {
            finish_kept_upload(&mut client, upload_id, &data, "a dropped call").await;
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn an_upload_past_its_deadline_is_not_committed_by_a_late_half_close() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    let root = storage_root(&app);
    let data = content(100_000, 13);
    // A raw call: a tonic client would enforce the deadline itself, by a reset.
    let mut call = raw_call(&app, UPLOAD_FILE, Some("300m")).await;
    for chunk in upload_chunks(&data, "", true) {
        call.body
            .send_data(grpc_frame(&chunk), false)
            .expect("DATA goes out");
    }
    until_partial_holds(&root, data.len()).await;
    let response = within("the deadline", call.response)
        .await
        .expect("a response");
    let status = Status::from_header_map(response.headers()).expect("a trailers-only status");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // Only now does the client half-close its request stream; the server may already have
    // refused the rest of it.
    let _ = call.body.send_data(Bytes::new(), true);
    assert_nothing_committed(&root, &mut client, "a half-close after the deadline").await;
    app.stop().await;
}
