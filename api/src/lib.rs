//! The wire contract of streamhub, generated from `proto/` at build time.
//!
//! Every other crate speaks protobuf through this one; `internal/biz` never sees it. The
//! encoded descriptor set is exported so the server's reflection service can describe every
//! message and method, including the well-known types they import.

#![allow(missing_docs)]

/// Package `streaming`: seed 001's `StreamingService` and streamhub's extensions.
pub mod streaming {
    #![allow(
        unreachable_pub,
        missing_debug_implementations,
        clippy::all,
        clippy::pedantic,
        rust_2018_idioms
    )]
    tonic::include_proto!("streaming");
}

/// Encoded `FileDescriptorSet` of every proto in `api/proto` and the files they import.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/streamhub_descriptor.bin"));
