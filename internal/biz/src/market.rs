//! The one simulated stock market that every GetStockPrices subscriber watches.
//!
//! Each symbol has ONE price series ([`Series`]: a seeded random walk, at most ±5 % per tick,
//! price kept > 0), created when its first subscriber arrives and dropped when its last one
//! leaves, so every subscriber of a symbol sees the same `(sequence, price)` pairs.
//!
//! Timing: a symbol's series ticks at the *fastest* interval among its current subscribers
//! (one ticker task per symbol, on the application's task tracker; it ends on shutdown or when
//! the symbol is dropped). Each subscriber then receives at most one quote per its own interval:
//! the newest tick since the quote it last got. The fastest subscriber therefore sees every
//! tick, slower ones a sample of the same series, and nobody is sent the same tick twice. The
//! alternative, a fixed base tick that subscribers sample, either repeats quotes to subscribers
//! faster than the tick or limits everyone to the base rate; ticking at the fastest interval
//! costs nothing when nobody asks for speed.
//!
//! Delivery is conflated: the ticker publishes into a `tokio::sync::watch` per symbol, so a
//! subscriber that does not keep up simply finds the latest quote when it is ready again; no
//! queue grows anywhere. The first quote of each symbol is delivered at once on subscribe.

use std::{
    collections::{BTreeMap, HashMap, hash_map::Entry},
    hash::{BuildHasher as _, RandomState},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime},
};

use futures_util::{Stream, StreamExt as _, future, stream};
use tokio::{
    sync::watch,
    time::{Instant, sleep_until},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{Error, Result, SplitMix64};

/// Largest relative move of one tick: ±5 %.
const MAX_MOVE: f64 = 0.05;
/// Bounds that keep a long random walk a usable price: never 0, never infinite.
const PRICE_FLOOR: f64 = 0.01;
const PRICE_CEILING: f64 = 1.0e9;
/// Longest accepted symbol, in characters.
const MAX_SYMBOL_CHARS: usize = 12;

/// The limits a subscription is checked against (from the `market:` config).
#[derive(Debug, Clone)]
pub struct MarketLimits {
    /// Interval when the request names none.
    pub default_interval: Duration,
    /// Shortest interval a request may ask for.
    pub min_interval: Duration,
    /// Most symbols one request may name.
    pub max_symbols_per_request: usize,
    /// Most symbols simulated at once.
    pub max_symbols: usize,
}

/// A validated subscription request: upper-cased, de-duplicated symbols and an interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockQuery {
    symbols: Vec<Arc<str>>,
    interval: Duration,
}

impl StockQuery {
    /// Applies the contract's rules: 1..=`max_symbols_per_request` symbols, each matching
    /// `[A-Z0-9.]{1,12}` after upper-casing (duplicates after upper-casing count once); no
    /// negative interval; `interval_ms` > 0 wins over `interval_seconds`; neither set → the
    /// default; an explicit interval below the minimum is refused rather than silently changed.
    pub fn parse(
        symbols: Vec<String>,
        interval_seconds: i32,
        interval_ms: i32,
        limits: &MarketLimits,
    ) -> Result<Self> {
        let invalid = |message: String| Err(Error::InvalidStockRequest(message));
        if symbols.is_empty() {
            return invalid("symbols: name at least one symbol".to_owned());
        }
        if symbols.len() > limits.max_symbols_per_request {
            return invalid(format!(
                "symbols: {} symbols named, at most {} allowed per request",
                symbols.len(),
                limits.max_symbols_per_request
            ));
        }
        if interval_seconds < 0 {
            return invalid(format!("interval_seconds: {interval_seconds} is negative"));
        }
        if interval_ms < 0 {
            return invalid(format!("interval_ms: {interval_ms} is negative"));
        }
        let (field, interval) = if interval_ms > 0 {
            (
                "interval_ms",
                Duration::from_millis(interval_ms.unsigned_abs().into()),
            )
        } else if interval_seconds > 0 {
            (
                "interval_seconds",
                Duration::from_secs(interval_seconds.unsigned_abs().into()),
            )
        } else {
            ("", limits.default_interval)
        };
        if interval < limits.min_interval {
            return invalid(format!(
                "{field}: {interval:?} is below the minimum interval of {:?}",
                limits.min_interval
            ));
        }
        let mut accepted: Vec<Arc<str>> = Vec::with_capacity(symbols.len());
        for symbol in symbols {
            let upper = symbol.to_ascii_uppercase();
            let valid = (1..=MAX_SYMBOL_CHARS).contains(&upper.len())
                && upper
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.');
            if !valid {
                return invalid(format!(
                    "symbols: {symbol:?} is not a symbol; use 1 to {MAX_SYMBOL_CHARS} of A-Z, 0-9 and '.'"
                ));
            }
            if !accepted.iter().any(|seen| **seen == *upper) {
                accepted.push(upper.into());
            }
        }
        Ok(Self {
            symbols: accepted,
            interval,
        })
    }

    /// The symbols, upper-cased, in request order without duplicates.
    pub fn symbols(&self) -> &[Arc<str>] {
        &self.symbols
    }

    /// How often the subscriber wants a quote.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// One published price of one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub symbol: Arc<str>,
    /// Tick number within the series, from 1 (the opening price).
    pub sequence: u64,
    pub price: f64,
    /// Percent change versus the previous tick (0 for the opening price).
    pub change_percent: f64,
    /// Shares traded in this tick.
    pub volume: u64,
    /// When the tick happened, by the server clock.
    pub at: SystemTime,
}

/// A quote as the ticker publishes it, with the instant it was scheduled for, so subscribers
/// can lay their own schedule on the ticker's.
#[derive(Debug, Clone)]
struct Tick {
    quote: Quote,
    at: Instant,
}

/// The price simulation of one symbol: pure, deterministic for a given seed and symbol.
#[derive(Debug, Clone)]
pub struct Series {
    rng: SplitMix64,
    quote: Quote,
}

impl Series {
    /// Opens the series of `symbol` for the market seed `seed`: its opening price (sequence 1)
    /// is drawn in [100, 1000).
    pub fn open(seed: u64, symbol: Arc<str>, at: SystemTime) -> Self {
        let mut rng = SplitMix64(seed ^ fnv1a(symbol.as_bytes()));
        let price = 100.0 + rng.next_f64() * 900.0;
        let volume = rng.next_u64() % 1_000_000;
        Self {
            rng,
            quote: Quote {
                symbol,
                sequence: 1,
                price,
                change_percent: 0.0,
                volume,
                at,
            },
        }
    }

    /// The latest quote.
    pub fn quote(&self) -> &Quote {
        &self.quote
    }

    /// Moves the price by a factor in [1/1.05, 1.05): symmetric in log space, so a long walk
    /// does not drift towards 0, and within ±5 % of the previous price.
    pub fn tick(&mut self, at: SystemTime) -> &Quote {
        let step = self.rng.next_f64() * 2.0 - 1.0;
        let previous = self.quote.price;
        let price = (previous * (1.0 + MAX_MOVE).powf(step)).clamp(PRICE_FLOOR, PRICE_CEILING);
        self.quote.sequence += 1;
        self.quote.change_percent = (price / previous - 1.0) * 100.0;
        self.quote.price = price;
        self.quote.volume = self.rng.next_u64() % 1_000_000;
        self.quote.at = at;
        &self.quote
    }
}

/// FNV-1a: a stable hash of the symbol (std's hashers are randomised per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
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
    tasks: TaskTracker,
    stopping: CancellationToken,
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
    /// `tasks` and end when `stopping` fires.
    pub fn new(
        seed: u64,
        limits: MarketLimits,
        tasks: TaskTracker,
        stopping: CancellationToken,
    ) -> Self {
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
                tasks,
                stopping,
            }),
        }
    }

    /// Subscribes to every symbol of `query`, listing the ones nobody watches yet. Fails with
    /// [`Error::MarketFull`] when that would exceed the market's symbol limit (nothing is
    /// subscribed then), or [`Error::ShuttingDown`].
    pub fn subscribe(&self, query: &StockQuery) -> Result<Subscription> {
        if self.inner.stopping.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let mut listings = self.inner.lock();
        let new = query
            .symbols
            .iter()
            .filter(|symbol| !listings.contains_key(*symbol))
            .count();
        let limit = self.inner.limits.max_symbols;
        if listings.len() + new > limit {
            return Err(Error::MarketFull { limit });
        }
        let mut feeds = Vec::with_capacity(query.symbols.len());
        for symbol in &query.symbols {
            let listing = match listings.entry(symbol.clone()) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    entry.insert(self.inner.list(symbol.clone(), query.interval))
                }
            };
            *listing.intervals.entry(query.interval).or_default() += 1;
            listing.follow_fastest();
            feeds.push(listing.latest.clone());
        }
        Ok(Subscription {
            market: self.inner.clone(),
            symbols: query.symbols.clone(),
            interval: query.interval,
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
        self.listings.lock().unwrap_or_else(PoisonError::into_inner)
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
        self.tasks.spawn(run_ticker(
            series,
            opened,
            ticks,
            period_rx,
            self.stopping.clone(),
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
    use super::*;

    fn limits() -> MarketLimits {
        MarketLimits {
            default_interval: Duration::from_secs(1),
            min_interval: Duration::from_millis(10),
            max_symbols_per_request: 3,
            max_symbols: 4,
        }
    }

    fn parse(symbols: &[&str], seconds: i32, ms: i32) -> Result<StockQuery> {
        StockQuery::parse(
            symbols.iter().map(|s| (*s).to_owned()).collect(),
            seconds,
            ms,
            &limits(),
        )
    }

    fn rejection(symbols: &[&str], seconds: i32, ms: i32) -> String {
        match parse(symbols, seconds, ms) {
            Err(Error::InvalidStockRequest(message)) => message,
            other => panic!("{symbols:?} {seconds} {ms}: expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn queries_normalise_symbols_and_pick_the_interval() {
        let query = parse(&["aapl", "brk.b", "AAPL"], 0, 0).expect("valid");
        let symbols: Vec<&str> = query.symbols().iter().map(|s| &**s).collect();
        assert_eq!(symbols, ["AAPL", "BRK.B"]);
        assert_eq!(query.interval(), Duration::from_secs(1));
        assert_eq!(
            parse(&["X"], 2, 0).expect("valid").interval(),
            Duration::from_secs(2)
        );
        assert_eq!(
            parse(&["X"], 2, 10).expect("valid").interval(),
            Duration::from_millis(10)
        );
        assert_eq!(
            parse(&["X"], 0, 250).expect("valid").interval(),
            Duration::from_millis(250)
        );
        assert!(parse(&["ABCDEFGHIJ12"], 0, 0).is_ok());
    }

    #[test]
    fn bad_queries_are_refused_naming_the_field_and_value() {
        let cases: [(&[&str], i32, i32, &str); 9] = [
            (&[], 0, 0, "symbols: name at least one"),
            (&["A", "B", "C", "D"], 0, 0, "4 symbols named, at most 3"),
            (&[""], 0, 0, "symbols: \"\" is not a symbol"),
            (
                &["ABCDEFGHIJ123"],
                0,
                0,
                "\"ABCDEFGHIJ123\" is not a symbol",
            ),
            (&["AA PL"], 0, 0, "\"AA PL\""),
            (&["ÄPFEL"], 0, 0, "\"ÄPFEL\""),
            (&["A"], -1, 0, "interval_seconds: -1 is negative"),
            (&["A"], 0, -5, "interval_ms: -5 is negative"),
            (
                &["A"],
                0,
                9,
                "interval_ms: 9ms is below the minimum interval of 10ms",
            ),
        ];
        for (symbols, seconds, ms, expected) in cases {
            let message = rejection(symbols, seconds, ms);
            assert!(
                message.contains(expected),
                "{symbols:?} {seconds} {ms}: {message:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn a_series_is_determined_by_seed_and_symbol_and_moves_at_most_five_percent() {
        let at = SystemTime::UNIX_EPOCH;
        let mut a = Series::open(42, "AAPL".into(), at);
        let mut b = Series::open(42, "AAPL".into(), at);
        let other = Series::open(42, "MSFT".into(), at);
        assert_ne!(a.quote().price, other.quote().price);
        assert!((100.0..1000.0).contains(&a.quote().price));
        assert_eq!(a.quote().sequence, 1);
        for n in 2..=100_000u64 {
            let previous = a.quote().price;
            let quote = a.tick(at).clone();
            assert_eq!(&quote, b.tick(at));
            assert_eq!(quote.sequence, n);
            assert!(quote.price > 0.0);
            assert!(
                quote.change_percent.abs() <= 5.0 + 1e-9,
                "tick {n}: {quote:?}"
            );
            let expected = (quote.price / previous - 1.0) * 100.0;
            assert!((quote.change_percent - expected).abs() < 1e-9);
            assert!(quote.volume < 1_000_000);
        }
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

    fn market() -> (Market, CancellationToken, TaskTracker) {
        let stopping = CancellationToken::new();
        let tasks = TaskTracker::new();
        (
            Market::new(7, limits(), tasks.clone(), stopping.clone()),
            stopping,
            tasks,
        )
    }

    #[tokio::test]
    async fn subscribers_share_a_series_that_is_dropped_with_its_last_subscriber() {
        let (market, stopping, tasks) = market();
        let fast = parse(&["AAPL", "MSFT"], 0, 10).expect("valid");
        let slow = parse(&["AAPL"], 0, 20).expect("valid");
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
        tasks.close();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .expect("tickers end with their symbol");
        drop(stopping);
    }

    #[tokio::test]
    async fn the_symbol_limit_refuses_a_whole_subscription() {
        let (market, stopping, _tasks) = market();
        let held = market
            .subscribe(&parse(&["A", "B", "C"], 0, 0).expect("valid"))
            .expect("subscribed");
        let refused = market.subscribe(&parse(&["C", "D", "E"], 0, 0).expect("valid"));
        assert!(
            matches!(refused, Err(Error::MarketFull { limit: 4 })),
            "{refused:?}"
        );
        assert_eq!(
            market.symbol_count(),
            3,
            "a refused subscription lists nothing"
        );
        assert!(
            market
                .subscribe(&parse(&["C", "D"], 0, 0).expect("valid"))
                .is_ok()
        );
        drop(held);
        stopping.cancel();
        assert!(matches!(
            market.subscribe(&parse(&["A"], 0, 0).expect("valid")),
            Err(Error::ShuttingDown)
        ));
    }

    #[tokio::test]
    async fn a_slow_subscriber_gets_the_latest_quote_not_a_backlog() {
        let (market, _stopping, _tasks) = market();
        let query = parse(&["AAPL"], 0, 10).expect("valid");
        let mut watcher = Box::pin(market.subscribe(&query).expect("subscribed").into_quotes());
        let mut sleeper = Box::pin(market.subscribe(&query).expect("subscribed").into_quotes());
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
