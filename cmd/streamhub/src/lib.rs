//! The wiring of the streamhub server: data → biz → service → server, written out by hand
//! (as Kratos' `wire` would generate it). The binary and the integration tests share it, so
//! tests start exactly the application that ships.

mod app;
mod logging;
pub mod probe;
mod telemetry;

pub use app::Application;
pub use logging::{init_logging, trace_export_layer};
pub use telemetry::Telemetry;
