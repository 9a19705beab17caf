//! `streamctl logs` (StreamLogs, with `--follow` surviving reconnects) and
//! `streamctl push-logs` (PushLogs from standard input).

use std::{
    collections::{BTreeMap, HashMap},
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use streamhub_api::streaming::{LogEntry, LogRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    Failure, Outcome,
    connect::Connection,
    input::{send_while, stdin_lines},
    output::{Output, human_time, json_time},
    reconnect::{Flow, follow},
};

/// Entries queued towards the server while it commits earlier ones.
const SEND_QUEUE: usize = 256;

#[derive(clap::Args)]
pub(crate) struct LogsArgs {
    /// Only this service's entries.
    #[arg(long)]
    service: Option<String>,
    /// Minimum level: DEBUG, INFO, WARN or ERROR (any case).
    #[arg(long)]
    level: Option<String>,
    /// Only the last N matching stored entries.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    tail: Option<i32>,
    /// Keep printing new entries; reconnects and resumes if the server goes away.
    #[arg(long, short)]
    follow: bool,
    /// Only entries with an id above ID.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(0..))]
    after: Option<i64>,
}

pub(crate) async fn run(connection: &Connection, output: &Output, args: LogsArgs) -> Outcome {
    let request = LogRequest {
        service: args.service.unwrap_or_default(),
        level: args.level.unwrap_or_default(),
        follow: args.follow,
        after_id: args.after.unwrap_or(0),
        tail: args.tail.unwrap_or(0),
    };
    let deliver = |entry: LogEntry| {
        output.record(|| human(&entry), || to_json(&entry))?;
        Ok(Flow::Continue)
    };
    if !args.follow {
        // A plain read is one call: nothing to resume, so a lost server is an error.
        let mut client = connection.streaming().await?;
        let mut entries = client.stream_logs(request).await?.into_inner();
        while let Some(entry) = entries.message().await? {
            deliver(entry)?;
        }
        return Ok(());
    }
    follow(
        |last| {
            // Resuming: everything after the last entry printed, whatever `--tail` said.
            let request = match last {
                None => request.clone(),
                Some(id) => LogRequest {
                    after_id: id,
                    tail: 0,
                    ..request.clone()
                },
            };
            async move {
                let mut client = connection.streaming().await?;
                Ok(client.stream_logs(request).await?.into_inner())
            }
        },
        |entry| entry.id,
        deliver,
    )
    .await
}

/// `[2026-01-02 15:04:05] #42 WARN  api: slow query  host=a`.
pub(crate) fn human_line(
    id: i64,
    time: &str,
    level: &str,
    service: &str,
    message: &str,
    metadata: &BTreeMap<String, String>,
) -> String {
    let mut line = format!("[{time}] #{id} {level:<5} {service}: {message}");
    if !metadata.is_empty() {
        line.push(' ');
        for (key, value) in metadata {
            line.push_str(&format!(" {key}={value}"));
        }
    }
    line
}

fn human(entry: &LogEntry) -> String {
    let metadata: BTreeMap<String, String> = entry
        .metadata
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    human_line(
        entry.id,
        &human_time(entry.timestamp.as_ref()),
        &entry.level,
        &entry.service,
        &entry.message,
        &metadata,
    )
}

fn to_json(entry: &LogEntry) -> Value {
    let metadata: BTreeMap<&String, &String> = entry.metadata.iter().collect();
    json!({
        "id": entry.id,
        "service": entry.service,
        "level": entry.level,
        "message": entry.message,
        "timestamp": json_time(entry.timestamp.as_ref()),
        "metadata": metadata,
    })
}

#[derive(clap::Args)]
pub(crate) struct PushLogsArgs {
    /// Service of plain-text lines (a JSON line may name its own).
    #[arg(long, default_value = "streamctl")]
    service: String,
    /// Level of plain-text lines (a JSON line may name its own).
    #[arg(long, default_value = "INFO")]
    level: String,
}

/// Sends each line of standard input as an entry: a line starting with `{` is a JSON object
/// (`service`, `level`, `message`, `metadata`, `timestamp` as RFC 3339 or unix seconds), any
/// other non-empty line is the message itself.
///
/// An unusable line ends the input there: the entries before it are committed (the server
/// keeps what it received), the result is printed, and the command exits 2 naming the line.
pub(crate) async fn push(connection: &Connection, output: &Output, args: PushLogsArgs) -> Outcome {
    let mut client = connection.streaming().await?;
    let (entries, requests) = mpsc::channel(SEND_QUEUE);
    let call = client.push_logs(ReceiverStream::new(requests));
    let feeding = async move {
        let mut lines = stdin_lines();
        let mut number = 0_usize;
        while let Some(line) = lines.recv().await {
            number += 1;
            let line =
                line.map_err(|err| Failure::Usage(format!("reading standard input: {err}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let entry = match parse_entry(&line, &args) {
                Ok(entry) => entry,
                Err(reason) => return Ok(Some(format!("line {number}: {reason}"))),
            };
            if entries.send(entry).await.is_err() {
                break; // The call has ended; its answer says why.
            }
        }
        Ok(None)
    };
    let (result, bad_line) = send_while(call, feeding).await?;
    output.record(
        || match result.accepted {
            0 => "accepted 0 entries".to_owned(),
            accepted => format!(
                "accepted {accepted} entries, ids {}..{}",
                result.first_id, result.last_id
            ),
        },
        || {
            json!({
                "accepted": result.accepted,
                "first_id": result.first_id,
                "last_id": result.last_id,
            })
        },
    )?;
    match bad_line {
        Some(reason) => Err(Failure::Usage(format!(
            "{reason}; the entries before it were stored, nothing after it was sent"
        ))),
        None => Ok(()),
    }
}

fn parse_entry(line: &str, args: &PushLogsArgs) -> Result<LogEntry, String> {
    if !line.trim_start().starts_with('{') {
        return Ok(LogEntry {
            service: args.service.clone(),
            level: args.level.clone(),
            message: line.to_owned(),
            ..LogEntry::default()
        });
    }
    let value: Value =
        serde_json::from_str(line).map_err(|err| format!("not a JSON object: {err}"))?;
    let Value::Object(mut object) = value else {
        return Err("not a JSON object".to_owned());
    };
    let mut text = |field: &str, default: &str| match object.remove(field) {
        None | Some(Value::Null) => Ok(default.to_owned()),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(format!("{field} must be a string, got {other}")),
    };
    let service = text("service", &args.service)?;
    let level = text("level", &args.level)?;
    let message = text("message", "")?;
    let metadata = match object.remove("metadata") {
        None | Some(Value::Null) => HashMap::new(),
        Some(Value::Object(fields)) => fields
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(text) => (key, text),
                other => (key, other.to_string()),
            })
            .collect(),
        Some(other) => return Err(format!("metadata must be an object, got {other}")),
    };
    let timestamp = match object.remove("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            humantime::parse_rfc3339_weak(&text)
                .map_err(|err| format!("timestamp {text:?} is not RFC 3339: {err}"))?
                .into(),
        ),
        Some(Value::Number(seconds)) => {
            let seconds = seconds
                .as_f64()
                .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
                .ok_or_else(|| format!("timestamp {seconds} is not a unix time"))?;
            let at = UNIX_EPOCH
                .checked_add(std::time::Duration::from_secs_f64(seconds))
                .ok_or_else(|| format!("timestamp {seconds} is out of range"))?;
            Some(SystemTime::into(at))
        }
        Some(other) => {
            return Err(format!(
                "timestamp must be a string or a number, got {other}"
            ));
        }
    };
    Ok(LogEntry {
        service,
        level,
        message,
        timestamp,
        metadata,
        id: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PushLogsArgs {
        PushLogsArgs {
            service: "cli".into(),
            level: "INFO".into(),
        }
    }

    #[test]
    fn a_plain_line_is_the_message() {
        let entry = parse_entry("disk almost full", &args()).expect("valid");
        assert_eq!(
            (
                entry.service.as_str(),
                entry.level.as_str(),
                entry.message.as_str()
            ),
            ("cli", "INFO", "disk almost full")
        );
    }

    #[test]
    fn a_json_line_names_its_fields() {
        let entry = parse_entry(
            r#"{"service":"api","level":"warn","message":"slow","metadata":{"ms":120,"host":"a"},"timestamp":"2026-01-02T15:04:05Z"}"#,
            &args(),
        )
        .expect("valid");
        assert_eq!(entry.service, "api");
        assert_eq!(entry.level, "warn");
        assert_eq!(entry.metadata["ms"], "120");
        assert_eq!(entry.metadata["host"], "a");
        assert_eq!(entry.timestamp.map(|t| t.seconds), Some(1_767_366_245));
    }

    #[test]
    fn a_bad_json_line_says_what_is_wrong() {
        for (line, expected) in [
            ("{not json", "not a JSON object"),
            (r#"{"message":3}"#, "message must be a string"),
            (r#"{"timestamp":"yesterday"}"#, "is not RFC 3339"),
            (r#"{"metadata":[1]}"#, "metadata must be an object"),
        ] {
            let err = parse_entry(line, &args()).expect_err(line);
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
