//! Claims on uploads being written: one `upload_id` is written by one stream at a time, and
//! the sweeper never removes an upload that a stream is writing. In memory, because a claim
//! lives exactly as long as the stream that holds it.

use std::{collections::HashSet, sync::Arc};

use super::Inner;
use crate::{
    Error, Result,
    files::{FileId, UploadId, UploadSession},
    mutex::lock,
};

/// Uploads being written right now.
#[derive(Default)]
pub(super) struct Claims {
    upload_ids: HashSet<UploadId>,
    file_ids: HashSet<FileId>,
}

/// Releases its claims when dropped, whichever way the upload ends.
pub(super) struct Claim {
    inner: Arc<Inner>,
    upload_id: Option<UploadId>,
    file_id: Option<FileId>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claims = lock(&self.inner.claims);
        if let Some(id) = &self.upload_id {
            claims.upload_ids.remove(id);
        }
        if let Some(id) = &self.file_id {
            claims.file_ids.remove(id);
        }
    }
}

impl Inner {
    /// A claim on nothing yet: a one-shot upload, whose file id comes with its session.
    pub(super) fn claim_nothing_yet(self: &Arc<Self>) -> Claim {
        Claim {
            inner: Arc::clone(self),
            upload_id: None,
            file_id: None,
        }
    }

    pub(super) fn claim_upload_id(self: &Arc<Self>, upload_id: &UploadId) -> Result<Claim> {
        let mut claims = lock(&self.claims);
        if !claims.upload_ids.insert(upload_id.clone()) {
            return Err(Error::UploadBusy(upload_id.to_string()));
        }
        Ok(Claim {
            inner: Arc::clone(self),
            upload_id: Some(upload_id.clone()),
            file_id: None,
        })
    }

    pub(super) fn claim_file_id(&self, claim: &mut Claim, file_id: &FileId) {
        let mut claims = lock(&self.claims);
        claims.file_ids.insert(file_id.clone());
        claim.file_id = Some(file_id.clone());
    }

    pub(super) fn claim_for_sweep(self: &Arc<Self>, session: &UploadSession) -> Option<Claim> {
        let mut claims = lock(&self.claims);
        if claims.file_ids.contains(&session.file_id)
            || session
                .upload_id
                .as_ref()
                .is_some_and(|id| claims.upload_ids.contains(id))
        {
            return None;
        }
        claims.file_ids.insert(session.file_id.clone());
        if let Some(id) = &session.upload_id {
            claims.upload_ids.insert(id.clone());
        }
        Some(Claim {
            inner: Arc::clone(self),
            upload_id: session.upload_id.clone(),
            file_id: Some(session.file_id.clone()),
        })
    }
}
