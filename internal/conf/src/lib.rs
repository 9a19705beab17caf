//! Typed configuration for streamhub.
//!
//! One YAML file (or a directory whose `*.yaml` files are merged in name order, as Kratos
//! does) is overlaid with `STREAMHUB__<SECTION>__<KEY>` environment variables and deserialised
//! into [`Config`]. Every struct denies unknown keys and every key has a working default, so a
//! typo fails start-up instead of being ignored. [`Config::load`] turns every problem into one
//! [`ConfError`] whose message names the key.

mod chat;
mod duration;
mod game;
mod load;
mod model;

pub use chat::ChatConf;
pub use game::GameConf;
pub use load::{ConfError, ENV_PREFIX};
pub use model::*;
