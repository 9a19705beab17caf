//! The test kit of streamhub: what `cmd/streamhub`'s integration tests (`tests/api`,
//! `tests/otlp.rs`), its benchmarks and `streamctl`'s tests all need, written once.
//!
//! - [`spawn_app`] and friends start the whole application in-process on `127.0.0.1:0` with a
//!   temporary data directory ([`streamhub_conf::Config::for_tests`]) and hand back a
//!   [`TestApp`]: its address, a connected channel, typed clients, a clean stop.
//! - [`BinaryServer`] starts the real `streamhub` executable on a config the kit writes
//!   ([`write_binary_config`]) and waits for its `listening on ADDR` line.
//! - [`within`], [`next`], [`assert_ends_with`] and [`assert_ends_ok`] bound every wait, so a
//!   test that goes wrong fails with what it was waiting for instead of hanging.
//! - [`ChatMember`] is a chat client that joins a room; [`open_chat`] is its unbounded core,
//!   for benchmarks, as [`open_edit`] is for CollaborativeEdit.
//! - `TEST_LOG=FILTER` (e.g. `TEST_LOG=debug`, `TEST_LOG=streamhub=trace,info`) shows the
//!   server's log in the test's output: the in-process server's through a subscriber on the test
//!   writer, the binary's by passing the filter on as `RUST_LOG` and echoing what it prints.
//!   A test that fails with a [`BinaryServer`] running prints that server's log in any case.
//!
//! This crate is a dev-dependency only; it depends on the `streamhub` application crate to
//! start it, which is why it lives outside the production dependency chain's rules.

mod app;
mod binary;
mod chat;
mod edit;
mod log;
mod wait;

pub use app::{TestApp, spawn_app, spawn_app_in, spawn_app_with};
pub use binary::{BinaryServer, write_binary_config};
pub use chat::{ChatMember, open_chat};
pub use edit::open_edit;
pub use log::{TEST_LOG, init_test_log};
pub use wait::{WAIT, assert_ends_ok, assert_ends_with, bounded, connect, next, within};
