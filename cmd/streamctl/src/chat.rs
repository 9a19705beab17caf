//! `streamctl chat --room R --user U`: each line of standard input is sent to the room; the
//! room's messages print as `[2026-01-02 15:04:05] ann: hello`, with joins and leaves.
//!
//! `exit` or the end of input half-closes the stream; the server then leaves the room, sends
//! what was still queued and ends the stream, and the command exits 0. If the server goes
//! away (`UNAVAILABLE`) the command reconnects and joins again with `last_seen_id` = the last
//! id it printed, so the replay fills the gap exactly. A line typed while disconnected waits
//! and is sent after the reconnect; a line sent in the very instant the connection broke may
//! be lost (the room's echo of it, which never came, is the only acknowledgement).

use serde_json::json;
use streamhub_api::streaming::ChatMessage;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::{
    Failure, Outcome,
    connect::Connection,
    input::stdin_lines,
    output::{Output, human_time, json_time},
    reconnect::{Backoff, is_transient},
};

/// Messages queued towards the server.
const SEND_QUEUE: usize = 16;

#[derive(clap::Args)]
pub(crate) struct ChatArgs {
    /// The room to join.
    #[arg(long)]
    room: String,
    /// Who is talking.
    #[arg(long)]
    user: String,
    /// First replay the room's kept messages after this id.
    #[arg(long, value_name = "ID", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    since: i64,
}

/// How one connection ended.
enum Ended {
    /// The server ended the stream with OK after our half-close.
    Done,
    /// The connection was lost while we were still talking: join again.
    Lost(Status),
}

pub(crate) async fn run(connection: &Connection, output: &Output, args: ChatArgs) -> Outcome {
    let mut chat = Chat {
        output,
        args: &args,
        lines: stdin_lines(),
        last_seen: args.since,
        typing: true,
    };
    let mut backoff = Backoff::new();
    let mut connected = false;
    loop {
        let joined = match chat.join(connection).await {
            Ok(joined) => joined,
            Err(status) if connected && is_transient(&status) => {
                backoff.wait_after(&status, &chat.resume_note()).await;
                continue;
            }
            Err(status) => return Err(status.into()),
        };
        connected = true;
        match chat.talk(joined, &mut backoff).await? {
            Ended::Done => return Ok(()),
            Ended::Lost(status) => backoff.wait_after(&status, &chat.resume_note()).await,
        }
    }
}

struct Chat<'a> {
    output: &'a Output,
    args: &'a ChatArgs,
    lines: mpsc::Receiver<std::io::Result<String>>,
    /// The id of the last room event printed; a rejoin replays what follows it.
    last_seen: i64,
    /// False once the user typed `exit` or the input ended.
    typing: bool,
}

/// The sender of an open stream plus its responses.
struct Joined {
    outbound: mpsc::Sender<ChatMessage>,
    inbound: Streaming<ChatMessage>,
}

impl Chat<'_> {
    async fn join(&self, connection: &Connection) -> Result<Joined, Status> {
        let mut client = connection.streaming().await?;
        let (outbound, requests) = mpsc::channel(SEND_QUEUE);
        let first = ChatMessage {
            room_id: self.args.room.clone(),
            user_id: self.args.user.clone(),
            last_seen_id: self.last_seen,
            ..ChatMessage::default()
        };
        // The queue is empty, so this cannot wait.
        let _ = outbound.send(first).await;
        let inbound = client
            .chat(ReceiverStream::new(requests))
            .await?
            .into_inner();
        Ok(Joined { outbound, inbound })
    }

    /// Sends typed lines and prints the room until the stream ends.
    async fn talk(&mut self, joined: Joined, backoff: &mut Backoff) -> Result<Ended, Failure> {
        let Joined {
            outbound,
            mut inbound,
        } = joined;
        let mut outbound = Some(outbound).filter(|_| self.typing);
        loop {
            tokio::select! {
                line = self.lines.recv(), if outbound.is_some() => match line {
                    Some(Ok(text)) if text.trim() == "exit" => self.stop_typing(&mut outbound),
                    Some(Ok(text)) if text.trim().is_empty() => {}
                    Some(Ok(text)) => {
                        let message = ChatMessage {
                            room_id: self.args.room.clone(),
                            user_id: self.args.user.clone(),
                            message: text,
                            ..ChatMessage::default()
                        };
                        if let Some(sender) = &outbound {
                            // Fails only when the call has ended; the inbound side says why.
                            let _ = sender.send(message).await;
                        }
                    }
                    Some(Err(err)) => {
                        eprintln!("streamctl: reading standard input: {err}; leaving the room");
                        self.stop_typing(&mut outbound);
                    }
                    None => self.stop_typing(&mut outbound),
                },
                message = inbound.message() => match message {
                    Ok(Some(message)) => {
                        backoff.reset();
                        if message.kind == "reset" {
                            // The room lost history or was reopened (ids restart after a
                            // server restart): the reset's id is the new resume point.
                            self.last_seen = message.id;
                        } else if message.id <= self.last_seen {
                            // A replay never repeats what was printed; stay safe anyway.
                            continue;
                        } else {
                            self.last_seen = message.id;
                        }
                        self.print(&message)?;
                    }
                    Ok(None) => return Ok(Ended::Done),
                    Err(status) if is_transient(&status) && self.typing => {
                        return Ok(Ended::Lost(status));
                    }
                    Err(status) => return Err(status.into()),
                },
            }
        }
    }

    /// Half-closes: the server leaves the room for us and then ends the stream.
    fn stop_typing(&mut self, outbound: &mut Option<mpsc::Sender<ChatMessage>>) {
        self.typing = false;
        *outbound = None;
    }

    fn resume_note(&self) -> String {
        format!(", rejoining after id {}", self.last_seen)
    }

    fn print(&self, message: &ChatMessage) -> Outcome {
        self.output.record(
            || {
                let time = human_time(message.timestamp.as_ref());
                match message.kind.as_str() {
                    "join" => format!("[{time}] * {} joined", message.user_id),
                    "leave" => format!("[{time}] * {} left", message.user_id),
                    "reset" => format!("[{time}] ! {}", message.message),
                    _ => format!("[{time}] {}: {}", message.user_id, message.message),
                }
            },
            || {
                json!({
                    "id": message.id,
                    "room": message.room_id,
                    "user": message.user_id,
                    "kind": message.kind,
                    "text": message.message,
                    "timestamp": json_time(message.timestamp.as_ref()),
                })
            },
        )
    }
}
