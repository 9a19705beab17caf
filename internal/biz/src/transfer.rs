//! [`TransferStats`]: bytes moved by file uploads and downloads, counted for metrics.
//!
//! The file hub holds a clone of the application's `TransferStats` and counts every chunk it
//! writes ([`TransferStats::uploaded_bytes`]) and sends ([`TransferStats::downloaded_bytes`]);
//! the metrics layer reports both (`streamhub.files.uploaded` / `downloaded`). Counters, not
//! the domain, so biz stays free of any metrics library.

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
