//! `feedproxy demo` run as a process: it exits 0, its summary shows each exchange's traffic on
//! its route (Binance through the CONNECT proxy, Coinbase through SOCKS5, Backpack direct), and
//! the proxy password appears nowhere, even at trace level.

mod common;

use common::{feedproxy, row, text_without};

const USER: &str = "demo";
const PASSWORD: &str = "Pw-canary:demo/5be0";

#[test]
fn demo_routes_every_exchange_and_reports_the_traffic() {
    let out = feedproxy(
        &["demo", "--seconds", "2", "-vv"],
        &[("FEEDPROXY_DEMO_PASSWORD", PASSWORD)],
    );
    let (stdout, stderr) = text_without(&out, USER, PASSWORD);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // -vv reached the logs: the connections opened through a proxy were reported.
    assert!(
        stderr.contains("connection opened through proxy"),
        "no trace output on stderr:\n{stderr}"
    );

    let socks = cfg!(feature = "socks");
    let coinbase_scheme = if socks {
        "socks5h://127.0.0.1:"
    } else {
        "http://127.0.0.1:"
    };
    for (exchange, scheme) in [
        ("binance", Some("http://127.0.0.1:")),
        ("coinbase", Some(coinbase_scheme)),
        ("backpack", None),
    ] {
        // Trade lines: `binance   BTC-USDT  buy ...` (the summary rows have a transport there).
        let trades = stdout
            .lines()
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>())
            .filter(|w| w.len() == 2 && w[0] == exchange && w[1].contains('-'))
            .count();
        assert!(trades > 0, "no {exchange} trade printed:\n{stdout}");
        for transport in ["http", "websocket"] {
            let cells = row(&stdout, &[exchange, transport]);
            let (route, tunnels, saw) = (cells[2], cells[3], cells[4]);
            match scheme {
                Some(scheme) => {
                    assert!(
                        route.starts_with(scheme),
                        "{exchange} {transport}: {cells:?}"
                    );
                    assert_eq!(tunnels, "1", "{exchange} {transport}: {cells:?}");
                    assert!(saw.ends_with("(1 via proxy, 0 direct)"), "{cells:?}");
                }
                None => {
                    assert_eq!(route, "direct", "{cells:?}");
                    assert_eq!(tunnels, "-", "{cells:?}");
                    assert!(saw.ends_with("(0 via proxy, 1 direct)"), "{cells:?}");
                }
            }
        }
        let ws = row(&stdout, &[exchange, "websocket"]);
        let received: u64 = ws[5]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{ws:?}"));
        assert_eq!(received as usize, trades, "{ws:?}");
    }
    let binance = row(&stdout, &["binance", "http"]);
    assert!(binance[2].ends_with("(auth)"), "{binance:?}");
    // The proxies' own view: each carried exactly its exchange's two connections.
    let connect = row(&stdout, &[binance[2]]);
    if socks {
        assert_eq!(
            connect[1..],
            ["2", "binance REST x1, binance WS x1"],
            "{connect:?}"
        );
        let socks_label = row(&stdout, &["coinbase", "http"])[2];
        let socks_row = row(&stdout, &[socks_label]);
        assert_eq!(
            socks_row[1..],
            ["2", "coinbase REST x1, coinbase WS x1"],
            "{socks_row:?}"
        );
    } else {
        assert_eq!(
            connect[1..],
            [
                "4",
                "binance REST x1, binance WS x1, coinbase REST x1, coinbase WS x1"
            ],
            "{connect:?}"
        );
    }
    assert!(stdout.contains("every connection took its configured route"));
}

#[test]
fn demo_rejects_a_zero_duration() {
    let out = feedproxy(&["demo", "--seconds", "0"], &[]);
    let (_, stderr) = text_without(&out, USER, PASSWORD);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
