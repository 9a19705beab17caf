//! Assembly of the gRPC server: which services are served, health and reflection, the
//! per-call policies the gRPC spec asks for where tonic falls short, HTTP/2 limits, and a
//! graceful shutdown that never waits forever.
//!
//! Like mini-redis, [`run`] takes an already-bound listener and a shutdown future, so the
//! binary passes a signal and tests pass a oneshot on `127.0.0.1:0`.

mod auth;
mod call;
mod grpc_timeout;
mod health;
mod method_limit;
mod mutex;
mod prometheus;
mod run;
mod telemetry;

pub use health::HealthService;
pub use prometheus::{MetricsScraper, ScrapeReader, serve_metrics};
pub use run::{ServerError, Services, run};
pub use telemetry::{CODE_KEY, METHOD_KEY, RpcMetrics, RpcTelemetry, UNKNOWN_METHOD};
