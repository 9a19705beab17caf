//! Integration tests: the whole application in-process on an ephemeral port, driven by real
//! gRPC clients (and, in `binary`, the real executable).

mod binary;
mod chat;
mod game;
mod health;
mod helpers;
mod limits;
mod reflection;
mod shutdown;
mod unimplemented;
