//! Staying connected: what seed 001's `ResilientStreamClient` meant to do, done so that the
//! screen shows no gap and no duplicate.
//!
//! Only `UNAVAILABLE` is retried (the server is shutting down, restarting or unreachable);
//! any other status is an answer and ends the command. The pause between attempts grows
//! exponentially up to a cap, with jitter so that many clients that lost the same server do
//! not all come back in the same instant. A follower resumes after the last id it printed;
//! the server guarantees nothing is skipped at that point and [`follow`] drops anything at or
//! below it, so nothing is printed twice either.
//!
//! The first connection is not retried: a wrong address or a server that is not running is
//! reported at once (exit 1), which is what a script wants.

use std::{future::Future, time::Duration};

use tonic::{Code, Status, Streaming};

use streamhub_api::code_name;

use crate::Failure;

/// First pause after a lost connection.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Capped exponential backoff with "equal jitter": each pause is half the current step plus
/// a random part of the other half.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { step: FIRST_PAUSE }
    }

    /// Back to the first step, after the connection has worked again.
    pub(crate) fn reset(&mut self) {
        self.step = FIRST_PAUSE;
    }

    /// The pause before the next attempt; the step doubles up to [`MAX_PAUSE`].
    pub(crate) fn next_pause(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(MAX_PAUSE);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Tells the user why and for how long, then waits.
    pub(crate) async fn wait_after(&mut self, status: &Status, resume: &str) {
        let pause = self.next_pause();
        eprintln!(
            "streamctl: {}: {}; reconnecting in {:.1}s{resume}",
            code_name(status.code()),
            status.message(),
            pause.as_secs_f64()
        );
        tokio::time::sleep(pause).await;
    }
}

/// Whether a status means "try again later" rather than an answer.
pub(crate) fn is_transient(status: &Status) -> bool {
    status.code() == Code::Unavailable
}

/// Whether a follower goes on after an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Follows a server stream of items with increasing ids across lost connections.
///
/// `open(last)` starts the stream: with `None` the way the user asked, with `Some(id)` to
/// resume after `id`. Each new item goes to `deliver`. Ends when the server ends the stream
/// with OK, when `deliver` says [`Flow::Stop`], or with the first status that is not
/// transient.
pub(crate) async fn follow<T, Open, Opening>(
    mut open: Open,
    id_of: fn(&T) -> i64,
    mut deliver: impl FnMut(T) -> Result<Flow, Failure>,
) -> Result<(), Failure>
where
    Open: FnMut(Option<i64>) -> Opening,
    Opening: Future<Output = Result<Streaming<T>, Status>>,
{
    let mut last: Option<i64> = None;
    let mut backoff = Backoff::new();
    let mut connected = false;
    let resume_note = |last: Option<i64>| match last {
        Some(id) => format!(", resuming after id {id}"),
        None => String::new(),
    };
    loop {
        let mut items = match open(last).await {
            Ok(items) => items,
            Err(status) if connected && is_transient(&status) => {
                backoff.wait_after(&status, &resume_note(last)).await;
                continue;
            }
            Err(status) => return Err(status.into()),
        };
        connected = true;
        loop {
            match items.message().await {
                Ok(Some(item)) => {
                    let id = id_of(&item);
                    if last.is_some_and(|last| id <= last) {
                        continue;
                    }
                    last = Some(id);
                    backoff.reset();
                    if deliver(item)? == Flow::Stop {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(status) if is_transient(&status) => {
                    backoff.wait_after(&status, &resume_note(last)).await;
                    break;
                }
                Err(status) => return Err(status.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_cap_with_jitter_within_the_step() {
        let seed = fastrand::u64(..);
        println!("seed {seed}");
        fastrand::seed(seed);
        let mut backoff = Backoff::new();
        let mut step = FIRST_PAUSE;
        for attempt in 0..12 {
            let pause = backoff.next_pause();
            assert!(
                pause >= step / 2 && pause <= step,
                "attempt {attempt}: pause {pause:?} outside [{:?}, {step:?}]",
                step / 2
            );
            step = (step * 2).min(MAX_PAUSE);
        }
        assert_eq!(step, MAX_PAUSE, "the step reaches the cap");
        backoff.reset();
        assert!(backoff.next_pause() <= FIRST_PAUSE, "reset starts over");
    }

    #[test]
    fn only_unavailable_is_retried() {
        assert!(is_transient(&Status::unavailable("restarting")));
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::Internal,
            Code::Unknown,
        ] {
            assert!(!is_transient(&Status::new(code, "answer")), "{code:?}");
        }
    }
}
