//! The one mapping from domain errors to gRPC statuses.

use streamhub_biz::Error;
use tonic::Status;

/// Maps a domain error to the status the client sees. Storage details are logged here and
/// replaced by a generic message, so no path or SQL reaches a client.
pub fn to_status(error: Error) -> Status {
    match error {
        Error::ShuttingDown => Status::unavailable("server is shutting down"),
        Error::Storage(detail) => {
            tracing::error!(%detail, "storage failure");
            Status::internal("internal storage error; the server log has the details")
        }

        // logs
        error @ (Error::InvalidLogEntry { .. } | Error::UnknownLevel(_)) => {
            Status::invalid_argument(error.to_string())
        }
    }
}
