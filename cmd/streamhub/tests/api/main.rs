//! Integration tests: the whole application in-process on an ephemeral port, driven by real
//! gRPC clients (and, in `binary`, the real executable).

mod batch;
mod binary;
mod chat;
mod compat;
mod edit;
mod game;
mod health;
mod helpers;
mod limits;
mod logs;
mod market;
mod reflection;
mod sensors;
mod shutdown;
mod telemetry;
mod unimplemented;
