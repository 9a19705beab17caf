//! Authentication: bearer tokens from `auth.tokens`, open health and reflection, and the
//! user ids that chat, game and edit messages claim checked against the token's user.

use streamhub_api::streaming::{ChatMessage, EditOperation, GameAction, LogRequest, StreamRequest};
use streamhub_testkit::{TestApp, next, spawn_app_with, within};
use tokio_stream::StreamExt as _;
use tonic::{Code, Request, Status, Streaming};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1;

const ANN_TOKEN: &str = "ann-secret-token";
const BOB_TOKEN: &str = "bob-secret-token";

async fn spawn_with_tokens() -> TestApp {
    spawn_app_with(|config| {
        config.auth.tokens = [
            (ANN_TOKEN.to_owned(), "ann".to_owned()),
            (BOB_TOKEN.to_owned(), "bob".to_owned()),
        ]
        .into();
    })
    .await
}

/// `message` with `authorization: <value>`.
fn authorized<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", value.parse().expect("ASCII metadata"));
    request
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    authorized(message, &format!("Bearer {token}"))
}

/// A non-follow log read: a cheap call that needs no state.
fn read_logs() -> LogRequest {
    LogRequest::default()
}

/// The first status a streaming call ends with, whether it refuses at once or after opening.
async fn first_error<T>(opened: Result<tonic::Response<Streaming<T>>, Status>) -> Status {
    let mut stream = match opened {
        Ok(response) => response.into_inner(),
        Err(status) => return status,
    };
    loop {
        match within("the stream to end with a status", stream.message()).await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended OK; a status was expected"),
            Err(status) => return status,
        }
    }
}

#[tokio::test]
async fn without_a_valid_token_every_call_is_unauthenticated() {
    let app = spawn_with_tokens().await;
    let cases = [
        (None, "missing authorization"),
        (Some("ann-secret-token"), "Bearer <token>"),
        (Some("Basic ann-secret-token"), "Bearer <token>"),
        (Some("Bearer not-a-token"), "not valid"),
        (Some("Bearer ann-secret-toke"), "not valid"),
    ];
    for (value, says) in cases {
        let request = match value {
            Some(value) => authorized(read_logs(), value),
            None => Request::new(read_logs()),
        };
        let err = first_error(app.streaming().stream_logs(request).await).await;
        assert_eq!(err.code(), Code::Unauthenticated, "{value:?}: {err}");
        assert!(err.message().contains(says), "{value:?}: {}", err.message());
        assert!(
            !err.message().contains(ANN_TOKEN),
            "a token is never echoed: {}",
            err.message()
        );
    }
    // A unary and a client-streaming call too.
    let err = app
        .streaming()
        .process_batch(tokio_stream::empty())
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    let err = first_error(
        app.streaming()
            .controlled_stream(StreamRequest::default())
            .await,
    )
    .await;
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
}

#[tokio::test]
async fn a_valid_token_is_served() {
    let app = spawn_with_tokens().await;
    for token in [ANN_TOKEN, BOB_TOKEN] {
        let mut entries = app
            .streaming()
            .stream_logs(bearer(read_logs(), token))
            .await
            .expect("authorized")
            .into_inner();
        assert!(
            within("the empty log to end", entries.message())
                .await
                .expect("OK end")
                .is_none()
        );
    }
    let result = app
        .streaming()
        .process_batch(bearer(tokio_stream::empty(), BOB_TOKEN))
        .await
        .expect("authorized")
        .into_inner();
    assert_eq!(result.processed_count, 0);
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    let app = spawn_with_tokens().await;
    let status = app
        .health()
        .check(HealthCheckRequest::default())
        .await
        .expect("Check is open")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);

    let mut reflection =
        v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection is open")
        .into_inner();
    let response = within("the service list", responses.next())
        .await
        .expect("one response")
        .expect("no error");
    assert!(response.message_response.is_some());
}

fn chat_join(user: &str) -> ChatMessage {
    ChatMessage {
        room_id: "r".to_owned(),
        user_id: user.to_owned(),
        ..ChatMessage::default()
    }
}

#[tokio::test]
async fn chat_as_another_user_is_permission_denied() {
    let app = spawn_with_tokens().await;
    let err = first_error(
        app.streaming()
            .chat(bearer(tokio_stream::iter([chat_join("bob")]), ANN_TOKEN))
            .await,
    )
    .await;
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(
        err.message().contains("\"bob\"") && err.message().contains("\"ann\""),
        "{}",
        err.message()
    );

    // As herself, ann joins and hears her own join.
    let (outbound, requests) = tokio::sync::mpsc::channel(4);
    outbound.send(chat_join("ann")).await.expect("queue");
    let mut events = app
        .streaming()
        .chat(bearer(
            tokio_stream::wrappers::ReceiverStream::new(requests),
            ANN_TOKEN,
        ))
        .await
        .expect("Chat opens")
        .into_inner();
    let joined = next("ann's join", &mut events).await;
    assert_eq!(
        (joined.kind.as_str(), joined.user_id.as_str()),
        ("join", "ann")
    );
    // A later message speaking for bob ends her stream.
    outbound
        .send(ChatMessage {
            message: "I am bob".to_owned(),
            ..chat_join("bob")
        })
        .await
        .expect("queue");
    let err = within("the refusal", async {
        loop {
            match events.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the stream ended OK"),
                Err(err) => break err,
            }
        }
    })
    .await;
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
}

#[tokio::test]
async fn a_game_action_for_another_player_is_permission_denied() {
    let app = spawn_with_tokens().await;
    let action = |player: &str| GameAction {
        player_id: player.to_owned(),
        action_type: "JOIN".to_owned(),
        ..GameAction::default()
    };
    let err = first_error(
        app.streaming()
            .game_session(bearer(tokio_stream::iter([action("ann")]), BOB_TOKEN))
            .await,
    )
    .await;
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(err.message().contains("player_id"), "{}", err.message());

    let (outbound, requests) = tokio::sync::mpsc::channel(4);
    outbound.send(action("bob")).await.expect("queue");
    let mut states = app
        .streaming()
        .game_session(bearer(
            tokio_stream::wrappers::ReceiverStream::new(requests),
            BOB_TOKEN,
        ))
        .await
        .expect("GameSession opens")
        .into_inner();
    let state = next("bob's first state", &mut states).await;
    assert!(state.players.contains_key("bob"), "{state:?}");
}

#[tokio::test]
async fn an_edit_as_another_user_is_permission_denied() {
    let app = spawn_with_tokens().await;
    let join = |user: &str| EditOperation {
        user_id: user.to_owned(),
        document_id: "doc".to_owned(),
        operation_type: "JOIN".to_owned(),
        ..EditOperation::default()
    };
    let err = first_error(
        app.streaming()
            .collaborative_edit(bearer(tokio_stream::iter([join("bob")]), ANN_TOKEN))
            .await,
    )
    .await;
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");

    let (outbound, requests) = tokio::sync::mpsc::channel(4);
    outbound.send(join("ann")).await.expect("queue");
    let mut updates = app
        .streaming()
        .collaborative_edit(bearer(
            tokio_stream::wrappers::ReceiverStream::new(requests),
            ANN_TOKEN,
        ))
        .await
        .expect("CollaborativeEdit opens")
        .into_inner();
    let snapshot = next("ann's snapshot", &mut updates).await;
    assert_eq!(snapshot.active_users, ["ann"]);
}

#[tokio::test]
async fn without_tokens_anyone_may_claim_any_user() {
    let app = spawn_app_with(|_| {}).await;
    let (outbound, requests) = tokio::sync::mpsc::channel(4);
    outbound.send(chat_join("whoever")).await.expect("queue");
    let mut events = app
        .streaming()
        .chat(tokio_stream::wrappers::ReceiverStream::new(requests))
        .await
        .expect("Chat opens without a token")
        .into_inner();
    let joined = next("the join", &mut events).await;
    assert_eq!(joined.user_id, "whoever");
}

#[tokio::test]
async fn a_seed_chat_message_from_another_user_is_permission_denied() {
    use streamhub_api::chat::{Message, chat_service_client::ChatServiceClient};
    let app = spawn_with_tokens().await;
    let line = |user: &str| Message {
        user: user.to_owned(),
        text: "hi".to_owned(),
        timestamp: 0,
    };
    let mut client = ChatServiceClient::new(app.channel.clone());
    let err = first_error(
        client
            .chat(bearer(tokio_stream::iter([line("bob")]), ANN_TOKEN))
            .await,
    )
    .await;
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(err.message().contains("user"), "{}", err.message());

    let mut echoes = client
        .chat(bearer(tokio_stream::iter([line("ann")]), ANN_TOKEN))
        .await
        .expect("Chat opens")
        .into_inner();
    let echo = next("ann's echo", &mut echoes).await;
    assert_eq!(echo.user, "ann");
}
