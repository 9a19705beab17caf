//! Methods whose feature has not landed answer UNIMPLEMENTED, naming the method.

use streamhub_api::streaming::{FileChunk, FileRequest, UploadStatusRequest};
use tonic::{Code, Status};

use crate::helpers::spawn_app;

fn assert_unimplemented(result: Result<impl std::fmt::Debug, Status>, method: &str) {
    let err = result.expect_err("the method is not implemented yet");
    assert_eq!(err.code(), Code::Unimplemented, "{method}: {err}");
    assert!(
        err.message().contains(method),
        "{method}: message {:?} should name the method",
        err.message()
    );
}

#[tokio::test]
async fn each_kind_of_call_gets_a_clear_unimplemented() {
    let app = spawn_app().await;
    let mut client = app.streaming();
    assert_unimplemented(
        client
            .get_upload_status(UploadStatusRequest::default())
            .await,
        "GetUploadStatus",
    );
    assert_unimplemented(
        client.download_file(FileRequest::default()).await,
        "DownloadFile",
    );
    assert_unimplemented(
        client
            .upload_file(tokio_stream::iter([FileChunk::default()]))
            .await,
        "UploadFile",
    );
}
