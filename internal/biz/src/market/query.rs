//! [`StockQuery`]: what one GetStockPrices subscriber asks for, checked against the market's
//! limits before anything is subscribed.

use std::{sync::Arc, time::Duration};

use crate::{Error, Result};

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
    /// interval → the default; an explicit interval below the minimum is refused rather than
    /// silently changed.
    pub fn new(
        symbols: Vec<String>,
        interval: Option<Duration>,
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
        let interval = interval.unwrap_or(limits.default_interval);
        if interval < limits.min_interval {
            return invalid(format!(
                "interval: {interval:?} is below the minimum interval of {:?}",
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The limits the market's tests run with: small enough to reach every bound.
    pub(crate) fn limits() -> MarketLimits {
        MarketLimits {
            default_interval: Duration::from_secs(1),
            min_interval: Duration::from_millis(10),
            max_symbols_per_request: 3,
            max_symbols: 4,
        }
    }

    fn parse(symbols: &[&str], interval: Option<Duration>) -> Result<StockQuery> {
        StockQuery::new(
            symbols.iter().map(|s| (*s).to_owned()).collect(),
            interval,
            &limits(),
        )
    }

    fn rejection(symbols: &[&str], interval: Option<Duration>) -> String {
        match parse(symbols, interval) {
            Err(Error::InvalidStockRequest(message)) => message,
            other => panic!("{symbols:?} {interval:?}: expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn queries_normalise_symbols_and_pick_the_interval() {
        let query = parse(&["aapl", "brk.b", "AAPL"], None).expect("valid");
        let symbols: Vec<&str> = query.symbols().iter().map(|s| &**s).collect();
        assert_eq!(symbols, ["AAPL", "BRK.B"]);
        assert_eq!(query.interval(), Duration::from_secs(1), "the default");
        assert_eq!(
            parse(&["X"], Some(Duration::from_millis(250)))
                .expect("valid")
                .interval(),
            Duration::from_millis(250)
        );
        assert!(parse(&["ABCDEFGHIJ12"], None).is_ok());
    }

    #[test]
    fn bad_queries_are_refused_naming_the_field_and_value() {
        let cases: [(&[&str], Option<Duration>, &str); 7] = [
            (&[], None, "symbols: name at least one"),
            (&["A", "B", "C", "D"], None, "4 symbols named, at most 3"),
            (&[""], None, "symbols: \"\" is not a symbol"),
            (
                &["ABCDEFGHIJ123"],
                None,
                "\"ABCDEFGHIJ123\" is not a symbol",
            ),
            (&["AA PL"], None, "\"AA PL\""),
            (&["ÄPFEL"], None, "\"ÄPFEL\""),
            (
                &["A"],
                Some(Duration::from_millis(9)),
                "interval: 9ms is below the minimum interval of 10ms",
            ),
        ];
        for (symbols, interval, expected) in cases {
            let message = rejection(symbols, interval);
            assert!(
                message.contains(expected),
                "{symbols:?} {interval:?}: {message:?} lacks {expected:?}"
            );
        }
    }
}
