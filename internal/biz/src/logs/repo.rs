//! The storage a [`LogHub`](super::LogHub) needs, implemented by `streamhub-data`.

use std::{fmt, future::Future, pin::Pin, time::SystemTime};

use super::{LogEntry, LogFilter, NewLogEntry};
use crate::Result;

/// A boxed future, so the trait stays usable as `dyn LogRepo`.
pub type RepoFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Persistent log entries.
pub trait LogRepo: Send + Sync + fmt::Debug + 'static {
    /// Stores `entries` in one transaction and returns them with their ids, in order. Ids are
    /// strictly increasing across calls and never reused.
    fn append(&self, entries: Vec<NewLogEntry>) -> RepoFuture<'_, Vec<LogEntry>>;

    /// Up to `limit` entries matching `filter` with `after_id < id <= up_to`, in id order.
    fn page<'a>(
        &'a self,
        filter: &'a LogFilter,
        after_id: i64,
        up_to: i64,
        limit: u32,
    ) -> RepoFuture<'a, Vec<LogEntry>>;

    /// The id of the oldest of the last `count` entries matching `filter` with `id <= up_to`,
    /// or `None` when none match.
    fn tail_start<'a>(
        &'a self,
        filter: &'a LogFilter,
        count: u32,
        up_to: i64,
    ) -> RepoFuture<'a, Option<i64>>;

    /// The highest id stored so far (0 when the store is empty).
    fn last_id(&self) -> RepoFuture<'_, i64>;

    /// The lowest id still stored (`None` when the store is empty): retention deletes the
    /// entries before it.
    fn oldest_id(&self) -> RepoFuture<'_, Option<i64>>;

    /// Deletes entries whose timestamp is before `cutoff`; returns how many went.
    fn delete_older_than(&self, cutoff: SystemTime) -> RepoFuture<'_, u64>;

    /// Deletes the oldest entries until at most `keep` remain; returns how many went.
    fn delete_beyond(&self, keep: u64) -> RepoFuture<'_, u64>;
}
