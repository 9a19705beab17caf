//! [`MemoryDocumentRepo`]: an in-memory [`DocumentRepo`] for the hub's tests, with the two
//! things SQLite cannot be told to do on cue: fail, and hold a write until the test lets it
//! go (to line up a race deterministically).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;

use super::{
    document::{AppliedEdit, LoggedOp},
    repo::{DocumentRepo, StoredDocument},
};
use crate::{Error, Result};

/// Documents in a map; see the module doc.
#[derive(Debug)]
pub(crate) struct MemoryDocumentRepo {
    documents: Mutex<HashMap<String, StoredDocument>>,
    /// While set, every `append` fails (after passing the gate) with a detail a client must
    /// never see.
    fail_appends: AtomicBool,
    /// When set, every `append` first takes one permit: a test holds writes by giving none.
    append_gate: Mutex<Option<Arc<Semaphore>>>,
    /// Appends that reached the gate (whether or not they passed it yet).
    appends_started: Semaphore,
}

/// What a failing append reports; it stands for SQL text and file paths.
pub(crate) const FAILURE_DETAIL: &str = "disk I/O error at /var/lib/streamhub/streamhub.db";

impl MemoryDocumentRepo {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            documents: Mutex::default(),
            fail_appends: AtomicBool::new(false),
            append_gate: Mutex::default(),
            appends_started: Semaphore::new(0),
        })
    }

    pub(crate) fn fail_appends(&self, fail: bool) {
        self.fail_appends.store(fail, Ordering::SeqCst);
    }

    /// Makes every later `append` wait for a permit of the returned semaphore.
    pub(crate) fn gate_appends(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.lock_gate() = Some(Arc::clone(&gate));
        gate
    }

    /// Waits until an `append` has started (reached the gate).
    pub(crate) async fn append_started(&self) {
        if let Ok(permit) = self.appends_started.acquire().await {
            permit.forget();
        }
    }

    pub(crate) fn stored(&self, id: &str) -> Option<StoredDocument> {
        self.lock_documents().get(id).cloned()
    }

    fn lock_documents(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredDocument>> {
        self.documents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_gate(&self) -> std::sync::MutexGuard<'_, Option<Arc<Semaphore>>> {
        self.append_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl DocumentRepo for MemoryDocumentRepo {
    fn load<'a>(
        &'a self,
        id: &'a str,
        recent_ops: usize,
    ) -> BoxFuture<'a, Result<Option<StoredDocument>>> {
        Box::pin(async move {
            Ok(self.lock_documents().get(id).cloned().map(|mut stored| {
                let skip = stored.recent.len().saturating_sub(recent_ops);
                stored.recent.drain(..skip);
                stored
            }))
        })
    }

    fn append<'a>(
        &'a self,
        id: &'a str,
        text: &'a str,
        edits: &'a [AppliedEdit],
        keep_ops: usize,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.appends_started.add_permits(1);
            let gate = self.lock_gate().clone();
            if let Some(gate) = gate {
                let permit = gate
                    .acquire()
                    .await
                    .map_err(|_| Error::Storage("the test closed the append gate".to_owned()))?;
                permit.forget();
            }
            if self.fail_appends.load(Ordering::SeqCst) {
                return Err(Error::Storage(FAILURE_DETAIL.to_owned()));
            }
            let mut documents = self.lock_documents();
            let stored = documents.entry(id.to_owned()).or_insert(StoredDocument {
                text: String::new(),
                revision: 0,
                recent: Vec::new(),
            });
            stored.text = text.to_owned();
            for edit in edits {
                stored.revision = edit.revision;
                stored.recent.push(LoggedOp {
                    revision: edit.revision,
                    op: edit.op.clone(),
                });
            }
            let skip = stored.recent.len().saturating_sub(keep_ops);
            stored.recent.drain(..skip);
            Ok(())
        })
    }
}
