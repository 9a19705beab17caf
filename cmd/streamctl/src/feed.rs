//! `streamctl feed --from ID`: GetDataStream, the log store as a resumable feed of JSON
//! entries, followed across server restarts without a gap or a duplicate.

use std::{collections::BTreeMap, time::UNIX_EPOCH};

use serde_json::{Value, json};
use streamhub_api::streaming::{StreamData, StreamRequest};

use crate::{
    Outcome,
    connect::Connection,
    logs::human_line,
    output::{Output, human_time},
    reconnect::{Flow, follow},
};

#[derive(clap::Args)]
pub(crate) struct FeedArgs {
    /// Start after this id (0 = from the first entry).
    #[arg(long, value_name = "ID", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    from: i64,
    /// Stop after N entries; without it, follow until interrupted.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

pub(crate) async fn run(connection: &Connection, output: &Output, args: FeedArgs) -> Outcome {
    if args.count == Some(0) {
        return Ok(());
    }
    let mut printed = 0_u64;
    follow(
        |last| {
            let request = StreamRequest {
                start_from_id: last.unwrap_or(args.from),
                limit: 0,
            };
            async move {
                let mut client = connection.streaming().await?;
                Ok(client.get_data_stream(request).await?.into_inner())
            }
        },
        |item| item.id,
        |item| {
            output.record(|| human(&item), || to_json(&item))?;
            printed += 1;
            Ok(if args.count.is_some_and(|count| printed >= count) {
                Flow::Stop
            } else {
                Flow::Continue
            })
        },
    )
    .await
}

/// The entry as a log line; the raw JSON if it is not the log entry the contract describes.
fn human(item: &StreamData) -> String {
    let raw = || format!("#{} {}", item.id, item.data);
    let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(&item.data) else {
        return raw();
    };
    let text = |field: &str| entry.get(field).and_then(Value::as_str).unwrap_or_default();
    let time = humantime::parse_rfc3339(text("timestamp"))
        .ok()
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map_or_else(
            || "-".to_owned(),
            |since| {
                let seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
                human_time(Some(&prost_types::Timestamp { seconds, nanos: 0 }))
            },
        );
    let metadata: BTreeMap<String, String> = entry
        .get("metadata")
        .and_then(Value::as_object)
        .map(|fields| {
            fields
                .iter()
                .map(|(key, value)| {
                    let value = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    (key.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    human_line(
        item.id,
        &time,
        text("level"),
        text("service"),
        text("message"),
        &metadata,
    )
}

/// `{"id": 7, "data": {...}}`: the entry as an object, not a string holding JSON.
fn to_json(item: &StreamData) -> Value {
    let data = serde_json::from_str::<Value>(&item.data).unwrap_or_else(|_| json!(item.data));
    json!({ "id": item.id, "data": data })
}
