//! The I/O rig (runtimes, test CA, WSS server, relays) and the message-rate benchmarks: item 2
//! (tunnel data path), item 3 (wrapper cost), item 8 (disabled proxy system) and item 6 (CPU per
//! connection).
//!
//! The server and relays run on a one-worker runtime on their own thread; every client arm runs
//! on a current-thread runtime on the main thread, so client CPU is the main thread's CPU.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
use feed_conn::{ConnOptions, RawData, RawKind, TlsOptions, WsConn, WsConnOptions};
use feed_sim::TestCa;
use proxy_config::{ProxyConfig, ProxySettings};
use proxy_resolve::{Route, clear_proxy_system, init_proxy_system};
use proxy_ws::{Message, WsOptions};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_rustls::TlsConnector;

use crate::Options;
use crate::alloc::allocations;
use crate::pin::OneCpu;
use crate::relay::{Mode, Relay};
use crate::server::{Blaster, find, path};
use crate::stats::{ci_text, median, si};
use crate::table::{Row, Table, Verdict, verdict};

pub(crate) const EXCHANGE: &str = "binance";

thread_local! {
    /// Allocations per message (whole process) in the last timed read loop.
    static LAST_ALLOCS: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
    /// Socket reads per message in the last timed `WsStream` loop (NaN for other arms).
    static LAST_READS: std::cell::Cell<f64> = const { std::cell::Cell::new(f64::NAN) };
    /// The client thread's waits (voluntary context switches) per 1,000 messages in the last
    /// timed read loop.
    static LAST_WAITS: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
    /// The client thread's CPU time over the wall time of the last timed read loop (1.0: it
    /// never waited for the server).
    static LAST_BUSY: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

/// A timed read loop's start: the time, the allocation count, the client thread's waits and CPU.
pub(crate) struct Timer {
    started: Instant,
    allocs: u64,
    waits: f64,
    cpu: f64,
}

/// Starts a timed read loop.
pub(crate) fn start_timer() -> Timer {
    Timer {
        waits: thread_waits(),
        cpu: thread_cpu(),
        allocs: allocations(),
        started: Instant::now(),
    }
}

/// Ends a timed read loop of `count` messages: messages/s; records allocations per message,
/// the client thread's waits per 1,000 messages and its CPU over wall time.
pub(crate) fn stop_timer(timer: Timer, count: usize) -> f64 {
    let elapsed = timer.started.elapsed().as_secs_f64();
    LAST_ALLOCS.set((allocations() - timer.allocs) as f64 / count as f64);
    LAST_BUSY.set((thread_cpu() - timer.cpu) / elapsed);
    LAST_WAITS.set((thread_waits() - timer.waits) * 1000.0 / count as f64);
    count as f64 / elapsed
}
/// The arms `--profile` can run.
/// `connect-*` arms open and drop connections (item 6) instead of reading messages; their SIZE
/// is ignored.
pub(crate) const PROFILE_ARMS: [&str; 7] = [
    "bare",
    "wsstream",
    "wsconn",
    "connect-direct",
    "connect-connect",
    "connect-socks5",
    "connect-socks5-optimistic",
];

pub(crate) const SIZES: [usize; 3] = [64, 1024, 16 * 1024];

/// The runtimes, the CA, the WSS server and the undelayed relays.
pub(crate) struct Rig {
    pub(crate) blaster: Blaster,
    /// Where the read-loop arms connect: the in-process blaster, or for `--profile` with
    /// FEED_BENCH_SERVER_PROCESS=1 a `--serve-memory` child's.
    server: SocketAddr,
    direct: Relay,
    connect: Relay,
    #[cfg(feature = "socks")]
    socks5: Relay,
    pub(crate) ws_options: WsOptions,
    bare_tls: Arc<ClientConfig>,
    /// The CA of every server's certificate (the fake exchange of the feed arm too).
    pub(crate) ca: TestCa,
    pub(crate) client: Runtime,
    /// Last: the server and relays' tasks drop before their runtime.
    pub(crate) background: Runtime,
}

/// One way to open a WebSocket for a data-path arm.
#[derive(Debug, Clone)]
pub(crate) struct Arm {
    pub(crate) name: &'static str,
    pub(crate) url_base: String,
    pub(crate) route: Route,
}

impl Arm {
    pub(crate) fn url(&self, size: usize, count: usize) -> String {
        format!("{}{}", self.url_base, path(size, count))
    }
}

pub(crate) fn proxy_route(url: &str) -> io::Result<Route> {
    let config = ProxyConfig::parse(url).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(Route::Proxy(Arc::new(config)))
}

impl Rig {
    pub(crate) fn start() -> io::Result<Self> {
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-server")
            .enable_all()
            .build()?;
        let client = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let ca = TestCa::new();
        let server_config = ca.server_config(&["127.0.0.1"]);
        let blaster = background.block_on(Blaster::start(server_config))?;
        let target = blaster.addr();
        let zero = Duration::ZERO;
        let direct = background.block_on(Relay::start(Mode::Direct, target, zero))?;
        let connect =
            background.block_on(Relay::start(Mode::Connect { auth: false }, target, zero))?;
        #[cfg(feature = "socks")]
        let socks5 =
            background.block_on(Relay::start(Mode::Socks5 { auth: false }, target, zero))?;
        let tls = TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .map_err(|e| io::Error::other(e.to_string()))?;
        let ws_options = WsOptions {
            tls,
            ..WsOptions::default()
        };
        let bare_tls = ca.client_config();
        Ok(Self {
            server: blaster.addr(),
            blaster,
            direct,
            connect,
            #[cfg(feature = "socks")]
            socks5,
            ws_options,
            bare_tls,
            ca,
            client,
            background,
        })
    }

    /// The direct arm (through the relay, no handshake) and the proxied arms through it.
    pub(crate) fn tunnel_arms(&self) -> io::Result<Vec<Arm>> {
        // The relays forward to the in-process blaster, whatever `server` the read loops use.
        let exchange = format!("wss://127.0.0.1:{}", self.blaster.addr().port());
        #[cfg_attr(
            not(feature = "socks"),
            expect(
                unused_mut,
                reason = "the SOCKS arm is pushed only with the socks feature"
            )
        )]
        let mut arms = vec![
            Arm {
                name: "direct",
                url_base: format!("wss://127.0.0.1:{}", self.direct.addr().port()),
                route: Route::Direct,
            },
            Arm {
                name: "CONNECT",
                url_base: exchange.clone(),
                route: proxy_route(&format!("http://{}", self.connect.addr()))?,
            },
        ];
        #[cfg(feature = "socks")]
        arms.push(Arm {
            name: "SOCKS5",
            url_base: exchange,
            route: proxy_route(&format!("socks5://{}", self.socks5.addr()))?,
        });
        #[cfg(not(feature = "socks"))]
        drop(exchange);
        Ok(arms)
    }

    /// How many messages of `size` bytes make an arm last about the target time, from one run
    /// of `probe` with a first guess.
    pub(crate) fn calibrate<F>(
        &self,
        options: &Options,
        size: usize,
        mut probe: F,
    ) -> io::Result<usize>
    where
        F: FnMut(usize) -> io::Result<f64>,
    {
        let target = options.arm_seconds();
        let guess = (4 * 1024 * 1024 / size).max(200);
        probe(guess)?;
        let rate = probe(guess)?;
        Ok(((rate * target) as usize).max(200))
    }

    /// Item 2: messages/s over proxy_ws through CONNECT and SOCKS5 divided by direct.
    pub(crate) fn tunnel(&self, options: &Options, table: &mut Table) -> io::Result<()> {
        let arms = self.tunnel_arms()?;
        for size in SIZES {
            let count = self.calibrate(options, size, |count| {
                self.proxy_ws_rate(&arms[0], size, count)
            })?;
            let mut reads = vec![Vec::new(); arms.len()];
            let rates = self.interleave(options.pairs(), arms.len(), |arm| {
                let rate = self.proxy_ws_rate(&arms[arm], size, count);
                reads[arm].push(LAST_READS.get());
                rate
            })?;
            if std::env::var_os("FEED_BENCH_PAIRS").is_some() {
                for (arm, reads) in arms.iter().zip(&reads) {
                    eprintln!(
                        "  socket reads per message, {} {}: median {:.3}",
                        arm.name,
                        size_name(size),
                        median(reads)
                    );
                }
            }
            for (index, arm) in arms.iter().enumerate().skip(1) {
                push_ratio(
                    table,
                    "tunnel data path",
                    &format!("{} / direct, {}", arm.name, size_name(size)),
                    &rates,
                    (0, "direct"),
                    (index, arm.name),
                    ">= 0.98",
                    0.98,
                    "msg/s",
                );
            }
        }
        Ok(())
    }

    /// Item 3: `WsConn` (counters, raw-data callback) divided by a bare fastwebsockets loop;
    /// `proxy_ws::WsStream` alone as a third arm shows which layer costs what.
    pub(crate) fn wrapper(&self, options: &Options, table: &mut Table) -> io::Result<()> {
        let direct = Arm {
            name: "WsStream",
            url_base: format!("wss://{}", self.server),
            route: Route::Direct,
        };
        for size in SIZES {
            let count = self.calibrate(options, size, |count| self.bare_rate(size, count))?;
            let mut allocs = [Vec::new(), Vec::new(), Vec::new()];
            let mut waits = [Vec::new(), Vec::new(), Vec::new()];
            let mut busy = [Vec::new(), Vec::new(), Vec::new()];
            let rates = self.interleave(options.pairs(), 3, |arm| {
                let rate = match arm {
                    0 => self.bare_rate(size, count),
                    1 => self.ws_conn_rate(size, count, WsConnKind::WithCallback),
                    _ => self.proxy_ws_rate(&direct, size, count),
                }?;
                allocs[arm].push(LAST_ALLOCS.get());
                waits[arm].push(LAST_WAITS.get());
                busy[arm].push(LAST_BUSY.get());
                Ok(rate)
            })?;
            // Messages per second of client CPU: the rate without the time the client slept
            // waiting for the server.
            let per_cpu: Vec<Vec<f64>> = rates
                .iter()
                .zip(&busy)
                .map(|(rates, busy)| rates.iter().zip(busy).map(|(r, b)| r / b).collect())
                .collect();
            let allocs = allocs.map(|a| median(&a));
            let waits = waits.map(|w| median(&w));
            let busy = busy.map(|b| median(&b));
            push_ratio(
                table,
                "wrapper cost",
                &format!("WsConn / bare fastwebsockets, {}", size_name(size)),
                &rates,
                (0, "bare"),
                (1, "WsConn"),
                ">= 0.95",
                0.95,
                "msg/s",
            );
            push_ratio(
                table,
                "wrapper cost",
                &format!("proxy_ws WsStream / bare, {}", size_name(size)),
                &rates,
                (0, "bare"),
                (2, "WsStream"),
                "(diagnostic)",
                0.0,
                "msg/s",
            );
            // The count is process-wide; the server encrypted its frames before the timed loop,
            // so what it allocates meanwhile (its writes) is the same for every arm, and the
            // row compares each wrapper with the bare loop over the same server work.
            table.push(Row {
                bench: "wrapper cost".to_owned(),
                arms: format!("allocations per message, {}", size_name(size)),
                figure: format!(
                    "process-wide: bare {:.2}, WsStream {:.2}, WsConn {:.2}",
                    allocs[0], allocs[2], allocs[1]
                ),
                ratio: None,
                bar: "WsConn adds 0 over bare".to_owned(),
                verdict: verdict(allocs[1] - allocs[0] < 0.01),
            });
            push_ratio(
                table,
                "wrapper cost",
                &format!(
                    "WsConn / bare per second of client CPU, {}",
                    size_name(size)
                ),
                &per_cpu,
                (0, "bare"),
                (1, "WsConn"),
                "(diagnostic)",
                0.0,
                "msg per CPU-s",
            );
            // How often the client caught up with the server and slept: a wake-up per wait,
            // whose price depends on the machine (docs/performance.md, run 11).
            table.push(Row {
                bench: "wrapper cost".to_owned(),
                arms: format!("client waits in the read loop, {}", size_name(size)),
                figure: format!(
                    "per 1,000 messages: bare {:.2}, WsStream {:.2}, WsConn {:.2}; client CPU / wall: bare {:.3}, WsStream {:.3}, WsConn {:.3}",
                    waits[0], waits[2], waits[1], busy[0], busy[2], busy[1]
                ),
                ratio: None,
                bar: "(diagnostic)".to_owned(),
                verdict: Verdict::Report,
            });
        }
        Ok(())
    }

    /// The SOCKS5 relay's address.
    #[cfg(feature = "socks")]
    pub(crate) fn socks5_addr(&self) -> std::net::SocketAddr {
        self.socks5.addr()
    }

    /// Points the read-loop arms (`bare`, `wsstream`, `wsconn`) at a server in another process,
    /// trusting the CA it wrote to `pem`.
    pub(crate) fn use_server(&mut self, server: SocketAddr, pem: &[u8]) -> io::Result<()> {
        let tls = TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(pem)
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.bare_tls = tls
            .client_config(&[])
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.ws_options.tls = tls;
        self.server = server;
        Ok(())
    }

    /// The client TLS configuration of the bare arms.
    #[cfg(feature = "socks")]
    pub(crate) fn bare_tls(&self) -> &Arc<ClientConfig> {
        &self.bare_tls
    }

    /// One read-loop arm run for about 5 s (for a profiler): the arm's median messages/s.
    pub(crate) fn profile(&self, arm: &str, size: usize) -> io::Result<f64> {
        let direct = Arm {
            name: "WsStream",
            url_base: format!("wss://{}", self.server),
            route: Route::Direct,
        };
        if arm.starts_with("connect-") {
            return self.profile_connect(arm);
        }
        let run = |count| match arm {
            "bare" => self.bare_rate(size, count),
            "wsconn" => self.ws_conn_rate(size, count, WsConnKind::WithCallback),
            _ => self.proxy_ws_rate(&direct, size, count),
        };
        // Each run lasts about `fraction` seconds (FEED_BENCH_PROFILE_FRACTION, default 0.5;
        // the wrapper group's runs last 0.15 s).
        let fraction: f64 = std::env::var("FEED_BENCH_PROFILE_FRACTION")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|f: &f64| f.is_finite() && *f > 0.0)
            .unwrap_or(0.5);
        let first = run(200_000.min(64 * 1024 * 1024 / size.max(1)))?;
        let count = ((first * fraction) as usize).max(200);
        let started = Instant::now();
        let mut rates = Vec::new();
        let mut shown = Vec::new();
        while started.elapsed() < Duration::from_secs(5) {
            let cpu = thread_cpu();
            LAST_READS.set(f64::NAN);
            let from = monotonic();
            let rate = run(count)?;
            let to = monotonic();
            // Client-thread CPU per message, the connect included (a few hundred us per run).
            let cpu_ns = (thread_cpu() - cpu) / count as f64 * 1e9;
            let mut figure = format!("{:.2}M/s {cpu_ns:.0}ns", rate / 1e6);
            let reads = LAST_READS.get();
            if !reads.is_nan() {
                figure.push_str(&format!(" {reads:.3}r/msg"));
            }
            // The run's span on CLOCK_MONOTONIC (connect and read loop).
            if std::env::var_os("FEED_BENCH_PROFILE_TIMES").is_some() {
                figure.push_str(&format!(" @{from:.6}-{to:.6}"));
            }
            shown.push(figure);
            rates.push(rate);
        }
        // FEED_BENCH_PROFILE_ALL=1: every run's rate and client CPU per message, to see a
        // spread the median hides.
        if std::env::var_os("FEED_BENCH_PROFILE_ALL").is_some() {
            eprintln!("{}", shown.join(", "));
        }
        Ok(median(&rates))
    }

    /// Item 8: `WsConn` with a disabled proxy system installed divided by `WsConn` with no proxy
    /// system.
    pub(crate) fn disabled(&self, options: &Options, table: &mut Table) -> io::Result<()> {
        for size in [64, 1024] {
            let count = self.calibrate(options, size, |count| {
                self.ws_conn_rate(size, count, WsConnKind::NoSystem)
            })?;
            let rates = self.interleave(options.pairs(), 2, |arm| match arm {
                0 => self.ws_conn_rate(size, count, WsConnKind::NoSystem),
                _ => self.ws_conn_rate(size, count, WsConnKind::DisabledSystem),
            })?;
            push_ratio(
                table,
                "disabled system",
                &format!("WsConn disabled / no system, {}", size_name(size)),
                &rates,
                (0, "none"),
                (1, "disabled"),
                ">= 0.99",
                0.99,
                "msg/s",
            );
        }
        clear_proxy_system();
        Ok(())
    }

    /// Item 6: client-thread CPU per WSS connection set up (TCP, proxy handshake, TLS, upgrade)
    /// through each proxy kind divided by direct; then the same arms with the client, the
    /// relays and the server pinned to one CPU (report rows: what the arms cost when no round
    /// trip wakes a thread on another CPU).
    pub(crate) fn cpu(&self, options: &Options, table: &mut Table) -> io::Result<()> {
        let arms = self.cpu_arms()?;
        self.cpu_pass(options, &arms, None, table)?;
        match OneCpu::pin(&self.background) {
            Ok(pinned) => {
                let result = self.cpu_pass(options, &arms, Some(pinned.cpu()), table);
                // The pass's error, if any, is the one to report.
                let restored = pinned.restore();
                result.and(restored)
            }
            Err(error) => {
                table.push(Row {
                    bench: "CPU per connection".to_owned(),
                    arms: "the arms on one CPU".to_owned(),
                    figure: format!("not run: pinning the threads failed: {error}"),
                    ratio: None,
                    bar: "(report)".to_owned(),
                    verdict: Verdict::Report,
                });
                Ok(())
            }
        }
    }

    /// One pass of the CPU arms and the ping-pong row; `one_cpu`: the CPU every thread is
    /// pinned to (report rows) or `None` (the rows that carry the bar).
    fn cpu_pass(
        &self,
        options: &Options,
        arms: &[(Arm, bool)],
        one_cpu: Option<usize>,
        table: &mut Table,
    ) -> io::Result<()> {
        let per_round = if options.quick { 5 } else { 10 };
        for (arm, optimistic) in arms {
            self.connect_cpu(arm, *optimistic, 2)?;
        }
        let mut waits = vec![Vec::new(); arms.len()];
        let cpu = self.interleave(options.pairs(), arms.len(), |index| {
            let (arm, optimistic) = &arms[index];
            let (cpu, blocked) = self.connect_cpu(arm, *optimistic, per_round)?;
            waits[index].push(blocked);
            Ok(cpu)
        })?;
        let pinned = one_cpu.map_or_else(String::new, |cpu| format!(", all on CPU {cpu}"));
        let direct_waits = median(&waits[0]);
        for (index, (arm, optimistic)) in arms.iter().enumerate().skip(1) {
            let ratios: Vec<f64> = cpu[index].iter().zip(&cpu[0]).map(|(a, d)| a / d).collect();
            let ratio = median(&ratios);
            let name = if *optimistic {
                format!("{} optimistic", arm.name)
            } else {
                arm.name.to_owned()
            };
            let (bar, verdict) = match (one_cpu, *optimistic) {
                (Some(_), _) => (
                    "(report: no cross-CPU wake-ups)".to_owned(),
                    Verdict::Report,
                ),
                (None, true) => ("(report; opt-in)".to_owned(), Verdict::Report),
                (None, false) => ("<= 1.10".to_owned(), verdict(ratio <= 1.10)),
            };
            table.push(Row {
                bench: "CPU per connection".to_owned(),
                arms: format!("{name} / direct (incl. TLS){pinned}"),
                figure: format!(
                    "direct {:.0} us {direct_waits:.1} waits, {name} {:.0} us {:.1} waits{} ({} pairs{})",
                    median(&cpu[0]) * 1e6,
                    median(&cpu[index]) * 1e6,
                    median(&waits[index]),
                    per_wait(
                        median(&cpu[index]) - median(&cpu[0]),
                        median(&waits[index]) - direct_waits
                    ),
                    ratios.len(),
                    ci_text(&ratios)
                ),
                ratio: Some(ratio),
                bar,
                verdict,
            });
        }
        let batches: Vec<(f64, f64)> = (0..if options.quick { 5 } else { 20 })
            .map(|_| self.round_trip_cpu(100))
            .collect::<io::Result<_>>()?;
        let cpu: Vec<f64> = batches.iter().map(|b| b.0).collect();
        let blocked: Vec<f64> = batches.iter().map(|b| b.1).collect();
        table.push(Row {
            bench: "CPU per connection".to_owned(),
            arms: format!("one loopback round trip (1-byte ping-pong){pinned}"),
            figure: format!(
                "{:.1} us, {:.2} waits per round trip (median of {} batches of 100)",
                median(&cpu) * 1e6,
                median(&blocked),
                cpu.len()
            ),
            ratio: None,
            bar: "(report: the cost of one round trip)".to_owned(),
            verdict: Verdict::Report,
        });
        Ok(())
    }

    /// Client-thread CPU and waits per round trip of `count` 1-byte ping-pongs with an echo
    /// task on the server runtime, over one loopback TCP connection: about what one more
    /// handshake round trip costs the client, whatever the protocol.
    fn round_trip_cpu(&self, count: usize) -> io::Result<(f64, f64)> {
        let listener = self
            .background
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let echo = self.background.spawn(async move {
            let (mut tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            let mut byte = [0u8; 1];
            while tcp.read(&mut byte).await? == 1 {
                tcp.write_all(&byte).await?;
            }
            io::Result::Ok(())
        });
        let result = self.client.block_on(async {
            let mut tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let mut byte = [7u8; 1];
            // One untimed round trip: the echo task has accepted and is waiting.
            tcp.write_all(&byte).await?;
            tcp.read_exact(&mut byte).await?;
            let switches = thread_waits();
            let before = thread_cpu();
            for _ in 0..count {
                tcp.write_all(&byte).await?;
                tcp.read_exact(&mut byte).await?;
            }
            let cpu = (thread_cpu() - before) / count as f64;
            Ok((cpu, (thread_waits() - switches) / count as f64))
        });
        echo.abort();
        result
    }

    /// The CPU arms: the tunnel arms in their normal mode, and SOCKS5 once more in its opt-in
    /// optimistic mode (greeting and connect request in one write: one round trip to the proxy).
    fn cpu_arms(&self) -> io::Result<Vec<(Arm, bool)>> {
        let mut arms: Vec<(Arm, bool)> = Vec::new();
        for arm in self.tunnel_arms()? {
            let optimistic = (arm.name == "SOCKS5").then(|| arm.clone());
            arms.push((arm, false));
            arms.extend(optimistic.map(|arm| (arm, true)));
        }
        Ok(arms)
    }

    /// `--profile connect-*`: opens and drops connections through one arm for about 5 s; prints
    /// each batch's client-thread CPU per connection with FEED_BENCH_PROFILE_ALL; returns
    /// connections per second.
    fn profile_connect(&self, arm: &str) -> io::Result<f64> {
        let (name, optimistic) = match arm {
            "connect-direct" => ("direct", false),
            "connect-connect" => ("CONNECT", false),
            "connect-socks5" => ("SOCKS5", false),
            _ => ("SOCKS5", true),
        };
        let arm = self
            .tunnel_arms()?
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| io::Error::other(format!("no {name} arm in this build")))?;
        let started = Instant::now();
        let mut shown = Vec::new();
        let mut connections = 0usize;
        while started.elapsed() < Duration::from_secs(5) {
            let (cpu, _) = self.connect_cpu(&arm, optimistic, 50)?;
            connections += 50;
            shown.push(format!("{:.0}us", cpu * 1e6));
        }
        if std::env::var_os("FEED_BENCH_PROFILE_ALL").is_some() {
            eprintln!("{}", shown.join(", "));
        }
        Ok(connections as f64 / started.elapsed().as_secs_f64())
    }

    /// Runs `arms` arms in `rounds` rounds and returns each arm's figures, one per round. The
    /// rounds cycle through every order of the arms (A B, B A; with three: A B C, A C B, B A C,
    /// ...), so over each full cycle every arm runs in each position equally often and an
    /// effect of position (being first, or following a given arm) falls on every arm alike. (With the order only reversed
    /// every other round, the middle one of three arms never ran twice in a row.)
    pub(crate) fn interleave<F>(
        &self,
        rounds: usize,
        arms: usize,
        mut run: F,
    ) -> io::Result<Vec<Vec<f64>>>
    where
        F: FnMut(usize) -> io::Result<f64>,
    {
        let orders = orders(arms);
        let mut figures = vec![Vec::with_capacity(rounds); arms];
        for round in 0..rounds {
            for &arm in &orders[round % orders.len()] {
                figures[arm].push(run(arm)?);
            }
        }
        Ok(figures)
    }

    /// Messages/s received by `proxy_ws::WsStream`.
    pub(crate) fn proxy_ws_rate(&self, arm: &Arm, size: usize, count: usize) -> io::Result<f64> {
        self.client.block_on(async {
            let mut ws = proxy_ws::connect(
                &arm.url(size, count),
                arm.route.clone(),
                EXCHANGE,
                &self.ws_options,
            )
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
            ws.send_text("go")
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            let timer = start_timer();
            let reads = ws.socket_reads();
            for _ in 0..count {
                match ws.next_message().await {
                    Ok(Some(Message::Text(bytes))) if bytes.len() == size => {}
                    other => return Err(io::Error::other(format!("unexpected {other:?}"))),
                }
            }
            LAST_READS.set((ws.socket_reads() - reads) as f64 / count as f64);
            Ok(stop_timer(timer, count))
        })
    }

    /// Messages/s received by a bare fastwebsockets `WebSocket` over tokio-rustls.
    fn bare_rate(&self, size: usize, count: usize) -> io::Result<f64> {
        self.client.block_on(async {
            let mut ws = self.bare_connect(&path(size, count)).await?;
            ws.write_frame(Frame::text(Payload::Borrowed(b"go")))
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            let timer = start_timer();
            for _ in 0..count {
                let frame = ws
                    .read_frame()
                    .await
                    .map_err(|e| io::Error::other(e.to_string()))?;
                if frame.opcode != OpCode::Text || frame.payload.len() != size {
                    return Err(io::Error::other("unexpected frame"));
                }
            }
            Ok(stop_timer(timer, count))
        })
    }

    /// A bare fastwebsockets `WebSocket` over tokio-rustls to the server's `path`: the upgrade
    /// written by hand, the answer's head skipped (the server writes nothing more before "go",
    /// or before the client has its head, so nothing is lost).
    pub(crate) async fn bare_connect(&self, path: &str) -> io::Result<BareWs> {
        let tcp = TcpStream::connect(self.server).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(self.server.ip().into());
        let mut tls = TlsConnector::from(Arc::clone(&self.bare_tls))
            .connect(name, tcp)
            .await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.server.port()
        );
        tls.write_all(request.as_bytes()).await?;
        // One byte at a time up to the end of the head: frames may follow it in the same record.
        let mut head = Vec::new();
        while find(&head, b"\r\n\r\n").is_none() {
            let byte = tls.read_u8().await?;
            head.push(byte);
        }
        Ok(WebSocket::after_handshake(tls, Role::Client))
    }

    /// Messages/s received by `WsConn::next`, direct to the server.
    fn ws_conn_rate(&self, size: usize, count: usize, kind: WsConnKind) -> io::Result<f64> {
        let url = format!("wss://{}{}", self.server, path(size, count));
        let mut conn_options = ConnOptions::default();
        let seen = Arc::new(AtomicU64::new(0));
        match kind {
            WsConnKind::WithCallback => {
                conn_options = conn_options.with_raw_callback(count_received(&seen));
            }
            WsConnKind::NoSystem => clear_proxy_system(),
            WsConnKind::DisabledSystem => {
                init_proxy_system(ProxySettings::disabled());
            }
        }
        let options = WsConnOptions {
            ws: self.ws_options.clone(),
            conn: conn_options,
            ..WsConnOptions::default()
        };
        let mut conn = WsConn::new("bench", EXCHANGE, &url, options)
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.client.block_on(async {
            conn.open()
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            conn.write("go")
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            let timer = start_timer();
            for _ in 0..count {
                match conn.next().await {
                    Ok(Some(bytes)) if bytes.len() == size => {}
                    other => return Err(io::Error::other(format!("unexpected {other:?}"))),
                }
            }
            let rate = stop_timer(timer, count);
            drop(conn);
            if matches!(kind, WsConnKind::WithCallback)
                && seen.load(Ordering::Relaxed) != count as u64
            {
                return Err(io::Error::other("the raw-data callback missed messages"));
            }
            Ok(rate)
        })
    }

    /// Client-thread CPU seconds per connection over `count` connections opened and dropped,
    /// and how often per connection the thread blocked
    /// (voluntary context switches: each wait for a reply that has not come yet).
    fn connect_cpu(&self, arm: &Arm, optimistic: bool, count: usize) -> io::Result<(f64, f64)> {
        let options = WsOptions {
            socks5_optimistic: optimistic,
            ..self.ws_options.clone()
        };
        self.client.block_on(async {
            let switches = thread_waits();
            let before = thread_cpu();
            for _ in 0..count {
                let ws = proxy_ws::connect(&arm.url(0, 0), arm.route.clone(), EXCHANGE, &options)
                    .await
                    .map_err(|e| io::Error::other(e.to_string()))?;
                drop(ws);
            }
            let cpu = (thread_cpu() - before) / count as f64;
            Ok((cpu, (thread_waits() - switches) / count as f64))
        })
    }
}

/// A raw-data callback counting received messages into `seen`: the user code of the `WsConn`
/// arms. It runs on the reading task only, so it counts with a plain load and store, as a
/// user's single-task counter would (a locked add would charge the wrapper a cost of the
/// callback's choosing).
pub(crate) fn count_received(
    seen: &Arc<AtomicU64>,
) -> impl Fn(&RawData<'_>) + Send + Sync + 'static {
    let seen = Arc::clone(seen);
    move |raw| {
        if let RawKind::Received(_) = raw.kind {
            seen.store(seen.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }
}

/// The bare arms' WebSocket.
pub(crate) type BareWs = WebSocket<tokio_rustls::client::TlsStream<TcpStream>>;

#[derive(Debug, Clone, Copy)]
enum WsConnKind {
    /// No proxy system touched; a raw-data callback counting messages.
    WithCallback,
    /// The process-wide proxy system cleared.
    NoSystem,
    /// `init_proxy_system` with disabled settings.
    DisabledSystem,
}

/// User + system CPU of the calling thread, in seconds (clock_gettime CLOCK_THREAD_CPUTIME_ID:
/// nanosecond resolution, where getrusage RUSAGE_THREAD has microseconds).
pub(crate) fn thread_cpu() -> f64 {
    let mut now = std::mem::MaybeUninit::<libc::timespec>::zeroed();
    // SAFETY: clock_gettime writes a whole `timespec` into the pointer it is given, which
    // points at one; CLOCK_THREAD_CPUTIME_ID is valid on Linux.
    #[allow(unsafe_code)] // the only way to read per-thread CPU time; one FFI call
    let now = unsafe {
        if libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, now.as_mut_ptr()) != 0 {
            return f64::NAN;
        }
        now.assume_init()
    };
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// Voluntary context switches of the calling thread so far (getrusage RUSAGE_THREAD
/// ru_nvcsw): the times it blocked waiting, here for a socket to become readable.
pub(crate) fn thread_waits() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which points at
    // one; RUSAGE_THREAD is valid on Linux.
    #[allow(unsafe_code)] // the only way to read a thread's context switches; one FFI call
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) != 0 {
            return f64::NAN;
        }
        usage.assume_init()
    };
    usage.ru_nvcsw as f64
}

/// `", +N us per extra wait"` when the arm blocked at least half a wait more than direct.
fn per_wait(extra_cpu: f64, extra_waits: f64) -> String {
    if extra_waits >= 0.5 {
        format!(", +{:.0} us per extra wait", extra_cpu / extra_waits * 1e6)
    } else {
        String::new()
    }
}

/// CLOCK_MONOTONIC in seconds: the clock `perf record -k CLOCK_MONOTONIC` stamps samples with,
/// so a profile's per-run figures can be matched with its samples.
fn monotonic() -> f64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one `timespec` into the pointer, which points at one;
    // CLOCK_MONOTONIC is valid on Linux.
    #[allow(unsafe_code)] // std's Instant does not expose its clock value; one FFI call
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) == 0 };
    if ok {
        time.tv_sec as f64 + time.tv_nsec as f64 / 1e9
    } else {
        f64::NAN
    }
}

/// Every order of `0..arms` in lexicographic order, for up to 5 arms (120 orders); above that,
/// the identity order and its reverse.
pub(crate) fn orders(arms: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..arms).collect();
    if arms > 5 {
        let reversed = order.iter().rev().copied().collect();
        return vec![order, reversed];
    }
    let mut all = vec![order.clone()];
    // Next lexicographic permutation until the last one.
    loop {
        let Some(i) = (1..order.len()).rev().find(|&i| order[i - 1] < order[i]) else {
            return all;
        };
        let pivot = i - 1;
        let Some(j) = (i..order.len()).rev().find(|&j| order[j] > order[pivot]) else {
            return all;
        };
        order.swap(pivot, j);
        order[i..].reverse();
        all.push(order.clone());
    }
}

pub(crate) fn size_name(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// A row for `arm / base` from per-round rates (in `unit`: `msg/s`, `msg per CPU-s`): the median
/// of the per-round ratios.
#[allow(clippy::too_many_arguments)] // one call shape for every rate row; a struct would only rename them
pub(crate) fn push_ratio(
    table: &mut Table,
    bench: &str,
    arms: &str,
    rates: &[Vec<f64>],
    base: (usize, &str),
    arm: (usize, &str),
    bar: &str,
    at_least: f64,
    unit: &str,
) {
    let ratios: Vec<f64> = rates[arm.0]
        .iter()
        .zip(&rates[base.0])
        .map(|(a, b)| a / b)
        .collect();
    let ratio = median(&ratios);
    if std::env::var_os("FEED_BENCH_PAIRS").is_some() {
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
        eprintln!("  pairs {arms}: {}", shown.join(" "));
    }
    table.push(Row {
        bench: bench.to_owned(),
        arms: arms.to_owned(),
        figure: format!(
            "{} {} {unit}, {} {} {unit} ({} pairs{})",
            base.1,
            si(median(&rates[base.0])),
            arm.1,
            si(median(&rates[arm.0])),
            ratios.len(),
            ci_text(&ratios)
        ),
        ratio: Some(ratio),
        bar: bar.to_owned(),
        verdict: if at_least > 0.0 {
            verdict(ratio >= at_least)
        } else {
            Verdict::Report
        },
    });
}

#[cfg(test)]
mod tests {
    use super::orders;

    #[test]
    fn orders_are_every_permutation_once_and_balance_positions() {
        assert_eq!(orders(1), vec![vec![0]]);
        assert_eq!(orders(2), vec![vec![0, 1], vec![1, 0]]);
        for arms in 3..=5 {
            let all = orders(arms);
            let factorial: usize = (1..=arms).product();
            assert_eq!(all.len(), factorial, "{arms} arms");
            let mut unique = all.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), factorial, "{arms} arms: a repeated order");
            // Each arm sits in each position (factorial / arms) times.
            for position in 0..arms {
                for arm in 0..arms {
                    let times = all.iter().filter(|order| order[position] == arm).count();
                    assert_eq!(times, factorial / arms, "arm {arm} at {position}");
                }
            }
        }
        assert_eq!(
            orders(6),
            vec![vec![0, 1, 2, 3, 4, 5], vec![5, 4, 3, 2, 1, 0]]
        );
    }
}
