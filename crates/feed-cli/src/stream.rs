//! `feedproxy stream`: one exchange's feed through its configured route, trades printed one a
//! line (text or JSON), until `--count` trades, Ctrl-C, or the feed gives up.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use feed_handler::feed_conn::{HttpOptions, TlsOptions, WsOptions};
use feed_handler::{
    Backoff, BinanceFeed, CoinbaseFeed, Feed, FeedError, FeedHandler, HandlerOptions, Trade,
};
use serde::Serialize;
use tokio::sync::Notify;

use crate::output::out;
use crate::{Failure, settings};

/// The exchanges `stream` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Exchange {
    Binance,
    Coinbase,
    Backpack,
}

/// `feedproxy stream` options.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The exchange whose feed runs.
    #[arg(long, value_enum)]
    exchange: Exchange,
    /// The symbol, normalized: BTC-USDT (Binance), BTC-USD (Coinbase), BTC-USDC (Backpack).
    #[arg(long, value_name = "SYM")]
    symbol: String,
    /// A YAML (proxy: block) or TOML ([proxy] table) file; the environment overrides it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The base URL (scheme://host:port) of the exchange's REST API, e.g. a local or staging
    /// exchange; the feed appends its own paths.
    #[arg(long, value_name = "URL")]
    rest_url: Option<String>,
    /// The base URL (wss://host:port) of the exchange's WebSocket endpoint.
    #[arg(long, value_name = "URL")]
    ws_url: Option<String>,
    /// Also trust the CA certificates in this PEM file (exchanges and https:// proxies).
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Stop after this many trades.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// One JSON object a line: exchange, symbol, side, amount, price, id, timestamp.
    #[arg(long)]
    json: bool,
}

/// How many failed reconnects in a row `stream` accepts before it gives up with the last error.
const MAX_FAILURES: u32 = 5;

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    let loaded = settings::load(args.config.as_deref())?;
    let tls = settings::tls(args.ca_file.as_deref())?;
    let feed = build_feed(&args).map_err(|e| Failure::invalid(e.to_string()))?;
    proxy_resolve::init_proxy_system(loaded.settings);

    let mut handler = new_handler(
        tls,
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
            max_failures: Some(MAX_FAILURES),
            ..Backoff::default()
        },
    );
    add(&mut handler, feed);
    let printed = AtomicU64::new(0);
    let (count, json) = (args.count, args.json);
    run_until(handler, None, move |trade| {
        let n = printed.fetch_add(1, Ordering::Relaxed) + 1;
        // Trades that arrive while the streams are being stopped are not printed.
        if count.is_some_and(|count| n > count) {
            return false;
        }
        print_trade(trade, json);
        count.is_none_or(|count| n < count)
    })
    .await
    .map(|_interrupted| ())
}

/// A handler trusting `tls` (exchanges and https:// proxies), routing by the process-wide
/// proxy system, reconnecting by `backoff`.
pub(crate) fn new_handler(tls: TlsOptions, backoff: Backoff) -> FeedHandler {
    FeedHandler::new(HandlerOptions {
        http: HttpOptions {
            tls: tls.clone(),
            ..HttpOptions::default()
        },
        ws: WsOptions {
            tls,
            ..HandlerOptions::default().ws
        },
        backoff,
        ..HandlerOptions::default()
    })
}

/// Starts `handler` with `on_trade` as its trade callback (called on the stream tasks, so a
/// slow stdout slows the reading and the socket pushes back: nothing queues up) until it
/// returns `false`, `limit` passes, Ctrl-C (`Ok(true)`: interrupted), or a stream gives up
/// (its error); then stops every stream cleanly. Recoverable connection errors are logged by
/// the handler (`feedproxy::feed`, warn).
pub(crate) async fn run_until(
    mut handler: FeedHandler,
    limit: Option<Duration>,
    on_trade: impl Fn(&Trade) -> bool + Send + Sync + 'static,
) -> Result<bool, Failure> {
    // A permit is kept if nobody waits yet, so an early "enough" is not lost.
    let enough = Arc::new(Notify::new());
    let signal = Arc::clone(&enough);
    handler.on_trade(move |trade| {
        if !on_trade(trade) {
            signal.notify_one();
        }
    });
    let mut running = handler
        .start()
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let deadline = async {
        match limit {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        () = enough.notified() => Ok(false),
        stopped = running.next_stopped() => match stopped {
            Some(Err(error)) => Err(Failure::failed(error.to_string())),
            Some(Ok(())) | None => Ok(false),
        },
        () = deadline => Ok(false),
        _ = tokio::signal::ctrl_c() => Ok(true),
    };
    running.stop().await;
    outcome
}

enum AnyFeed {
    Binance(BinanceFeed),
    Coinbase(CoinbaseFeed),
    Backpack(feed_handler::BackpackFeed),
}

fn build_feed(args: &Args) -> Result<AnyFeed, FeedError> {
    fn with_urls<F>(
        mut feed: F,
        args: &Args,
        rest: fn(F, &str) -> Result<F, FeedError>,
        ws: fn(F, &str) -> Result<F, FeedError>,
    ) -> Result<F, FeedError> {
        if let Some(url) = &args.rest_url {
            feed = rest(feed, url)?;
        }
        if let Some(url) = &args.ws_url {
            feed = ws(feed, url)?;
        }
        Ok(feed)
    }
    let symbols = [args.symbol.as_str()];
    Ok(match args.exchange {
        Exchange::Binance => AnyFeed::Binance(with_urls(
            BinanceFeed::new(&symbols),
            args,
            BinanceFeed::with_rest_url,
            BinanceFeed::with_ws_url,
        )?),
        Exchange::Coinbase => AnyFeed::Coinbase(with_urls(
            CoinbaseFeed::new(&symbols),
            args,
            CoinbaseFeed::with_rest_url,
            CoinbaseFeed::with_ws_url,
        )?),
        Exchange::Backpack => AnyFeed::Backpack(with_urls(
            feed_handler::ccxt::backpack(&symbols),
            args,
            feed_handler::BackpackFeed::with_rest_url,
            feed_handler::BackpackFeed::with_ws_url,
        )?),
    })
}

fn add(handler: &mut FeedHandler, feed: AnyFeed) {
    fn add_one(handler: &mut FeedHandler, feed: impl Feed) {
        handler.add_feed(feed);
    }
    match feed {
        AnyFeed::Binance(feed) => add_one(handler, feed),
        AnyFeed::Coinbase(feed) => add_one(handler, feed),
        AnyFeed::Backpack(feed) => add_one(handler, feed),
    }
}

/// A trade as `--json` prints it.
#[derive(Debug, Serialize)]
struct TradeJson<'a> {
    exchange: &'a str,
    symbol: &'a str,
    side: &'a str,
    /// Exactly as the exchange sent it (the decimal keeps its scale).
    amount: String,
    price: String,
    id: &'a str,
    /// Seconds since the Unix epoch.
    timestamp: f64,
}

fn print_trade(trade: &Trade, json: bool) {
    if json {
        let line = TradeJson {
            exchange: &trade.exchange,
            symbol: &trade.symbol,
            side: trade.side.as_str(),
            amount: trade.amount.to_string(),
            price: trade.price.to_string(),
            id: &trade.id,
            timestamp: trade.timestamp.as_secs_f64(),
        };
        // Strings and a finite number: encoding cannot fail, but say so if it ever does.
        match serde_json::to_string(&line) {
            Ok(line) => out!("{line}"),
            Err(e) => eprintln!("error: cannot encode a trade as JSON: {e}"),
        }
    } else {
        out!("{}", text_line(trade));
    }
}

/// `binance   BTC-USDT  buy   0.00120000 @ 65000.10  id 1001  t 1700000000.123456`
pub(crate) fn text_line(trade: &Trade) -> String {
    format!(
        "{:<9} {:<9} {:<4}  {} @ {}  id {}  t {:.6}",
        trade.exchange,
        trade.symbol,
        trade.side.as_str(),
        trade.amount,
        trade.price,
        trade.id,
        trade.timestamp.as_secs_f64()
    )
}
