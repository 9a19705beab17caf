//! Error hygiene: every RPC, fed malformed and hostile input (empty, huge,
//! wrong text, invalid UTF-8 in string fields, bytes of the wrong wire type, negative numbers,
//! unknown enum-like values). Each gets a precise status whose message names the problem and
//! holds no internal path or SQL, and the server keeps serving.
//!
//! Invalid UTF-8 cannot be put into a string field by a generated client, so the sweeps use
//! [`Raw`]: a message whose fields are all `bytes`, sent with tonic's generic client.

use std::collections::HashMap;

use streamhub_api::streaming::{
    BatchItem, ChatMessage, EditOperation, GameAction, LogEntry, LogRequest, SensorData,
    StockRequest, StreamRequest,
};
use streamhub_testkit::{TestApp, spawn_app, within};
use tonic::{Code, Status, Streaming, codegen::http::uri::PathAndQuery, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// Every method, as `/package.Service/Method`. (The file methods' field rules are walked in
/// `files.rs`, whose status checks use [`assert_clean`] too.)
const METHODS: [&str; 24] = [
    "/streaming.StreamingService/GetStockPrices",
    "/streaming.StreamingService/StreamLogs",
    "/streaming.StreamingService/CollectSensorData",
    "/streaming.StreamingService/ProcessBatch",
    "/streaming.StreamingService/Chat",
    "/streaming.StreamingService/GameSession",
    "/streaming.StreamingService/CollaborativeEdit",
    "/streaming.StreamingService/GetDataStream",
    "/streaming.StreamingService/ControlledStream",
    "/streaming.StreamingService/BufferedStream",
    "/streaming.StreamingService/PushLogs",
    "/streaming.StreamingService/UploadFile",
    "/streaming.StreamingService/DownloadFile",
    "/streaming.StreamingService/GetUploadStatus",
    "/streaming.StreamingService/ListFiles",
    "/streaming.StreamingService/DeleteFile",
    "/chat.ChatService/Chat",
    "/proto.StreamService/List",
    "/proto.StreamService/Record",
    "/proto.StreamService/Route",
    "/service.v1.Service/Chat",
    "/helloworld.ServerStreamServer/ServerStream",
    "/helloworld.ClientStreamServer/ClientStream",
    "/helloworld.AllStreamServer/AllStream",
];

/// Methods whose request is a single message.
const SINGLE_REQUEST: [&str; 11] = [
    "/streaming.StreamingService/GetStockPrices",
    "/streaming.StreamingService/DownloadFile",
    "/streaming.StreamingService/GetUploadStatus",
    "/streaming.StreamingService/ListFiles",
    "/streaming.StreamingService/DeleteFile",
    "/streaming.StreamingService/StreamLogs",
    "/streaming.StreamingService/GetDataStream",
    "/streaming.StreamingService/ControlledStream",
    "/streaming.StreamingService/BufferedStream",
    "/proto.StreamService/List",
    "/helloworld.ServerStreamServer/ServerStream",
];

/// Any message, written field by field as raw bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct Raw {
    #[prost(bytes = "vec", optional, tag = "1")]
    f1: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    f2: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    f3: Option<Vec<u8>>,
}

/// Any response, its fields skipped.
#[derive(Clone, PartialEq, prost::Message)]
struct Anything {}

/// Bytes that are not UTF-8 (an overlong sequence, a lone continuation byte, 0xFF) and, read
/// as a nested message, not valid protobuf either.
const NOT_UTF8: [u8; 5] = [0xC0, 0xAF, 0x80, 0xFF, 0xFE];

/// Calls `path` with `messages` and returns how the call ended (`Ok` included).
async fn raw_call(channel: Channel, path: &'static str, messages: Vec<Raw>) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    within("the client to be ready", grpc.ready())
        .await
        .expect("ready");
    let codec: tonic_prost::ProstCodec<Raw, Anything> = tonic_prost::ProstCodec::default();
    let opened = within(
        &format!("{path} to answer"),
        grpc.streaming(
            tonic::Request::new(tokio_stream::iter(messages)),
            PathAndQuery::from_static(path),
            codec,
        ),
    )
    .await;
    match opened {
        // Every call here must end with a status: read on until it does.
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match within(&format!("{path} to end"), stream.message()).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Status::ok(""),
                    Err(status) => return status,
                }
            }
        }
        Err(status) => status,
    }
}

/// Reads `stream` to its end; `Ok` when it ends cleanly. Streams that would run on (feeds,
/// market) count as OK once a message arrives.
async fn end_of<T>(mut stream: Streaming<T>) -> Status {
    match within("the call to end", stream.message()).await {
        Ok(Some(_)) => Status::ok(""),
        Ok(None) => Status::ok(""),
        Err(status) => status,
    }
}

/// Asserts `status` is `code`, mentions every one of `mentions`, and leaks nothing.
pub(crate) fn assert_clean(what: &str, status: &Status, code: Code, mentions: &[&str]) {
    assert_eq!(status.code(), code, "{what}: {status:?}");
    let message = status.message();
    assert!(!message.is_empty(), "{what}: a status needs a message");
    assert!(
        message.len() <= 1024,
        "{what}: {} bytes of status message",
        message.len()
    );
    for mention in mentions {
        assert!(
            message.contains(mention),
            "{what}: {message:?} should name {mention:?}"
        );
    }
    for leak in [
        "/tmp", "/work", "/root", "/home", "src/", ".rs:", ".db", "sqlite", "SQLITE", "SELECT ",
        "INSERT ", "UPDATE ", "panicked", "sqlx",
    ] {
        assert!(
            !message.contains(leak),
            "{what}: {message:?} leaks {leak:?}"
        );
    }
}

async fn assert_still_serving(app: &TestApp) {
    let status = within(
        "a health check",
        app.health().check(HealthCheckRequest::default()),
    )
    .await
    .expect("the server still answers")
    .into_inner()
    .status();
    assert_eq!(status, ServingStatus::Serving);
}

#[tokio::test]
async fn bytes_that_are_not_the_message_type_are_invalid_argument_on_every_method() {
    let app = spawn_app().await;
    for path in METHODS {
        // Field 1 is a string in most requests (then this is invalid UTF-8), an integer or a
        // nested message in others (then the bytes are of the wrong kind): never decodable.
        // FileChunk's field 1 is bytes, so field 2 (an integer there) carries the wrong kind.
        let status = raw_call(
            app.connect().await,
            path,
            vec![Raw {
                f1: Some(NOT_UTF8.to_vec()),
                f2: Some(NOT_UTF8.to_vec()),
                ..Raw::default()
            }],
        )
        .await;
        assert_clean(path, &status, Code::InvalidArgument, &["decode"]);
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_resource_exhausted_on_every_method() {
    let app = spawn_app().await;
    let huge = vec![b'x'; 4 * 1024 * 1024 + 1];
    for path in METHODS {
        let status = raw_call(
            app.connect().await,
            path,
            vec![Raw {
                f1: Some(huge.clone()),
                ..Raw::default()
            }],
        )
        .await;
        assert_clean(path, &status, Code::ResourceExhausted, &["4194304"]);
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn a_single_request_call_without_its_request_is_invalid_argument() {
    let app = spawn_app().await;
    for path in SINGLE_REQUEST {
        let status = raw_call(app.connect().await, path, Vec::new()).await;
        assert_clean(path, &status, Code::InvalidArgument, &[]);
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn market_requests_with_bad_values_are_invalid_argument() {
    let app = spawn_app().await;
    let cases = [
        (StockRequest::default(), "symbols"),
        (
            StockRequest {
                symbols: vec!["AAPL".to_owned()],
                interval_seconds: -1,
                ..StockRequest::default()
            },
            "interval",
        ),
        (
            StockRequest {
                symbols: vec!["AAPL".to_owned()],
                interval_ms: -5,
                ..StockRequest::default()
            },
            "interval",
        ),
        (
            StockRequest {
                symbols: vec!["../../etc/passwd".to_owned()],
                ..StockRequest::default()
            },
            "symbol",
        ),
        (
            StockRequest {
                symbols: vec!["X".repeat(100_000)],
                ..StockRequest::default()
            },
            "symbol",
        ),
        (
            StockRequest {
                symbols: (0..1000).map(|i| format!("S{i}")).collect(),
                ..StockRequest::default()
            },
            "symbols",
        ),
    ];
    for (request, names) in cases {
        let what = format!("GetStockPrices {:.60?}", request.symbols);
        let status = match app.streaming().get_stock_prices(request).await {
            Ok(response) => end_of(response.into_inner()).await,
            Err(status) => status,
        };
        assert_clean(&what, &status, Code::InvalidArgument, &[names]);
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn log_and_feed_requests_with_bad_values_are_invalid_argument() {
    let app = spawn_app().await;
    let reads = [
        (
            LogRequest {
                level: "LOUD".to_owned(),
                ..LogRequest::default()
            },
            "level",
        ),
        (
            LogRequest {
                after_id: -1,
                ..LogRequest::default()
            },
            "after_id",
        ),
        (
            LogRequest {
                tail: -3,
                ..LogRequest::default()
            },
            "tail",
        ),
    ];
    for (request, names) in reads {
        let what = format!("StreamLogs {request:?}");
        let status = match app.streaming().stream_logs(request).await {
            Ok(response) => end_of(response.into_inner()).await,
            Err(status) => status,
        };
        assert_clean(&what, &status, Code::InvalidArgument, &[names]);
    }
    let negative_start = StreamRequest {
        start_from_id: -1,
        ..StreamRequest::default()
    };
    let status = app
        .streaming()
        .get_data_stream(negative_start)
        .await
        .expect_err("refused");
    assert_clean(
        "GetDataStream",
        &status,
        Code::InvalidArgument,
        &["start_from_id"],
    );
    let status = app
        .streaming()
        .buffered_stream(negative_start)
        .await
        .expect_err("refused");
    assert_clean(
        "BufferedStream",
        &status,
        Code::InvalidArgument,
        &["start_from_id"],
    );
    let status = app
        .streaming()
        .controlled_stream(StreamRequest {
            limit: -1,
            ..StreamRequest::default()
        })
        .await
        .expect_err("refused");
    assert_clean(
        "ControlledStream",
        &status,
        Code::InvalidArgument,
        &["limit"],
    );

    let entry = |service: &str, level: &str, message: String| LogEntry {
        service: service.to_owned(),
        level: level.to_owned(),
        message,
        ..LogEntry::default()
    };
    let pushes = [
        (LogEntry::default(), "service"),
        (entry("s", "LOUD", "m".to_owned()), "level"),
        (entry("s", "INFO", String::new()), "message"),
        (entry("s", "INFO", "x".repeat(64 * 1024 + 1)), "message"),
        (
            entry(&"s".repeat(10_000), "INFO", "m".to_owned()),
            "service",
        ),
    ];
    for (pushed, names) in pushes {
        let what = format!("PushLogs {:.80?}", pushed.message);
        let status = app
            .streaming()
            .push_logs(tokio_stream::iter([pushed]))
            .await
            .expect_err("refused");
        assert_clean(&what, &status, Code::InvalidArgument, &[names]);
    }
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn hostile_sensor_readings_and_batch_items_are_counted_not_fatal() {
    let app = spawn_app().await;
    let readings = [
        SensorData::default(),
        SensorData {
            sensor_id: "s".repeat(10_000),
            ..SensorData::default()
        },
        SensorData {
            sensor_id: "s".to_owned(),
            temperature: f64::NAN,
            ..SensorData::default()
        },
        SensorData {
            sensor_id: "s".to_owned(),
            pressure: -1e308,
            ..SensorData::default()
        },
    ];
    let summary = app
        .streaming()
        .collect_sensor_data(tokio_stream::iter(readings))
        .await
        .expect("bad readings are counted")
        .into_inner();
    assert_eq!(summary.rejected_readings, 4, "{summary:?}");
    assert_eq!(summary.avg_temperature, 0.0, "no NaN: {summary:?}");

    let item = |id: &str, kind: &str, data: &[u8]| BatchItem {
        id: id.to_owned(),
        r#type: kind.to_owned(),
        data: data.to_vec(),
    };
    let items = [
        item("bad-utf8", "text", &NOT_UTF8),
        item("bad-json", "json", b"{\"a\":"),
        item("unknown-type", "yaml", b"a: 1"),
        item("", "text", b"x"),
        item(&"i".repeat(10_000), "text", b"x"),
        item("empty-binary", "binary", b""),
        item("fine", "text", "héllo".as_bytes()),
    ];
    let result = app
        .streaming()
        .process_batch(tokio_stream::iter(items))
        .await
        .expect("bad items are counted")
        .into_inner();
    assert_eq!(
        (
            result.processed_count,
            result.success_count,
            result.failed_count
        ),
        (7, 1, 6),
        "{result:?}"
    );
    let reasons: Vec<&str> = result.errors.iter().map(|e| e.reason.as_str()).collect();
    assert!(reasons[0].contains("UTF-8"), "{reasons:?}");
    assert!(
        result
            .errors
            .iter()
            .all(|e| e.reason.len() <= 1024 && e.id.len() <= 1024),
        "reasons and ids are bounded: {reasons:?}"
    );
    assert_still_serving(&app).await;
}

/// The status a bidi call ends with when its only message is `first`.
async fn bidi_status<Req, Resp, F, Fut>(first: Req, call: F) -> Status
where
    F: FnOnce(tokio_stream::Iter<std::vec::IntoIter<Req>>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<Streaming<Resp>>, Status>>,
{
    match within("the call to open", call(tokio_stream::iter(vec![first]))).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match within("the call to end", stream.message()).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Status::ok(""),
                    Err(status) => return status,
                }
            }
        }
        Err(status) => status,
    }
}

#[tokio::test]
async fn hostile_chat_game_and_edit_messages_end_their_stream_with_invalid_argument() {
    let app = spawn_app().await;
    let chat = |user: &str, room: &str, last_seen_id: i64, text: &str| ChatMessage {
        user_id: user.to_owned(),
        room_id: room.to_owned(),
        last_seen_id,
        message: text.to_owned(),
        ..ChatMessage::default()
    };
    let long = "z".repeat(100_000);
    let chats = [
        (ChatMessage::default(), "room_id"),
        (chat("", "r", 0, ""), "user_id"),
        (chat("u", &long, 0, ""), "room_id"),
        (chat(&long, "r", 0, ""), "user_id"),
        (chat("u", "r", -7, ""), "last_seen_id"),
        (chat("u", "r", 0, &"t".repeat(5000)), "bytes"),
    ];
    for (first, names) in chats {
        let what = format!("Chat {:.40?}/{:.40?}", first.room_id, first.user_id);
        let mut client = app.streaming();
        let status = bidi_status(first, |s| client.chat(s)).await;
        assert_clean(&what, &status, Code::InvalidArgument, &[names]);
    }

    let action = |player: &str, kind: &str, parameters: &[(&str, &str)]| GameAction {
        player_id: player.to_owned(),
        action_type: kind.to_owned(),
        parameters: parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
        session_id: String::new(),
    };
    let actions = [
        (action("", "JOIN", &[]), "player_id"),
        (action("p", "FLY", &[]), "FLY"),
        (action("p", "", &[]), "action_type"),
        (action("p", "MOVE", &[]), "position"),
        (action("p", "MOVE", &[("position", "-1,5")]), "position"),
        (action("p", "MOVE", &[("position", "a,b")]), "position"),
        (
            action("p", "MOVE", &[("position", "99999999999999999999,1")]),
            "position",
        ),
        (action(&long, "JOIN", &[]), "player_id"),
    ];
    for (first, names) in actions {
        let what = format!(
            "GameSession {:.40?} {:?}",
            first.action_type, first.parameters
        );
        let mut client = app.streaming();
        let status = bidi_status(first, |s| client.game_session(s)).await;
        assert_clean(&what, &status, Code::InvalidArgument, &[names]);
    }

    let op = |kind: &str, position: i32, length: i32, base: Option<i64>| EditOperation {
        user_id: "u".to_owned(),
        document_id: "doc".to_owned(),
        operation_type: kind.to_owned(),
        position,
        content: "x".to_owned(),
        base_revision: base,
        length,
    };
    let edits = [
        (EditOperation::default(), "document_id"),
        (op("SHRED", 0, 0, None), "SHRED"),
        (op("INSERT", -1, 0, None), "position"),
        (op("DELETE", 0, -5, None), "length"),
        (op("INSERT", 0, 0, Some(-2)), "base_revision"),
        (op("INSERT", 0, 0, Some(i64::MAX)), "base_revision"),
        (op("INSERT", 1000, 0, None), "1000"),
        (
            EditOperation {
                document_id: long.clone(),
                ..op("JOIN", 0, 0, None)
            },
            "document_id",
        ),
    ];
    for (first, names) in edits {
        let what = format!(
            "CollaborativeEdit {:?} at {} base {:?}",
            first.operation_type, first.position, first.base_revision
        );
        let mut client = app.streaming();
        let status = bidi_status(first, |s| client.collaborative_edit(s)).await;
        assert_clean(&what, &status, Code::InvalidArgument, &[names]);
    }
    assert_still_serving(&app).await;
}
