//! Item 3, the feed arm: `FeedHandler` with a Binance feed (parse to a normalized `Trade`, then
//! the trade callback) against a bare fastwebsockets read loop and `WsConn` over the same stream
//! of Binance `aggTrade` messages, from the same server.
//!
//! The feed's REST prefetch goes to feed-sim's fake Binance (its `exchangeInfo` fixture); its
//! stream to the bench server, which writes numbered trades right after the upgrade. Every arm is
//! timed from its first message to its last, so connecting and the prefetch stay out of it.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fastwebsockets::OpCode;
use feed_conn::{ConnOptions, HttpOptions, WsConn, WsConnOptions};
use feed_handler::{BinanceFeed, FeedHandler, HandlerOptions};
use feed_sim::{ExchangeKind, FakeExchange, FakeExchangeOptions};
use proxy_resolve::clear_proxy_system;
use tokio::sync::Notify;

use crate::Options;
use crate::server::{BINANCE_PATH, FIRST_TRADE_ID};
use crate::stats::{ci_text, median};
use crate::table::{Row, Table, Verdict};
use crate::throughput::{EXCHANGE, Rig, count_received};

/// When the first trade came, and when the last came with its id.
#[derive(Debug, Clone, Default)]
struct TradeTimes(Option<Instant>, Option<(Instant, String)>);

/// Messages/s over `count - 1` gaps between a first and a last message.
fn rate(first: Instant, last: Instant, count: usize) -> f64 {
    (count - 1) as f64 / last.duration_since(first).as_secs_f64()
}

impl Rig {
    /// The feed arm of item 3: FeedHandler and WsConn over Binance trades divided by bare.
    pub(crate) fn feeds(&self, options: &Options, table: &mut Table) -> io::Result<()> {
        clear_proxy_system();
        let exchange = self.background.block_on(FakeExchange::start(
            &self.ca,
            ExchangeKind::Binance,
            FakeExchangeOptions::new().trades_per_connection(0),
        ))?;
        let rest_url = exchange.rest_base_url();
        // Calibrated on the slowest arm, so that one lasts about the usual arm time.
        let target = 2.0 * options.arm_seconds();
        self.blaster.set_binance_count(20_000);
        let probe = self.handler_rate(&rest_url, 20_000)?;
        let count = ((probe * target) as usize).max(2_000);
        self.blaster.set_binance_count(count);
        let rates = self.interleave(options.pairs(), 3, |arm| match arm {
            0 => self.bare_binance_rate(count),
            1 => self.ws_conn_binance_rate(count),
            _ => self.handler_rate(&rest_url, count),
        })?;
        let ns = |arm: usize| 1e9 / median(&rates[arm]);
        for (arm, name) in [(1, "WsConn"), (2, "FeedHandler")] {
            let ratios: Vec<f64> = rates[arm]
                .iter()
                .zip(&rates[0])
                .map(|(a, b)| a / b)
                .collect();
            table.push(Row {
                bench: "wrapper cost".to_owned(),
                arms: format!("{name} / bare, Binance trades (~200 B)"),
                figure: format!(
                    "bare {:.0} ns/msg, {name} {:.0} ns/msg ({} pairs{}, {count} trades)",
                    ns(0),
                    ns(arm),
                    ratios.len(),
                    ci_text(&ratios)
                ),
                ratio: Some(median(&ratios)),
                bar: if arm == 1 {
                    "(diagnostic)".to_owned()
                } else {
                    "(report: parse + callback)".to_owned()
                },
                verdict: Verdict::Report,
            });
        }
        drop(exchange);
        Ok(())
    }

    /// A bare fastwebsockets loop over `count` Binance trades.
    fn bare_binance_rate(&self, count: usize) -> io::Result<f64> {
        self.client.block_on(async {
            let mut ws = self.bare_connect(BINANCE_PATH).await?;
            let mut first = None;
            for _ in 0..count {
                let frame = ws
                    .read_frame()
                    .await
                    .map_err(|e| io::Error::other(e.to_string()))?;
                if frame.opcode != OpCode::Text || !frame.payload.starts_with(b"{\"stream\"") {
                    return Err(io::Error::other("unexpected frame"));
                }
                first.get_or_insert_with(Instant::now);
            }
            let first = first.ok_or_else(|| io::Error::other("no trade"))?;
            Ok(rate(first, Instant::now(), count))
        })
    }

    /// `WsConn::next` (counters, a raw-data callback counting) over `count` Binance trades.
    fn ws_conn_binance_rate(&self, count: usize) -> io::Result<f64> {
        let url = format!("wss://{}{BINANCE_PATH}", self.blaster.addr());
        let seen = Arc::new(AtomicU64::new(0));
        let options = WsConnOptions {
            ws: self.ws_options.clone(),
            conn: ConnOptions::default().with_raw_callback(count_received(&seen)),
            ..WsConnOptions::default()
        };
        let mut conn = WsConn::new("bench", EXCHANGE, &url, options)
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.client.block_on(async {
            conn.open()
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            let mut first = None;
            for _ in 0..count {
                match conn.next().await {
                    Ok(Some(bytes)) if bytes.starts_with(b"{\"stream\"") => {}
                    other => return Err(io::Error::other(format!("unexpected {other:?}"))),
                }
                first.get_or_insert_with(Instant::now);
            }
            let first = first.ok_or_else(|| io::Error::other("no trade"))?;
            let last = Instant::now();
            if seen.load(Ordering::Relaxed) < count as u64 {
                return Err(io::Error::other("the raw-data callback missed messages"));
            }
            Ok(rate(first, last, count))
        })
    }

    /// `FeedHandler` with a Binance feed for BTC-USDT: trades/s from the first trade callback
    /// to the `count`th, which must carry the last trade id the server sent.
    fn handler_rate(&self, rest_url: &str, count: usize) -> io::Result<f64> {
        let feed = BinanceFeed::new(&["BTC-USDT"])
            .with_rest_url(rest_url)
            .and_then(|feed| feed.with_ws_url(&format!("wss://{}", self.blaster.addr())))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let defaults = HandlerOptions::default();
        let mut handler = FeedHandler::new(HandlerOptions {
            http: HttpOptions {
                tls: self.ws_options.tls.clone(),
                ..defaults.http.clone()
            },
            ws: feed_conn::WsOptions {
                tls: self.ws_options.tls.clone(),
                ..defaults.ws.clone()
            },
            ..defaults
        });
        handler.add_feed(feed);
        let seen = Arc::new(AtomicU64::new(0));
        let times: Arc<Mutex<TradeTimes>> = Arc::default();
        let done = Arc::new(Notify::new());
        {
            let (seen, times, done) = (Arc::clone(&seen), Arc::clone(&times), Arc::clone(&done));
            let count = count as u64;
            handler.on_trade(move |trade| {
                let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 {
                    if let Ok(mut times) = times.lock() {
                        times.0 = Some(Instant::now());
                    }
                } else if n == count {
                    if let Ok(mut times) = times.lock() {
                        times.1 = Some((Instant::now(), trade.id.clone()));
                    }
                    done.notify_one();
                }
            });
        }
        self.client.block_on(async {
            let running = handler
                .start()
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            let finished =
                tokio::time::timeout(std::time::Duration::from_secs(60), done.notified());
            let result = finished.await;
            running.stop().await;
            result.map_err(|_| io::Error::other("the feed did not deliver every trade in 60 s"))
        })?;
        let TradeTimes(first, last) = times
            .lock()
            .map_err(|_| io::Error::other("a trade callback panicked"))?
            .clone();
        let (Some(first), Some((last, id))) = (first, last) else {
            return Err(io::Error::other("no first or last trade recorded"));
        };
        let expected = (FIRST_TRADE_ID + count as u64 - 1).to_string();
        if id != expected {
            return Err(io::Error::other(format!(
                "the last trade was {id}, expected {expected}"
            )));
        }
        Ok(rate(first, last, count))
    }
}
