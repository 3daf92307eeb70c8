//! Running one cell: settings from one source, `FeedHandler` with one feed through one proxy,
//! and the checks of what reached the callback, the proxy and the exchange.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use feed_handler::binance::BinanceFeed;
use feed_handler::ccxt;
use feed_handler::coinbase::CoinbaseFeed;
use feed_handler::feed_conn::{HttpOptions, TlsOptions, WsOptions};
use feed_handler::{Backoff, FeedError, FeedHandler, HandlerOptions, Trade};
use feed_sim::TestCa;
use feed_sim::exchange::{FakeExchange, FakeExchangeOptions, SentTrade};
use proxy_resolve::{clear_proxy_system, init_proxy_system};

use crate::FeedKind;
use crate::coverage::Status;
use crate::kinds::ProxyKind;
use crate::proxies::{Seen, StartedProxy};
use crate::source::{ConfigSource, settings_for};

/// Trades each cell's stream carries.
pub const TRADES_PER_CELL: usize = 5;

/// How long a cell may take to deliver its trades, and a real proxy to log its connections.
const DEADLINE: Duration = Duration::from_secs(15);

/// The fake exchanges (one per feed, shared by all cells) and their CA.
#[derive(Debug)]
pub struct Exchanges {
    ca: TestCa,
    tls: TlsOptions,
    fakes: Vec<FakeExchange>,
}

impl Exchanges {
    /// Starts the three fake exchanges on 127.0.0.1, each stream sending
    /// [`TRADES_PER_CELL`] trades.
    pub async fn start() -> io::Result<Self> {
        let ca = TestCa::new();
        let mut fakes = Vec::new();
        for kind in FeedKind::ALL {
            let options = FakeExchangeOptions::new().trades_per_connection(TRADES_PER_CELL);
            fakes.push(FakeExchange::start(&ca, kind, options).await?);
        }
        let tls = TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .map_err(io::Error::other)?;
        Ok(Self { ca, tls, fakes })
    }

    /// The CA every fake and the https:// proxies present certificates from.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The fake exchange of `kind`.
    pub fn fake(&self, kind: FeedKind) -> &FakeExchange {
        // `start` made one per kind, in `FeedKind::ALL` order.
        match self.fakes.iter().find(|f| f.kind() == kind) {
            Some(fake) => fake,
            None => unreachable!("Exchanges::start starts every feed kind"),
        }
    }

    /// Handler options trusting the CA (for exchanges and https:// proxies), routing from the
    /// process-wide proxy system, reconnecting quickly.
    pub fn handler_options(&self) -> HandlerOptions {
        let tls = self.tls.clone();
        HandlerOptions {
            http: HttpOptions {
                tls: tls.clone(),
                timeout: DEADLINE,
                ..HttpOptions::default()
            },
            ws: WsOptions {
                tls,
                ..WsOptions::default()
            },
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(500),
                max_failures: Some(3),
                ..Backoff::default()
            },
            ..HandlerOptions::default()
        }
    }

    /// Adds the feed of `kind`, pointed at its fake, to `handler`. The feed itself knows
    /// nothing about proxies.
    pub fn add_feed(&self, handler: &mut FeedHandler, kind: FeedKind) -> Result<(), FeedError> {
        let fake = self.fake(kind);
        let (rest, ws) = (fake.rest_base_url(), fake.ws_base_url());
        match kind {
            FeedKind::Binance => {
                handler.add_feed(
                    BinanceFeed::new(&["BTC-USDT", "ETH-USDT"])
                        .with_rest_url(&rest)?
                        .with_ws_url(&ws)?,
                );
            }
            FeedKind::Coinbase => {
                handler.add_feed(
                    CoinbaseFeed::new(&["BTC-USD", "ETH-USD"])
                        .with_rest_url(&rest)?
                        .with_ws_url(&ws)?,
                );
            }
            FeedKind::Backpack => {
                handler.add_feed(
                    ccxt::backpack(&["BTC-USDC", "ETH-USDC"])
                        .with_rest_url(&rest)?
                        .with_ws_url(&ws)?,
                );
            }
        }
        Ok(())
    }

    /// Stops the fakes.
    pub async fn shutdown(&mut self) {
        for fake in &mut self.fakes {
            fake.shutdown().await;
        }
    }
}

/// The two columns of one cell (one config source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellResult {
    /// The REST prefetch.
    pub rest: Status,
    /// The WebSocket stream.
    pub ws: Status,
}

impl CellResult {
    fn both(status: Status) -> Self {
        Self {
            rest: status.clone(),
            ws: status,
        }
    }
}

/// The message a build without `socks` gives for a SOCKS URL (proxy-config's documented text).
pub const NO_SOCKS_MESSAGE: &str = "needs the `socks` feature, which this build does not enable";

/// Runs `feed` with settings from `source` that send both its transports through `proxy`, and
/// checks: trades reach the callback in order, none missing; the proxy saw exactly two new
/// connections, REST to the API port and the stream to the WS port, with the kind's target
/// form and credentials; the exchange saw exactly those, arriving from the proxy. Without the
/// `socks` feature a SOCKS cell must instead fail at load with [`NO_SOCKS_MESSAGE`].
pub async fn run_cell(
    exchanges: &Exchanges,
    feed: FeedKind,
    kind: ProxyKind,
    proxy: &StartedProxy,
    source: ConfigSource,
) -> CellResult {
    let label = source.id();
    let settings = match settings_for(source, feed.as_str(), &proxy.url()) {
        Ok(_) if kind.is_socks() && !crate::SOCKS_ENABLED => {
            return CellResult::both(Status::Fail(format!(
                "{label}: a SOCKS URL loaded in a build without `socks`"
            )));
        }
        Ok(settings) => settings,
        Err(message) if kind.is_socks() && !crate::SOCKS_ENABLED => {
            return if message.contains(NO_SOCKS_MESSAGE) {
                CellResult::both(Status::Skip("no socks feature".into()))
            } else {
                CellResult::both(Status::Fail(format!(
                    "{label}: load failed without the documented message: {message}"
                )))
            };
        }
        Err(message) => {
            return CellResult::both(Status::Fail(format!("{label}: settings: {message}")));
        }
    };

    let fake = exchanges.fake(feed);
    let seen_before = proxy.seen(0, Duration::ZERO).await.len();
    let rest_before = fake.rest_requests().len();
    let ws_before = fake.ws_connections().len();

    init_proxy_system(settings);
    let trades: Arc<Mutex<Vec<Trade>>> = Arc::default();
    let outcome = run_handler(exchanges, feed, &trades).await;
    clear_proxy_system();
    let got = trades.lock().map(|t| t.clone()).unwrap_or_default();

    let seen: Vec<Seen> = proxy
        .seen(seen_before + 2, DEADLINE)
        .await
        .into_iter()
        .skip(seen_before)
        .collect();
    let rest_requests: Vec<_> = fake.rest_requests().into_iter().skip(rest_before).collect();
    let ws_connections: Vec<_> = fake.ws_connections().into_iter().skip(ws_before).collect();

    let rest_port = fake.rest_addr().port();
    let ws_port = fake.ws_addr().port();
    let expected_host = if kind.proxy_resolves() {
        "localhost"
    } else {
        "127.0.0.1"
    };
    let check_tunnel = |port: u16, what: &str| -> Result<Option<Seen>, String> {
        let matching: Vec<&Seen> = seen.iter().filter(|s| s.port == port).collect();
        let [one] = matching.as_slice() else {
            return Err(format!(
                "proxy saw {} {what} connections, expected 1 (all: {seen:?})",
                matching.len()
            ));
        };
        if one.host != expected_host {
            return Err(format!(
                "{what} target host {:?}, expected {expected_host:?}",
                one.host
            ));
        }
        if kind.credentials().is_some() && one.auth_ok != Some(true) {
            return Err(format!(
                "{what} credentials not accepted: {:?}",
                one.auth_ok
            ));
        }
        Ok(Some((*one).clone()))
    };
    let extra = if seen.len() == 2 {
        None
    } else {
        Some(format!(
            "proxy saw {} connections, expected 2 (all: {seen:?})",
            seen.len()
        ))
    };

    let rest = (|| -> Result<(), String> {
        if let Err(error) = &outcome {
            return Err(error.clone());
        }
        let tunnel = check_tunnel(rest_port, "REST")?;
        if let Some(extra) = &extra {
            return Err(extra.clone());
        }
        let [request] = rest_requests.as_slice() else {
            return Err(format!(
                "exchange saw {} REST requests, expected 1",
                rest_requests.len()
            ));
        };
        if let Some(outgoing) = tunnel.and_then(|t| t.outgoing)
            && request.peer != outgoing
        {
            return Err(format!(
                "REST request came from {}, not from the proxy ({outgoing})",
                request.peer
            ));
        }
        Ok(())
    })();

    let ws = (|| -> Result<(), String> {
        if let Err(error) = &outcome {
            return Err(format!("not reached: {error}"));
        }
        let tunnel = check_tunnel(ws_port, "stream")?;
        if let Some(extra) = &extra {
            return Err(extra.clone());
        }
        let [connection] = ws_connections.as_slice() else {
            return Err(format!(
                "exchange saw {} stream connections, expected 1",
                ws_connections.len()
            ));
        };
        if let Some(outgoing) = tunnel.and_then(|t| t.outgoing)
            && connection.peer != Some(outgoing)
        {
            return Err(format!(
                "stream came from {:?}, not from the proxy ({outgoing})",
                connection.peer
            ));
        }
        let index = ws_before;
        let mut sent: Vec<SentTrade> = fake
            .trades_sent()
            .into_iter()
            .filter(|t| t.connection == index)
            .collect();
        sent.sort_by_key(|t| t.id.parse::<u64>().unwrap_or(u64::MAX));
        compare_trades(feed, &got, &sent)
    })();

    let status = |result: Result<(), String>| match result {
        Ok(()) => Status::Pass,
        Err(detail) => Status::Fail(format!("{label}: {detail}")),
    };
    CellResult {
        rest: status(rest),
        ws: status(ws),
    }
}

/// In a build without `socks`: settings naming a SOCKS proxy of `kind` for `feed`, written in
/// `source`, must fail to load with [`NO_SOCKS_MESSAGE`] (no proxy needs to run for that).
pub fn socks_refused(feed: FeedKind, kind: ProxyKind, source: ConfigSource) -> CellResult {
    let url = match kind.credentials() {
        Some((user, password)) => format!("{}://{user}:{password}@127.0.0.1:1", kind.scheme()),
        None => format!("{}://127.0.0.1:1", kind.scheme()),
    };
    let label = source.id();
    match settings_for(source, feed.as_str(), &url) {
        Err(message) if message.contains(NO_SOCKS_MESSAGE) => {
            CellResult::both(Status::Skip("no socks feature".into()))
        }
        Err(message) => CellResult::both(Status::Fail(format!(
            "{label}: load failed without the documented message: {message}"
        ))),
        Ok(_) => CellResult::both(Status::Fail(format!(
            "{label}: a SOCKS URL loaded in a build without `socks`"
        ))),
    }
}

/// Starts the handler with the feed, waits for the trades, stops it. `Err`: start failed.
async fn run_handler(
    exchanges: &Exchanges,
    feed: FeedKind,
    trades: &Arc<Mutex<Vec<Trade>>>,
) -> Result<(), String> {
    let mut handler = FeedHandler::new(exchanges.handler_options());
    exchanges
        .add_feed(&mut handler, feed)
        .map_err(|e| e.to_string())?;
    let sink = Arc::clone(trades);
    handler.on_trade(move |trade| {
        if let Ok(mut trades) = sink.lock() {
            trades.push(trade.clone());
        }
    });
    let running = match tokio::time::timeout(DEADLINE, handler.start()).await {
        Ok(Ok(running)) => running,
        Ok(Err(error)) => return Err(format!("start failed: {error}")),
        Err(_) => return Err(format!("start took over {}s", DEADLINE.as_secs())),
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while trades.lock().map(|t| t.len()).unwrap_or(0) < TRADES_PER_CELL
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.stop().await;
    Ok(())
}

/// Every trade the exchange sent on the stream, in id order, field by field.
fn compare_trades(feed: FeedKind, got: &[Trade], sent: &[SentTrade]) -> Result<(), String> {
    if got.len() != sent.len() || got.len() != TRADES_PER_CELL {
        return Err(format!(
            "{} trades delivered, the exchange sent {} (expected {TRADES_PER_CELL})",
            got.len(),
            sent.len()
        ));
    }
    for (trade, sent) in got.iter().zip(sent) {
        let same = *trade.exchange == *feed.as_str()
            && trade.id == sent.id
            && trade.price.to_string() == sent.price
            && trade.amount.to_string() == sent.amount
            && trade.side.as_str() == sent.taker_side
            && trade.timestamp.unix_nanos() == sent.timestamp_unix_nanos
            && trade.symbol.replace('-', "") == sent.exchange_symbol.replace(['-', '_'], "");
        if !same {
            return Err(format!(
                "trade {trade:?} differs from what was sent: {sent:?}"
            ));
        }
    }
    Ok(())
}
