//! Item 5: handshake round trips. The relay holds every byte towards the client for D = 20 ms
//! (the proxy's replies and the exchange's TLS and upgrade flights alike), so each reply flight
//! costs D; connect time divided by (protocol minimum flights x D) shows any extra round trip
//! (from Nagle, a split write, a needless wait) as >= 1.25 for a 4-flight arm.
//!
//! Minimum flights (TCP's own handshake is not delayed): TLS 1.3 server flight 1, then the 101
//! answer to the upgrade request, which goes out with the client's Finished: 2 for direct; a
//! CONNECT reply adds 1 (Basic auth rides in the same request); SOCKS5 adds 2 (method, request),
//! 3 with user/password; SOCKS4 adds 1.

use std::io;
use std::time::{Duration, Instant};

use proxy_resolve::Route;

use crate::Options;
use crate::relay::{Mode, Relay};
#[cfg(feature = "socks")]
use crate::relay::{PASSWORD, USER};
use crate::stats::median;
use crate::table::{Row, Table, Verdict, verdict};
use crate::throughput::{Arm, EXCHANGE, Rig, proxy_route};

const D: Duration = Duration::from_millis(20);

struct Case {
    arm: Arm,
    flights: u32,
    /// Optimistic SOCKS5 (greeting, user/pass and request in one write).
    optimistic: bool,
    _relay: Relay,
}

fn case(rig: &Rig, mode: Mode, name: &'static str, scheme: &str, flights: u32) -> io::Result<Case> {
    let relay = rig
        .background
        .block_on(Relay::start(mode, rig.blaster.addr(), D))?;
    let exchange = format!("wss://127.0.0.1:{}", rig.blaster.addr().port());
    let arm = match mode {
        Mode::Direct => Arm {
            name,
            url_base: format!("wss://{}", relay.addr()),
            route: Route::Direct,
        },
        _ => Arm {
            name,
            url_base: exchange,
            route: proxy_route(&scheme.replace("ADDR", &relay.addr().to_string()))?,
        },
    };
    Ok(Case {
        arm,
        flights,
        optimistic: false,
        _relay: relay,
    })
}

pub(crate) fn run(rig: &Rig, options: &Options, table: &mut Table) -> io::Result<()> {
    #[cfg_attr(
        not(feature = "socks"),
        expect(
            unused_mut,
            reason = "the SOCKS arms are pushed only with the socks feature"
        )
    )]
    let mut cases = vec![
        case(rig, Mode::Direct, "direct", "", 2)?,
        case(
            rig,
            Mode::Connect { auth: false },
            "CONNECT",
            "http://ADDR",
            3,
        )?,
        case(
            rig,
            Mode::Connect { auth: true },
            "CONNECT+auth",
            &format!(
                "http://{}:{}@ADDR",
                crate::relay::USER,
                crate::relay::PASSWORD
            ),
            3,
        )?,
    ];
    #[cfg(feature = "socks")]
    {
        cases.push(case(
            rig,
            Mode::Socks5 { auth: false },
            "SOCKS5",
            "socks5://ADDR",
            4,
        )?);
        cases.push(case(
            rig,
            Mode::Socks5 { auth: true },
            "SOCKS5+auth",
            &format!("socks5://{USER}:{PASSWORD}@ADDR"),
            5,
        )?);
        cases.push(case(rig, Mode::Socks4, "SOCKS4", "socks4://ADDR", 3)?);
        // Optimistic: the three SOCKS5 messages leave together, their answers come back together.
        let mut optimistic = case(
            rig,
            Mode::Socks5 { auth: true },
            "SOCKS5+auth optimistic",
            &format!("socks5://{USER}:{PASSWORD}@ADDR"),
            3,
        )?;
        optimistic.optimistic = true;
        cases.push(optimistic);
    }
    for case in &cases {
        connect_time(rig, case)?;
    }
    let times = rig.interleave(options.handshake_rounds(), cases.len(), |index| {
        connect_time(rig, &cases[index])
    })?;
    for (case, times) in cases.iter().zip(&times) {
        let minimum = D.as_secs_f64() * f64::from(case.flights);
        let ratio = median(times) / minimum;
        table.push(Row {
            bench: "handshake round trips".to_owned(),
            arms: format!("{} / {} flights x 20 ms", case.arm.name, case.flights),
            figure: format!(
                "{:.1} ms, {:+.1} ms over minimum ({} runs)",
                median(times) * 1e3,
                (median(times) - minimum) * 1e3,
                times.len()
            ),
            ratio: Some(ratio),
            bar: "<= 1.05".to_owned(),
            verdict: verdict(ratio <= 1.05),
        });
    }
    let position = |name: &str| cases.iter().position(|case| case.arm.name == name);
    if let (Some(normal), Some(optimistic)) =
        (position("SOCKS5+auth"), position("SOCKS5+auth optimistic"))
    {
        let ratios: Vec<f64> = times[optimistic]
            .iter()
            .zip(&times[normal])
            .map(|(o, n)| o / n)
            .collect();
        table.push(Row {
            bench: "handshake round trips".to_owned(),
            arms: "SOCKS5+auth optimistic / normal".to_owned(),
            figure: format!(
                "{:.1} ms vs {:.1} ms",
                median(&times[optimistic]) * 1e3,
                median(&times[normal]) * 1e3
            ),
            ratio: Some(median(&ratios)),
            bar: "(report; 3/5 flights = 0.60)".to_owned(),
            verdict: Verdict::Report,
        });
    }
    Ok(())
}

/// Seconds from calling `proxy_ws::connect` to holding an open WebSocket.
fn connect_time(rig: &Rig, case: &Case) -> io::Result<f64> {
    let arm = &case.arm;
    let options = proxy_ws::WsOptions {
        socks5_optimistic: case.optimistic,
        ..rig.ws_options.clone()
    };
    rig.client.block_on(async {
        let started = Instant::now();
        let ws = proxy_ws::connect(&arm.url(0, 0), arm.route.clone(), EXCHANGE, &options)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        let elapsed = started.elapsed().as_secs_f64();
        drop(ws);
        Ok(elapsed)
    })
}
