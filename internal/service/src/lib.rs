//! The transport layer: tonic trait implementations that translate protobuf to biz calls and
//! biz results back, and nothing more. Field validation that needs no state happens in the
//! conversions; every [`streamhub_biz::Error`] becomes a status in one place ([`status`]).

mod batch;
mod chat;
pub mod compat;
mod edit;
mod files;
mod game;
mod logs;
mod market;
mod request_stream;
mod sensors;
mod shutdown;
mod status;
mod stream;
mod stream_identity;
mod streaming;

pub use shutdown::{Shutdown, shutting_down};
pub use status::to_status;
pub use stream::{ResponseStream, until_stopped};
pub use streaming::{StreamingDomain, StreamingService};

/// The caller the server's authentication layer put on the request; anonymous when
/// authentication is off.
pub(crate) fn caller_of<T>(request: &tonic::Request<T>) -> streamhub_biz::auth::Caller {
    request
        .extensions()
        .get::<streamhub_biz::auth::Caller>()
        .cloned()
        .unwrap_or_default()
}

/// A protobuf timestamp for a server clock reading.
pub(crate) fn timestamp(at: std::time::SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(at)
}
