//! `streamctl edit --doc D --user U`: typed edits in, the document's text and revision out.
//!
//! Commands: `insert POS TEXT`, `delete POS LEN`, `format NAME`, `join` (a fresh snapshot),
//! `exit`. Positions and lengths count characters. Each edit carries the last revision this
//! client printed as `base_revision`, so an edit typed while someone else's was in flight is
//! transformed by the server rather than applied at a shifted position. A typo is answered
//! on stderr and not sent; an edit the server refuses ends the stream (exit 1).

use serde_json::{Value, json};
use streamhub_api::streaming::{DocumentUpdate, EditOperation};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    Outcome,
    connect::Connection,
    input::stdin_lines,
    output::{Output, json_time},
};

/// Operations queued towards the server.
const SEND_QUEUE: usize = 16;

const USAGE: &str = "commands: insert POS TEXT | delete POS LEN | format NAME | join | exit";

#[derive(clap::Args)]
pub(crate) struct EditArgs {
    /// The document to edit.
    #[arg(long)]
    doc: String,
    /// Who edits.
    #[arg(long)]
    user: String,
}

/// One typed line.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Join,
    Insert { position: i32, text: String },
    Delete { position: i32, length: i32 },
    Format(String),
    Exit,
    Nothing,
}

pub(crate) async fn run(connection: &Connection, output: &Output, args: EditArgs) -> Outcome {
    let mut client = connection.streaming().await?;
    let (operations, requests) = mpsc::channel(SEND_QUEUE);
    let operation = |operation_type: &str| EditOperation {
        user_id: args.user.clone(),
        document_id: args.doc.clone(),
        operation_type: operation_type.to_owned(),
        ..EditOperation::default()
    };
    // JOIN first: the answer is a snapshot, which gives the revision to edit against.
    let _ = operations.send(operation("JOIN")).await;
    let mut updates = client
        .collaborative_edit(ReceiverStream::new(requests))
        .await?
        .into_inner();
    let mut operations = Some(operations);
    let mut lines = stdin_lines();
    let mut revision = 0_i64;
    loop {
        tokio::select! {
            line = lines.recv(), if operations.is_some() => {
                let command = match line {
                    Some(Ok(line)) => parse_command(&line),
                    Some(Err(err)) => {
                        eprintln!("streamctl: reading standard input: {err}; leaving the document");
                        Ok(Command::Exit)
                    }
                    None => Ok(Command::Exit),
                };
                let message = match command {
                    Ok(Command::Nothing) => None,
                    Ok(Command::Exit) => {
                        operations = None;
                        None
                    }
                    Ok(Command::Join) => Some(operation("JOIN")),
                    Ok(Command::Insert { position, text }) => Some(EditOperation {
                        position,
                        content: text,
                        base_revision: Some(revision),
                        ..operation("INSERT")
                    }),
                    Ok(Command::Delete { position, length }) => Some(EditOperation {
                        position,
                        length,
                        base_revision: Some(revision),
                        ..operation("DELETE")
                    }),
                    Ok(Command::Format(name)) => Some(EditOperation {
                        content: name,
                        base_revision: Some(revision),
                        ..operation("FORMAT")
                    }),
                    Err(problem) => {
                        eprintln!("streamctl: {problem}; {USAGE}");
                        None
                    }
                };
                if let (Some(message), Some(sender)) = (message, &operations) {
                    // Fails only when the call has ended; the updates side says why.
                    let _ = sender.send(message).await;
                }
            }
            update = updates.message() => match update? {
                Some(update) => {
                    revision = update.revision;
                    output.record(|| human(&update), || to_json(&update))?;
                }
                None => return Ok(()),
            },
        }
    }
}

fn parse_command(line: &str) -> Result<Command, String> {
    let trimmed = line.trim_start();
    let (verb, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    let number = |what: &str, text: &str| {
        text.trim()
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{what} must be a whole number >= 0, got {:?}", text.trim()))
    };
    match verb.to_ascii_lowercase().as_str() {
        "" => Ok(Command::Nothing),
        "exit" | "quit" if rest.trim().is_empty() => Ok(Command::Exit),
        "join" if rest.trim().is_empty() => Ok(Command::Join),
        "insert" => {
            // The text is everything after the position and one space, spaces included.
            let (position, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let position = number("insert position", position)?;
            if text.is_empty() {
                return Err("insert needs text after the position".to_owned());
            }
            Ok(Command::Insert {
                position,
                text: text.to_owned(),
            })
        }
        "delete" => {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let [position, length] = parts.as_slice() else {
                return Err("delete needs a position and a length".to_owned());
            };
            let length = number("delete length", length)?;
            if length == 0 {
                return Err("delete length must be at least 1".to_owned());
            }
            Ok(Command::Delete {
                position: number("delete position", position)?,
                length,
            })
        }
        "format" if !rest.trim().is_empty() => Ok(Command::Format(rest.trim().to_owned())),
        _ => Err(format!("not a command: {:?}", line.trim())),
    }
}

/// `rev 3 ann INSERT 0 "hé" [ann, bob]: "héllo"`; the text is quoted so that spaces and
/// line breaks in it stay visible on one line.
fn human(update: &DocumentUpdate) -> String {
    let change = match &update.operation {
        None => "snapshot".to_owned(),
        Some(op) => match op.operation_type.as_str() {
            "INSERT" => format!("{} INSERT {} {:?}", op.user_id, op.position, op.content),
            "DELETE" => format!("{} DELETE {} {}", op.user_id, op.position, op.length),
            other => format!("{} {other} {:?}", op.user_id, op.content),
        },
    };
    format!(
        "rev {} {change} [{}]: {:?}",
        update.revision,
        update.active_users.join(", "),
        update.content
    )
}

fn to_json(update: &DocumentUpdate) -> Value {
    json!({
        "document": update.document_id,
        "revision": update.revision,
        "content": update.content,
        "active_users": update.active_users,
        "user": update.user_id,
        "timestamp": json_time(update.timestamp.as_ref()),
        "operation": update.operation.as_ref().map(|op| json!({
            "type": op.operation_type,
            "user": op.user_id,
            "position": op.position,
            "length": op.length,
            "content": op.content,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_commands_become_operations() {
        assert_eq!(
            parse_command("insert 0 hello world"),
            Ok(Command::Insert {
                position: 0,
                text: "hello world".into()
            })
        );
        assert_eq!(
            parse_command("insert 5  two spaces"),
            Ok(Command::Insert {
                position: 5,
                text: " two spaces".into()
            })
        );
        assert_eq!(
            parse_command("delete 2 3"),
            Ok(Command::Delete {
                position: 2,
                length: 3
            })
        );
        assert_eq!(
            parse_command("format bold"),
            Ok(Command::Format("bold".into()))
        );
        assert_eq!(parse_command("join"), Ok(Command::Join));
        assert_eq!(parse_command("exit"), Ok(Command::Exit));
        assert_eq!(parse_command(""), Ok(Command::Nothing));
    }

    #[test]
    fn a_typo_is_explained_not_sent() {
        for (line, expected) in [
            ("insert x hi", "insert position must be a whole number"),
            ("insert 3", "insert needs text"),
            ("delete 1", "delete needs a position and a length"),
            ("delete 1 0", "at least 1"),
            ("delete -1 2", "delete position must be a whole number"),
            ("paste 1", "not a command"),
        ] {
            let err = parse_command(line).expect_err(line);
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
