//! Integration tests: the whole application in-process on an ephemeral port, driven by real
//! gRPC clients (and, in `binary`, the real executable).

mod auth;
mod batch;
mod binary;
mod cancel;
mod chat;
mod chat_restart;
mod compat;
mod crash;
mod dead_peers;
mod edit;
mod files;
mod game;
mod health;
mod hostile;
mod limits;
mod logs;
mod market;
mod reflection;
mod sensors;
mod shutdown;
mod telemetry;
mod tls;
