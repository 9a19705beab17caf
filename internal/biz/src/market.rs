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

mod hub;
mod query;
mod series;

pub use hub::{Market, Subscription};
pub use query::{MarketLimits, StockQuery};
pub use series::{Quote, Series};
