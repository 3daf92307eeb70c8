//! The fake Coinbase Advanced Trade: `GET /api/v3/brokerage/products` (and its public twin
//! `/market/products`), and the `market_trades` and `heartbeats` channels on `/`, templated from
//! the Coinbase fixtures.

use std::sync::Arc;

use super::json::Json;
use super::num::{self, Decimal};
use super::{
    ExchangeFixture, RestRoutes, SentTrade, Venue, amount_factor, field, field_decimal, field_str,
    jsonl, price_steps, strings, taker_sells, taker_side,
};
use crate::wss::{Outbox, WssSession};

const REST_PATHS: [&str; 2] = [
    "/api/v3/brokerage/products",
    "/api/v3/brokerage/market/products",
];
const REST_BODY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/exchanges/coinbase/rest-response.json"
));
const WS_MESSAGES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/exchanges/coinbase/ws-messages.jsonl"
));

const MARKET_TRADES: &str = "market_trades";
const HEARTBEATS: &str = "heartbeats";

/// Microseconds of exchange time between trade `k` and `k + 1`.
const MICROS_PER_TRADE: i64 = 137_311;

/// Recent trades per product in a snapshot (the fixture's snapshot holds two).
const SNAPSHOT_TRADES: usize = 2;

/// Every this many updates, a heartbeats message goes first (when subscribed).
const HEARTBEAT_EVERY: usize = 3;

#[derive(Debug)]
pub(super) struct Fixture {
    /// Online, tradable products in REST order.
    products: Vec<Product>,
    /// `alias_to` names (e.g. `BTC-USDC`) and the product index they are served as.
    aliases: Vec<(String, usize)>,
    /// Whole fixture messages, the envelopes of what the fake sends.
    snapshot: Json,
    subscriptions: Json,
    update: Json,
    heartbeat: Json,
    /// The oldest trade of the fixture's first update: id and time of trade 0.
    first_id: i64,
    first_time_nanos: i64,
    /// Envelope `timestamp` minus the newest trade's `time` in the fixture's first update.
    envelope_lag_nanos: i64,
    /// The `m=+` part of the fixture heartbeat's `current_time`, in nanoseconds.
    monotonic_nanos: i64,
    heartbeat_counter: i64,
}

#[derive(Debug)]
struct Product {
    id: String,
    template: Json,
    price: Decimal,
    size: Decimal,
}

impl Fixture {
    /// The product a subscribed id names (its own or an `alias_to` name).
    fn product_of(&self, id: &str) -> Option<usize> {
        self.products.iter().position(|p| p.id == id).or_else(|| {
            self.aliases
                .iter()
                .find(|(alias, _)| alias == id)
                .map(|&(_, product)| product)
        })
    }

    /// The trade object of trade number `k` on `product`, and its record.
    fn trade(&self, product: &Product, k: i64, connection: usize) -> (Json, SentTrade) {
        let id = (self.first_id + k).to_string();
        let nanos = self.time_of(k);
        let sells = taker_sells(k);
        let price = product.price.step(price_steps(k)).plain();
        let size = product.size.times(amount_factor(k)).plain();
        let mut trade = product.template.clone();
        trade.set("trade_id", Json::str(&id));
        trade.set("product_id", Json::str(&product.id));
        trade.set("price", Json::str(&price));
        trade.set("size", Json::str(&size));
        trade.set("side", Json::str(if sells { "SELL" } else { "BUY" }));
        trade.set("time", Json::str(num::rfc3339_micros(nanos)));
        let sent = SentTrade {
            connection,
            exchange_symbol: product.id.clone(),
            id,
            price,
            amount: size,
            taker_side: taker_side(sells),
            timestamp_unix_nanos: nanos,
        };
        (trade, sent)
    }

    /// The exchange time of trade number `k`, whole microseconds.
    fn time_of(&self, k: i64) -> i64 {
        self.first_time_nanos + MICROS_PER_TRADE * 1000 * k
    }
}

/// The oldest (smallest-id) trade of a `market_trades` message.
fn oldest_trade(message: &Json) -> Result<&Json, String> {
    trades_of(message)?
        .iter()
        .min_by_key(|t| {
            field_str(t, &["trade_id"])
                .ok()
                .and_then(|id| id.parse::<i64>().ok())
        })
        .ok_or_else(|| "coinbase: an update without trades".into())
}

fn trades_of(message: &Json) -> Result<&[Json], String> {
    first_event(message)
        .and_then(|event| event.get("trades"))
        .and_then(Json::as_array)
        .ok_or_else(|| "coinbase: a market_trades message without events[0].trades".into())
}

fn channel(message: &Json) -> Option<&str> {
    message.get("channel")?.as_str()
}

/// `events[0]` of a message.
fn first_event(message: &Json) -> Option<&Json> {
    message.get("events")?.as_array()?.first()
}

fn event_type(message: &Json) -> Option<&str> {
    first_event(message)?.get("type")?.as_str()
}

impl ExchangeFixture for Fixture {
    fn load() -> Result<Self, String> {
        let rest = Json::parse(REST_BODY).map_err(|e| format!("coinbase rest-response: {e}"))?;
        let lines = jsonl(WS_MESSAGES)?;
        let find = |wanted: &str, kind: Option<&str>| {
            lines
                .iter()
                .find(|l| channel(l) == Some(wanted) && (kind.is_none() || event_type(l) == kind))
                .cloned()
                .ok_or_else(|| format!("coinbase: no {wanted} {kind:?} message in ws-messages"))
        };
        let snapshot = find(MARKET_TRADES, Some("snapshot"))?;
        let update = find(MARKET_TRADES, Some("update"))?;
        let subscriptions = find("subscriptions", None)?;
        let heartbeat = find(HEARTBEATS, None)?;

        let update_trades: Vec<&Json> = lines
            .iter()
            .filter(|l| channel(l) == Some(MARKET_TRADES) && event_type(l) == Some("update"))
            .filter_map(|l| trades_of(l).ok())
            .flatten()
            .collect();
        let oldest = oldest_trade(&update)?;
        let time = |t: &Json| -> Result<i64, String> {
            let text = field_str(t, &["time"])?;
            num::parse_rfc3339(text).ok_or_else(|| format!("coinbase: bad time {text}"))
        };
        let newest_time = trades_of(&update)?
            .iter()
            .map(time)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .max()
            .unwrap_or_default();
        let envelope_time = field_str(&update, &["timestamp"])?;
        let envelope_time = num::parse_rfc3339(envelope_time)
            .ok_or_else(|| format!("coinbase: bad timestamp {envelope_time}"))?;

        let rows = field(&rest, &["products"])?
            .as_array()
            .ok_or("coinbase: `products` is not an array")?;
        let mut products = Vec::new();
        let mut aliases = Vec::new();
        for row in rows {
            let online = field_str(row, &["status"])? == "online";
            let disabled = row.get("trading_disabled").and_then(Json::as_bool) == Some(true);
            if !online || disabled {
                continue;
            }
            let id = field_str(row, &["product_id"])?;
            let template = update_trades
                .iter()
                .find(|t| field_str(t, &["product_id"]).ok() == Some(id))
                .copied()
                .unwrap_or(oldest);
            for alias in strings(row.get("alias_to")).unwrap_or_default() {
                aliases.push((alias, products.len()));
            }
            products.push(Product {
                id: id.to_owned(),
                template: template.clone(),
                price: field_decimal(template, &["price"])?.trimmed(),
                size: field_decimal(template, &["size"])?.trimmed(),
            });
        }

        let beat = first_event(&heartbeat).ok_or("coinbase: a heartbeat without events")?;
        let current_time = field_str(beat, &["current_time"])?;
        let monotonic_nanos = current_time
            .split_once(" m=+")
            .and_then(|(_, m)| Decimal::parse(m))
            .and_then(|m| m.fixed(9).replace('.', "").parse().ok())
            .ok_or_else(|| format!("coinbase: no m=+SECONDS in {current_time:?}"))?;
        let heartbeat_counter = beat
            .get("heartbeat_counter")
            .and_then(Json::as_i64)
            .ok_or("coinbase: heartbeat_counter is not an integer")?;

        let first_id = field_str(oldest, &["trade_id"])?;
        Ok(Self {
            products,
            aliases,
            first_id: first_id
                .parse()
                .map_err(|_| format!("coinbase: trade_id {first_id} is not an integer"))?,
            first_time_nanos: time(oldest)?,
            envelope_lag_nanos: envelope_time - newest_time,
            monotonic_nanos,
            heartbeat_counter,
            snapshot,
            subscriptions,
            update,
            heartbeat,
        })
    }

    fn rest(&self) -> RestRoutes {
        REST_PATHS.iter().map(|path| (*path, REST_BODY)).collect()
    }

    fn open(
        venue: &Arc<Venue<Self>>,
        connection: usize,
        _target: &str,
        _out: &mut Outbox,
    ) -> Box<dyn WssSession> {
        Box::new(Session {
            venue: Arc::clone(venue),
            connection,
            products: Vec::new(),
            channels: Vec::new(),
            heartbeats: false,
            started: false,
            sequence: 0,
            trades_sent: 0,
            updates_sent: 0,
            heartbeats_sent: 0,
        })
    }
}

/// The number of update messages that carry `trades` trades, one and two per message in turn.
fn update_count(trades: usize) -> usize {
    // Each pair of messages carries three trades.
    trades / 3 * 2 + (trades % 3).min(1) + usize::from(trades % 3 == 2)
}

/// One Coinbase connection.
struct Session {
    venue: Arc<Venue<Fixture>>,
    connection: usize,
    /// `market_trades` products in subscription order.
    products: Vec<usize>,
    /// Subscribed channels and their product ids, for the `subscriptions` ack.
    channels: Vec<(String, Vec<String>)>,
    heartbeats: bool,
    started: bool,
    /// The next `sequence_num`: every message on the connection counts.
    sequence: i64,
    trades_sent: usize,
    updates_sent: usize,
    heartbeats_sent: i64,
}

impl Session {
    /// Wraps `events` in the envelope of `template` with the next sequence number.
    fn envelope(&mut self, template: &Json, events: Json, at_nanos: i64) -> String {
        let mut message = template.clone();
        message.set("timestamp", Json::str(num::rfc3339_nanos(at_nanos)));
        message.set("sequence_num", Json::int(self.sequence));
        message.set("events", events);
        self.sequence += 1;
        message.to_json()
    }

    /// The exchange's "now": just after the newest trade numbered so far.
    fn now(&self) -> i64 {
        let fixture = &self.venue.fixture;
        fixture.time_of(self.venue.ledger.next() - 1) + fixture.envelope_lag_nanos
    }

    /// A `market_trades` event of `kind` ("snapshot" or "update") with these trades.
    fn trades_event(template: &Json, kind: &str, trades: Vec<Json>) -> Json {
        let mut event = first_event(template)
            .cloned()
            .unwrap_or_else(|| Json::Object(Vec::new()));
        event.set("type", Json::str(kind));
        event.set("trades", Json::Array(trades));
        Json::Array(vec![event])
    }

    fn subscribe(&mut self, request: &Json, out: &mut Outbox) -> Result<(), String> {
        match request.get("type").and_then(Json::as_str) {
            Some("subscribe") => {}
            other => return Err(format!("feed-sim coinbase: unsupported type {other:?}")),
        }
        let channel = request.get("channel").and_then(Json::as_str);
        let ids = match request.get("product_ids") {
            None => Vec::new(),
            some => strings(some).ok_or("feed-sim coinbase: product_ids must be strings")?,
        };
        match channel {
            Some(MARKET_TRADES) => self.market_trades(&ids, out),
            Some(HEARTBEATS) => {
                self.heartbeats = true;
                self.add_channel(HEARTBEATS, &ids);
                self.send_subscriptions(out);
                Ok(())
            }
            other => Err(format!("feed-sim coinbase: unknown channel {other:?}")),
        }
    }

    fn market_trades(&mut self, ids: &[String], out: &mut Outbox) -> Result<(), String> {
        if ids.is_empty() {
            return Err("feed-sim coinbase: market_trades needs product_ids".into());
        }
        let venue = Arc::clone(&self.venue);
        let fixture = &venue.fixture;
        let mut added = Vec::new();
        for id in ids {
            let product = fixture
                .product_of(id)
                .ok_or_else(|| format!("feed-sim coinbase: unknown product_id {id:?}"))?;
            if !self.products.contains(&product) && !added.contains(&product) {
                added.push(product);
            }
        }
        // Recent trades, newest first: numbers already given out, so they may repeat trades a
        // consumer saw on an earlier connection, which is why consumers must skip snapshots.
        let newest = venue.ledger.next() - 1;
        let snapshot: Vec<Json> = added
            .iter()
            .flat_map(|&p| std::iter::repeat_n(p, SNAPSHOT_TRADES))
            .zip(0..)
            .filter_map(|(p, age)| {
                let product = fixture.products.get(p)?;
                Some(fixture.trade(product, newest - age, self.connection).0)
            })
            .collect();
        if !snapshot.is_empty() {
            let events = Self::trades_event(&fixture.snapshot, "snapshot", snapshot);
            let at = self.now();
            out.text(self.envelope(&fixture.snapshot, events, at));
        }
        self.products.extend(&added);
        self.add_channel(MARKET_TRADES, ids);
        self.send_subscriptions(out);
        if !self.started {
            self.started = true;
            let count = update_count(venue.trades_per_connection);
            out.start_ticks(count, venue.interval);
        }
        Ok(())
    }

    fn add_channel(&mut self, channel: &str, ids: &[String]) {
        let index = match self.channels.iter().position(|(c, _)| c == channel) {
            Some(index) => index,
            None => {
                self.channels.push((channel.to_owned(), Vec::new()));
                self.channels.len() - 1
            }
        };
        let listed = &mut self.channels[index].1;
        for id in ids {
            if !listed.contains(id) {
                listed.push(id.clone());
            }
        }
    }

    fn send_subscriptions(&mut self, out: &mut Outbox) {
        let subscriptions = Json::object(self.channels.iter().map(|(channel, ids)| {
            let ids = ids.iter().map(Json::str).collect();
            (channel.clone(), Json::Array(ids))
        }));
        let events = Json::Array(vec![Json::object([("subscriptions", subscriptions)])]);
        let venue = Arc::clone(&self.venue);
        let at = self.now();
        out.text(self.envelope(&venue.fixture.subscriptions, events, at));
    }

    fn send_heartbeat(&mut self, out: &mut Outbox) {
        let venue = Arc::clone(&self.venue);
        let fixture = &venue.fixture;
        let at = self.now();
        let monotonic = fixture.monotonic_nanos + (at - fixture.first_time_nanos);
        let current_time = format!(
            "{} m=+{}.{:09}",
            num::go_time(at),
            monotonic.div_euclid(1_000_000_000),
            monotonic.rem_euclid(1_000_000_000)
        );
        let mut event = first_event(&fixture.heartbeat)
            .cloned()
            .unwrap_or_else(|| Json::Object(Vec::new()));
        event.set("current_time", Json::str(current_time));
        event.set(
            "heartbeat_counter",
            Json::int(fixture.heartbeat_counter + self.heartbeats_sent),
        );
        self.heartbeats_sent += 1;
        out.text(self.envelope(&fixture.heartbeat, Json::Array(vec![event]), at));
    }
}

impl WssSession for Session {
    fn on_text(&mut self, text: &str, out: &mut Outbox) {
        let outcome = match Json::parse(text) {
            Ok(request) => self.subscribe(&request, out),
            Err(_) => Err("feed-sim coinbase: the message is not JSON".into()),
        };
        if let Err(message) = outcome {
            let error = Json::object([
                ("type", Json::str("error")),
                ("message", Json::str(message)),
            ]);
            out.text(error.to_json());
        }
    }

    fn on_tick(&mut self, _tick: usize, out: &mut Outbox) {
        let remaining = self
            .venue
            .trades_per_connection
            .saturating_sub(self.trades_sent);
        if self.products.is_empty() || remaining == 0 {
            return;
        }
        if self.heartbeats && self.updates_sent % HEARTBEAT_EVERY == HEARTBEAT_EVERY - 1 {
            self.send_heartbeat(out);
        }
        let batch = remaining.min(if self.updates_sent.is_multiple_of(2) {
            1
        } else {
            2
        });
        let venue = Arc::clone(&self.venue);
        let fixture = &venue.fixture;
        let (connection, products, first) = (self.connection, &self.products, self.trades_sent);
        let trades = venue.ledger.issue(batch, |k| {
            let mut trades: Vec<(Json, SentTrade)> = (0..batch)
                .filter_map(|j| {
                    let product = fixture
                        .products
                        .get(products[(first + j) % products.len()])?;
                    Some(fixture.trade(product, k + j as i64, connection))
                })
                .collect();
            // Newest first within a message, as in the fixture.
            trades.reverse();
            let sent = trades.iter().map(|(_, s)| s.clone()).collect();
            (trades.into_iter().map(|(t, _)| t).collect(), sent)
        });
        self.trades_sent += batch;
        self.updates_sent += 1;
        let events = Self::trades_event(&fixture.update, "update", trades);
        let at = self.now();
        out.text(self.envelope(&fixture.update, events, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_alternate_one_and_two_trades() {
        let simulate = |mut trades: usize| {
            let mut messages = 0;
            while trades > 0 {
                trades -= trades.min(if messages % 2 == 0 { 1 } else { 2 });
                messages += 1;
            }
            messages
        };
        for trades in 0..50 {
            assert_eq!(update_count(trades), simulate(trades), "{trades} trades");
        }
    }

    #[test]
    fn trade_zero_is_the_fixtures_oldest_update_trade_varied() {
        let fixture = Fixture::load().expect("fixture");
        assert_eq!(
            fixture
                .products
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>(),
            ["BTC-USD", "ETH-USD", "BTC-USDT"]
        );
        assert_eq!(fixture.product_of("BTC-USDC"), Some(0));
        assert_eq!(fixture.product_of("btc-usd"), None);
        let (trade, sent) = fixture.trade(&fixture.products[0], 0, 0);
        assert_eq!(
            trade.to_json(),
            r#"{"trade_id":"852512456","product_id":"BTC-USD","price":"116889.97","size":"0.0015","side":"BUY","time":"2025-08-07T21:17:57.998101Z"}"#
        );
        assert_eq!(sent.timestamp_unix_nanos, 1_754_601_477_998_101_000);
        let (trade, _) = fixture.trade(&fixture.products[1], -1, 0);
        assert_eq!(
            trade.to_json(),
            r#"{"trade_id":"852512455","product_id":"ETH-USD","price":"3870.83","size":"0.6092","side":"SELL","time":"2025-08-07T21:17:57.860790Z"}"#
        );
    }
}
