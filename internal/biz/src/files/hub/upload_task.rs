//! The upload task: receives one UploadFile stream into its session and commits it after the
//! client's half-close; a stream that breaks leaves a resumable upload's bytes for a later one.

use std::{pin::pin, sync::Arc, time::SystemTime};

use futures_util::{Stream, StreamExt as _};

use super::{Inner, UploadFailure};
use crate::{
    Error, Result,
    files::{
        FileId, PartialFile, StoredFile, UploadChunk, UploadHeader, UploadProgress, UploadSession,
    },
};

impl Inner {
    fn expiry(&self) -> SystemTime {
        SystemTime::now() + self.limits.resume_ttl
    }

    pub(super) async fn run_upload<S, E>(
        self: Arc<Self>,
        chunks: S,
    ) -> Result<StoredFile, UploadFailure<E>>
    where
        S: Stream<Item = std::result::Result<UploadChunk, E>> + Send,
    {
        let mut chunks = pin!(chunks);
        let first = chunks
            .next()
            .await
            .transpose()
            .map_err(UploadFailure::Stream)?;
        let header = UploadHeader::from_first(first.as_ref(), self.limits.max_file_bytes)?;
        let mut claim = match &header.upload_id {
            Some(id) => self.claim_upload_id(id)?,
            None => self.claim_nothing_yet(),
        };
        let session = self.session_for(header).await?;
        self.claim_file_id(&mut claim, &session.file_id);
        let resumable = session.upload_id.is_some();
        let outcome = self.receive(&session, first, chunks).await;
        let Err((failure, leftover)) = outcome else {
            return outcome.map_err(|(failure, _)| failure);
        };
        let keep = resumable
            && match &failure {
                UploadFailure::Stream(_) => true,
                UploadFailure::Domain(err) => keeps_partial(err),
            };
        if !keep {
            if let Err(err) = self.store.discard_upload(&session.file_id).await {
                tracing::warn!(%err, "discarding a failed upload failed");
            }
            return Err(failure);
        }
        // Everything that arrived becomes durable, so the client resumes from the last byte
        // it sent rather than the last checkpoint.
        let durable = match leftover {
            Leftover::Open(mut partial) => partial.sync().await.map(Some),
            Leftover::Durable(offset) => Ok(Some(offset)),
            Leftover::AsRecorded => Ok(None),
        };
        let recorded = match durable {
            Ok(Some(offset)) => {
                self.store
                    .record_offset(&session.file_id, offset, self.expiry())
                    .await
            }
            Ok(None) => Ok(()),
            Err(err) => Err(err),
        };
        if let Err(err) = recorded {
            // The session still names an offset its bytes cover (offsets are recorded only
            // after a sync), so the upload stays resumable from there.
            tracing::warn!(%err, "recording a broken upload's progress failed");
        }
        Err(failure)
    }

    /// The session this stream writes: a new one, or the live one of its `upload_id`.
    async fn session_for(&self, header: UploadHeader) -> Result<UploadSession> {
        if let Some(upload_id) = &header.upload_id
            && let Some(existing) = self.store.find_upload(upload_id).await?
        {
            if existing.expires_at > SystemTime::now() {
                return Ok(existing);
            }
            // Expired but not swept yet: start afresh.
            self.store.discard_upload(&existing.file_id).await?;
        }
        let session = UploadSession {
            file_id: FileId::generate(),
            upload_id: header.upload_id,
            file_name: header.file_name,
            expected_size: header.expected_size,
            expected_sha256: header.expected_sha256,
            durable_offset: 0,
            expires_at: self.expiry(),
        };
        self.store.create_upload(&session).await?;
        Ok(session)
    }

    /// Writes the stream into the session's partial file and commits it. On failure, hands
    /// back what is left of the bytes so the caller can keep or discard them.
    async fn receive<S, E>(
        &self,
        session: &UploadSession,
        first: Option<UploadChunk>,
        mut chunks: std::pin::Pin<&mut S>,
    ) -> std::result::Result<StoredFile, (UploadFailure<E>, Leftover)>
    where
        S: Stream<Item = std::result::Result<UploadChunk, E>> + Send,
    {
        let mut partial = match self.store.open_partial(session).await {
            Ok(partial) => partial,
            Err(err) => return Err((err.into(), Leftover::AsRecorded)),
        };
        let mut progress = UploadProgress::new(session, self.limits.max_file_bytes);
        let mut checkpoint_at = progress.position() + self.limits.checkpoint_bytes;
        let mut next = first;
        loop {
            if let Some(chunk) = next.take() {
                if let Err(err) = progress.accept(&chunk) {
                    return Err((err.into(), Leftover::Open(partial)));
                }
                let len = chunk.data.len() as u64;
                if let Err(err) = partial.write(chunk.data).await {
                    return Err((err.into(), Leftover::Open(partial)));
                }
                self.transfers.uploaded_bytes(len);
                if session.upload_id.is_some() && progress.position() >= checkpoint_at {
                    checkpoint_at = progress.position() + self.limits.checkpoint_bytes;
                    let recorded = match partial.sync().await {
                        Ok(offset) => {
                            self.store
                                .record_offset(&session.file_id, offset, self.expiry())
                                .await
                        }
                        Err(err) => Err(err),
                    };
                    if let Err(err) = recorded {
                        return Err((err.into(), Leftover::Open(partial)));
                    }
                }
            }
            match chunks.next().await {
                Some(Ok(chunk)) => next = Some(chunk),
                Some(Err(err)) => {
                    return Err((UploadFailure::Stream(err), Leftover::Open(partial)));
                }
                None => break,
            }
        }
        if let Err(err) = progress.finish() {
            return Err((err.into(), Leftover::Open(partial)));
        }
        let written = match partial.finish().await {
            Ok(written) => written,
            Err(err) => return Err((err.into(), Leftover::AsRecorded)),
        };
        if let Err(err) = progress.verify(&written.sha256) {
            return Err((err.into(), Leftover::AsRecorded));
        }
        let size = written.size;
        self.store
            .commit_upload(session, written, SystemTime::now())
            .await
            .map_err(|err| (err.into(), Leftover::Durable(size)))
    }
}

/// What is left of a failed upload's bytes.
enum Leftover {
    /// The partial file is still open: what arrived can be made durable.
    Open(Box<dyn PartialFile>),
    /// Every byte is durable in the partial file: the commit itself failed.
    Durable(u64),
    /// Only what the session last recorded is known to be durable.
    AsRecorded,
}

/// Whether a failed resumable upload keeps what arrived: yes when the client may continue
/// (the stream broke, a chunk broke a protocol rule, the server stops, storage failed for a
/// while, even at the commit); no when the content itself is wrong.
fn keeps_partial(error: &Error) -> bool {
    !matches!(
        error,
        Error::ChecksumMismatch { .. }
            | Error::UploadSizeMismatch { .. }
            | Error::FileTooLarge { .. }
    )
}
