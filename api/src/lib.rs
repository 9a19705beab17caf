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

// Compat: the seeds' other services, served beside `StreamingService` so their existing
// clients work unchanged. Each package keeps the seed's names and numbers.

/// Package `chat`: seed 000's `ChatService`.
pub mod chat {
    #![allow(
        unreachable_pub,
        missing_debug_implementations,
        clippy::all,
        clippy::pedantic,
        rust_2018_idioms
    )]
    tonic::include_proto!("chat");
}

/// Package `proto`: seed 002's `StreamService` (List, Record, Route).
pub mod proto {
    #![allow(
        unreachable_pub,
        missing_debug_implementations,
        clippy::all,
        clippy::pedantic,
        rust_2018_idioms
    )]
    tonic::include_proto!("proto");
}

/// Package `service.v1`: seed 003's Chatify `Service`.
pub mod service {
    /// Package `service.v1`.
    pub mod v1 {
        #![allow(
            unreachable_pub,
            missing_debug_implementations,
            clippy::all,
            clippy::pedantic,
            rust_2018_idioms
        )]
        tonic::include_proto!("service.v1");
    }
}

/// Package `helloworld`: seed 004's `ServerStreamServer`, `ClientStreamServer` and
/// `AllStreamServer`.
pub mod helloworld {
    #![allow(
        unreachable_pub,
        missing_debug_implementations,
        clippy::all,
        clippy::pedantic,
        rust_2018_idioms
    )]
    tonic::include_proto!("helloworld");
}

/// The protobuf packages of the compat services, so the server can leave them out of
/// reflection when `compat.enabled` is false.
pub const COMPAT_PACKAGES: [&str; 4] = ["chat", "proto", "service.v1", "helloworld"];

/// Encoded `FileDescriptorSet` of every proto in `api/proto` and the files they import.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/streamhub_descriptor.bin"));

/// The canonical name of a status code (`NOT_FOUND`), as the gRPC spec, grpcurl and
/// OpenTelemetry's `rpc.grpc.status_code` spell it; tonic only offers a description.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
