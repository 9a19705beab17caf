//! GetStockPrices: translates the request into a [`StockQuery`] and the shared market's quotes
//! into `StockPrice`s. The market itself (one series per symbol, conflation) lives in biz.

use std::time::Duration;

use futures_util::StreamExt as _;
use streamhub_api::streaming::{StockPrice, StockRequest};
use streamhub_biz::market::{Market, Quote, StockQuery};
use tonic::{Request, Response, Status};

use crate::{ResponseStream, Shutdown, to_status, until_stopped};

/// The GetStockPrices handler: the shared market plus the shutdown that ends its streams.
#[derive(Debug, Clone)]
pub(crate) struct MarketHandlers {
    market: Market,
    shutdown: Shutdown,
}

impl MarketHandlers {
    pub(crate) fn new(market: Market, shutdown: &Shutdown) -> Self {
        Self {
            market,
            shutdown: shutdown.clone(),
        }
    }

    /// Subscribes to the request's symbols; the stream runs until the client cancels or the
    /// server stops (then `UNAVAILABLE`), and dropping it releases the symbols.
    pub(crate) fn get_stock_prices(
        &self,
        request: Request<StockRequest>,
    ) -> Result<Response<ResponseStream<StockPrice>>, Status> {
        let request = request.into_inner();
        let interval = requested_interval(&request)?;
        let query =
            StockQuery::new(request.symbols, interval, self.market.limits()).map_err(to_status)?;
        let quotes = self
            .market
            .subscribe(&query)
            .map_err(to_status)?
            .into_quotes()
            .map(|quote| Ok(stock_price(quote)));
        Ok(Response::new(until_stopped(
            quotes,
            self.shutdown.stopping.clone(),
        )))
    }
}

/// The interval the request asks for: `interval_ms` when set, else `interval_seconds`, else
/// none (the market's default). Negative values are refused.
fn requested_interval(request: &StockRequest) -> Result<Option<Duration>, Status> {
    let (seconds, ms) = (request.interval_seconds, request.interval_ms);
    for (field, value) in [("interval_seconds", seconds), ("interval_ms", ms)] {
        if value < 0 {
            return Err(Status::invalid_argument(format!(
                "{field}: {value} is negative"
            )));
        }
    }
    Ok(if ms > 0 {
        Some(Duration::from_millis(ms.unsigned_abs().into()))
    } else if seconds > 0 {
        Some(Duration::from_secs(seconds.unsigned_abs().into()))
    } else {
        None
    })
}

fn stock_price(quote: Quote) -> StockPrice {
    StockPrice {
        symbol: quote.symbol.to_string(),
        price: quote.price,
        change: quote.change_percent,
        volume: i64::try_from(quote.volume).unwrap_or(i64::MAX),
        timestamp: Some(quote.at.into()),
        sequence: i64::try_from(quote.sequence).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(seconds: i32, ms: i32) -> Result<Option<Duration>, Status> {
        requested_interval(&StockRequest {
            interval_seconds: seconds,
            interval_ms: ms,
            ..StockRequest::default()
        })
    }

    #[test]
    fn interval_ms_wins_over_interval_seconds_and_neither_means_the_default() {
        assert_eq!(interval(0, 0).expect("valid"), None);
        assert_eq!(interval(2, 0).expect("valid"), Some(Duration::from_secs(2)));
        assert_eq!(
            interval(2, 10).expect("valid"),
            Some(Duration::from_millis(10))
        );
    }

    #[test]
    fn a_negative_interval_is_refused_naming_its_field() {
        for (seconds, ms, expected) in [
            (-1, 0, "interval_seconds: -1 is negative"),
            (0, -5, "interval_ms: -5 is negative"),
        ] {
            let status = interval(seconds, ms).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert_eq!(status.message(), expected);
        }
    }
}
