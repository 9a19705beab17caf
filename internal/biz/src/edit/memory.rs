//! [`MemoryDocumentRepo`]: an in-memory [`DocumentRepo`] for the hub's tests, with the things
//! SQLite cannot be told to do on cue: fail (refused, or unavailable for a while), hold a write
//! until the test lets it go (to line up a race deterministically), and tell which edits each
//! write carried. It keeps the promises of the real repository: the suite in
//! [`super::contract`] runs against both.

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
    /// A failing append fails as [`Error::StorageUnavailable`] rather than [`Error::Storage`].
    unavailable: AtomicBool,
    /// While set, every `load` fails as unavailable.
    fail_loads: AtomicBool,
    /// The revisions of each append that succeeded, in order.
    saved: Mutex<Vec<Vec<i64>>>,
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
            unavailable: AtomicBool::new(false),
            fail_loads: AtomicBool::new(false),
            saved: Mutex::default(),
            append_gate: Mutex::default(),
            appends_started: Semaphore::new(0),
        })
    }

    pub(crate) fn fail_appends(&self, fail: bool) {
        self.fail_appends.store(fail, Ordering::SeqCst);
    }

    /// Makes failing appends fail as unavailable (`true`: busy, unreachable) or as refused.
    pub(crate) fn fail_as_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    pub(crate) fn fail_loads(&self, fail: bool) {
        self.fail_loads.store(fail, Ordering::SeqCst);
    }

    /// The revisions each successful append saved, one list per append.
    pub(crate) fn saved_revisions(&self) -> Vec<Vec<i64>> {
        crate::mutex::lock(&self.saved).clone()
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
        crate::mutex::lock(&self.documents)
    }

    fn lock_gate(&self) -> std::sync::MutexGuard<'_, Option<Arc<Semaphore>>> {
        crate::mutex::lock(&self.append_gate)
    }
}

impl DocumentRepo for MemoryDocumentRepo {
    fn load<'a>(
        &'a self,
        id: &'a str,
        recent_ops: usize,
    ) -> BoxFuture<'a, Result<Option<StoredDocument>>> {
        Box::pin(async move {
            if self.fail_loads.load(Ordering::SeqCst) {
                return Err(Error::StorageUnavailable(FAILURE_DETAIL.to_owned()));
            }
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
                let detail = FAILURE_DETAIL.to_owned();
                return Err(if self.unavailable.load(Ordering::SeqCst) {
                    Error::StorageUnavailable(detail)
                } else {
                    Error::Storage(detail)
                });
            }
            if edits.is_empty() {
                return Ok(());
            }
            crate::mutex::lock(&self.saved).push(edits.iter().map(|edit| edit.revision).collect());
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

/// The contract every repository keeps, run against this one.
mod contract {
    use std::sync::Arc;

    use super::MemoryDocumentRepo;
    use crate::edit::DocumentRepo;

    async fn memory_repo() -> (Arc<dyn DocumentRepo>, ()) {
        (MemoryDocumentRepo::new(), ())
    }

    crate::document_repo_contract!(memory_repo);
}
