//! [`TransferStats`]: bytes moved by file uploads and downloads, counted for metrics.
//!
//! The hook for the file feature: its hub takes a clone of the application's `TransferStats`
//! and calls [`TransferStats::uploaded_bytes`] when an upload's bytes are stored and
//! [`TransferStats::downloaded_bytes`] when a download's bytes are sent. The metrics layer
//! already reports both (`streamhub.files.uploaded` / `downloaded`); until the file feature
//! records into them they stay at 0.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// Running totals of file bytes. Cheap to clone; every clone counts into the same totals.
#[derive(Debug, Clone, Default)]
pub struct TransferStats {
    totals: Arc<Totals>,
}

#[derive(Debug, Default)]
struct Totals {
    uploaded: AtomicU64,
    downloaded: AtomicU64,
}

impl TransferStats {
    /// Counts `bytes` of an upload as stored.
    pub fn uploaded_bytes(&self, bytes: u64) {
        self.totals.uploaded.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` of a download as sent.
    pub fn downloaded_bytes(&self, bytes: u64) {
        self.totals.downloaded.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes uploaded since start.
    pub fn uploaded(&self) -> u64 {
        self.totals.uploaded.load(Ordering::Relaxed)
    }

    /// Bytes downloaded since start.
    pub fn downloaded(&self) -> u64 {
        self.totals.downloaded.load(Ordering::Relaxed)
    }
}
