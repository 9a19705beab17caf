//! Start-up recovery: what the last run left unfinished, found and cleaned before anything is
//! served.
//!
//! Whatever a crash can leave unfinished has a row of its own (`uploads`, `file_deletions`)
//! or lies in `tmp/`, so recovery looks at those only: its cost grows with the uploads in
//! progress, not with the files stored.

use std::{collections::HashSet, fs, time::SystemTime};

use streamhub_biz::{Result, files::FileId};

use super::{
    SqliteFileStore,
    disk::{blocking, remove_if_present},
    sql::nanos,
    storage,
};

/// What start-up found and cleaned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Resumable uploads kept for their clients to continue.
    pub uploads_kept: u64,
    /// Uploads removed: one-shot uploads cut off by the last stop, and expired ones.
    pub uploads_removed: u64,
    /// Files in the partial-upload directory that belonged to no upload.
    pub orphans_removed: u64,
    /// Deletions a crash interrupted after the file's row went: their bytes are removed now.
    pub deletions_finished: u64,
}

impl SqliteFileStore {
    pub(super) async fn recover(&self) -> Result<Recovered> {
        let mut recovered = Recovered::default();
        let now = nanos(SystemTime::now());
        let sessions = self.select_uploads().await?;
        let mut kept = HashSet::new();
        for session in sessions {
            let live = session.upload_id.is_some() && nanos(session.expires_at) > now;
            let committed = self.select_file(&session.file_id).await?.is_some();
            let partial = self.partial_path(&session.file_id);
            let stored = self.stored_path(&session.file_id);
            let offset = session.durable_offset;
            // A crash between rename and row commit leaves the bytes in the store: a live
            // upload gets them back, anything else loses them.
            let keep = blocking(move || {
                let partial_len = fs::metadata(&partial).map(|meta| meta.len()).ok();
                if live && !committed && partial_len.is_none() && stored.is_file() {
                    fs::rename(&stored, &partial).map_err(|err| storage("restore partial", err))?;
                    return Ok(true);
                }
                if live && partial_len.is_some_and(|len| len >= offset) {
                    return Ok(true);
                }
                remove_if_present(&partial).map_err(|err| storage("remove partial", err))?;
                if !committed {
                    remove_if_present(&stored).map_err(|err| storage("remove stored", err))?;
                }
                Ok(false)
            })
            .await?;
            if keep {
                kept.insert(format!("{}.part", session.file_id));
                recovered.uploads_kept += 1;
            } else {
                self.delete_upload(&session.file_id).await?;
                recovered.uploads_removed += 1;
            }
        }
        let tmp = self.inner.tmp.clone();
        recovered.orphans_removed = blocking(move || {
            let mut removed = 0;
            for entry in fs::read_dir(&tmp).map_err(|err| storage("list tmp", err))? {
                let entry = entry.map_err(|err| storage("list tmp", err))?;
                if kept.contains(entry.file_name().to_string_lossy().as_ref()) {
                    continue;
                }
                let path = entry.path();
                let removal = if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removal.map_err(|err| storage("remove orphan", err))?;
                removed += 1;
            }
            Ok(removed)
        })
        .await?;
        recovered.deletions_finished = self.finish_deletions().await?;
        Ok(recovered)
    }

    /// Removes the bytes of every deletion a crash interrupted, then its record.
    async fn finish_deletions(&self) -> Result<u64> {
        let pending = self.select_deletions().await?;
        let mut finished = 0;
        for id in pending {
            match FileId::parse("file_id", &id) {
                Ok(file_id) => self.remove_bytes(&file_id).await?,
                Err(_) => tracing::warn!(file_id = %id, "a deletion record names no file id"),
            }
            self.forget_deletion(&id).await?;
            finished += 1;
        }
        Ok(finished)
    }
}
