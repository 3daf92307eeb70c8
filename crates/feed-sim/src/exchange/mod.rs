//! Fake exchanges (Binance, Coinbase, Backpack) on loopback: REST over TLS serving the shared
//! fixture bodies, and WebSocket over TLS streaming numbered trades in each exchange's own format.
//!
//! Everything on the wire is templated from `tests/fixtures/exchanges/<exchange>/` (the fixture
//! lines keep their key order) and written without looking at any parser of ours: feed-handler's
//! parsers are checked against these fakes, and the fakes against the fixtures.
//!
//! Trades are numbered per exchange: trade number `k` (0, 1, 2, ... over every connection) has id
//! `first fixture id + k`, and its price, amount, taker side and time are functions of `k` alone,
//! so ids keep increasing across reconnects and a test can recompute any trade.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::ca::TestCa;
use crate::https::{HttpsServer, Request, Response, Routes};
use crate::wss::{Outbox, WssHandler, WssOptions, WssRecord, WssServer, WssSession};

mod backpack;
mod binance;
mod coinbase;
mod json;
mod num;
mod rest;

use json::Json;
pub use rest::RestFault;

/// A fake exchange's REST routes: (path, fixture body) pairs.
type RestRoutes = Vec<(&'static str, &'static str)>;

/// The exchanges feed-sim can fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExchangeKind {
    /// Binance spot: `/api/v3/exchangeInfo`, combined `aggTrade` streams named in the URL.
    Binance,
    /// Coinbase Advanced Trade: `/api/v3/brokerage/products`, the `market_trades` channel.
    Coinbase,
    /// Backpack: `/api/v1/markets`, `trade.<SYMBOL>` streams.
    Backpack,
}

impl ExchangeKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ExchangeKind; 3] = [Self::Binance, Self::Coinbase, Self::Backpack];

    /// The lower-case exchange id: "binance", "coinbase", "backpack".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Binance => "binance",
            Self::Coinbase => "coinbase",
            Self::Backpack => "backpack",
        }
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to start a [`FakeExchange`].
#[derive(Debug, Clone)]
pub struct FakeExchangeOptions {
    trades_per_connection: usize,
    interval: Option<Duration>,
    bind: SocketAddr,
    rest_faults: Vec<RestFault>,
    stream_end: Option<(u16, String)>,
}

impl Default for FakeExchangeOptions {
    fn default() -> Self {
        Self {
            trades_per_connection: 10,
            interval: None,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            rest_faults: Vec::new(),
            stream_end: None,
        }
    }
}

impl FakeExchangeOptions {
    /// 10 trades per connection, as fast as possible, on 127.0.0.1 with ephemeral ports.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many trades each WebSocket connection gets once subscribed (default 10); the
    /// connection then stays open, answering pings, until the client closes it.
    #[must_use]
    pub fn trades_per_connection(mut self, count: usize) -> Self {
        self.trades_per_connection = count;
        self
    }

    /// The pause between two trade messages of a connection; `None` (the default): as fast as
    /// possible.
    #[must_use]
    pub fn interval(mut self, interval: Option<Duration>) -> Self {
        self.interval = interval;
        self
    }

    /// The address both servers bind to, with port 0 (must be loopback, e.g. `[::1]:0`).
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The first REST requests (over every path and connection, in arrival order) get these
    /// answers in turn instead of the fixture body, e.g. a 429 then the body, or a body cut short;
    /// later requests are answered as usual. Every request is still logged in
    /// [`FakeExchange::rest_requests`]. Default: none.
    #[must_use]
    pub fn rest_faults(mut self, faults: Vec<RestFault>) -> Self {
        self.rest_faults = faults;
        self
    }

    /// Once a connection has sent its [`FakeExchangeOptions::trades_per_connection`] trades
    /// (at least one), the server closes it with a close frame carrying `code` and `reason`
    /// (e.g. 1011, an internal error) instead of keeping it open. Default: kept open.
    #[must_use]
    pub fn end_streams_with(mut self, code: u16, reason: impl Into<String>) -> Self {
        self.stream_end = Some((code, reason.into()));
        self
    }
}

/// One trade a fake exchange sent, with its fields exactly as they went on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTrade {
    /// The connection that carried it: an index into [`FakeExchange::ws_connections`].
    pub connection: usize,
    /// The exchange's own symbol: `BTCUSDT`, `BTC-USD`, `BTC_USDC`.
    pub exchange_symbol: String,
    /// The trade id as text (Binance `a`, Coinbase `trade_id`, Backpack `t`).
    pub id: String,
    /// The price string as sent.
    pub price: String,
    /// The amount string as sent.
    pub amount: String,
    /// The taker's side: "buy" or "sell".
    pub taker_side: &'static str,
    /// The instant the wire time means (Binance `T` ms, Coinbase `time`, Backpack `T` µs), in
    /// nanoseconds since the Unix epoch.
    pub timestamp_unix_nanos: i64,
}

/// A fake exchange: an HTTPS server for its REST API and a WSS server for its trade streams, on
/// two loopback ports, with certificates from a [`TestCa`] for "localhost", "127.0.0.1" and
/// "::1". Stops when dropped or on [`FakeExchange::shutdown`].
///
/// REST answers the fixture body (byte for byte) at the fixture path; any other path gets 404.
/// WebSocket behaviour per exchange, with `N` = [`FakeExchangeOptions::trades_per_connection`]:
///
/// - Binance: `/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade` subscribes in the URL (stream
///   names lower case, symbols whose status is `TRADING`, `aggTrade` only). Another path, no or
///   an empty `streams`, another query parameter (e.g. `timeUnit`) or an unknown stream gets a
///   close frame 1008 naming the problem. Live `SUBSCRIBE`/`UNSUBSCRIBE` answer
///   `{"result":null,"id":ID}`, `LIST_SUBSCRIPTIONS` `{"result":[...],"id":ID}`; a bad request
///   gets `{"error":{"code":2,"msg":"..."},"id":ID}` (code 3 for invalid JSON). `N` trades
///   follow the upgrade, each `{"stream":...,"data":{aggTrade}}`.
/// - Coinbase: `/`; nothing is sent before a subscribe. `{"type":"subscribe","channel":
///   "market_trades","product_ids":[...]}` (online products, or an `alias_to` name such as
///   `BTC-USDC`, served as its product) is answered with a `snapshot` event of recent trades
///   (older ids, not counted in [`FakeExchange::trades_sent`]), then the `subscriptions` ack, then
///   `update` events carrying `N` trades, one and two per message in turn, newest first within a
///   message as in the fixture. A `heartbeats` subscribe is acked and adds a heartbeats message
///   before every third update. `sequence_num` counts every message on the connection from 0.
///   Anything else gets `{"type":"error","message":"..."}`.
/// - Backpack: `/`; nothing is sent before a subscribe. `{"method":"SUBSCRIBE","params":
///   ["trade.BTC_USDC",...]}` (markets whose order book is `Open`) starts `N` trades, each
///   `{"data":{trade},"stream":"trade.SYMBOL"}` with keys in alphabetical order; `UNSUBSCRIBE`
///   removes streams silently; anything else gets `{"error":{"code":400,"message":"..."},
///   "id":ID}`.
///
/// Trades go round-robin over the connection's subscriptions (later subscriptions join the
/// rotation; they do not restart the count). The server never pings; it answers the client's
/// pings and close. Faults: [`FakeExchangeOptions::rest_faults`] for REST answers,
/// [`FakeExchangeOptions::end_streams_with`] for a close after the trades.
pub struct FakeExchange {
    kind: ExchangeKind,
    rest: HttpsServer,
    ws: WssServer,
    ledger: Arc<Ledger>,
}

impl fmt::Debug for FakeExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeExchange")
            .field("kind", &self.kind)
            .field("rest", &self.rest.addr())
            .field("ws", &self.ws.addr())
            .finish_non_exhaustive()
    }
}

impl FakeExchange {
    /// Starts both servers of a fake `kind` exchange.
    ///
    /// # Errors
    /// When [`FakeExchangeOptions::bind`] is not loopback or cannot be bound, or (which only a
    /// broken checkout causes) the fixtures do not parse.
    pub async fn start(
        ca: &TestCa,
        kind: ExchangeKind,
        options: FakeExchangeOptions,
    ) -> io::Result<Self> {
        if !options.bind.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("feed-sim binds loopback only, not {}", options.bind),
            ));
        }
        let ledger = Arc::new(Ledger::default());
        let (routes, handler) = match kind {
            ExchangeKind::Binance => handler::<binance::Fixture>(&ledger, &options)?,
            ExchangeKind::Coinbase => handler::<coinbase::Fixture>(&ledger, &options)?,
            ExchangeKind::Backpack => handler::<backpack::Fixture>(&ledger, &options)?,
        };
        let routes = routes
            .iter()
            .fold(Routes::new(), |all, (path, body)| {
                all.route(*path, Response::json(*body))
            })
            .overrides(
                options
                    .rest_faults
                    .iter()
                    .map(RestFault::to_override)
                    .collect(),
            );
        let rest = HttpsServer::start_on(options.bind, ca, routes).await?;
        let ws_options = WssOptions::new()
            .bind(options.bind)
            .echo(false)
            .handler(handler);
        let ws = WssServer::start(ca, ws_options).await?;
        Ok(Self {
            kind,
            rest,
            ws,
            ledger,
        })
    }

    /// Which exchange this fakes.
    pub fn kind(&self) -> ExchangeKind {
        self.kind
    }

    /// `https://localhost:PORT` (`https://[::1]:PORT` when bound to ::1), no trailing slash.
    pub fn rest_base_url(&self) -> String {
        base_url("https", self.rest.addr())
    }

    /// `wss://localhost:PORT` (`wss://[::1]:PORT` when bound to ::1), no trailing slash.
    pub fn ws_base_url(&self) -> String {
        base_url("wss", self.ws.addr())
    }

    /// The REST server's address.
    pub fn rest_addr(&self) -> SocketAddr {
        self.rest.addr()
    }

    /// The WebSocket server's address.
    pub fn ws_addr(&self) -> SocketAddr {
        self.ws.addr()
    }

    /// Every REST request so far, in arrival order, each with the peer address of its
    /// connection (a proxy's outgoing address when it came through one).
    pub fn rest_requests(&self) -> Vec<Request> {
        self.rest.requests()
    }

    /// Every WebSocket connection so far, in accept order: peer, target (path and query), the
    /// messages the client sent, and how the connection ended.
    pub fn ws_connections(&self) -> Vec<WssRecord> {
        self.ws.connections()
    }

    /// Every trade sent so far as a trade (Coinbase snapshots excluded), in the order they were
    /// sent (in wire order within a Coinbase message, so newest first there).
    pub fn trades_sent(&self) -> Vec<SentTrade> {
        self.ledger.sent()
    }

    /// Waits until at least `count` trades were sent or `deadline` passes, then returns them all.
    pub async fn trades_sent_when(&self, count: usize, deadline: Duration) -> Vec<SentTrade> {
        // Either outcome is fine: the caller asserts on the trades.
        let _ = tokio::time::timeout(deadline, async {
            while self.ledger.count() < count {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        self.trades_sent()
    }

    /// Stops both servers and closes every connection; returns once the ports are released.
    /// The records stay readable.
    pub async fn shutdown(&mut self) {
        self.rest.shutdown().await;
        self.ws.shutdown().await;
    }
}

fn base_url(scheme: &str, addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(_) => format!("{scheme}://localhost:{}", addr.port()),
        IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{}", addr.port()),
    }
}

/// Loads fixture `F` and builds its REST routes (path, body) and WebSocket handler.
fn handler<F: ExchangeFixture>(
    ledger: &Arc<Ledger>,
    options: &FakeExchangeOptions,
) -> io::Result<(RestRoutes, Arc<dyn WssHandler>)> {
    let fixture = F::load().map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidData, format!("feed-sim fixture: {e}"))
    })?;
    let routes = fixture.rest();
    let venue = Venue {
        fixture,
        ledger: Arc::clone(ledger),
        trades_per_connection: options.trades_per_connection,
        interval: options.interval,
        stream_end: options.stream_end.clone(),
    };
    Ok((routes, Arc::new(Handler(Arc::new(venue)))))
}

/// One exchange's fixtures and WebSocket behaviour.
trait ExchangeFixture: Sized + Send + Sync + 'static {
    /// Parses the fixtures compiled into the crate.
    fn load() -> Result<Self, String>;

    /// The REST paths and their fixture bodies.
    fn rest(&self) -> RestRoutes;

    /// The server's side of a new WebSocket connection.
    fn open(
        venue: &Arc<Venue<Self>>,
        connection: usize,
        target: &str,
        out: &mut Outbox,
    ) -> Box<dyn WssSession>;
}

/// What every connection of one fake exchange shares.
struct Venue<F> {
    fixture: F,
    ledger: Arc<Ledger>,
    trades_per_connection: usize,
    interval: Option<Duration>,
    /// The close frame a connection ends with after its trades, if any.
    stream_end: Option<(u16, String)>,
}

/// The [`WssHandler`] of a fake exchange.
struct Handler<F>(Arc<Venue<F>>);

impl<F> fmt::Debug for Handler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeExchangeHandler")
            .field("trades_per_connection", &self.0.trades_per_connection)
            .field("interval", &self.0.interval)
            .finish_non_exhaustive()
    }
}

impl<F: ExchangeFixture> WssHandler for Handler<F> {
    fn open(&self, connection: usize, target: &str, out: &mut Outbox) -> Box<dyn WssSession> {
        let session = F::open(&self.0, connection, target, out);
        match &self.0.stream_end {
            Some((code, reason)) if self.0.trades_per_connection > 0 => Box::new(Ending {
                session,
                ledger: Arc::clone(&self.0.ledger),
                connection,
                trades: self.0.trades_per_connection,
                close: Some((*code, reason.clone())),
            }),
            _ => session,
        }
    }
}

/// A session that closes its connection once it has sent its trades
/// ([`FakeExchangeOptions::end_streams_with`]).
struct Ending {
    session: Box<dyn WssSession>,
    ledger: Arc<Ledger>,
    connection: usize,
    trades: usize,
    /// Taken when the close is queued.
    close: Option<(u16, String)>,
}

impl WssSession for Ending {
    fn on_text(&mut self, text: &str, out: &mut Outbox) {
        self.session.on_text(text, out);
    }

    fn on_binary(&mut self, bytes: &[u8], out: &mut Outbox) {
        self.session.on_binary(bytes, out);
    }

    fn on_tick(&mut self, tick: usize, out: &mut Outbox) {
        self.session.on_tick(tick, out);
        if self.ledger.sent_on(self.connection) >= self.trades
            && let Some((code, reason)) = self.close.take()
        {
            out.close(code, reason);
        }
    }
}

/// The exchange-wide trade counter and the log of trades sent, under one lock so the log is in
/// numbering order across connections.
#[derive(Debug, Default)]
struct Ledger(Mutex<LedgerInner>);

#[derive(Debug, Default)]
struct LedgerInner {
    next: i64,
    sent: Vec<SentTrade>,
    /// Trades sent per connection index.
    per_connection: Vec<usize>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, LedgerInner> {
        // A panicking test thread must not hide the log from the others.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next `count` trade numbers (the first is passed to `make`) and logs the trades
    /// `make` returns, in its order.
    fn issue<T>(&self, count: usize, make: impl FnOnce(i64) -> (T, Vec<SentTrade>)) -> T {
        let mut ledger = self.lock();
        let first = ledger.next;
        ledger.next += i64::try_from(count).unwrap_or(i64::MAX);
        let (out, sent) = make(first);
        for trade in &sent {
            if ledger.per_connection.len() <= trade.connection {
                ledger.per_connection.resize(trade.connection + 1, 0);
            }
            ledger.per_connection[trade.connection] += 1;
        }
        ledger.sent.extend(sent);
        out
    }

    /// Trades sent so far on connection `connection`.
    fn sent_on(&self, connection: usize) -> usize {
        self.lock()
            .per_connection
            .get(connection)
            .copied()
            .unwrap_or(0)
    }

    /// The number the next trade will get.
    fn next(&self) -> i64 {
        self.lock().next
    }

    fn sent(&self) -> Vec<SentTrade> {
        self.lock().sent.clone()
    }

    fn count(&self) -> usize {
        self.lock().sent.len()
    }
}

/// How trade number `k` moves the price: -5..=5 ticks around the fixture's price.
fn price_steps(k: i64) -> i64 {
    k.rem_euclid(11) - 5
}

/// How trade number `k` scales the fixture's amount: 1 to 4 times.
fn amount_factor(k: i64) -> i64 {
    1 + k.rem_euclid(4)
}

/// Whether the taker of trade number `k` sold (every third trade), else bought.
fn taker_sells(k: i64) -> bool {
    k.rem_euclid(3) == 2
}

fn taker_side(sells: bool) -> &'static str {
    if sells { "sell" } else { "buy" }
}

/// The value at `path` in a fixture line, or an error naming the path.
fn field<'a>(value: &'a Json, path: &[&str]) -> Result<&'a Json, String> {
    path.iter().try_fold(value, |v, key| {
        v.get(key)
            .ok_or_else(|| format!("no `{}` in a fixture line", path.join(".")))
    })
}

fn field_str<'a>(value: &'a Json, path: &[&str]) -> Result<&'a str, String> {
    field(value, path)?
        .as_str()
        .ok_or_else(|| format!("`{}` is not a string", path.join(".")))
}

fn field_i64(value: &Json, path: &[&str]) -> Result<i64, String> {
    field(value, path)?
        .as_i64()
        .ok_or_else(|| format!("`{}` is not an integer", path.join(".")))
}

fn field_decimal(value: &Json, path: &[&str]) -> Result<num::Decimal, String> {
    let text = field_str(value, path)?;
    num::Decimal::parse(text)
        .ok_or_else(|| format!("`{}` is not a decimal: {text}", path.join(".")))
}

/// The lines of a `.jsonl` fixture.
fn jsonl(text: &str) -> Result<Vec<Json>, String> {
    let lines = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Json::parse(l).map_err(|e| format!("ws-messages.jsonl: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if lines.is_empty() {
        return Err("ws-messages.jsonl holds no message".into());
    }
    Ok(lines)
}

/// The client's request `id` to echo: the value as sent, or null.
fn request_id(request: &Json) -> Json {
    request.get("id").cloned().unwrap_or(Json::Null)
}

/// The strings of a JSON array, or `None` if it is not an array of strings.
fn strings(value: Option<&Json>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_loads() {
        binance::Fixture::load().expect("binance fixtures");
        coinbase::Fixture::load().expect("coinbase fixtures");
        backpack::Fixture::load().expect("backpack fixtures");
    }

    #[test]
    fn variations_cover_every_value() {
        let steps: Vec<i64> = (0..11).map(price_steps).collect();
        assert_eq!(steps, (-5..=5).collect::<Vec<_>>());
        let sides: Vec<bool> = (-3..3).map(taker_sells).collect();
        assert_eq!(sides, [false, false, true, false, false, true]);
        assert_eq!((0..4).map(amount_factor).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }
}
