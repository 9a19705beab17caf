//! What collaborative editing needs from storage; `streamhub-data` implements it on SQLite.

use futures_util::future::BoxFuture;

use super::document::{AppliedEdit, LoggedOp};
use crate::Result;

/// A document as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub text: String,
    pub revision: i64,
    /// The most recent operations, oldest first.
    pub recent: Vec<LoggedOp>,
}

/// Persistence of documents and their applied operations.
pub trait DocumentRepo: Send + Sync + std::fmt::Debug + 'static {
    /// The document `id` with at most `recent_ops` of its latest operations, if it exists.
    fn load<'a>(
        &'a self,
        id: &'a str,
        recent_ops: usize,
    ) -> BoxFuture<'a, Result<Option<StoredDocument>>>;

    /// Durably records `edits` (consecutive revisions, oldest first) and the resulting `text`
    /// in one transaction, keeping only the last `keep_ops` operations of the document.
    fn append<'a>(
        &'a self,
        id: &'a str,
        text: &'a str,
        edits: &'a [AppliedEdit],
        keep_ops: usize,
    ) -> BoxFuture<'a, Result<()>>;
}
