//! The one mapping from domain errors to gRPC statuses.

use streamhub_biz::Error;
use tonic::{Code, Status};

/// Maps a domain error to the status the client sees. Storage details are logged here and
/// replaced by a generic message, so no path or SQL reaches a client.
pub fn to_status(error: Error) -> Status {
    match error {
        Error::ShuttingDown => Status::unavailable("server is shutting down"),
        Error::NotTheCaller { .. } => Status::permission_denied(error.to_string()),
        // Collaborative editing.
        Error::RevisionAhead { .. } | Error::EditOutOfRange(_) => {
            Status::invalid_argument(error.to_string())
        }
        Error::RevisionTooOld { .. } => Status::failed_precondition(error.to_string()),
        Error::DocumentTooLarge { .. }
        | Error::UpdateTooLarge { .. }
        | Error::DocumentTooLargeToSend { .. }
        | Error::TooManyDocuments { .. }
        | Error::EditorTooSlow => Status::resource_exhausted(error.to_string()),
        Error::DocumentNotSaved {
            store_unavailable: true,
            ..
        } => Status::unavailable(error.to_string()),
        Error::DocumentNotSaved { .. } => Status::internal(error.to_string()),
        Error::DocumentKeptClosing { .. } => Status::unavailable(error.to_string()),
        Error::Storage(detail) => {
            tracing::error!(%detail, "storage failure");
            Status::internal("internal storage error; the server log has the details")
        }
        Error::StorageUnavailable(detail) => {
            tracing::warn!(%detail, "storage unavailable");
            Status::unavailable("storage is unavailable right now; try again")
        }
        // compat: the seeds' small services
        error @ (Error::CompatSlowConsumer { .. } | Error::CompatReplyTooLarge { .. }) => {
            Status::resource_exhausted(error.to_string())
        }

        // --- market, sensors, batch ---
        Error::InvalidStockRequest(message) => Status::invalid_argument(message),
        error @ (Error::MarketFull { .. }
        | Error::TooManySensors { .. }
        | Error::BatchTooLarge { .. }) => Status::resource_exhausted(error.to_string()),

        // logs
        error @ (Error::InvalidLogEntry { .. } | Error::UnknownLevel(_)) => {
            Status::invalid_argument(error.to_string())
        }

        // --- chat and game sessions ---
        Error::MessageTooLong { .. } | Error::UnknownAction(_) | Error::BadParameter { .. } => {
            Status::new(Code::InvalidArgument, error.to_string())
        }
        Error::SlowConsumer
        | Error::ChatRateExceeded { .. }
        | Error::TooManyRooms { .. }
        | Error::TooManySessions { .. } => Status::new(Code::ResourceExhausted, error.to_string()),
        Error::PlayerTaken(_) => Status::new(Code::AlreadyExists, error.to_string()),
        Error::NotInSession(_)
        | Error::PlayerOut(_)
        | Error::TargetOut(_)
        | Error::GameFinished => Status::new(Code::FailedPrecondition, error.to_string()),

        // --- files ---
        Error::InvalidFileField { .. } => Status::invalid_argument(error.to_string()),
        Error::FileNotFound(_) | Error::NoFileAtPath | Error::UploadNotFound(_) => {
            Status::not_found(error.to_string())
        }
        Error::OffsetBeyondEnd { .. } => Status::out_of_range(error.to_string()),
        Error::UploadBusy(_) | Error::UploadOffsetMismatch { .. } => {
            Status::failed_precondition(error.to_string())
        }
        Error::ChecksumMismatch { .. }
        | Error::UploadSizeMismatch { .. }
        | Error::StoredFileDamaged(_) => Status::data_loss(error.to_string()),
        Error::FileTooLarge { .. } | Error::StorageFull => {
            Status::resource_exhausted(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_may_come_back_is_unavailable_and_leaks_nothing() {
        let busy = to_status(Error::StorageUnavailable(
            "database is locked at /var/lib/streamhub/streamhub.db".to_owned(),
        ));
        assert_eq!(busy.code(), Code::Unavailable);
        assert!(!busy.message().contains("/var/lib"), "{busy:?}");
        let broken = to_status(Error::Storage("no such table: logs".to_owned()));
        assert_eq!(broken.code(), Code::Internal);
        assert!(!broken.message().contains("logs"), "{broken:?}");

        let not_saved = |store_unavailable| Error::DocumentNotSaved {
            document_id: "d".to_owned(),
            store_unavailable,
        };
        assert_eq!(to_status(not_saved(true)).code(), Code::Unavailable);
        assert_eq!(to_status(not_saved(false)).code(), Code::Internal);
        assert!(to_status(not_saved(true)).message().contains("join again"));
    }
}
