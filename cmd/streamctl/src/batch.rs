//! `streamctl batch FILE.jsonl`: ProcessBatch over the items of a JSON-lines file.
//!
//! Each non-empty line is an object `{"id": "a", "type": "json", "data": ...}`. `data` as a
//! string is sent as its UTF-8 bytes, any other JSON value as its JSON text (so a `json` item
//! can carry an object as is), and `data_base64` carries arbitrary bytes. Items that the
//! server refuses are part of the result, not an error: the command exits 0 and lists them.

use std::path::PathBuf;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};
use streamhub_api::streaming::{BatchItem, BatchResult};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    sync::mpsc,
};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    Failure, Outcome,
    connect::Connection,
    input::{send_while, stdin_lines},
    output::Output,
};

/// Items queued towards the server.
const SEND_QUEUE: usize = 256;

#[derive(clap::Args)]
pub(crate) struct BatchArgs {
    /// The JSON-lines file of items; `-` reads standard input.
    file: PathBuf,
}

pub(crate) async fn run(connection: &Connection, output: &Output, args: BatchArgs) -> Outcome {
    let mut client = connection.streaming().await?;
    let (items, requests) = mpsc::channel(SEND_QUEUE);
    let call = client.process_batch(ReceiverStream::new(requests));
    let (result, ()) = if args.file.as_os_str() == "-" {
        send_while(call, from_stdin(items)).await?
    } else {
        // Opened before the call is driven, so a missing file is reported as such.
        let file = tokio::fs::File::open(&args.file)
            .await
            .map_err(|err| Failure::Usage(format!("{}: {err}", args.file.display())))?;
        send_while(call, from_file(file, args.file.clone(), items)).await?
    };
    output.record(|| human(&result), || to_json(&result))
}

async fn from_stdin(items: mpsc::Sender<BatchItem>) -> Result<(), Failure> {
    let mut lines = stdin_lines();
    let mut number = 0_usize;
    while let Some(line) = lines.recv().await {
        number += 1;
        let line = line.map_err(|err| Failure::Usage(format!("reading standard input: {err}")))?;
        if !send_line(&items, &line, || format!("line {number}")).await? {
            break;
        }
    }
    Ok(())
}

async fn from_file(
    file: tokio::fs::File,
    path: PathBuf,
    items: mpsc::Sender<BatchItem>,
) -> Result<(), Failure> {
    let mut lines = BufReader::new(file).lines();
    let mut number = 0_usize;
    while let Some(line) = lines
        .next_line()
        .await
        .with_context(|| format!("reading {}", path.display()))?
    {
        number += 1;
        if !send_line(&items, &line, || {
            format!("{} line {number}", path.display())
        })
        .await?
        {
            break;
        }
    }
    Ok(())
}

/// Parses and sends one line; false once the call has ended (its answer says why).
async fn send_line(
    items: &mpsc::Sender<BatchItem>,
    line: &str,
    place: impl FnOnce() -> String,
) -> Result<bool, Failure> {
    if line.trim().is_empty() {
        return Ok(true);
    }
    let item =
        parse_item(line).map_err(|reason| Failure::Usage(format!("{}: {reason}", place())))?;
    Ok(items.send(item).await.is_ok())
}

fn parse_item(line: &str) -> Result<BatchItem, String> {
    let value: Value =
        serde_json::from_str(line).map_err(|err| format!("not a JSON object: {err}"))?;
    let Value::Object(mut object) = value else {
        return Err("not a JSON object".to_owned());
    };
    let mut text = |field: &str| match object.remove(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(format!("{field} must be a string, got {other}")),
    };
    let id = text("id")?;
    let kind = text("type")?;
    let data = match (object.remove("data"), object.remove("data_base64")) {
        (Some(_), Some(_)) => return Err("give data or data_base64, not both".to_owned()),
        (None | Some(Value::Null), None) => Vec::new(),
        (Some(Value::String(text)), None) => text.into_bytes(),
        (Some(other), None) => other.to_string().into_bytes(),
        (None, Some(Value::String(encoded))) => base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|err| format!("data_base64 is not base64: {err}"))?,
        (None, Some(other)) => return Err(format!("data_base64 must be a string, got {other}")),
    };
    Ok(BatchItem {
        id,
        r#type: kind,
        data,
    })
}

fn human(result: &BatchResult) -> String {
    let mut text = format!(
        "processed {}: {} succeeded, {} failed",
        result.processed_count, result.success_count, result.failed_count
    );
    for error in &result.errors {
        text.push_str(&format!("\n  {}: {}", error.id, error.reason));
    }
    text
}

fn to_json(result: &BatchResult) -> Value {
    json!({
        "processed": result.processed_count,
        "succeeded": result.success_count,
        "failed": result.failed_count,
        "errors": result.errors.iter().map(|error| json!({
            "id": error.id,
            "reason": error.reason,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_comes_as_text_json_or_base64() {
        let text = parse_item(r#"{"id":"a","type":"text","data":"héllo"}"#).expect("text");
        assert_eq!(text.data, "héllo".as_bytes());
        let object = parse_item(r#"{"id":"b","type":"json","data":{"ok":true}}"#).expect("json");
        assert_eq!(object.data, br#"{"ok":true}"#);
        let binary = parse_item(r#"{"id":"c","type":"binary","data_base64":"AAEC"}"#).expect("b64");
        assert_eq!(binary.data, [0, 1, 2]);
        assert_eq!(binary.r#type, "binary");
    }

    #[test]
    fn a_bad_line_names_the_problem() {
        for (line, expected) in [
            ("[1]", "not a JSON object"),
            (r#"{"id":7}"#, "id must be a string"),
            (r#"{"id":"a","data_base64":"%%"}"#, "not base64"),
            (r#"{"id":"a","data":"x","data_base64":"AA=="}"#, "not both"),
        ] {
            let err = parse_item(line).expect_err(line);
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
