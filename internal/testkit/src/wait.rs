//! Bounded waits: every event a test waits for has a limit, and a test that passes it fails
//! naming what it was waiting for.

use std::{fmt::Debug, future::Future, time::Duration};

use tonic::{
    Code, Status, Streaming,
    transport::{Channel, Endpoint},
};

/// How long a test waits for an event before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test with `what` if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    bounded(WAIT, what, future).await
}

/// Awaits `future`, failing with `what` if it takes longer than `limit` (a benchmark's step, or
/// a wait on a process of its own that needs longer than [`WAIT`]).
pub async fn bounded<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// The next message of `responses`, which must come within [`WAIT`].
pub async fn next<T>(what: &str, responses: &mut Streaming<T>) -> T {
    within(what, responses.message())
        .await
        .unwrap_or_else(|status| panic!("{what}: got {status}"))
        .unwrap_or_else(|| panic!("{what}: the stream ended instead"))
}

/// Asserts that `responses` ends cleanly (OK) with no further message.
pub async fn assert_ends_ok<T: Debug>(what: &str, responses: &mut Streaming<T>) {
    let end = within(what, responses.message()).await;
    assert!(
        matches!(end, Ok(None)),
        "{what}: expected a clean end, got {end:?}"
    );
}

/// Reads `responses` to its end, which must be a status with `code`; returns the status.
pub async fn assert_ends_with<T>(what: &str, responses: &mut Streaming<T>, code: Code) -> Status {
    loop {
        match within(what, responses.message()).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("{what}: ended OK, expected {code:?}"),
            Err(status) => {
                assert_eq!(status.code(), code, "{what}: {status}");
                return status;
            }
        }
    }
}

/// A new connection to `url` (`http://HOST:PORT`): an HTTP/2 connection of its own, with its
/// own flow control, not a clone of a shared channel.
pub async fn connect(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .unwrap_or_else(|err| panic!("{url} is not an endpoint: {err}"))
        .connect()
        .await
        .unwrap_or_else(|err| panic!("connect to {url}: {err}"))
}
