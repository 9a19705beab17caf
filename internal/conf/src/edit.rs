//! `edit`: bounds of collaborative editing.

use serde::Deserialize;

use crate::load::{ConfError, all_greater_than_zero};

/// `edit`: collaborative editing.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EditConf {
    /// Operations kept per document to transform late edits against; an edit based on an
    /// older revision gets `FAILED_PRECONDITION` (the client re-joins for a fresh snapshot).
    pub op_log: usize,
    /// Documents open at once; joining another gets `RESOURCE_EXHAUSTED`.
    pub max_open_documents: usize,
    /// Updates queued per stream; a stream that falls this far behind is cut off with
    /// `RESOURCE_EXHAUSTED`.
    pub subscriber_queue: usize,
    /// Bytes of updates (each counted at its size on the wire, whole text included) waiting
    /// for one stream; a stream with more waiting is cut off with `RESOURCE_EXHAUSTED`. Bounds
    /// what one slow reader pins in memory, whatever the document's size.
    pub subscriber_queue_bytes: usize,
    /// Largest document, in chars; an edit that would exceed it gets `RESOURCE_EXHAUSTED`.
    pub max_document_chars: usize,
}

impl Default for EditConf {
    fn default() -> Self {
        Self {
            op_log: 10_000,
            max_open_documents: 10_000,
            subscriber_queue: 1024,
            subscriber_queue_bytes: 64 * 1024 * 1024,
            max_document_chars: 1_000_000,
        }
    }
}

impl EditConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        all_greater_than_zero([
            ("edit.op_log", self.op_log),
            ("edit.max_open_documents", self.max_open_documents),
            ("edit.subscriber_queue", self.subscriber_queue),
            ("edit.subscriber_queue_bytes", self.subscriber_queue_bytes),
            ("edit.max_document_chars", self.max_document_chars),
        ])
    }
}
