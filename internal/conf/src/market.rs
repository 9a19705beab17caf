//! `market:` the simulated stock market behind GetStockPrices.

use std::time::Duration;

use serde::Deserialize;

use crate::load::{ConfError, all_greater_than_zero, bad};

/// `market`: the shared simulated market.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketConf {
    /// Seed of the price simulation; the same seed gives every symbol the same series. 0 picks
    /// a random seed at start-up.
    pub seed: u64,
    /// Interval of a subscription that asks for none.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub default_interval: Duration,
    /// Shortest interval a subscription may ask for; shorter → `INVALID_ARGUMENT`.
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub min_interval: Duration,
    /// Most symbols one GetStockPrices call may name.
    pub max_symbols_per_request: usize,
    /// Most symbols the whole market simulates at once; a subscription that would add more
    /// gets `RESOURCE_EXHAUSTED`.
    pub max_symbols: usize,
}

impl Default for MarketConf {
    fn default() -> Self {
        Self {
            seed: 0,
            default_interval: Duration::from_secs(1),
            min_interval: Duration::from_millis(10),
            max_symbols_per_request: 100,
            max_symbols: 10_000,
        }
    }
}

impl MarketConf {
    pub(crate) fn validate(&self) -> Result<(), ConfError> {
        all_greater_than_zero([
            (
                "market.max_symbols_per_request",
                self.max_symbols_per_request,
            ),
            ("market.max_symbols", self.max_symbols),
        ])?;
        if self.min_interval.is_zero() {
            return Err(bad("market.min_interval", "must be longer than 0s"));
        }
        if self.default_interval < self.min_interval {
            return Err(bad(
                "market.default_interval",
                format!(
                    "{:?} is shorter than market.min_interval ({:?})",
                    self.default_interval, self.min_interval
                ),
            ));
        }
        Ok(())
    }
}
