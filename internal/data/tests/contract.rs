//! The contract suites of the biz storage traits, run against this crate's implementations:
//! the same tests the hubs' in-memory fakes pass, so what the hubs' tests learn from the
//! fakes holds for SQLite and the disk too. The log store's suite also runs against
//! PostgreSQL, on a server this test binary starts itself (`support::postgres`).

mod support;

use std::sync::Arc;

use streamhub_conf::DatabaseConf;
use streamhub_data::Database;
use tempfile::TempDir;

/// A migrated database in a fresh temporary directory (removed when the directory is dropped).
async fn database() -> (Database, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = Database::open(&DatabaseConf {
        source: format!("sqlite://{}", dir.path().join("streamhub.db").display()),
        ..DatabaseConf::default()
    })
    .await
    .expect("open the database");
    (database, dir)
}

mod file_store {
    use streamhub_biz::Lifecycle;
    use streamhub_biz::files::FileStore;
    use streamhub_data::SqliteFileStore;

    use super::*;

    async fn sqlite_file_store() -> (Arc<dyn FileStore>, TempDir) {
        let (database, dir) = database().await;
        let root = dir.path().join("files");
        std::fs::create_dir_all(&root).expect("storage root");
        let (store, _) = SqliteFileStore::open(database, &root, &Lifecycle::new())
            .await
            .expect("open the file store");
        (Arc::new(store), dir)
    }

    streamhub_biz::file_store_contract!(sqlite_file_store);
}

mod document_repo {
    use streamhub_biz::edit::DocumentRepo;
    use streamhub_data::SqliteDocumentRepo;

    use super::*;

    async fn sqlite_document_repo() -> (Arc<dyn DocumentRepo>, (Database, TempDir)) {
        let (database, dir) = database().await;
        (
            Arc::new(SqliteDocumentRepo::new(&database)),
            (database, dir),
        )
    }

    streamhub_biz::document_repo_contract!(sqlite_document_repo);
}

mod log_repo {
    use streamhub_biz::logs::LogRepo;
    use streamhub_data::{PgDatabase, PgLogRepo, SqliteLogRepo};

    use super::*;

    mod sqlite {
        use super::*;

        async fn sqlite_log_repo() -> (Arc<dyn LogRepo>, (Database, TempDir)) {
            let (database, dir) = database().await;
            (
                Arc::new(SqliteLogRepo::new(database.clone())),
                (database, dir),
            )
        }

        streamhub_biz::log_repo_contract!(sqlite_log_repo);
    }

    mod postgres {
        use std::{
            collections::BTreeMap,
            time::{Duration, Instant, SystemTime},
        };

        use sqlx::{Connection as _, PgConnection};
        use streamhub_biz::logs::NewLogEntry;

        use super::*;

        async fn postgres_log_repo() -> (Arc<dyn LogRepo>, PgDatabase) {
            let url = support::postgres::fresh_database().await;
            let database = PgDatabase::open(&url, 16, Duration::from_secs(10))
                .await
                .unwrap_or_else(|err| panic!("open {url}: {err}"));
            (Arc::new(PgLogRepo::new(database.clone())), database)
        }

        streamhub_biz::log_repo_contract!(postgres_log_repo);

        /// How many sessions of this database wait on a lock.
        async fn waiting(observer: &mut PgConnection) -> i64 {
            sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(observer)
            .await
            .expect("pg_stat_activity")
        }

        /// Polls until `count` sessions wait on a lock, for at most 10 s.
        async fn until_waiting(observer: &mut PgConnection, count: i64, what: &str) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while waiting(observer).await < count {
                assert!(Instant::now() < deadline, "{what}: not waiting after 10 s");
                // A poll interval, not a guess: the condition is checked again.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }

        /// The sequencing rule made visible: while one append has taken id N and not
        /// committed, a second append (another connection, as another replica would be) must
        /// not commit N+1. The first append is held by a row that another transaction
        /// inserted under id 1 and has not committed (the unique index makes the first
        /// append's insert wait for it); a second append that took its id without waiting
        /// for the first to commit would finish here with id 2 visible and id 1 not.
        #[tokio::test]
        async fn an_append_waits_for_the_one_before_it_to_commit() {
            let url = support::postgres::fresh_database().await;
            let database = PgDatabase::open(&url, 4, Duration::from_secs(10))
                .await
                .expect("open");
            let repo = PgLogRepo::new(database);
            let mut observer = PgConnection::connect(&url).await.expect("observer");
            let mut blocker = PgConnection::connect(&url).await.expect("blocker");
            sqlx::query("BEGIN")
                .execute(&mut blocker)
                .await
                .expect("begin");
            sqlx::query(
                "INSERT INTO logs (id, service, level, message, timestamp) \
                 VALUES (1, 'blocker', 1, 'holds id 1', 0)",
            )
            .execute(&mut blocker)
            .await
            .expect("hold id 1");

            let entry = || {
                let at = SystemTime::now();
                NewLogEntry::new("s".into(), "INFO", "m".into(), None, BTreeMap::new(), at)
                    .expect("valid")
            };
            let first = tokio::spawn({
                let repo = repo.clone();
                let entry = entry();
                async move { repo.append(vec![entry]).await }
            });
            until_waiting(&mut observer, 1, "the first append").await;
            let mut second = tokio::spawn({
                let repo = repo.clone();
                let entry = entry();
                async move { repo.append(vec![entry]).await }
            });
            tokio::select! {
                done = &mut second => panic!(
                    "the second append finished while the first had not committed: {done:?}"
                ),
                () = until_waiting(&mut observer, 2, "the second append") => {}
            }
            let visible: Vec<i64> = sqlx::query_scalar("SELECT id FROM logs ORDER BY id")
                .fetch_all(&mut observer)
                .await
                .expect("visible ids");
            assert!(visible.is_empty(), "nothing committed yet, saw {visible:?}");

            sqlx::query("ROLLBACK")
                .execute(&mut blocker)
                .await
                .expect("rollback");
            let first = first.await.expect("joined").expect("first append");
            let second = second.await.expect("joined").expect("second append");
            assert_eq!(
                (first[0].id, second[0].id),
                (1, 2),
                "ids in the order the appends began"
            );
        }
    }
}
