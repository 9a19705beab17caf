//! [`Market`]: the shared handle that lists a symbol for its first subscriber, ticks its
//! series at the fastest interval any subscriber asks for and delists it with the last one.

use std::{
    collections::{BTreeMap, HashMap, hash_map::Entry},
    hash::{BuildHasher as _, RandomState},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use futures_util::{Stream, StreamExt as _, future, stream};
use tokio::{
    sync::watch,
    time::{Instant, sleep_until},
};
use tokio_util::sync::CancellationToken;

use super::{MarketLimits, Quote, Series, StockQuery};
use crate::{Error, Lifecycle, Result};

/// A quote as the ticker publishes it, with the instant it was scheduled for, so subscribers
/// can lay their own schedule on the ticker's.
#[derive(Debug, Clone)]
struct Tick {
    quote: Quote,
    at: Instant,
}

/// Handle to the shared market; cheap to clone.
#[derive(Debug, Clone)]
pub struct Market {
    inner: Arc<MarketInner>,
}

#[derive(Debug)]
struct MarketInner {
    seed: u64,
    limits: MarketLimits,
    /// Held only for map updates (never across an await), so a std mutex is the right tool.
    listings: Mutex<HashMap<Arc<str>, Listing>>,
    lifecycle: Lifecycle,
}

/// A symbol that has subscribers.
#[derive(Debug)]
struct Listing {
    /// Kept so new subscribers can join; it also keeps the ticker's sends from failing.
    latest: watch::Receiver<Tick>,
    /// The tick period the ticker follows; dropping it (with the listing) ends the ticker.
    period: watch::Sender<Duration>,
    /// Intervals of the current subscribers (interval → how many), to find the fastest.
    intervals: BTreeMap<Duration, usize>,
}

impl Market {
    /// A market whose series derive from `seed` (0 = a random seed). Tickers are spawned on
    /// `lifecycle` and end when shutdown starts.
    pub fn new(seed: u64, limits: MarketLimits, lifecycle: &Lifecycle) -> Self {
        let seed = if seed == 0 {
            RandomState::new().hash_one(SystemTime::now())
        } else {
            seed
        };
        Self {
            inner: Arc::new(MarketInner {
                seed,
                limits,
                listings: Mutex::new(HashMap::new()),
                lifecycle: lifecycle.clone(),
            }),
        }
    }

    /// Subscribes to every symbol of `query`, listing the ones nobody watches yet. Fails with
    /// [`Error::MarketFull`] when that would exceed the market's symbol limit (nothing is
    /// subscribed then), or [`Error::ShuttingDown`].
    pub fn subscribe(&self, query: &StockQuery) -> Result<Subscription> {
        if self.inner.lifecycle.is_stopping() {
            return Err(Error::ShuttingDown);
        }
        let mut listings = self.inner.lock();
        let new = query
            .symbols()
            .iter()
            .filter(|symbol| !listings.contains_key(*symbol))
            .count();
        let limit = self.inner.limits.max_symbols;
        if listings.len() + new > limit {
            return Err(Error::MarketFull { limit });
        }
        let mut feeds = Vec::with_capacity(query.symbols().len());
        for symbol in query.symbols() {
            let listing = match listings.entry(symbol.clone()) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    entry.insert(self.inner.list(symbol.clone(), query.interval()))
                }
            };
            *listing.intervals.entry(query.interval()).or_default() += 1;
            listing.follow_fastest();
            feeds.push(listing.latest.clone());
        }
        Ok(Subscription {
            market: self.inner.clone(),
            symbols: query.symbols().to_vec(),
            interval: query.interval(),
            feeds,
        })
    }

    /// The limits subscriptions are checked against.
    pub fn limits(&self) -> &MarketLimits {
        &self.inner.limits
    }

    /// How many symbols are simulated right now.
    pub fn symbol_count(&self) -> usize {
        self.inner.lock().len()
    }

    /// How many subscriptions watch `symbol` right now.
    pub fn subscriber_count(&self, symbol: &str) -> usize {
        self.inner
            .lock()
            .get(symbol)
            .map_or(0, |listing| listing.intervals.values().sum())
    }
}

impl MarketInner {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Listing>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters more than refusing every later subscriber would.
        crate::mutex::lock(&self.listings)
    }

    /// Opens the series of `symbol` and spawns its ticker.
    fn list(&self, symbol: Arc<str>, period: Duration) -> Listing {
        let series = Series::open(self.seed, symbol, SystemTime::now());
        let opened = Instant::now();
        let (ticks, latest) = watch::channel(Tick {
            quote: series.quote().clone(),
            at: opened,
        });
        let (period_tx, period_rx) = watch::channel(period);
        self.lifecycle.spawn(run_ticker(
            series,
            opened,
            ticks,
            period_rx,
            self.lifecycle.stopping().clone(),
        ));
        Listing {
            latest,
            period: period_tx,
            intervals: BTreeMap::new(),
        }
    }

    fn release(&self, symbols: &[Arc<str>], interval: Duration) {
        let mut listings = self.lock();
        for symbol in symbols {
            let Some(listing) = listings.get_mut(symbol) else {
                continue;
            };
            if let Some(count) = listing.intervals.get_mut(&interval) {
                *count -= 1;
                if *count == 0 {
                    listing.intervals.remove(&interval);
                }
            }
            if listing.intervals.is_empty() {
                // Dropping the listing drops the period sender, which ends the ticker.
                listings.remove(symbol);
            } else {
                listing.follow_fastest();
            }
        }
    }
}

impl Listing {
    fn follow_fastest(&self) {
        if let Some(&fastest) = self.intervals.keys().next() {
            self.period.send_if_modified(|period| {
                let changed = *period != fastest;
                *period = fastest;
                changed
            });
        }
    }
}

/// Ticks `series` every period until the listing is dropped or the server stops.
async fn run_ticker(
    mut series: Series,
    opened: Instant,
    ticks: watch::Sender<Tick>,
    mut period: watch::Receiver<Duration>,
    stopping: CancellationToken,
) {
    let mut every = *period.borrow_and_update();
    let mut last = opened;
    loop {
        let next = last + every;
        tokio::select! {
            () = stopping.cancelled() => return,
            changed = period.changed() => {
                if changed.is_err() {
                    return;
                }
                every = *period.borrow_and_update();
                continue;
            }
            () = sleep_until(next) => {}
        }
        // Keep a steady cadence, but after a stall (a starved runtime) restart from now rather
        // than firing a burst of catch-up ticks.
        let now = Instant::now();
        last = if now > next + every { now } else { next };
        let quote = series.tick(SystemTime::now()).clone();
        if ticks.send(Tick { quote, at: last }).is_err() {
            return;
        }
    }
}

/// A subscriber's hold on its symbols; dropping it releases them (the last subscriber of a
/// symbol drops its series).
#[derive(Debug)]
pub struct Subscription {
    market: Arc<MarketInner>,
    symbols: Vec<Arc<str>>,
    interval: Duration,
    feeds: Vec<watch::Receiver<Tick>>,
}

impl Subscription {
    /// The quotes for this subscriber: each symbol's current quote at once, then for each
    /// symbol at most one quote per interval, always the newest. The stream never ends by
    /// itself; the caller ends it (client gone, shutdown), which releases the symbols.
    pub fn into_quotes(mut self) -> impl Stream<Item = Quote> + Send + 'static {
        let interval = self.interval;
        let feeds = std::mem::take(&mut self.feeds)
            .into_iter()
            .map(|feed| Box::pin(symbol_feed(feed, interval)));
        let hold = self;
        stream::select_all(feeds).map(move |quote| {
            // The stream owns the subscription: dropping the stream releases it.
            let _ = &hold;
            quote
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.market.release(&self.symbols, self.interval);
    }
}

/// One symbol's quotes for one subscriber. Its schedule starts at the instant of the tick it
/// joined on, so a subscriber whose interval is a multiple of the tick period is due exactly
/// when a tick arrives (fresh quotes); otherwise it is due between ticks and takes the next
/// one as it arrives. Either way it gets at most one quote per interval on average and never
/// the same tick twice.
fn symbol_feed(
    mut feed: watch::Receiver<Tick>,
    interval: Duration,
) -> impl Stream<Item = Quote> + Send + 'static {
    let first = feed.borrow_and_update().clone();
    let next_due = first.at + interval;
    stream::once(future::ready(first.quote)).chain(stream::unfold(
        (feed, next_due),
        move |(mut feed, due)| async move {
            sleep_until(due).await;
            if feed.changed().await.is_err() {
                // The ticker is gone only when the server stops; the caller ends the stream
                // then, so wait for it rather than end early with a misleading OK.
                future::pending::<()>().await;
            }
            let quote = feed.borrow_and_update().quote.clone();
            Some((quote, (feed, next_due_after(due, interval, Instant::now()))))
        },
    ))
}

/// The next slot of the schedule `due + k * interval` that is still ahead of `now`: a reader
/// that stalled skips the slots it missed instead of bursting through them.
fn next_due_after(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now {
        return next;
    }
    let behind = now.duration_since(next).as_nanos();
    let slots = behind / interval.as_nanos().max(1) + 1;
    let skip = u64::try_from(slots.saturating_mul(interval.as_nanos())).unwrap_or(u64::MAX);
    next + Duration::from_nanos(skip)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;
    use crate::market::query::tests::limits;

    fn query(symbols: &[&str], interval_ms: u64) -> StockQuery {
        let interval = (interval_ms > 0).then(|| Duration::from_millis(interval_ms));
        StockQuery::new(
            symbols.iter().map(|s| (*s).to_owned()).collect(),
            interval,
            &limits(),
        )
        .expect("valid")
    }

    #[test]
    fn a_stalled_reader_skips_missed_slots_but_keeps_its_schedule() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_due_after(start, ms(10), start), start + ms(10));
        assert_eq!(
            next_due_after(start, ms(10), start + ms(10)),
            start + ms(20)
        );
        assert_eq!(
            next_due_after(start, ms(10), start + ms(35)),
            start + ms(40)
        );
    }

    fn market() -> (Market, Lifecycle) {
        let lifecycle = Lifecycle::new();
        (Market::new(7, limits(), &lifecycle), lifecycle)
    }

    #[tokio::test]
    async fn subscribers_share_a_series_that_is_dropped_with_its_last_subscriber() {
        let (market, lifecycle) = market();
        let fast = query(&["AAPL", "MSFT"], 10);
        let slow = query(&["AAPL"], 20);
        let mut first = Box::pin(market.subscribe(&fast).expect("subscribed").into_quotes());
        let second = market.subscribe(&slow).expect("subscribed");
        assert_eq!(market.symbol_count(), 2);
        assert_eq!(market.subscriber_count("AAPL"), 2);
        let mut second = Box::pin(second.into_quotes());

        let mut expected = Series::open(7, "AAPL".into(), SystemTime::now());
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let quote = first.next().await.expect("quotes never end");
            if &*quote.symbol == "AAPL" {
                seen.push(quote);
            }
        }
        for quote in &seen {
            while expected.quote().sequence < quote.sequence {
                expected.tick(SystemTime::now());
            }
            assert_eq!(quote.price, expected.quote().price, "{quote:?}");
        }
        // The fastest subscriber sees every tick.
        let sequences: Vec<u64> = seen.iter().map(|q| q.sequence).collect();
        assert_eq!(sequences, [1, 2, 3, 4, 5]);
        let from_second = second.next().await.expect("first quote");
        assert_eq!(&*from_second.symbol, "AAPL");

        drop(first);
        assert_eq!(
            market.symbol_count(),
            1,
            "MSFT had only the first subscriber"
        );
        assert_eq!(market.subscriber_count("AAPL"), 1);
        drop(second);
        assert_eq!(market.symbol_count(), 0);

        // Tickers of dropped symbols end.
        assert!(
            lifecycle.wait(Duration::from_secs(5)).await,
            "tickers end with their symbol, before any shutdown"
        );
    }

    #[tokio::test]
    async fn the_symbol_limit_refuses_a_whole_subscription() {
        let (market, lifecycle) = market();
        let held = market
            .subscribe(&query(&["A", "B", "C"], 0))
            .expect("subscribed");
        let refused = market.subscribe(&query(&["C", "D", "E"], 0));
        assert!(
            matches!(refused, Err(Error::MarketFull { limit: 4 })),
            "{refused:?}"
        );
        assert_eq!(
            market.symbol_count(),
            3,
            "a refused subscription lists nothing"
        );
        assert!(market.subscribe(&query(&["C", "D"], 0)).is_ok());
        drop(held);
        lifecycle.stop();
        assert!(matches!(
            market.subscribe(&query(&["A"], 0)),
            Err(Error::ShuttingDown)
        ));
    }

    #[tokio::test]
    async fn a_slow_subscriber_gets_the_latest_quote_not_a_backlog() {
        let (market, _lifecycle) = market();
        let wanted = query(&["AAPL"], 10);
        let mut watcher = Box::pin(market.subscribe(&wanted).expect("subscribed").into_quotes());
        let mut sleeper = Box::pin(market.subscribe(&wanted).expect("subscribed").into_quotes());
        assert_eq!(sleeper.next().await.expect("first").sequence, 1);
        let mut last = 0;
        while last < 30 {
            last = watcher.next().await.expect("quotes").sequence;
        }
        let caught_up = sleeper.next().await.expect("quote").sequence;
        assert!(
            caught_up >= 30,
            "the sleeper got tick {caught_up}, not the latest"
        );
    }
}
