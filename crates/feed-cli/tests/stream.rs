//! `feedproxy stream` run as a process against feed-sim's fake exchanges through an in-process
//! proxy: the trades it prints are the trades the exchange sent, field by field, and both of the
//! feed's connections went through the configured proxy.

mod common;

use std::time::Duration;

use common::{Trust, feedproxy, feedproxy_async, text_without, write};
use feed_sim::exchange::{ExchangeKind, FakeExchange, FakeExchangeOptions};
use feed_sim::{ConnectProxy, ProxyOptions};

const USER: &str = "stream";
const PASSWORD: &str = "Pw-canary stream@9a41";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_trades_through_a_proxy_from_a_config_file_equal_what_the_exchange_sent() {
    let Trust { ca, ca_file, dir } = Trust::new();
    let options = FakeExchangeOptions::new().trades_per_connection(12);
    let mut fake = FakeExchange::start(&ca, ExchangeKind::Binance, options)
        .await
        .expect("fake exchange");
    let mut proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, PASSWORD))
        .await
        .expect("proxy");
    let config = write(
        dir.path(),
        "feed.yaml",
        &format!(
            "proxy:\n  default:\n    http: {{ url: '{0}' }}\n    websocket: {{ url: '{0}' }}\n",
            proxy.url_with_credentials()
        ),
    );
    let out = feedproxy_async(
        &[
            "stream",
            "--exchange",
            "binance",
            "--symbol",
            "BTC-USDT",
            "--config",
            &config,
            "--rest-url",
            &fake.rest_base_url(),
            "--ws-url",
            &fake.ws_base_url(),
            "--ca-file",
            &ca_file,
            "--count",
            "5",
            "--json",
            "-vv",
        ],
        &[],
    )
    .await;
    let (stdout, stderr) = text_without(&out, USER, PASSWORD);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect();
    assert_eq!(lines.len(), 5, "--count 5:\n{stdout}");
    let sent: Vec<_> = fake
        .trades_sent()
        .into_iter()
        .filter(|t| t.exchange_symbol == "BTCUSDT")
        .collect();
    assert!(sent.len() >= 5, "{sent:?}");
    for (line, sent) in lines.iter().zip(&sent) {
        let object = line.as_object().expect("an object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "amount",
                "exchange",
                "id",
                "price",
                "side",
                "symbol",
                "timestamp"
            ]
        );
        assert_eq!(line["exchange"], "binance");
        assert_eq!(line["symbol"], "BTC-USDT");
        assert_eq!(line["side"], sent.taker_side);
        assert_eq!(line["amount"], sent.amount.as_str(), "exactly as sent");
        assert_eq!(line["price"], sent.price.as_str(), "exactly as sent");
        assert_eq!(line["id"], sent.id.as_str());
        let seconds = line["timestamp"].as_f64().expect("timestamp is a number");
        #[allow(clippy::cast_precision_loss)] // compared to a microsecond
        let expected = sent.timestamp_unix_nanos as f64 / 1e9;
        assert!((seconds - expected).abs() < 1e-6, "{seconds} vs {expected}");
    }
    // Both connections through the proxy, to the REST port and the stream port, nothing else.
    let records = proxy
        .connections_when_closed(2, Duration::from_secs(5))
        .await;
    let mut upstreams: Vec<_> = records.iter().map(|r| r.upstream).collect();
    upstreams.sort_unstable();
    let mut expected = vec![Some(fake.rest_addr()), Some(fake.ws_addr())];
    expected.sort_unstable();
    assert_eq!(upstreams, expected, "{records:?}");
    assert!(records.iter().all(|r| r.auth_ok == Some(true)));
    let exchange_peers: Vec<_> = fake
        .rest_requests()
        .iter()
        .map(|r| Some(r.peer))
        .chain(fake.ws_connections().iter().map(|c| c.peer))
        .collect();
    for peer in exchange_peers {
        assert!(
            records.iter().any(|r| r.upstream_local == peer),
            "{peer:?} did not come from the proxy"
        );
    }
    proxy.shutdown().await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_trades_of_each_feed_directly() {
    let Trust {
        ca,
        ca_file,
        dir: _dir,
    } = Trust::new();
    for (kind, symbol) in [
        (ExchangeKind::Binance, "ETH-USDT"),
        (ExchangeKind::Coinbase, "BTC-USD"),
        (ExchangeKind::Backpack, "BTC-USDC"),
    ] {
        let mut fake = FakeExchange::start(&ca, kind, FakeExchangeOptions::new())
            .await
            .expect("fake exchange");
        let out = feedproxy_async(
            &[
                "stream",
                "--exchange",
                kind.as_str(),
                "--symbol",
                symbol,
                "--rest-url",
                &fake.rest_base_url(),
                "--ws-url",
                &fake.ws_base_url(),
                "--ca-file",
                &ca_file,
                "--count",
                "3",
            ],
            &[],
        )
        .await;
        let (stdout, stderr) = text_without(&out, USER, PASSWORD);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{kind:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        let sent = fake.trades_sent();
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[0], kind.as_str(), "{line}");
            assert_eq!(words[1], symbol, "{line}");
            let id = words[words.iter().position(|w| *w == "id").expect("id") + 1];
            let trade = sent
                .iter()
                .find(|t| t.id == id)
                .unwrap_or_else(|| panic!("{line}: no trade {id} sent"));
            assert_eq!(words[2], trade.taker_side, "{line}");
            assert_eq!(words[3], trade.amount, "{line}");
            assert_eq!(words[5], trade.price, "{line}");
        }
        fake.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_symbol_fails_with_exit_1_naming_it() {
    let Trust {
        ca,
        ca_file,
        dir: _dir,
    } = Trust::new();
    let mut fake = FakeExchange::start(&ca, ExchangeKind::Binance, FakeExchangeOptions::new())
        .await
        .expect("fake exchange");
    let out = feedproxy_async(
        &[
            "stream",
            "--exchange",
            "binance",
            "--symbol",
            "NOPE-USDT",
            "--rest-url",
            &fake.rest_base_url(),
            "--ca-file",
            &ca_file,
        ],
        &[],
    )
    .await;
    let (stdout, stderr) = text_without(&out, USER, PASSWORD);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("NOPE-USDT"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    fake.shutdown().await;
}

#[test]
fn invalid_arguments_exit_2() {
    for (args, expected) in [
        (
            vec![
                "stream",
                "--exchange",
                "binance",
                "--symbol",
                "BTC-USDT",
                "--rest-url",
                "ftp://x",
            ],
            "error: binance: invalid base URL \"ftp://x\"",
        ),
        (
            vec!["stream", "--exchange", "kraken", "--symbol", "BTC-USDT"],
            // Whole, as the user guide shows it: clap's message and its possible values, then
            // one pointer to the help.
            "error: invalid value 'kraken' for '--exchange <EXCHANGE>' [possible values: binance, \
             coinbase, backpack] (see feedproxy --help)\n",
        ),
        (
            vec![
                "stream",
                "--exchange",
                "binance",
                "--symbol",
                "BTC-USDT",
                "--count",
                "0",
            ],
            "error: invalid value '0' for '--count <N>'",
        ),
        (
            vec![
                "stream",
                "--exchange",
                "binance",
                "--symbol",
                "BTC-USDT",
                "--ca-file",
                "/nonexistent/ca.pem",
            ],
            "error: --ca-file: ",
        ),
    ] {
        let out = feedproxy(&args, &[]);
        let (_, stderr) = text_without(&out, USER, PASSWORD);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("For more information"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn an_invalid_proxy_setting_exits_2_before_any_connection() {
    let out = feedproxy(
        &["stream", "--exchange", "binance", "--symbol", "BTC-USDT"],
        &[(
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
            &format!("ftp://{USER}:{PASSWORD}@proxy:21"),
        )],
    );
    let (_, stderr) = text_without(&out, USER, PASSWORD);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("exchanges.binance.http.url"), "{stderr}");
    assert!(
        stderr.contains("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL"),
        "{stderr}"
    );
}

/// `feedproxy stream ... | head -1`: the reader goes away after one line; the next write ends
/// the process quietly with exit 0 (no panic, no error line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_pipe_ends_the_stream_with_exit_0() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let Trust {
        ca,
        ca_file,
        dir: _dir,
    } = Trust::new();
    let options = FakeExchangeOptions::new()
        .trades_per_connection(usize::MAX)
        .interval(Some(Duration::from_millis(5)));
    let mut fake = FakeExchange::start(&ca, ExchangeKind::Binance, options)
        .await
        .expect("fake exchange");
    let (rest, ws) = (fake.rest_base_url(), fake.ws_base_url());
    let (status, first, stderr) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_feedproxy"))
            .args(["stream", "--exchange", "binance", "--symbol", "BTC-USDT"])
            .args(["--rest-url", &rest, "--ws-url", &ws, "--ca-file", &ca_file])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run feedproxy");
        let mut first = String::new();
        {
            let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
            reader.read_line(&mut first).expect("first line");
        } // the pipe's read end is closed here
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("feedproxy kept running after its stdout closed: killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        let _ = child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr);
        (status, first, stderr)
    })
    .await
    .expect("runner thread");
    assert!(first.starts_with("binance   BTC-USDT"), "{first}");
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    fake.shutdown().await;
}
