//! The seeds' other services, driven by clients generated from the seeds' protos:
//! seed 000's chat, seed 002's `proto.StreamService`, seed 003's Chatify `service.v1.Service`
//! and seed 004's `helloworld` services, served on the same port as `StreamingService`.

use std::time::{Duration, Instant};

use prost::Message as _;
use streamhub_api::{
    chat::{Message, chat_service_client::ChatServiceClient},
    helloworld::{
        AllStreamReq, ClientStreamReq, ServerStreamReq,
        all_stream_server_client::AllStreamServerClient,
        client_stream_server_client::ClientStreamServerClient,
        server_stream_server_client::ServerStreamServerClient,
    },
    proto::{
        StreamPoint, StreamRequest, StreamResponse, stream_service_client::StreamServiceClient,
    },
    service::v1::{ChatReq, service_client::ServiceClient},
};
use streamhub_testkit::{
    TestApp, assert_ends_ok, assert_ends_with, next, spawn_app, spawn_app_with, within,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const COMPAT_SERVICES: [&str; 6] = [
    "chat.ChatService",
    "proto.StreamService",
    "service.v1.Service",
    "helloworld.ServerStreamServer",
    "helloworld.ClientStreamServer",
    "helloworld.AllStreamServer",
];

/// A request stream the test feeds by hand; dropping the sender is the half-close.
fn requests<T>() -> (mpsc::Sender<T>, ReceiverStream<T>) {
    let (sender, receiver) = mpsc::channel(64);
    (sender, ReceiverStream::new(receiver))
}

/// Starts `Record` on `client` with a request stream that stays open, and returns once the
/// call has reached the server: with room for one queued request, the second send completes
/// only after the client took the first for the request body, which follows the headers.
async fn open_record(
    mut client: StreamServiceClient<Channel>,
) -> (
    mpsc::Sender<StreamRequest>,
    tokio::task::JoinHandle<Result<tonic::Response<StreamResponse>, Status>>,
) {
    let (sender, receiver) = mpsc::channel(1);
    sender
        .send(point_request("open", 1))
        .await
        .expect("first request queued");
    let call = tokio::spawn(async move { client.record(ReceiverStream::new(receiver)).await });
    within(
        "Record's first request to be taken",
        sender.send(point_request("open", 2)),
    )
    .await
    .expect("second request queued");
    (sender, call)
}

fn chat_message(user: &str, text: &str, timestamp: i64) -> Message {
    Message {
        user: user.to_owned(),
        text: text.to_owned(),
        timestamp,
    }
}

fn point_request(name: &str, value: i32) -> StreamRequest {
    StreamRequest {
        pt: Some(StreamPoint {
            name: name.to_owned(),
            value,
        }),
    }
}

// ---- seed 000: chat.ChatService ----

#[tokio::test]
async fn chat_seed_scenario_sender_gets_all_ten_then_ok_and_the_other_client_gets_them_too() {
    let app = spawn_app().await;
    // The second client is in the conversation before the seed's client starts.
    let (listener_requests, listener_stream) = requests();
    let mut listener = ChatServiceClient::new(app.connect().await)
        .chat(listener_stream)
        .await
        .expect("the listening client's Chat starts")
        .into_inner();

    // The seed's client: ten messages, then CloseSend, and only then it reads.
    let sent: Vec<Message> = (0..10)
        .map(|i| {
            chat_message(
                "User1",
                &format!("Hello from User1! Message {i}"),
                1_743_861_000 + i,
            )
        })
        .collect();
    let mut sender = ChatServiceClient::new(app.channel.clone())
        .chat(tokio_stream::iter(sent.clone()))
        .await
        .expect("the seed client's Chat starts")
        .into_inner();
    for expected in &sent {
        let got = next("the sender's copy of its message", &mut sender).await;
        assert_eq!(&got, expected, "timestamps and text come back as sent");
    }
    assert_ends_ok("the sender's clean end after its half-close", &mut sender).await;

    for expected in &sent {
        let got = next("the other client's copy", &mut listener).await;
        assert_eq!(&got, expected);
    }
    drop(listener_requests);
    assert_ends_ok(
        "the listener's clean end after its half-close",
        &mut listener,
    )
    .await;
}

#[tokio::test]
async fn chat_two_talking_clients_both_see_every_message_in_the_same_order() {
    let app = spawn_app().await;
    let (alice_requests, alice_stream) = requests();
    let mut alice = ChatServiceClient::new(app.channel.clone())
        .chat(alice_stream)
        .await
        .expect("alice's Chat starts")
        .into_inner();
    let (bob_requests, bob_stream) = requests();
    let mut bob = ChatServiceClient::new(app.connect().await)
        .chat(bob_stream)
        .await
        .expect("bob's Chat starts")
        .into_inner();

    for i in 0..5 {
        alice_requests
            .send(chat_message("alice", &format!("a{i}"), 0))
            .await
            .expect("alice sends");
        bob_requests
            .send(chat_message("bob", &format!("b{i}"), 0))
            .await
            .expect("bob sends");
    }
    let mut seen_by_alice = Vec::new();
    let mut seen_by_bob = Vec::new();
    for _ in 0..10 {
        let to_alice = next("a message for alice", &mut alice).await;
        assert!(
            to_alice.timestamp > 0,
            "an unstamped message gets the server's time"
        );
        seen_by_alice.push(to_alice.text);
        seen_by_bob.push(next("a message for bob", &mut bob).await.text);
    }
    assert_eq!(seen_by_alice, seen_by_bob, "one order for everyone");
    let mut all = seen_by_alice.clone();
    all.sort();
    let mut expected: Vec<String> = (0..5)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    expected.sort();
    assert_eq!(all, expected);

    drop(alice_requests);
    assert_ends_ok("alice's clean end", &mut alice).await;
    drop(bob_requests);
    assert_ends_ok("bob's clean end", &mut bob).await;
}

#[tokio::test]
async fn chat_a_client_cancelling_mid_stream_does_not_disturb_the_others() {
    let app = spawn_app().await;
    let (leaver_requests, leaver_stream) = requests();
    let mut leaver = ChatServiceClient::new(app.connect().await)
        .chat(leaver_stream)
        .await
        .expect("the leaver's Chat starts")
        .into_inner();
    let (stayer_requests, stayer_stream) = requests();
    let mut stayer = ChatServiceClient::new(app.channel.clone())
        .chat(stayer_stream)
        .await
        .expect("the stayer's Chat starts")
        .into_inner();

    stayer_requests
        .send(chat_message("stayer", "before", 0))
        .await
        .expect("send");
    assert_eq!(next("the leaver's copy", &mut leaver).await.text, "before");
    assert_eq!(next("the stayer's echo", &mut stayer).await.text, "before");
    // Cancelled without a half-close: the call is reset, not ended.
    drop(leaver);
    drop(leaver_requests);

    for text in ["after 1", "after 2"] {
        stayer_requests
            .send(chat_message("stayer", text, 0))
            .await
            .expect("send");
        assert_eq!(next("the stayer's echo", &mut stayer).await.text, text);
    }
    drop(stayer_requests);
    assert_ends_ok("the stayer's clean end", &mut stayer).await;
}

#[tokio::test]
async fn chat_a_client_that_stops_reading_is_cut_off_and_the_others_carry_on() {
    let app = spawn_app_with(|config| config.compat.chat_queue = 2).await;
    // Its own connection, so its unread data cannot hold up the talker's flow control.
    let (_slow_requests, slow_stream) = requests::<Message>();
    let mut slow = ChatServiceClient::new(app.connect().await)
        .chat(slow_stream)
        .await
        .expect("the slow client's Chat starts")
        .into_inner();
    let (talker_requests, talker_stream) = requests();
    let mut talker = ChatServiceClient::new(app.channel.clone())
        .chat(talker_stream)
        .await
        .expect("the talker's Chat starts")
        .into_inner();

    // Far more than HTTP/2 windows and send buffers hold, so the slow client's queue fills.
    let text = "x".repeat(16 * 1024);
    for i in 0..200 {
        talker_requests
            .send(chat_message("talker", &text, i + 1))
            .await
            .expect("send");
        let echo = next("the talker's echo", &mut talker).await;
        assert_eq!(
            echo.timestamp,
            i + 1,
            "the talker never waits for the slow client"
        );
    }
    drop(talker_requests);
    assert_ends_ok("the talker's clean end", &mut talker).await;

    let status = assert_ends_with(
        "the slow client's cut-off",
        &mut slow,
        Code::ResourceExhausted,
    )
    .await;
    assert!(
        status.message().contains("slow consumer"),
        "the status says why: {}",
        status.message()
    );
}

// ---- seed 002: proto.StreamService ----

#[tokio::test]
async fn list_sends_the_point_seven_times_counting_up_then_ends_ok() {
    let app = spawn_app().await;
    let mut points = StreamServiceClient::new(app.channel.clone())
        .list(point_request("gRPC Stream Client: List", 1234))
        .await
        .expect("List starts")
        .into_inner();
    for value in 1234..=1240 {
        let got = next("a List point", &mut points)
            .await
            .pt
            .expect("pt is set");
        assert_eq!(got.name, "gRPC Stream Client: List");
        assert_eq!(got.value, value);
    }
    assert_ends_ok("List's end", &mut points).await;
}

#[tokio::test]
async fn list_without_a_point_is_invalid_argument_naming_pt() {
    let app = spawn_app().await;
    let status = StreamServiceClient::new(app.channel.clone())
        .list(StreamRequest { pt: None })
        .await
        .expect_err("List needs a point");
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("pt"), "{}", status.message());
}

#[tokio::test]
async fn record_answers_once_after_the_half_close() {
    let app = spawn_app().await;
    let mut client = StreamServiceClient::new(app.channel.clone());
    let sent = vec![point_request("gRPC Stream Client: Record", 9999); 7];
    let reply = within("Record's reply", client.record(tokio_stream::iter(sent)))
        .await
        .expect("Record answers")
        .into_inner()
        .pt
        .expect("pt is set");
    assert_eq!(reply.name, "gRPC Stream Server: Record");
    assert_eq!(reply.value, 1);

    let empty = within(
        "Record's reply to nothing",
        client.record(tokio_stream::empty()),
    )
    .await
    .expect("an empty Record is answered too");
    assert_eq!(empty.into_inner().pt.expect("pt").value, 1);
}

#[tokio::test]
async fn route_answers_each_request_as_it_arrives_numbered_from_zero() {
    let app = spawn_app().await;
    let (sender, request_stream) = requests();
    let mut replies = StreamServiceClient::new(app.channel.clone())
        .route(request_stream)
        .await
        .expect("Route starts")
        .into_inner();
    for n in 0..7 {
        sender
            .send(point_request("gRPC Stream Client: Route", 1111))
            .await
            .expect("send");
        // Answered before the next request is sent: the server does not wait for the end.
        let got = next("the reply to this request", &mut replies)
            .await
            .pt
            .expect("pt");
        assert_eq!(got.name, "gRPC Stream Server: Route");
        assert_eq!(got.value, n);
    }
    drop(sender);
    assert_ends_ok("Route's end after the half-close", &mut replies).await;
}

// ---- seed 003: service.v1.Service (Chatify) ----

#[tokio::test]
async fn chatify_answers_every_request_naming_it() {
    let app = spawn_app().await;
    let (sender, request_stream) = requests();
    let mut replies = ServiceClient::new(app.channel.clone())
        .chat(request_stream)
        .await
        .expect("Chat starts")
        .into_inner();
    for i in 0..5 {
        let name = format!("Message {i}");
        sender
            .send(ChatReq { name: name.clone() })
            .await
            .expect("send");
        let reply = next("the reply to this request", &mut replies).await;
        assert_eq!(reply.message, format!("received: {name}"));
    }
    drop(sender);
    assert_ends_ok("Chat's end after the half-close", &mut replies).await;
}

// ---- seed 004: helloworld ----

#[tokio::test]
async fn server_stream_sends_the_data_five_times_then_ends_ok() {
    let app = spawn_app().await;
    let mut replies = ServerStreamServerClient::new(app.channel.clone())
        .server_stream(ServerStreamReq {
            data: "1".to_owned(),
        })
        .await
        .expect("ServerStream starts")
        .into_inner();
    for _ in 0..5 {
        assert_eq!(next("a copy", &mut replies).await.data, "1");
    }
    assert_ends_ok("ServerStream's end", &mut replies).await;
}

#[tokio::test]
async fn client_stream_joins_every_data_with_commas() {
    let app = spawn_app().await;
    let sent = (0..5).map(|i| ClientStreamReq {
        data: i.to_string(),
    });
    let reply = within(
        "ClientStream's reply",
        ClientStreamServerClient::new(app.channel.clone())
            .client_stream(tokio_stream::iter(sent.collect::<Vec<_>>())),
    )
    .await
    .expect("ClientStream answers");
    assert_eq!(reply.into_inner().data, "0,1,2,3,4");
}

#[tokio::test]
async fn client_stream_refuses_a_join_larger_than_one_reply_can_carry() {
    let app = spawn_app_with(|config| config.server.grpc.max_encoding_message_size = 1024).await;
    let sent: Vec<_> = (0..20)
        .map(|_| ClientStreamReq {
            data: "y".repeat(100),
        })
        .collect();
    let status = within(
        "ClientStream's refusal",
        ClientStreamServerClient::new(app.channel.clone()).client_stream(tokio_stream::iter(sent)),
    )
    .await
    .expect_err("2 KB of joined data exceeds a 1 KiB reply");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(
        status.message().contains("joined data"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn all_stream_sends_its_own_five_while_reading_and_ends_after_the_half_close() {
    let app = spawn_app().await;
    let (sender, request_stream) = requests();
    let mut replies = AllStreamServerClient::new(app.channel.clone())
        .all_stream(request_stream)
        .await
        .expect("AllStream starts")
        .into_inner();
    // Nothing sent yet: the server's messages do not wait for the client's.
    for expected in ["0", "1", "2", "3", "4"] {
        assert_eq!(
            next("the server's own message", &mut replies).await.data,
            expected
        );
    }
    for i in 0..5 {
        sender
            .send(AllStreamReq {
                data: i.to_string(),
            })
            .await
            .expect("send");
    }
    drop(sender);
    assert_ends_ok("AllStream's end after the half-close", &mut replies).await;
}

// ---- every compat service ----

#[tokio::test]
async fn cancelling_mid_stream_ends_only_that_call() {
    // Paced, so each stream is still producing when the client walks away.
    let app = spawn_app_with(|config| config.compat.pace = Duration::from_millis(200)).await;
    let mut stream_service = StreamServiceClient::new(app.channel.clone());
    let mut server_stream = ServerStreamServerClient::new(app.channel.clone());
    let mut all_stream = AllStreamServerClient::new(app.channel.clone());

    let mut points = stream_service
        .list(point_request("cancelled", 1))
        .await
        .expect("List starts")
        .into_inner();
    next("List's first point", &mut points).await;
    drop(points);

    let mut copies = server_stream
        .server_stream(ServerStreamReq {
            data: "cancelled".to_owned(),
        })
        .await
        .expect("ServerStream starts")
        .into_inner();
    next("ServerStream's first copy", &mut copies).await;
    drop(copies);

    let (all_requests, all_requests_stream) = requests();
    let mut own = all_stream
        .all_stream(all_requests_stream)
        .await
        .expect("AllStream starts")
        .into_inner();
    next("AllStream's first message", &mut own).await;
    drop(own);
    drop(all_requests);

    // A client stream abandoned before its half-close.
    let (record_requests, record) = open_record(stream_service.clone()).await;
    record.abort();
    drop(record_requests);
    let _ = record.await;

    let (route_requests, route_stream) = requests();
    let mut routed = stream_service
        .route(route_stream)
        .await
        .expect("Route starts")
        .into_inner();
    route_requests
        .send(point_request("cancelled", 1))
        .await
        .expect("send");
    next("Route's first reply", &mut routed).await;
    drop(routed);

    let (chatify_requests, chatify_stream) = requests();
    let mut chatify = ServiceClient::new(app.channel.clone())
        .chat(chatify_stream)
        .await
        .expect("Chatify starts")
        .into_inner();
    chatify_requests
        .send(ChatReq {
            name: "cancelled".to_owned(),
        })
        .await
        .expect("send");
    next("Chatify's first reply", &mut chatify).await;
    drop(chatify);

    // The connection and the services are fine: fresh calls are answered in full.
    let mut points = stream_service
        .list(point_request("after", 10))
        .await
        .expect("List starts again")
        .into_inner();
    let mut count = 0;
    while let Some(point) = within("the next point", points.message())
        .await
        .expect("no error")
    {
        assert_eq!(point.pt.expect("pt").name, "after");
        count += 1;
    }
    assert_eq!(count, 7);
    let reply = within(
        "Record after the cancellations",
        stream_service.record(tokio_stream::iter([point_request("after", 1)])),
    )
    .await
    .expect("Record answers");
    assert_eq!(reply.into_inner().pt.expect("pt").value, 1);
}

#[tokio::test]
async fn pace_spaces_the_messages_a_server_stream_generates() {
    let pace = Duration::from_millis(40);
    let app = spawn_app_with(|config| config.compat.pace = pace).await;
    let started = Instant::now();
    let mut points = StreamServiceClient::new(app.channel.clone())
        .list(point_request("paced", 0))
        .await
        .expect("List starts")
        .into_inner();
    for _ in 0..7 {
        next("a paced point", &mut points).await;
    }
    assert_ends_ok("List's end", &mut points).await;
    // Six pauses between seven points; only a lower bound, which sleeping guarantees.
    let elapsed = started.elapsed();
    assert!(elapsed >= pace * 6, "7 points took only {elapsed:?}");
}

#[tokio::test]
async fn open_compat_streams_end_with_unavailable_on_shutdown() {
    let mut app = spawn_app().await;
    let (_chat_requests, chat_stream) = requests::<Message>();
    let mut chat = ChatServiceClient::new(app.channel.clone())
        .chat(chat_stream)
        .await
        .expect("Chat starts")
        .into_inner();
    let (_route_requests, route_stream) = requests::<StreamRequest>();
    let mut route = StreamServiceClient::new(app.channel.clone())
        .route(route_stream)
        .await
        .expect("Route starts")
        .into_inner();
    let (_all_requests, all_stream) = requests::<AllStreamReq>();
    let mut all = AllStreamServerClient::new(app.channel.clone())
        .all_stream(all_stream)
        .await
        .expect("AllStream starts")
        .into_inner();
    for _ in 0..5 {
        next("AllStream's own messages", &mut all).await;
    }
    // A client stream that never half-closes.
    let (record_requests, record) =
        open_record(StreamServiceClient::new(app.channel.clone())).await;

    // Every call above is open on the server before shutdown begins: a Chatify round trip
    // on the same connection comes after them.
    let (chatify_requests, chatify_stream) = requests();
    let mut chatify = ServiceClient::new(app.channel.clone())
        .chat(chatify_stream)
        .await
        .expect("Chatify starts")
        .into_inner();
    chatify_requests
        .send(ChatReq {
            name: "ping".to_owned(),
        })
        .await
        .expect("send");
    next("Chatify's reply", &mut chatify).await;

    let stopped = app.begin_shutdown();
    assert_ends_with("Chat at shutdown", &mut chat, Code::Unavailable).await;
    assert_ends_with("Route at shutdown", &mut route, Code::Unavailable).await;
    assert_ends_with("AllStream at shutdown", &mut all, Code::Unavailable).await;
    assert_ends_with("Chatify at shutdown", &mut chatify, Code::Unavailable).await;
    let record = within("Record at shutdown", record)
        .await
        .expect("the Record task")
        .expect_err("Record ends with a status");
    assert_eq!(record.code(), Code::Unavailable, "{record}");
    within("the server to stop", stopped)
        .await
        .expect("server task")
        .expect("the server stops cleanly");
    drop(record_requests);
}

/// Every compat method, called once; each result is reduced to its status code.
async fn compat_call_codes(app: &TestApp) -> Vec<(&'static str, Code)> {
    fn code<T>(result: Result<T, Status>) -> Code {
        result.map_or_else(|status| status.code(), |_| Code::Ok)
    }
    let channel: Channel = app.channel.clone();
    vec![
        (
            "chat.ChatService/Chat",
            code(
                ChatServiceClient::new(channel.clone())
                    .chat(tokio_stream::empty())
                    .await,
            ),
        ),
        (
            "proto.StreamService/List",
            code(
                StreamServiceClient::new(channel.clone())
                    .list(point_request("x", 1))
                    .await,
            ),
        ),
        (
            "proto.StreamService/Record",
            code(
                StreamServiceClient::new(channel.clone())
                    .record(tokio_stream::empty())
                    .await,
            ),
        ),
        (
            "proto.StreamService/Route",
            code(
                StreamServiceClient::new(channel.clone())
                    .route(tokio_stream::empty())
                    .await,
            ),
        ),
        (
            "service.v1.Service/Chat",
            code(
                ServiceClient::new(channel.clone())
                    .chat(tokio_stream::empty())
                    .await,
            ),
        ),
        (
            "helloworld.ServerStreamServer/ServerStream",
            code(
                ServerStreamServerClient::new(channel.clone())
                    .server_stream(ServerStreamReq::default())
                    .await,
            ),
        ),
        (
            "helloworld.ClientStreamServer/ClientStream",
            code(
                ClientStreamServerClient::new(channel.clone())
                    .client_stream(tokio_stream::empty())
                    .await,
            ),
        ),
        (
            "helloworld.AllStreamServer/AllStream",
            code(
                AllStreamServerClient::new(channel)
                    .all_stream(tokio_stream::empty())
                    .await,
            ),
        ),
    ]
}

#[tokio::test]
async fn every_compat_method_is_served_by_default() {
    let app = spawn_app().await;
    for (method, code) in compat_call_codes(&app).await {
        assert_eq!(code, Code::Ok, "{method}");
    }
}

#[tokio::test]
async fn disabled_compat_services_are_unimplemented_and_absent_from_health_and_reflection() {
    let app = spawn_app_with(|config| config.compat.enabled = false).await;
    for (method, code) in compat_call_codes(&app).await {
        assert_eq!(code, Code::Unimplemented, "{method}");
    }

    let mut health = app.health();
    for service in COMPAT_SERVICES {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect_err("a disabled service is unknown to health");
        assert_eq!(status.code(), Code::NotFound, "{service}: {status}");
    }
    health
        .check(HealthCheckRequest {
            service: "streaming.StreamingService".to_owned(),
        })
        .await
        .expect("StreamingService is still served");

    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let ask = |message_request| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message_request),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "chat.ChatService".to_owned(),
            )),
        ]))
        .await
        .expect("reflection answers")
        .into_inner();
    let listed = next("the service list", &mut answers)
        .await
        .message_response;
    let Some(MessageResponse::ListServicesResponse(list)) = listed else {
        panic!("expected a service list, got {listed:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "streaming.StreamingService",
        ]
    );
    // tonic's reflection answers an unknown symbol by ending the stream with NOT_FOUND.
    let described = within("the describe answer", answers.message()).await;
    let status = described.expect_err("a disabled service must not be described");
    assert_eq!(status.code(), Code::NotFound, "{status}");
    assert!(status.message().contains("chat.ChatService"), "{status}");
}

#[tokio::test]
async fn reflection_describes_the_seed_messages_with_their_numbers() {
    let app = spawn_app().await;
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let symbols = [
        ("chat.Message", "chat"),
        ("proto.StreamRequest", "proto"),
        ("service.v1.ChatReq", "service.v1"),
        ("helloworld.ClientStreamReq", "helloworld"),
    ];
    let asks = symbols.map(|(symbol, _)| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.to_owned())),
    });
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(asks))
        .await
        .expect("reflection answers")
        .into_inner();
    let mut fields = Vec::new();
    for (symbol, package) in symbols {
        let answer = next(symbol, &mut answers).await.message_response;
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer else {
            panic!("{symbol}: expected its file, got {answer:?}");
        };
        let file = files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("descriptor")
            })
            .find(|file| file.package() == package)
            .unwrap_or_else(|| panic!("{symbol}: no file of package {package}"));
        let message_name = symbol.rsplit('.').next().expect("a name");
        let message = file
            .message_type
            .iter()
            .find(|m| m.name() == message_name)
            .unwrap_or_else(|| panic!("{symbol} is described"));
        fields.push((
            symbol,
            message
                .field
                .iter()
                .map(|f| (f.name().to_owned(), f.number(), f.r#type()))
                .collect::<Vec<_>>(),
        ));
    }
    use prost_types::field_descriptor_proto::Type;
    let owned = |pairs: &[(&str, i32, Type)]| -> Vec<(String, i32, Type)> {
        pairs
            .iter()
            .map(|(n, i, t)| ((*n).to_owned(), *i, *t))
            .collect()
    };
    assert_eq!(
        fields,
        [
            (
                "chat.Message",
                owned(&[
                    ("user", 1, Type::String),
                    ("text", 2, Type::String),
                    ("timestamp", 3, Type::Int64)
                ])
            ),
            ("proto.StreamRequest", owned(&[("pt", 1, Type::Message)])),
            ("service.v1.ChatReq", owned(&[("name", 1, Type::String)])),
            (
                "helloworld.ClientStreamReq",
                owned(&[("data", 1, Type::String)])
            ),
        ]
    );
}
