//! Persistence for streamhub: the SQLite database, the file store, and (not wired in yet)
//! the PostgreSQL store.
//!
//! [`Data::open`] prepares both on start-up (creating directories, applying the embedded
//! migrations) and the repositories built from it implement the traits `streamhub-biz`
//! declares. Nothing outside this crate sees SQL or file-system layout.

mod chat;
mod database;
mod documents;
mod files;
mod logs;
mod mutex;
mod postgres;

use std::path::{Path, PathBuf};

pub use chat::SqliteRoomRepo;
pub use database::Database;
pub use documents::SqliteDocumentRepo;
pub use files::{Recovered, SqliteFileStore};
pub use logs::SqliteLogRepo;
pub use postgres::{PgDatabase, PgLogRepo};
use streamhub_conf::DataConf;

/// Why the data layer could not start.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data.database.source: cannot open {source_url}: {reason}")]
    Open { source_url: String, reason: String },
    #[error("data.database.source: applying migrations failed: {0}")]
    Migrate(String),
    #[error("data.storage.root: recovering the file store failed: {0}")]
    Recover(String),
    #[error("{key}: cannot create directory {path}: {reason}")]
    Directory {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// The opened data layer: one database pool and the storage root.
#[derive(Debug, Clone)]
pub struct Data {
    database: Database,
    storage_root: PathBuf,
}

impl Data {
    /// Opens the database (migrated) and creates the storage root.
    pub async fn open(conf: &DataConf) -> Result<Self, DataError> {
        let database = Database::open(&conf.database).await?;
        let storage_root = conf.storage.root.clone();
        create_dir(&storage_root, "data.storage.root").await?;
        Ok(Self {
            database,
            storage_root,
        })
    }

    /// The database, for repositories.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The directory that holds stored files.
    pub fn storage_root(&self) -> &Path {
        &self.storage_root
    }

    /// Closes the pool, waiting for connections to return, so SQLite checkpoints its WAL.
    pub async fn close(&self) {
        self.database.close().await;
    }
}

pub(crate) async fn create_dir(path: &Path, key: &'static str) -> Result<(), DataError> {
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|err| DataError::Directory {
            key,
            path: path.to_path_buf(),
            reason: err.to_string(),
        })
}
