//! Bursts: a stream's items regrouped so they go out together (BufferedStream).

use std::{pin::pin, time::Duration};

use futures_util::{Stream, StreamExt as _, stream};
use tokio::time::Instant;

use crate::Result;

/// When pending items go out as one burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstPolicy {
    /// A burst goes out as soon as this many items are pending.
    pub max_pending: usize,
    /// ...or as soon as this long has passed since the previous burst, if any item is pending.
    pub period: Duration,
}

impl BurstPolicy {
    /// BufferedStream's policy: 100 entries or 1 s.
    pub const FEED: Self = Self {
        max_pending: 100,
        period: Duration::from_secs(1),
    };

    /// Whether `pending` items go out now, `since_last_burst` after the previous burst.
    pub fn is_due(&self, pending: usize, since_last_burst: Duration) -> bool {
        pending > 0 && (pending >= self.max_pending || since_last_burst >= self.period)
    }
}

/// Regroups `items` into bursts by `policy`. Whatever is pending when `items` ends, or before
/// an error, goes out first; an error ends the stream.
pub fn bursts<T, S>(items: S, policy: BurstPolicy) -> impl Stream<Item = Result<Vec<T>>> + Send
where
    T: Send,
    S: Stream<Item = Result<T>> + Send,
{
    struct State<S, T> {
        items: S,
        pending: Vec<T>,
        last_burst: Instant,
        ended: bool,
        failed: Option<crate::Error>,
    }
    let state = State {
        items: Box::pin(items),
        pending: Vec::new(),
        last_burst: Instant::now(),
        ended: false,
        failed: None,
    };
    stream::unfold(state, move |mut state| async move {
        loop {
            let finished = state.ended || state.failed.is_some();
            if !state.pending.is_empty()
                && (finished || policy.is_due(state.pending.len(), state.last_burst.elapsed()))
            {
                state.last_burst = Instant::now();
                let burst = std::mem::take(&mut state.pending);
                return Some((Ok(burst), state));
            }
            if let Some(err) = state.failed.take() {
                state.ended = true;
                return Some((Err(err), state));
            }
            if state.ended {
                return None;
            }
            let deadline = state.last_burst + policy.period;
            let wait_for_deadline = !state.pending.is_empty();
            let mut sleep = pin!(tokio::time::sleep_until(deadline));
            tokio::select! {
                item = state.items.next() => match item {
                    Some(Ok(item)) => state.pending.push(item),
                    Some(Err(err)) => state.failed = Some(err),
                    None => state.ended = true,
                },
                () = &mut sleep, if wait_for_deadline => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn a_burst_is_due_at_the_size_or_the_period() {
        let policy = BurstPolicy::FEED;
        let second = Duration::from_secs(1);
        assert!(!policy.is_due(0, second * 5), "never an empty burst");
        assert!(!policy.is_due(99, Duration::from_millis(999)));
        assert!(policy.is_due(100, Duration::ZERO));
        assert!(policy.is_due(1, second));
    }

    #[tokio::test]
    async fn ready_items_go_out_in_bursts_of_the_maximum_then_the_rest() {
        let items = stream::iter((0..250).map(Ok::<_, Error>));
        let sizes: Vec<usize> = bursts(items, BurstPolicy::FEED)
            .map(|burst| burst.expect("no error").len())
            .collect()
            .await;
        assert_eq!(sizes, [100, 100, 50]);
    }

    #[tokio::test]
    async fn a_partial_burst_goes_out_after_the_period_while_the_source_is_quiet() {
        let policy = BurstPolicy {
            max_pending: 100,
            period: Duration::from_millis(50),
        };
        // Three items, then a source that never yields again nor ends.
        let items = stream::iter((0..3).map(Ok::<_, Error>)).chain(stream::pending());
        let mut out = pin!(bursts(items, policy));
        let first = tokio::time::timeout(Duration::from_secs(5), out.next())
            .await
            .expect("the period flushes the pending items")
            .expect("a burst")
            .expect("no error");
        assert_eq!(first, [0, 1, 2]);
    }

    #[tokio::test]
    async fn pending_items_go_out_before_an_error() {
        let items = stream::iter([Ok(1), Ok(2), Err(Error::ShuttingDown), Ok(3)]);
        let out: Vec<_> = bursts(items, BurstPolicy::FEED).collect().await;
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].as_ref().expect("the pending burst"), &[1, 2]);
        assert!(matches!(out[1], Err(Error::ShuttingDown)));
    }
}
