//! The transport layer: tonic trait implementations that translate protobuf to biz calls and
//! biz results back, and nothing more. Field validation that needs no state happens in the
//! conversions; every [`streamhub_biz::Error`] becomes a status in one place ([`status`]).

mod chat;
mod game;
mod status;
mod stream;
mod streaming;

pub use status::to_status;
pub use stream::{ResponseStream, until_stopped};
pub use streaming::StreamingService;
