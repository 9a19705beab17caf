//! Typed configuration for streamhub.
//!
//! One YAML file (or a directory whose `*.yaml` files are merged in name order, as Kratos
//! does) is overlaid with `STREAMHUB__<SECTION>__<KEY>` environment variables and deserialised
//! into [`Config`]. Every struct denies unknown keys and every key has a working default, so a
//! typo fails start-up instead of being ignored. [`Config::load`] turns every problem into one
//! [`ConfError`] whose message names the key.

mod auth;
mod batch;
mod chat;
mod compat;
mod duration;
mod edit;
mod game;
mod load;
mod logs;
mod market;
mod model;
mod sensors;
mod telemetry;
mod testing;

pub use auth::AuthConf;
pub use batch::BatchConf;
pub use chat::ChatConf;
pub use compat::CompatConf;
pub use edit::EditConf;
pub use game::GameConf;
pub use load::{ConfError, ENV_PREFIX};
pub use market::MarketConf;
pub use model::*;
pub use sensors::SensorsConf;
pub use telemetry::{MetricsConf, OtlpConf, TelemetryConf};
