//! The contract of [`LogRepo`]: what every implementation must do, as tests.
//!
//! Each test is a function over a fresh, empty repository. [`log_repo_contract!`] turns the
//! whole list into `#[tokio::test]`s for one implementation, so a test added here runs against
//! every repository: SQLite and PostgreSQL (`streamhub-data`'s `tests/contract.rs`). The hub's
//! own tests use a smaller fake that leaves retention out, so it is not run here.
//!
//! [`log_repo_contract!`]: crate::log_repo_contract

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use futures_util::future::join_all;

use super::{Level, LogEntry, LogFilter, LogRepo, NewLogEntry};

/// Defines one `#[tokio::test]` per contract test of [`LogRepo`]. `$make` names an async
/// function returning a fresh, empty repository as `Arc<dyn LogRepo>` and anything that must
/// live as long as it (a temporary directory, a database).
#[macro_export]
macro_rules! log_repo_contract {
    ($make:path) => {
        $crate::log_repo_contract!(@tests $make;
            an_empty_store_has_no_ids,
            appended_ids_increase_without_gaps_across_batches,
            what_is_stored_is_what_is_read,
            a_large_batch_keeps_its_order,
            an_empty_batch_stores_nothing,
            pages_are_windows_in_id_order_and_filters_apply,
            tail_start_is_the_oldest_of_the_last_count_that_match,
            retention_by_age_deletes_only_older_entries,
            retention_by_count_keeps_the_newest_and_ids_are_never_reused,
            concurrent_appenders_get_contiguous_ids_without_gaps,
            a_reader_never_sees_an_id_before_the_ones_below_it,
        );
    };
    (@tests $make:path; $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let (repo, _keep) = $make().await;
                $crate::logs::contract::$test(&*repo).await;
            }
        )+
    };
}

/// A fixed moment with nanoseconds, so times round-trip exactly.
fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000 + seconds, 123_456_789)
}

fn entry(service: &str, level: Level, timestamp: SystemTime) -> NewLogEntry {
    NewLogEntry::new(
        service.to_owned(),
        level.as_str(),
        format!("{service} at {level}"),
        Some(timestamp),
        BTreeMap::new(),
        timestamp,
    )
    .expect("a valid entry")
}

fn batch(count: usize, service: &str) -> Vec<NewLogEntry> {
    (0..count)
        .map(|_| entry(service, Level::Info, at(0)))
        .collect()
}

fn ids(entries: &[LogEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

/// Every stored entry, in id order.
async fn everything(repo: &dyn LogRepo) -> Vec<LogEntry> {
    repo.page(&LogFilter::default(), 0, i64::MAX, 100_000)
        .await
        .expect("page")
}

pub async fn an_empty_store_has_no_ids(repo: &dyn LogRepo) {
    assert_eq!(repo.last_id().await.expect("last id"), 0);
    assert_eq!(repo.oldest_id().await.expect("oldest id"), None);
    assert!(everything(repo).await.is_empty());
    let all = LogFilter::default();
    assert_eq!(
        repo.tail_start(&all, 10, i64::MAX).await.expect("tail"),
        None
    );
}

pub async fn appended_ids_increase_without_gaps_across_batches(repo: &dyn LogRepo) {
    let first = repo.append(batch(3, "a")).await.expect("append");
    let second = repo.append(batch(2, "b")).await.expect("append");
    let third = repo.append(batch(1, "c")).await.expect("append");
    let assigned: Vec<i64> = [ids(&first), ids(&second), ids(&third)].concat();
    let start = assigned[0];
    assert!(start > 0, "ids are positive, got {assigned:?}");
    assert_eq!(
        assigned,
        (start..start + 6).collect::<Vec<_>>(),
        "one increasing run across the three batches"
    );
    assert_eq!(repo.last_id().await.expect("last id"), start + 5);
    assert_eq!(repo.oldest_id().await.expect("oldest id"), Some(start));
    let services: Vec<String> = everything(repo)
        .await
        .into_iter()
        .map(|e| e.service)
        .collect();
    assert_eq!(services, ["a", "a", "a", "b", "b", "c"]);
}

pub async fn what_is_stored_is_what_is_read(repo: &dyn LogRepo) {
    let metadata = BTreeMap::from([
        ("k".to_owned(), "v \"quoted\" ünï 世界".to_owned()),
        ("empty".to_owned(), String::new()),
    ]);
    let written = vec![
        NewLogEntry::new(
            "api".to_owned(),
            "ERROR",
            "disk 'almost' full; 100%".to_owned(),
            Some(at(1)),
            metadata,
            at(2),
        )
        .expect("valid"),
        entry("db", Level::Debug, SystemTime::UNIX_EPOCH),
    ];
    let stored = repo.append(written.clone()).await.expect("append");
    let expected: Vec<LogEntry> = written
        .into_iter()
        .zip(ids(&stored))
        .map(|(entry, id)| entry.with_id(id))
        .collect();
    assert_eq!(
        stored, expected,
        "append returns the entries with their ids"
    );
    assert_eq!(
        everything(repo).await,
        expected,
        "service, level, message, nanosecond timestamp and metadata survive"
    );
}

pub async fn a_large_batch_keeps_its_order(repo: &dyn LogRepo) {
    let written: Vec<NewLogEntry> = (0..300)
        .map(|n| entry(&format!("s{n}"), Level::Info, at(n)))
        .collect();
    let stored = repo.append(written).await.expect("append");
    let read = everything(repo).await;
    assert_eq!(read, stored);
    let services: Vec<&str> = read.iter().map(|e| e.service.as_str()).collect();
    let expected: Vec<String> = (0..300).map(|n| format!("s{n}")).collect();
    assert_eq!(
        services, expected,
        "each id belongs to the entry sent in that place"
    );
    let start = read[0].id;
    assert_eq!(ids(&read), (start..start + 300).collect::<Vec<_>>());
}

pub async fn an_empty_batch_stores_nothing(repo: &dyn LogRepo) {
    assert!(repo.append(Vec::new()).await.expect("append").is_empty());
    assert_eq!(repo.last_id().await.expect("last id"), 0);
    let stored = repo.append(batch(1, "a")).await.expect("append");
    assert_eq!(
        repo.last_id().await.expect("last id"),
        stored[0].id,
        "an empty batch used no id"
    );
}

pub async fn pages_are_windows_in_id_order_and_filters_apply(repo: &dyn LogRepo) {
    let stored = repo
        .append(vec![
            entry("api", Level::Debug, at(0)),
            entry("db", Level::Warn, at(0)),
            entry("api", Level::Error, at(0)),
            entry("db", Level::Info, at(0)),
        ])
        .await
        .expect("append");
    let [a, b, c, d] = ids(&stored)[..] else {
        panic!("four ids, got {stored:?}");
    };
    let all = LogFilter::default();
    let page = |filter: LogFilter, after: i64, up_to: i64, limit: u32| async move {
        ids(&repo.page(&filter, after, up_to, limit).await.expect("page"))
    };
    assert_eq!(page(all.clone(), 0, i64::MAX, 10).await, [a, b, c, d]);
    assert_eq!(
        page(all.clone(), 0, i64::MAX, 2).await,
        [a, b],
        "limit counts from the start"
    );
    assert_eq!(
        page(all.clone(), a, c, 10).await,
        [b, c],
        "after_id exclusive, up_to inclusive"
    );
    assert_eq!(page(all.clone(), d, i64::MAX, 10).await, Vec::<i64>::new());
    let api = LogFilter {
        service: Some("api".to_owned()),
        min_level: Level::Debug,
    };
    assert_eq!(page(api, 0, i64::MAX, 10).await, [a, c]);
    let warn = LogFilter {
        service: None,
        min_level: Level::Warn,
    };
    assert_eq!(page(warn, 0, i64::MAX, 10).await, [b, c]);
    let db_warn = LogFilter {
        service: Some("db".to_owned()),
        min_level: Level::Warn,
    };
    assert_eq!(page(db_warn.clone(), 0, i64::MAX, 10).await, [b]);
    assert_eq!(
        page(db_warn, b, i64::MAX, 10).await,
        Vec::<i64>::new(),
        "the filter applies after the cursor"
    );
}

pub async fn tail_start_is_the_oldest_of_the_last_count_that_match(repo: &dyn LogRepo) {
    let stored = repo
        .append(vec![
            entry("api", Level::Info, at(0)),
            entry("db", Level::Info, at(0)),
            entry("api", Level::Info, at(0)),
            entry("api", Level::Error, at(0)),
        ])
        .await
        .expect("append");
    let [a, b, c, d] = ids(&stored)[..] else {
        panic!("four ids, got {stored:?}");
    };
    let all = LogFilter::default();
    let tail = |filter: LogFilter, count: u32, up_to: i64| async move {
        repo.tail_start(&filter, count, up_to).await.expect("tail")
    };
    assert_eq!(tail(all.clone(), 2, i64::MAX).await, Some(c));
    assert_eq!(
        tail(all.clone(), 10, i64::MAX).await,
        Some(a),
        "fewer than count: all"
    );
    assert_eq!(tail(all.clone(), 1, b).await, Some(b), "up_to bounds it");
    let api = LogFilter {
        service: Some("api".to_owned()),
        min_level: Level::Debug,
    };
    assert_eq!(tail(api.clone(), 2, i64::MAX).await, Some(c));
    assert_eq!(tail(api, 2, b).await, Some(a));
    let errors = LogFilter {
        service: None,
        min_level: Level::Error,
    };
    assert_eq!(tail(errors, 5, i64::MAX).await, Some(d));
    let nobody = LogFilter {
        service: Some("nobody".to_owned()),
        min_level: Level::Debug,
    };
    assert_eq!(tail(nobody, 5, i64::MAX).await, None);
    assert_eq!(tail(all, 0, i64::MAX).await, None, "none asked, none found");
}

pub async fn retention_by_age_deletes_only_older_entries(repo: &dyn LogRepo) {
    let mut written = batch(3, "old");
    written.extend((0..2).map(|_| entry("new", Level::Info, at(100))));
    let stored = repo.append(written).await.expect("append");
    let newer = ids(&stored)[3..].to_vec();

    assert_eq!(
        repo.delete_older_than(at(100)).await.expect("by age"),
        3,
        "the cutoff itself is kept"
    );
    assert_eq!(ids(&everything(repo).await), newer);
    assert_eq!(repo.oldest_id().await.expect("oldest"), Some(newer[0]));
    assert_eq!(
        repo.delete_older_than(SystemTime::UNIX_EPOCH - Duration::from_secs(1))
            .await
            .expect("before the epoch"),
        0
    );
    assert_eq!(
        repo.delete_older_than(SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40))
            .await
            .expect("after 2262"),
        2,
        "a cutoff beyond the storable range deletes everything"
    );
    assert_eq!(
        repo.last_id().await.expect("last id"),
        newer[1],
        "remembered after retention"
    );
}

pub async fn retention_by_count_keeps_the_newest_and_ids_are_never_reused(repo: &dyn LogRepo) {
    let stored = repo.append(batch(7, "a")).await.expect("append");
    let assigned = ids(&stored);
    assert_eq!(repo.delete_beyond(10).await.expect("fewer than kept"), 0);
    assert_eq!(repo.delete_beyond(2).await.expect("by count"), 5);
    assert_eq!(repo.delete_beyond(2).await.expect("again"), 0);
    assert_eq!(ids(&everything(repo).await), assigned[5..]);
    assert_eq!(repo.oldest_id().await.expect("oldest"), Some(assigned[5]));

    assert_eq!(repo.delete_beyond(0).await.expect("everything"), 2);
    assert_eq!(repo.oldest_id().await.expect("oldest"), None);
    assert_eq!(
        repo.last_id().await.expect("last id"),
        assigned[6],
        "remembered when the store is empty"
    );
    let next = repo.append(batch(1, "a")).await.expect("append");
    assert_eq!(
        ids(&next),
        [assigned[6] + 1],
        "an id is never reused, even after the newest were deleted"
    );
}

/// Writers at once, each appending several batches.
const WRITERS: usize = 8;
const BATCHES: usize = 10;
const BATCH: usize = 5;

/// Every writer's batches, in order, each as the ids it got.
async fn write_concurrently(repo: &dyn LogRepo) -> Vec<Vec<Vec<i64>>> {
    join_all((0..WRITERS).map(|writer| async move {
        let mut got = Vec::new();
        for _ in 0..BATCHES {
            let stored = repo
                .append(batch(BATCH, &format!("w{writer}")))
                .await
                .expect("append");
            got.push(ids(&stored));
        }
        got
    }))
    .await
}

pub async fn concurrent_appenders_get_contiguous_ids_without_gaps(repo: &dyn LogRepo) {
    let written = write_concurrently(repo).await;
    let mut all: Vec<i64> = Vec::new();
    for (writer, batches) in written.iter().enumerate() {
        for got in batches {
            assert_eq!(got.len(), BATCH);
            assert!(
                got.windows(2).all(|w| w[1] == w[0] + 1),
                "writer {writer}: a batch takes a contiguous run, got {got:?}"
            );
        }
        let firsts: Vec<i64> = batches.iter().map(|b| b[0]).collect();
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "writer {writer}: later batches get higher ids, got {firsts:?}"
        );
        all.extend(batches.iter().flatten());
    }
    all.sort_unstable();
    let total = i64::try_from(WRITERS * BATCHES * BATCH).expect("small");
    assert_eq!(
        all,
        (1..=total).collect::<Vec<_>>(),
        "every id used once, none skipped"
    );
    assert_eq!(repo.last_id().await.expect("last id"), total);
    let stored = everything(repo).await;
    assert_eq!(ids(&stored), (1..=total).collect::<Vec<_>>());
}

/// The sequencing rule (SCALEOUT.md): ids commit in id order, so a follower reading "after
/// the last id I saw" never skips one. A reader polls while writers append; every page it
/// gets must continue its last id without a gap.
pub async fn a_reader_never_sees_an_id_before_the_ones_below_it(repo: &dyn LogRepo) {
    let total = i64::try_from(WRITERS * BATCHES * BATCH).expect("small");
    let all = LogFilter::default();
    let reader = async {
        let mut seen = 0_i64;
        let mut polls = 0_u64;
        while seen < total {
            let page = repo.page(&all, seen, i64::MAX, 1000).await.expect("page");
            for entry in &page {
                assert_eq!(
                    entry.id,
                    seen + 1,
                    "after id {seen} the next visible id must be {}, not {} (poll {polls})",
                    seen + 1,
                    entry.id
                );
                seen = entry.id;
            }
            polls += 1;
            // Let the writers run between polls on a single-threaded runtime.
            tokio::task::yield_now().await;
        }
        seen
    };
    let (seen, _) = futures_util::join!(reader, write_concurrently(repo));
    assert_eq!(seen, total);
}
