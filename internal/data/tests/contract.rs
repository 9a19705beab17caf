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
        use super::*;

        async fn postgres_log_repo() -> (Arc<dyn LogRepo>, PgDatabase) {
            let url = support::postgres::fresh_database().await;
            let database = PgDatabase::open(&url, 16)
                .await
                .unwrap_or_else(|err| panic!("open {url}: {err}"));
            (Arc::new(PgLogRepo::new(database.clone())), database)
        }

        streamhub_biz::log_repo_contract!(postgres_log_repo);
    }
}
