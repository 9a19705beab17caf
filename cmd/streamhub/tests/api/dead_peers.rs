//! Dead peers: a client whose network goes silent without closing its connection is found
//! by the server's HTTP/2 keepalive pings, and its streams end: the rooms, game sessions and
//! documents it was in see it leave.
//!
//! The silent network is a TCP proxy inside the test that, when frozen, stops forwarding in
//! both directions but keeps both sockets open (no FIN, no RST), as a pulled cable would.

use std::{future::Future, net::SocketAddr, time::Duration};

use streamhub_api::streaming::{
    ChatMessage, EditOperation, GameAction, streaming_service_client::StreamingServiceClient,
};
use streamhub_testkit::{spawn_app_with, within};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::mpsc,
    task::JoinSet,
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Streaming, transport::Endpoint};

/// A TCP proxy to the server that can be frozen.
struct FreezableProxy {
    addr: SocketAddr,
    frozen: CancellationToken,
    /// The accept loop and the pumps; aborted (sockets closed) when the proxy is dropped.
    _tasks: JoinSet<()>,
}

impl FreezableProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let frozen = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let pumps_frozen = frozen.clone();
        tasks.spawn(async move {
            let mut pumps = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                pumps.spawn(pump(client_read, server_write, pumps_frozen.clone()));
                pumps.spawn(pump(server_read, client_write, pumps_frozen.clone()));
            }
        });
        Self {
            addr,
            frozen,
            _tasks: tasks,
        }
    }

    /// Stops forwarding both ways, keeping every socket open.
    fn freeze(&self) {
        self.frozen.cancel();
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, frozen: CancellationToken) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        tokio::select! {
            () = frozen.cancelled() => {
                // Hold both halves open and silent until the test drops the proxy.
                std::future::pending::<()>().await;
            }
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}

/// Opens a bidi stream on `client` whose first message is `first`; the sender keeps it open.
async fn open<Req, Resp, F, Fut>(first: Req, call: F) -> (mpsc::Sender<Req>, Streaming<Resp>)
where
    Req: Send + 'static,
    F: FnOnce(ReceiverStream<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Streaming<Resp>>, tonic::Status>>,
{
    let (outbound, requests) = mpsc::channel(4);
    outbound.send(first).await.expect("queue the first message");
    let inbound = within("the stream to open", call(ReceiverStream::new(requests)))
        .await
        .expect("the stream opens")
        .into_inner();
    (outbound, inbound)
}

/// Reads `stream` until `found` accepts a message.
async fn until<T: std::fmt::Debug>(
    what: &str,
    stream: &mut Streaming<T>,
    found: impl Fn(&T) -> bool,
) {
    within(what, async {
        loop {
            let message = stream
                .message()
                .await
                .expect("no error")
                .expect("the stream stays open");
            if found(&message) {
                return;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_by_keepalive_and_everyone_sees_it_leave() {
    let app = spawn_app_with(|config| {
        config.server.grpc.keepalive_interval = Duration::from_millis(200);
        config.server.grpc.keepalive_timeout = Duration::from_millis(300);
    })
    .await;
    let proxy = FreezableProxy::start(app.addr).await;
    let ghost_channel = Endpoint::from_shared(format!("http://{}", proxy.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect through the proxy");
    let mut ghost = StreamingServiceClient::new(ghost_channel);
    let mut direct = app.streaming();

    // The observers join directly; the ghost joins through the proxy.
    let chat = |user: &str| ChatMessage {
        room_id: "r".to_owned(),
        user_id: user.to_owned(),
        ..ChatMessage::default()
    };
    let game = |player: &str| GameAction {
        player_id: player.to_owned(),
        action_type: "JOIN".to_owned(),
        ..GameAction::default()
    };
    let edit = |user: &str| EditOperation {
        user_id: user.to_owned(),
        document_id: "doc".to_owned(),
        operation_type: "JOIN".to_owned(),
        ..EditOperation::default()
    };
    let (_chat_tx, mut chat_watch) = open(chat("watcher"), |s| direct.chat(s)).await;
    let (_game_tx, mut game_watch) = open(game("watcher"), |s| direct.game_session(s)).await;
    let (_edit_tx, mut edit_watch) = open(edit("watcher"), |s| direct.collaborative_edit(s)).await;
    let (_ghost_chat_tx, mut ghost_chat) = open(chat("ghost"), |s| ghost.chat(s)).await;
    let (_ghost_game_tx, mut ghost_game) = open(game("ghost"), |s| ghost.game_session(s)).await;
    let (_ghost_edit_tx, mut ghost_edit) =
        open(edit("ghost"), |s| ghost.collaborative_edit(s)).await;
    until("the ghost's own chat join", &mut ghost_chat, |m| {
        m.user_id == "ghost"
    })
    .await;
    until("the ghost's game state", &mut ghost_game, |s| {
        s.players.contains_key("ghost")
    })
    .await;
    until("the ghost's snapshot", &mut ghost_edit, |u| {
        u.active_users.contains(&"ghost".to_owned())
    })
    .await;
    until("the ghost's join in the room", &mut chat_watch, |m| {
        m.kind == "join" && m.user_id == "ghost"
    })
    .await;
    until("the ghost in the session", &mut game_watch, |s| {
        s.players.contains_key("ghost")
    })
    .await;
    until("the ghost in the document", &mut edit_watch, |u| {
        u.active_users == ["ghost", "watcher"]
    })
    .await;

    proxy.freeze();

    until("the ghost's leave in the room", &mut chat_watch, |m| {
        m.kind == "leave" && m.user_id == "ghost"
    })
    .await;
    until("the ghost to leave the session", &mut game_watch, |s| {
        !s.players.contains_key("ghost")
    })
    .await;
    until("the ghost to leave the document", &mut edit_watch, |u| {
        u.active_users == ["watcher"]
    })
    .await;
}
