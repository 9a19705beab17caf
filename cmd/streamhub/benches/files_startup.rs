//! Start-up cost of the file store with many stored files: how long opening the data layer
//! and the file store (its crash recovery) takes when the database already holds
//! 1,000,000 committed files. Then, on that store, the lookups names bring: the newest file
//! of a name, and one ListFiles page (100) for a prefix matching 1% and 100% of the files.
//! Prints its figures; asserts only that every row survived and the lookups found files.
//!
//! Rows go straight into SQLite (one recursive INSERT), and each row gets its (empty) bytes
//! at `ab/cd/<id>` so the store looks as it would after real uploads. The store is then
//! opened twice, each time as the server does on start-up: `Data::open` (pool and
//! migrations), then `SqliteFileStore::open` (recovery).
//!
//! Run with `cargo bench -p streamhub --bench files_startup`. Set
//! `STREAMHUB_BENCH_STORED_FILES` for another count; `STREAMHUB_BENCH_STARTUP_DIR` to build
//! the store in a directory of your choice (it must be empty or absent; it is kept).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use sqlx::{
    Connection as _, SqliteConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode},
};
use streamhub_biz::{
    Lifecycle,
    files::{FileStore as _, NamePrefix},
};
use streamhub_conf::{DataConf, DatabaseConf, StorageConf};
use streamhub_data::{Data, SqliteFileStore};

const COUNT_ENV: &str = "STREAMHUB_BENCH_STORED_FILES";
const DIR_ENV: &str = "STREAMHUB_BENCH_STARTUP_DIR";
const DEFAULT_COUNT: u64 = 1_000_000;
const OPENS: usize = 2;

fn main() {
    let count = std::env::var(COUNT_ENV)
        .ok()
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(DEFAULT_COUNT);
    let temp;
    let dir = match std::env::var_os(DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir().expect("temporary directory");
            temp.path().to_path_buf()
        }
    };
    let conf = DataConf {
        database: DatabaseConf {
            source: format!("sqlite://{}", dir.join("streamhub.db").display()),
            ..DatabaseConf::default()
        },
        storage: StorageConf {
            root: dir.join("files"),
            ..StorageConf::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // The first open creates the schema the rows go into.
        let data = Data::open(&conf).await.expect("create the database");
        data.close().await;

        let started = Instant::now();
        insert_rows(&dir.join("streamhub.db"), count).await;
        println!(
            "files_startup: inserted {count} file rows in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        let stored = ids(&dir.join("streamhub.db")).await;
        let root = conf.storage.root.clone();
        tokio::task::spawn_blocking(move || write_bytes(&root, &stored))
            .await
            .expect("writer thread");
        println!(
            "files_startup: wrote their {count} (empty) files in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        for open in 1..=OPENS {
            let started = Instant::now();
            let data = Data::open(&conf).await.expect("open the data layer");
            let data_open = started.elapsed();
            let store_started = Instant::now();
            let lifecycle = Lifecycle::new();
            let (store, recovered) =
                SqliteFileStore::open(data.database().clone(), data.storage_root(), &lifecycle)
                    .await
                    .expect("open the file store");
            let store_open = store_started.elapsed();
            println!(
                "files_startup: start {open} with {count} stored files: data layer {}, \
                 file store open + recovery {}, total {} ({recovered:?})",
                millis(data_open),
                millis(store_open),
                millis(started.elapsed()),
            );
            if open == OPENS {
                lookups(&store).await;
            }
            drop(store);
            assert!(
                lifecycle.wait(std::time::Duration::from_secs(60)).await,
                "the file store's threads end with it"
            );
            data.close().await;
        }
        let left = ids(&dir.join("streamhub.db")).await.len() as u64;
        assert_eq!(left, count, "every stored file is still there");
    });
}

/// The newest file of one name, and a first page for a narrow and a wide prefix.
async fn lookups(store: &SqliteFileStore) {
    let started = Instant::now();
    let found = store
        .newest_named("reports/7/report-7.txt")
        .await
        .expect("look up a name");
    assert!(found.is_some(), "the name exists");
    println!(
        "files_startup: newest file of a name: {}",
        millis(started.elapsed())
    );
    for text in ["reports/7/", "reports/"] {
        let prefix = NamePrefix::parse(text).expect("valid").expect("set");
        let started = Instant::now();
        let page = store
            .list(0, 100, Some(&prefix))
            .await
            .expect("list a prefix");
        assert_eq!(page.len(), 100, "a full page for {text}");
        println!(
            "files_startup: first page of 100 for prefix {text:?}: {}",
            millis(started.elapsed())
        );
    }
}

fn millis(elapsed: Duration) -> String {
    format!("{:.1} ms", elapsed.as_secs_f64() * 1000.0)
}

async fn connect(db: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(db)
        .journal_mode(SqliteJournalMode::Wal);
    SqliteConnection::connect_with(&options)
        .await
        .expect("connect to the bench database")
}

/// `count` rows in one statement. Ids are 32 hex digits whose first four spread over the
/// 65,536 shard directories as random ids do (a multiplicative hash of the row number).
async fn insert_rows(db: &Path, count: u64) {
    let mut connection = connect(db).await;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO files (id, name, size, sha256, created_at) \
         SELECT printf('%08x%024x', (i * 2654435761) % 4294967296, i), \
                printf('reports/%d/report-%d.txt', i % 100, i), \
                0, \
                'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', \
                1764000000000000000 + i \
         FROM n",
    )
    .bind(i64::try_from(count).expect("count fits i64"))
    .execute(&mut connection)
    .await
    .expect("insert the rows");
    connection.close().await.expect("close");
}

async fn ids(db: &Path) -> Vec<String> {
    let mut connection = connect(db).await;
    let ids = sqlx::query_scalar("SELECT id FROM files")
        .fetch_all(&mut connection)
        .await
        .expect("read the ids");
    connection.close().await.expect("close");
    ids
}

/// An empty file at each id's place in the store, as `ab/cd/<id>`.
fn write_bytes(root: &Path, ids: &[String]) {
    for id in ids {
        let shard = root.join(&id[0..2]).join(&id[2..4]);
        let path = shard.join(id);
        if std::fs::File::create(&path).is_err() {
            std::fs::create_dir_all(&shard).expect("create a shard directory");
            std::fs::File::create(&path).expect("create a stored file");
        }
    }
}
