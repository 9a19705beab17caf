//! The domain of streamhub, free of transport and storage.
//!
//! Rules are plain functions over plain types; shared live state (rooms, sessions, documents,
//! the market, log followers) lives in hubs that own their tasks; storage is reached only
//! through the repository traits declared here and implemented in `streamhub-data`. This crate
//! depends on no tonic, prost or sqlx, and the compiler keeps it that way.

pub mod auth;
pub mod batch;
pub mod chat;
pub mod compat;
pub mod edit;
mod error;
pub mod files;
pub mod game;
mod lifecycle;
pub mod logs;
pub mod market;
mod mutex;
pub mod sensors;
mod splitmix;
mod transfer;

pub use error::{Error, Result};
pub use lifecycle::Lifecycle;
pub use splitmix::SplitMix64;
pub use transfer::TransferStats;
