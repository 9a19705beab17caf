//! Logs over gRPC: PushLogs, StreamLogs and the resumable feeds (GetDataStream,
//! ControlledStream, BufferedStream), all views of one [`LogHub`].
//!
//! This module only translates: protobuf to biz (validating what needs no state), the hub's
//! entries back to protobuf or to the feeds' JSON, and errors to statuses.

use std::{collections::BTreeMap, sync::Arc, time::SystemTime};

use futures_util::{Stream, StreamExt as _, stream};
use streamhub_api::streaming::{
    LogEntry as PbLogEntry, LogRequest, PushLogsResult, StreamData, StreamRequest,
};
use streamhub_biz::logs::{
    BurstPolicy, Level, LogEntry, LogFilter, LogHub, LogQuery, NewLogEntry, bursts,
};
use tonic::{Request, Response, Status, Streaming};

use crate::{
    ResponseStream, Shutdown,
    request_stream::{OnShutdown, request_stream},
    to_status, until_stopped,
};

/// Most entries PushLogs commits in one transaction; fewer when fewer have arrived.
const PUSH_BATCH: usize = 256;
/// ControlledStream's `limit` when the request leaves it 0.
const CONTROLLED_DEFAULT_LIMIT: usize = 100;
/// ControlledStream's largest `limit`; larger requests are clamped to it.
const CONTROLLED_MAX_LIMIT: usize = 10_000;
/// ControlledStream prepares at most this many entries at once.
const CONTROLLED_WORKERS: usize = 10;

/// The log handlers: the hub plus the shutdown that ends their streams.
#[derive(Debug, Clone)]
pub(crate) struct LogHandlers {
    hub: LogHub,
    shutdown: Shutdown,
}

impl LogHandlers {
    pub(crate) fn new(hub: LogHub, shutdown: &Shutdown) -> Self {
        Self {
            hub,
            shutdown: shutdown.clone(),
        }
    }

    /// Commits what has arrived in batches of up to [`PUSH_BATCH`]; on a bad entry, commits
    /// the entries before it and answers `INVALID_ARGUMENT`. An ingest stream: entries are
    /// stored (and followers see them) as they arrive, so a cancelled stream keeps the
    /// entries received before the cancel; only its result is not sent.
    pub(crate) async fn push_logs(
        &self,
        request: Request<Streaming<PbLogEntry>>,
    ) -> Result<Response<PushLogsResult>, Status> {
        let (incoming, half_close) = request_stream(
            request.into_inner(),
            OnShutdown::EndWhenIdle(self.shutdown.stopping.clone()),
        );
        half_close
            .confirm_while(self.push(incoming))
            .await
            .map(Response::new)
    }

    async fn push(
        &self,
        incoming: impl Stream<Item = Result<PbLogEntry, Status>>,
    ) -> Result<PushLogsResult, Status> {
        let mut chunks = std::pin::pin!(incoming.ready_chunks(PUSH_BATCH));
        let mut result = PushLogsResult::default();
        let mut index = 0_usize;
        while let Some(chunk) = chunks.next().await {
            let mut batch = Vec::with_capacity(chunk.len());
            let mut failure = None;
            for item in chunk {
                match item.and_then(|entry| new_entry(entry, index)) {
                    Ok(entry) => batch.push(entry),
                    Err(status) => {
                        failure = Some(status);
                        break;
                    }
                }
                index += 1;
            }
            if let Some(appended) = self.hub.append(batch).await.map_err(to_status)? {
                if result.first_id == 0 {
                    result.first_id = appended.first_id;
                }
                result.last_id = appended.last_id;
                result.accepted += appended.count as i64;
            }
            if let Some(status) = failure {
                return Err(status);
            }
        }
        Ok(result)
    }

    pub(crate) fn stream_logs(
        &self,
        request: Request<LogRequest>,
    ) -> Result<Response<ResponseStream<PbLogEntry>>, Status> {
        let query = log_query(request.into_inner())?;
        let entries = self
            .hub
            .stream(query)
            .map(|entry| entry.map(|entry| pb_entry(&entry)).map_err(to_status));
        Ok(Response::new(until_stopped(
            entries,
            self.shutdown.stopping.clone(),
        )))
    }

    pub(crate) fn get_data_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ResponseStream<StreamData>>, Status> {
        let query = feed_query(&request.into_inner())?;
        let data = self
            .hub
            .stream(query)
            .map(|entry| entry.map(|entry| stream_data(&entry)).map_err(to_status));
        Ok(Response::new(until_stopped(
            data,
            self.shutdown.stopping.clone(),
        )))
    }

    pub(crate) fn controlled_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ResponseStream<StreamData>>, Status> {
        let request = request.into_inner();
        let limit = match usize::try_from(request.limit) {
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "limit must not be negative, got {}",
                    request.limit
                )));
            }
            Ok(0) => CONTROLLED_DEFAULT_LIMIT,
            Ok(limit) => limit.min(CONTROLLED_MAX_LIMIT),
        };
        let query = LogQuery {
            follow: false,
            ..feed_query(&request)?
        };
        // `buffered` runs up to CONTROLLED_WORKERS renderings at once and yields them in the
        // order they were started, which is id order.
        let data = self
            .hub
            .stream(query)
            .take(limit)
            .map(|entry| async move {
                let entry = entry.map_err(to_status)?;
                tokio::task::spawn_blocking(move || stream_data(&entry))
                    .await
                    .map_err(|err| {
                        tracing::error!(%err, "rendering a log entry failed");
                        Status::internal("rendering a log entry failed")
                    })
            })
            .buffered(CONTROLLED_WORKERS);
        Ok(Response::new(until_stopped(
            data,
            self.shutdown.stopping.clone(),
        )))
    }

    pub(crate) fn buffered_stream(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<ResponseStream<StreamData>>, Status> {
        let query = feed_query(&request.into_inner())?;
        // A burst's messages are all ready at once, so tonic writes them out together.
        let data = bursts(self.hub.stream(query), BurstPolicy::FEED).flat_map(|burst| {
            let messages: Vec<Result<StreamData, Status>> = match burst {
                Ok(entries) => entries.iter().map(|entry| Ok(stream_data(entry))).collect(),
                Err(err) => vec![Err(to_status(err))],
            };
            stream::iter(messages)
        });
        Ok(Response::new(until_stopped(
            data,
            self.shutdown.stopping.clone(),
        )))
    }
}

/// Validates the `index`-th entry of a PushLogs stream; the message names entry and field.
fn new_entry(entry: PbLogEntry, index: usize) -> Result<NewLogEntry, Status> {
    let invalid = |reason: String| Status::invalid_argument(format!("entry {index}: {reason}"));
    let timestamp = entry
        .timestamp
        .map(SystemTime::try_from)
        .transpose()
        .map_err(|err| invalid(format!("timestamp is not a valid time: {err}")))?;
    let metadata: BTreeMap<String, String> = entry.metadata.into_iter().collect();
    NewLogEntry::new(
        entry.service,
        &entry.level,
        entry.message,
        timestamp,
        metadata,
        SystemTime::now(),
    )
    .map_err(|err| invalid(to_status(err).message().to_owned()))
}

fn log_query(request: LogRequest) -> Result<LogQuery, Status> {
    let min_level = if request.level.is_empty() {
        Level::Debug
    } else {
        request.level.parse().map_err(to_status)?
    };
    if request.after_id < 0 {
        return Err(Status::invalid_argument(format!(
            "after_id must not be negative, got {}",
            request.after_id
        )));
    }
    let tail = u32::try_from(request.tail).map_err(|_| {
        Status::invalid_argument(format!("tail must not be negative, got {}", request.tail))
    })?;
    Ok(LogQuery {
        filter: LogFilter {
            service: Some(request.service).filter(|service| !service.is_empty()),
            min_level,
        },
        after_id: request.after_id,
        tail: Some(tail).filter(|&tail| tail > 0),
        follow: request.follow,
    })
}

/// The feeds follow every entry after `start_from_id`.
fn feed_query(request: &StreamRequest) -> Result<LogQuery, Status> {
    if request.start_from_id < 0 {
        return Err(Status::invalid_argument(format!(
            "start_from_id must not be negative, got {}",
            request.start_from_id
        )));
    }
    Ok(LogQuery {
        after_id: request.start_from_id,
        follow: true,
        ..LogQuery::default()
    })
}

fn pb_entry(entry: &LogEntry) -> PbLogEntry {
    PbLogEntry {
        service: entry.service.clone(),
        level: entry.level.as_str().to_owned(),
        message: entry.message.clone(),
        timestamp: Some(entry.timestamp.into()),
        metadata: entry
            .metadata
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        id: entry.id,
    }
}

/// A feed item: the entry as a JSON object.
fn stream_data(entry: &Arc<LogEntry>) -> StreamData {
    let data = serde_json::json!({
        "id": entry.id,
        "service": entry.service,
        "level": entry.level.as_str(),
        "message": entry.message,
        // Stored timestamps lie in 1970..2262 (validated on ingest), which RFC 3339 covers.
        "timestamp": humantime::format_rfc3339_nanos(entry.timestamp).to_string(),
        "metadata": entry.metadata,
    });
    StreamData {
        id: entry.id,
        data: data.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_request_becomes_a_query() {
        let query = log_query(LogRequest {
            service: "api".into(),
            level: "warn".into(),
            follow: true,
            after_id: 0,
            tail: 5,
        })
        .expect("valid");
        assert_eq!(query.filter.service.as_deref(), Some("api"));
        assert_eq!(query.filter.min_level, Level::Warn);
        assert_eq!(query.tail, Some(5));
        assert!(query.follow);

        let all = log_query(LogRequest::default()).expect("valid");
        assert_eq!(all.filter, LogFilter::default());
        assert_eq!(all.tail, None);
    }

    #[test]
    fn the_feed_json_is_an_object_with_every_field() {
        let entry = NewLogEntry::new(
            "api".into(),
            "ERROR",
            "boom \"quoted\"".into(),
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(1_800_000_000, 5)),
            BTreeMap::from([("host".to_owned(), "a".to_owned())]),
            SystemTime::now(),
        )
        .expect("valid")
        .with_id(7);
        let data = stream_data(&Arc::new(entry));
        assert_eq!(data.id, 7);
        let value: serde_json::Value = serde_json::from_str(&data.data).expect("JSON");
        assert_eq!(value["id"], 7);
        assert_eq!(value["service"], "api");
        assert_eq!(value["level"], "ERROR");
        assert_eq!(value["message"], "boom \"quoted\"");
        assert_eq!(value["timestamp"], "2027-01-15T08:00:00.000000005Z");
        assert_eq!(value["metadata"]["host"], "a");
    }
}
