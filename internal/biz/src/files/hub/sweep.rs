//! The sweeper: removes resumable uploads whose time ran out, never one a stream is writing.

use std::time::{Duration, SystemTime};

use super::FileHub;
use crate::Result;

/// Sessions the sweeper removes per store query.
const SWEEP_BATCH: u32 = 256;

impl FileHub {
    /// Starts removing expired resumable uploads every `interval` until shutdown. Failures
    /// are logged and retried at the next run.
    pub fn spawn_sweeper(&self, interval: Duration) {
        let hub = self.clone();
        self.inner.lifecycle.spawn_every(interval, move || {
            let hub = hub.clone();
            async move {
                match hub.sweep(SystemTime::now()).await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "removed expired uploads"),
                    Err(err) => tracing::warn!(%err, "sweeping expired uploads failed"),
                }
            }
        });
    }

    /// Removes the sessions expired at `now` that no stream is writing; returns how many.
    pub async fn sweep(&self, now: SystemTime) -> Result<usize> {
        let mut removed = 0;
        loop {
            let expired = self.inner.store.expired_uploads(now, SWEEP_BATCH).await?;
            let batch_len = expired.len();
            let mut skipped = 0;
            for session in expired {
                let Some(_claim) = self.inner.claim_for_sweep(&session) else {
                    skipped += 1;
                    continue;
                };
                self.inner.store.discard_upload(&session.file_id).await?;
                removed += 1;
            }
            // A batch of only busy sessions would come back forever: stop.
            if batch_len < SWEEP_BATCH as usize || skipped == batch_len {
                return Ok(removed);
            }
        }
    }
}
