//! The contract suites of the biz storage traits, run against this crate's implementations:
//! the same tests the hubs' in-memory fakes pass, so what the hubs' tests learn from the
//! fakes holds for SQLite and the disk too.

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
