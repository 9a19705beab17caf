//! [`Series`]: the price simulation of one symbol, pure and deterministic for a seed and a
//! symbol, so every subscriber of a symbol sees the same `(sequence, price)` pairs.

use std::{sync::Arc, time::SystemTime};

use crate::SplitMix64;

/// Largest relative move of one tick: ±5 %.
const MAX_MOVE: f64 = 0.05;
/// Bounds that keep a long random walk a usable price: never 0, never infinite.
const PRICE_FLOOR: f64 = 0.01;
const PRICE_CEILING: f64 = 1.0e9;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
