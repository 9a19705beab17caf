//! Server reflection (v1 and v1alpha) lists every served service and describes the contract.

use prost::Message as _;
use prost_types::{FileDescriptorProto, field_descriptor_proto::Label};
use streamhub_testkit::{TestApp, spawn_app};
use tokio_stream::StreamExt as _;
use tonic_reflection::pb::{v1, v1alpha};

const SERVICES: [&str; 10] = [
    "chat.ChatService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "helloworld.AllStreamServer",
    "helloworld.ClientStreamServer",
    "helloworld.ServerStreamServer",
    "proto.StreamService",
    "service.v1.Service",
    "streaming.StreamingService",
];

/// Sends one v1 reflection request and returns its response.
async fn ask_v1(
    app: &TestApp,
    request: v1::server_reflection_request::MessageRequest,
) -> v1::server_reflection_response::MessageResponse {
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection stream opens")
        .into_inner();
    responses
        .next()
        .await
        .expect("one response")
        .expect("response is not an error")
        .message_response
        .expect("response has a body")
}

#[tokio::test]
async fn v1_lists_every_served_service() {
    let app = spawn_app().await;
    let response = ask_v1(
        &app,
        v1::server_reflection_request::MessageRequest::ListServices(String::new()),
    )
    .await;
    let v1::server_reflection_response::MessageResponse::ListServicesResponse(list) = response
    else {
        panic!("expected a service list, got {response:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, SERVICES);
}

#[tokio::test]
async fn v1alpha_lists_every_served_service() {
    let app = spawn_app().await;
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let response = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection stream opens")
        .into_inner()
        .next()
        .await
        .expect("one response")
        .expect("response is not an error")
        .message_response;
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response
    else {
        panic!("expected a service list, got {response:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, SERVICES);
}

/// The descriptor of `streaming.proto` as reflection serves it (what `grpcurl describe` reads).
async fn streaming_file(app: &TestApp) -> FileDescriptorProto {
    let response = ask_v1(
        app,
        v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "streaming.StreamingService".to_owned(),
        ),
    )
    .await;
    let v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files) = response
    else {
        panic!("expected file descriptors, got {response:?}");
    };
    files
        .file_descriptor_proto
        .iter()
        .map(|bytes| FileDescriptorProto::decode(bytes.as_slice()).expect("valid descriptor"))
        .find(|file| file.package() == "streaming")
        .expect("streaming.proto is among the returned files")
}

#[tokio::test]
async fn describe_shows_every_method_of_the_contract() {
    let app = spawn_app().await;
    let file = streaming_file(&app).await;
    let service = file
        .service
        .iter()
        .find(|s| s.name() == "StreamingService")
        .expect("StreamingService is described");
    let methods: Vec<(&str, bool, bool)> = service
        .method
        .iter()
        .map(|m| (m.name(), m.client_streaming(), m.server_streaming()))
        .collect();
    let expected = [
        ("GetStockPrices", false, true),
        ("StreamLogs", false, true),
        ("DownloadFile", false, true),
        ("UploadFile", true, false),
        ("CollectSensorData", true, false),
        ("ProcessBatch", true, false),
        ("Chat", true, true),
        ("GameSession", true, true),
        ("CollaborativeEdit", true, true),
        ("GetDataStream", false, true),
        ("ControlledStream", false, true),
        ("BufferedStream", false, true),
        ("PushLogs", true, false),
        ("GetUploadStatus", false, false),
        ("ListFiles", false, false),
        ("DeleteFile", false, false),
    ];
    assert_eq!(methods, expected);
}

#[tokio::test]
async fn describe_keeps_seed_fields_and_numbers_and_adds_ext_fields() {
    let app = spawn_app().await;
    let file = streaming_file(&app).await;
    let fields = |message: &str| -> Vec<(String, i32)> {
        file.message_type
            .iter()
            .find(|m| m.name() == message)
            .unwrap_or_else(|| panic!("message {message} is described"))
            .field
            .iter()
            .map(|f| (f.name().to_owned(), f.number()))
            .collect()
    };
    let owned = |pairs: &[(&str, i32)]| -> Vec<(String, i32)> {
        pairs.iter().map(|(n, i)| ((*n).to_owned(), *i)).collect()
    };
    assert_eq!(
        fields("ChatMessage"),
        owned(&[
            ("user_id", 1),
            ("room_id", 2),
            ("message", 3),
            ("timestamp", 4),
            ("id", 5),
            ("kind", 6),
            ("last_seen_id", 7),
        ])
    );
    assert_eq!(
        fields("FileChunk"),
        owned(&[
            ("data", 1),
            ("chunk_number", 2),
            ("is_last", 3),
            ("offset", 4),
            ("checksum", 5),
            ("file_name", 6),
            ("upload_id", 7),
            ("total_bytes", 8),
        ])
    );
    assert_eq!(
        fields("SensorSummary"),
        owned(&[
            ("total_readings", 1),
            ("avg_temperature", 2),
            ("avg_humidity", 3),
            ("avg_pressure", 4),
            ("start_time", 5),
            ("end_time", 6),
            ("rejected_readings", 7),
            ("temperature", 8),
            ("humidity", 9),
            ("pressure", 10),
            ("sensors", 11),
        ])
    );
    let edit = file
        .message_type
        .iter()
        .find(|m| m.name() == "EditOperation")
        .expect("EditOperation is described");
    let base_revision = edit
        .field
        .iter()
        .find(|f| f.name() == "base_revision")
        .expect("base_revision is described");
    assert_eq!(base_revision.number(), 6);
    assert!(
        base_revision.proto3_optional(),
        "base_revision is proto3 optional"
    );
    assert_eq!(base_revision.label(), Label::Optional);
}
