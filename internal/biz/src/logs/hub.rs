//! [`LogHub`]: the write path and the live fan-out to followers.
//!
//! The hand-over from stored to live entries is where followers lose or repeat entries, so it
//! follows one recipe: a follower subscribes to the live broadcast *first*, then pages through
//! the store from its cursor, then takes live entries, dropping those whose id it has already
//! passed. Every entry committed before the subscription is in the store; every entry
//! committed after it is also in the broadcast; the cursor removes the overlap.
//!
//! That recipe needs live entries to arrive in id order, so a batch is committed and published
//! under one lock: SQLite admits one writer at a time anyway, so the lock costs writers nothing.
//! Publishing never waits: the broadcast is bounded (`logs.live_buffer`) and overwrites its
//! oldest entries. A follower that falls that far behind gets `Lagged`, subscribes again and
//! catches up from the store, so slow followers cost neither writers nor memory.

use std::{
    collections::VecDeque,
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use futures_util::{Stream, stream};
use tokio::sync::{Mutex, broadcast};

use super::{LogEntry, LogFilter, LogRepo, NewLogEntry};
use crate::{Lifecycle, Result};

/// Entries a follower reads from the store per query: bounds its memory while catching up.
const PAGE: u32 = 512;

/// A cheap handle on the log store and its live followers.
#[derive(Clone)]
pub struct LogHub {
    inner: Arc<Inner>,
}

struct Inner {
    repo: Arc<dyn LogRepo>,
    live: broadcast::Sender<Arc<LogEntry>>,
    /// Held across commit and publish so the broadcast carries ids in increasing order.
    write: Mutex<()>,
    /// Commits run as tasks of their own, tracked here.
    lifecycle: Lifecycle,
}

impl Inner {
    async fn commit_and_publish(&self, entries: Vec<NewLogEntry>) -> Result<Option<Appended>> {
        let _write = self.write.lock().await;
        let stored = self.repo.append(entries).await?;
        let (Some(first), Some(last)) = (stored.first(), stored.last()) else {
            return Ok(None);
        };
        let appended = Appended {
            count: stored.len(),
            first_id: first.id,
            last_id: last.id,
        };
        for entry in stored {
            // An error only means nobody follows right now.
            let _ = self.live.send(Arc::new(entry));
        }
        Ok(Some(appended))
    }
}

impl fmt::Debug for LogHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogHub")
            .field("repo", &self.inner.repo)
            .field("followers", &self.inner.live.receiver_count())
            .finish_non_exhaustive()
    }
}

/// The ids a committed batch received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub count: usize,
    pub first_id: i64,
    pub last_id: i64,
}

/// What a reader asks of [`LogHub::stream`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub filter: LogFilter,
    /// Only entries with a greater id.
    pub after_id: i64,
    /// With `after_id == 0`: start at the last `tail` matching stored entries.
    pub tail: Option<u32>,
    /// After the stored entries, keep delivering new ones.
    pub follow: bool,
}

/// What the retention task deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Entries older than this go.
    pub max_age: Duration,
    /// At most this many entries stay.
    pub max_entries: u64,
    /// Time between runs.
    pub interval: Duration,
}

impl LogHub {
    /// A hub over `repo` whose broadcast holds `live_buffer` entries (at least one); its
    /// commits and its retention run on `lifecycle`.
    pub fn new(repo: Arc<dyn LogRepo>, live_buffer: usize, lifecycle: &Lifecycle) -> Self {
        let (live, _) = broadcast::channel(live_buffer.max(1));
        Self {
            inner: Arc::new(Inner {
                repo,
                live,
                write: Mutex::new(()),
                lifecycle: lifecycle.clone(),
            }),
        }
    }

    /// Stores `entries` in one transaction, then publishes them to live followers. Returns
    /// `None` for an empty batch.
    ///
    /// Commit and publish run in their own task: if the caller goes away mid-commit (a PushLogs
    /// client disconnecting), a batch that reached the store is still published, or followers
    /// would skip it once they see later ids. The task lives no longer than one transaction.
    pub async fn append(&self, entries: Vec<NewLogEntry>) -> Result<Option<Appended>> {
        if entries.is_empty() {
            return Ok(None);
        }
        let inner = Arc::clone(&self.inner);
        self.inner
            .lifecycle
            .spawn(async move { inner.commit_and_publish(entries).await })
            .await
            .map_err(|err| crate::Error::Storage(format!("appending log entries failed: {err}")))?
    }

    /// The entries `query` asks for, in id order. Without `follow` the stream ends after the
    /// entries stored when it started; with `follow` it never ends by itself. Holds at most one
    /// page of entries besides the shared broadcast.
    pub fn stream(
        &self,
        query: LogQuery,
    ) -> impl Stream<Item = Result<Arc<LogEntry>>> + Send + 'static {
        let cursor = Cursor {
            hub: self.clone(),
            last_sent: query.after_id,
            query,
            up_to: i64::MAX,
            started: false,
            page: VecDeque::new(),
            stored_done: false,
            live: None,
        };
        stream::unfold(Some(cursor), |cursor| async move {
            let mut cursor = cursor?;
            match cursor.next().await {
                Some(Ok(entry)) => Some((Ok(entry), Some(cursor))),
                // After an error the stream ends.
                Some(Err(err)) => Some((Err(err), None)),
                None => None,
            }
        })
    }

    /// Starts deleting what `policy` says every `policy.interval` (first run at once) until
    /// shutdown. Failures are logged and retried at the next run.
    pub fn spawn_retention(&self, policy: RetentionPolicy) {
        let hub = self.clone();
        self.inner.lifecycle.spawn_every(policy.interval, move || {
            let hub = hub.clone();
            async move { hub.enforce(policy).await }
        });
    }

    async fn enforce(&self, policy: RetentionPolicy) {
        let repo = &self.inner.repo;
        if let Some(cutoff) = SystemTime::now().checked_sub(policy.max_age) {
            match repo.delete_older_than(cutoff).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "log retention: removed expired entries"),
                Err(err) => tracing::warn!(%err, "log retention by age failed"),
            }
        }
        match repo.delete_beyond(policy.max_entries).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "log retention: removed entries over the limit"),
            Err(err) => tracing::warn!(%err, "log retention by count failed"),
        }
    }

    /// Streams following live entries now (StreamLogs with follow, GetDataStream,
    /// BufferedStream), for metrics.
    pub fn followers(&self) -> usize {
        self.inner.live.receiver_count()
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<LogEntry>> {
        self.inner.live.subscribe()
    }
}

/// How a resumed reader learns that retention deleted entries after its resume point: the
/// stream cannot say it (the seed's messages have no field for it), so the server log does.
fn log_deleted_since_resume_point(after_id: i64, first_kept: i64) {
    tracing::warn!(
        after_id,
        first_kept,
        deleted = first_kept - after_id - 1,
        "a stream resumed from an id older than the log store keeps; retention deleted the \
         entries in between"
    );
}

/// One reader's position: see the module docs for the hand-over.
struct Cursor {
    hub: LogHub,
    query: LogQuery,
    /// Id of the last entry delivered (or skipped as not matching); nothing at or below it is
    /// delivered again.
    last_sent: i64,
    /// Without follow: the last id stored when the stream started.
    up_to: i64,
    started: bool,
    page: VecDeque<LogEntry>,
    /// The store has nothing more for us right now.
    stored_done: bool,
    /// With follow: the live broadcast, subscribed before the store is read.
    live: Option<broadcast::Receiver<Arc<LogEntry>>>,
}

impl Cursor {
    async fn next(&mut self) -> Option<Result<Arc<LogEntry>>> {
        if !self.started {
            self.started = true;
            if let Err(err) = self.start().await {
                return Some(Err(err));
            }
        }
        loop {
            if let Some(entry) = self.page.pop_front() {
                self.last_sent = entry.id;
                return Some(Ok(Arc::new(entry)));
            }
            if !self.stored_done {
                let page = self
                    .hub
                    .inner
                    .repo
                    .page(&self.query.filter, self.last_sent, self.up_to, PAGE)
                    .await;
                match page {
                    Ok(page) => {
                        self.stored_done = page.len() < PAGE as usize;
                        self.page.extend(page);
                        continue;
                    }
                    Err(err) => return Some(Err(err)),
                }
            }
            // Without follow there is no live part: the stored entries were everything.
            let live = self.live.as_mut()?;
            match live.recv().await {
                Ok(entry) => {
                    if entry.id > self.last_sent {
                        self.last_sent = entry.id;
                        if self.query.filter.matches(&entry) {
                            return Some(Ok(entry));
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Entries were overwritten before we read them: they are in the store.
                    self.live = Some(self.hub.subscribe());
                    self.stored_done = false;
                }
                // The hub (held by this cursor) is gone: cannot happen, but ends cleanly.
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    async fn report_deleted_since_resume_point(&self) -> Result<()> {
        let repo = &self.hub.inner.repo;
        let first_kept = match repo.oldest_id().await? {
            Some(oldest) => oldest,
            None => repo.last_id().await? + 1,
        };
        if first_kept > self.query.after_id + 1 {
            log_deleted_since_resume_point(self.query.after_id, first_kept);
        }
        Ok(())
    }

    async fn start(&mut self) -> Result<()> {
        let repo = &self.hub.inner.repo;
        if self.query.follow {
            self.live = Some(self.hub.subscribe());
        } else {
            self.up_to = repo.last_id().await?;
        }
        if self.query.after_id > 0 {
            self.report_deleted_since_resume_point().await?;
        }
        if let Some(tail) = self.query.tail.filter(|&tail| tail > 0)
            && self.query.after_id == 0
        {
            // Read before the tail query: an entry committed between the two reads is then
            // after the resume point (replayed from the store), not skipped by it.
            let last_before = repo.last_id().await?.min(self.up_to);
            self.last_sent = match repo
                .tail_start(&self.query.filter, tail, self.up_to)
                .await?
            {
                Some(oldest) => oldest - 1,
                // Nothing matched: whatever comes later is within the tail.
                None => last_before,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, pin::pin, sync::Mutex as StdMutex};

    use futures_util::StreamExt as _;

    use super::*;
    use crate::logs::Level;

    /// The store as a vector; ids are positions + 1.
    #[derive(Debug, Default)]
    struct MemoryRepo {
        entries: StdMutex<Vec<LogEntry>>,
        /// Committed by another writer right after the next tail query has been answered.
        after_tail_query: StdMutex<Option<NewLogEntry>>,
        /// Retention deleted the entries with smaller ids.
        kept_from: StdMutex<i64>,
    }

    impl MemoryRepo {
        fn locked(&self) -> std::sync::MutexGuard<'_, Vec<LogEntry>> {
            self.entries.lock().expect("not poisoned")
        }
    }

    impl LogRepo for MemoryRepo {
        fn append(&self, entries: Vec<NewLogEntry>) -> super::super::RepoFuture<'_, Vec<LogEntry>> {
            let mut stored = self.locked();
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry.with_id(stored.len() as i64 + 1);
                stored.push(entry.clone());
                out.push(entry);
            }
            Box::pin(async move { Ok(out) })
        }

        fn page<'a>(
            &'a self,
            filter: &'a LogFilter,
            after_id: i64,
            up_to: i64,
            limit: u32,
        ) -> super::super::RepoFuture<'a, Vec<LogEntry>> {
            let page = self
                .locked()
                .iter()
                .filter(|e| e.id > after_id && e.id <= up_to && filter.matches(e))
                .filter(|e| e.id >= *self.kept_from.lock().expect("not poisoned"))
                .take(limit as usize)
                .cloned()
                .collect();
            Box::pin(async move { Ok(page) })
        }

        fn tail_start<'a>(
            &'a self,
            filter: &'a LogFilter,
            count: u32,
            up_to: i64,
        ) -> super::super::RepoFuture<'a, Option<i64>> {
            let start = self
                .locked()
                .iter()
                .rev()
                .filter(|e| e.id <= up_to && filter.matches(e))
                .take(count as usize)
                .last()
                .map(|e| e.id);
            if let Some(racing) = self.after_tail_query.lock().expect("not poisoned").take() {
                let mut stored = self.locked();
                let id = stored.len() as i64 + 1;
                stored.push(racing.with_id(id));
            }
            Box::pin(async move { Ok(start) })
        }

        fn last_id(&self) -> super::super::RepoFuture<'_, i64> {
            let last = self.locked().len() as i64;
            Box::pin(async move { Ok(last) })
        }

        fn oldest_id(&self) -> super::super::RepoFuture<'_, Option<i64>> {
            let kept_from = *self.kept_from.lock().expect("not poisoned");
            let oldest = self
                .locked()
                .iter()
                .map(|e| e.id)
                .find(|&id| id >= kept_from);
            Box::pin(async move { Ok(oldest) })
        }

        fn delete_older_than(&self, _cutoff: SystemTime) -> super::super::RepoFuture<'_, u64> {
            Box::pin(async { Ok(0) })
        }

        fn delete_beyond(&self, _keep: u64) -> super::super::RepoFuture<'_, u64> {
            Box::pin(async { Ok(0) })
        }
    }

    fn entry(service: &str, level: Level) -> NewLogEntry {
        NewLogEntry::new(
            service.to_owned(),
            level.as_str(),
            "message".to_owned(),
            None,
            BTreeMap::new(),
            SystemTime::now(),
        )
        .expect("valid entry")
    }

    async fn write(hub: &LogHub, count: usize) {
        let batch = (0..count).map(|_| entry("svc", Level::Info)).collect();
        hub.append(batch).await.expect("append");
    }

    async fn ids(stream: impl Stream<Item = Result<Arc<LogEntry>>>) -> Vec<i64> {
        stream.map(|e| e.expect("no error").id).collect().await
    }

    #[tokio::test]
    async fn append_reports_the_ids_of_the_batch() {
        let hub = LogHub::new(Arc::new(MemoryRepo::default()), 16, &Lifecycle::new());
        assert_eq!(hub.append(Vec::new()).await.expect("empty"), None);
        write(&hub, 2).await;
        let appended = hub
            .append(vec![entry("a", Level::Info), entry("b", Level::Info)])
            .await
            .expect("append")
            .expect("two entries");
        assert_eq!(
            appended,
            Appended {
                count: 2,
                first_id: 3,
                last_id: 4
            }
        );
    }

    #[tokio::test]
    async fn without_follow_the_stream_ends_after_the_stored_matches() {
        let hub = LogHub::new(Arc::new(MemoryRepo::default()), 16, &Lifecycle::new());
        hub.append(vec![
            entry("a", Level::Debug),
            entry("b", Level::Warn),
            entry("a", Level::Error),
            entry("a", Level::Info),
        ])
        .await
        .expect("append");
        let query = |service: Option<&str>, min_level, after_id, tail| LogQuery {
            filter: LogFilter {
                service: service.map(str::to_owned),
                min_level,
            },
            after_id,
            tail,
            follow: false,
        };
        assert_eq!(
            ids(hub.stream(query(None, Level::Debug, 0, None))).await,
            [1, 2, 3, 4]
        );
        assert_eq!(
            ids(hub.stream(query(Some("a"), Level::Info, 0, None))).await,
            [3, 4]
        );
        assert_eq!(
            ids(hub.stream(query(None, Level::Warn, 2, None))).await,
            [3]
        );
        assert_eq!(
            ids(hub.stream(query(Some("a"), Level::Debug, 0, Some(2)))).await,
            [3, 4]
        );
        assert_eq!(
            ids(hub.stream(query(None, Level::Debug, 0, Some(10)))).await,
            [1, 2, 3, 4]
        );
        // A tail with an after_id is ignored: after_id wins.
        assert_eq!(
            ids(hub.stream(query(None, Level::Debug, 3, Some(3)))).await,
            [4]
        );
    }

    #[tokio::test]
    async fn stored_entries_beyond_one_page_are_all_delivered() {
        let hub = LogHub::new(Arc::new(MemoryRepo::default()), 16, &Lifecycle::new());
        write(&hub, PAGE as usize * 2 + 7).await;
        let got = ids(hub.stream(LogQuery::default())).await;
        assert_eq!(got, (1..=PAGE as i64 * 2 + 7).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_follower_that_lags_behind_the_live_buffer_catches_up_from_the_store() {
        // A live buffer of 1: any burst of writes overtakes the follower.
        let hub = LogHub::new(Arc::new(MemoryRepo::default()), 1, &Lifecycle::new());
        write(&hub, 3).await;
        let mut follower = pin!(hub.stream(LogQuery {
            follow: true,
            ..LogQuery::default()
        }));
        let mut seen = Vec::new();
        for round in 0..5 {
            write(&hub, 50).await;
            let expected = 3 + 50 * (round + 1);
            while seen.len() < expected {
                let entry = tokio::time::timeout(Duration::from_secs(5), follower.next())
                    .await
                    .unwrap_or_else(|_| panic!("stuck after {} entries", seen.len()))
                    .expect("open")
                    .expect("no error");
                seen.push(entry.id);
            }
        }
        assert_eq!(seen, (1..=253).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_tail_follow_keeps_an_entry_committed_right_after_its_tail_query() {
        let repo = Arc::new(MemoryRepo::default());
        // Nothing matches the tail query; the first matching entry is committed just after.
        *repo.after_tail_query.lock().expect("not poisoned") = Some(entry("svc", Level::Error));
        let hub = LogHub::new(Arc::clone(&repo) as Arc<dyn LogRepo>, 16, &Lifecycle::new());
        let mut follower = pin!(hub.stream(LogQuery {
            filter: LogFilter {
                service: None,
                min_level: Level::Error,
            },
            tail: Some(5),
            follow: true,
            ..LogQuery::default()
        }));
        let first = tokio::time::timeout(Duration::from_secs(5), follower.next())
            .await
            .expect("the racing entry is delivered, not skipped")
            .expect("open")
            .expect("no error");
        assert_eq!(first.id, 1);
        write(&hub, 1).await;
        hub.append(vec![entry("svc", Level::Error)])
            .await
            .expect("append");
        let next = tokio::time::timeout(Duration::from_secs(5), follower.next())
            .await
            .expect("the next matching entry")
            .expect("open")
            .expect("no error");
        assert_eq!(next.id, 3, "no repeat, the non-matching entry filtered");
    }

    #[test]
    fn a_resume_from_before_what_retention_kept_is_reported_in_the_log() {
        let log = Arc::new(StdMutex::new(Vec::<u8>::new()));
        let writer = {
            let log = Arc::clone(&log);
            move || LogWriter(Arc::clone(&log))
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let repo = Arc::new(MemoryRepo::default());
            let hub = LogHub::new(Arc::clone(&repo) as Arc<dyn LogRepo>, 16, &Lifecycle::new());
            write(&hub, 10).await;
            *repo.kept_from.lock().expect("not poisoned") = 6;
            let resumed = |after_id| {
                hub.stream(LogQuery {
                    after_id,
                    ..LogQuery::default()
                })
            };
            assert_eq!(ids(resumed(5)).await, [6, 7, 8, 9, 10], "nothing lost");
            let before = String::from_utf8(log.lock().expect("log").clone()).expect("utf-8");
            assert!(!before.contains("retention deleted"), "{before}");
            assert_eq!(ids(resumed(2)).await, [6, 7, 8, 9, 10]);
        });
        let logged = String::from_utf8(log.lock().expect("log").clone()).expect("utf-8");
        assert!(
            logged.contains("retention deleted") && logged.contains("deleted=3"),
            "{logged}"
        );
    }

    /// A `tracing` writer into a shared buffer.
    struct LogWriter(Arc<StdMutex<Vec<u8>>>);

    impl std::io::Write for LogWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
