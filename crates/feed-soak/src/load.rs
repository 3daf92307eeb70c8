//! The load scenarios: N `WsConn`s, routed by a `Resolver` through one proxy (feed-sim's
//! in-process SOCKS5 proxy, or a real microsocks), all open at once, then each receives M
//! numbered messages. Passes when every message arrived once and in order on its own
//! connection, and the server saw exactly N connections, each one through the proxy.
//!
//! Both proxies speak SOCKS, so this module exists only with the `socks` feature.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use feed_conn::{ConnOptions, WsConn};
use feed_sim::TestCa;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::client::{EXCHANGE, read_numbered, resolver_via, tls, ws_conn_options};
use crate::scenario::{Outcome, Scale};
use crate::seq::Counts;
use crate::server::NumberedServer;
use crate::sys::{FdSampler, mib, nofile, rss_kib};

/// Which proxy carries the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// feed-sim's in-process SOCKS5 proxy (its relays run in this process: 4 fds a connection).
    InProcessSocks5,
    /// A real microsocks, started on loopback with username/password.
    Microsocks,
}

/// Descriptors one connection holds in this process: the client's socket, and with the
/// in-process proxy its two sockets and the server's.
fn fds_per_connection(via: Via) -> u64 {
    match via {
        Via::InProcessSocks5 => 4,
        Via::Microsocks => 2,
    }
}

/// Progress, readable when the deadline passes.
#[derive(Debug, Default)]
struct Progress {
    opened: AtomicUsize,
    failed_to_open: AtomicUsize,
    finished: AtomicUsize,
}

/// Runs the scenario on a two-worker runtime; never longer than `deadline`.
pub(crate) fn run(via: Via, scale: &Scale, deadline: Duration) -> Outcome {
    let mut outcome = Outcome::default();
    let connections = match via {
        Via::InProcessSocks5 => scale.load_connections,
        Via::Microsocks => scale.microsocks_connections,
    };
    let needed = fds_per_connection(via) * connections as u64 + 256;
    match nofile() {
        Ok(limit) if limit.soft < needed => {
            outcome.fail(format!(
                "RLIMIT_NOFILE soft limit {} is below the {needed} descriptors {connections} \
                 connections need here (hard limit {})",
                limit.soft, limit.hard
            ));
            return outcome;
        }
        Ok(_) => {}
        Err(error) => outcome.note(format!("could not read RLIMIT_NOFILE: {error}")),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            outcome.fail(format!("runtime: {error}"));
            return outcome;
        }
    };
    let sampler = FdSampler::start();
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let result = runtime.block_on(async {
        tokio::time::timeout(
            deadline,
            drive(via, scale, connections, &sampler, &progress, &mut outcome),
        )
        .await
    });
    if result.is_err() {
        outcome.timed_out = true;
        outcome.fail(format!(
            "timed out after {}s: {} of {connections} connections opened, {} failed to open, \
             {} streams finished",
            deadline.as_secs(),
            progress.opened.load(Ordering::Relaxed),
            progress.failed_to_open.load(Ordering::Relaxed),
            progress.finished.load(Ordering::Relaxed),
        ));
    }
    outcome.wall_ms = started.elapsed().as_millis() as u64;
    outcome.peak_fds = sampler.peak();
    // Dropping the runtime drops whatever a timeout left running.
    drop(runtime);
    outcome
}

/// The proxy the load goes through, kept running until the end.
enum Proxy {
    InProcess(feed_sim::SocksProxy),
    Real(feed_sim::RealProxy),
}

async fn drive(
    via: Via,
    scale: &Scale,
    connections: usize,
    sampler: &FdSampler,
    progress: &Arc<Progress>,
    outcome: &mut Outcome,
) {
    let ca = TestCa::new();
    let server = match NumberedServer::start(ca.server_config(&["127.0.0.1"])).await {
        Ok(server) => server,
        Err(error) => return outcome.fail(format!("server: {error}")),
    };
    let (proxy, proxy_url) = match start_proxy(via).await {
        Ok(started) => started,
        Err(error) => return outcome.fail(error),
    };
    let options = match (resolver_via(&proxy_url), tls(&ca)) {
        (Ok(resolver), Ok(tls)) => {
            ws_conn_options(tls, ConnOptions::default().with_resolver(resolver))
        }
        (Err(error), _) | (_, Err(error)) => return outcome.fail(error),
    };
    let messages = scale.load_messages;
    let rss_before = rss_kib();

    let gate = Arc::new(Semaphore::new(scale.open_at_once));
    let (go, go_rx) = watch::channel(false);
    let mut clients = JoinSet::new();
    for index in 0..connections {
        let url = server.url(index, messages, scale.load_size);
        let (options, gate, progress) = (options.clone(), Arc::clone(&gate), Arc::clone(progress));
        let mut go_rx = go_rx.clone();
        clients.spawn(async move {
            let mut conn = WsConn::new("soak", EXCHANGE, &url, options)
                .map_err(|e| format!("connection {index}: {e}"))?;
            let opened = {
                let _permit = gate.acquire().await;
                conn.open().await
            };
            if let Err(error) = opened {
                progress.failed_to_open.fetch_add(1, Ordering::Relaxed);
                return Err(format!("connection {index} did not open: {error}"));
            }
            progress.opened.fetch_add(1, Ordering::Relaxed);
            // Every connection stays open, idle, until all are: then they stream together.
            if go_rx.wait_for(|go| *go).await.is_err() {
                return Err(format!("connection {index}: the run was abandoned"));
            }
            let (counts, failure) = read_numbered(&mut conn, index as u64, messages).await;
            progress.finished.fetch_add(1, Ordering::Relaxed);
            Ok((counts, failure.map(|f| format!("connection {index}: {f}"))))
        });
    }

    let open_started = Instant::now();
    while progress.opened.load(Ordering::Relaxed) + progress.failed_to_open.load(Ordering::Relaxed)
        < connections
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open_took = open_started.elapsed();
    let opened = progress.opened.load(Ordering::Relaxed);
    let fds_all_open = sampler.sample();
    let rss_all_open = rss_kib();
    outcome.note(format!(
        "{opened} of {connections} open at once after {:.1}s ({fds_all_open} fds, RSS {} -> {}, \
         {:.0} KiB a connection incl. proxy and server)",
        open_took.as_secs_f64(),
        mib(rss_before),
        mib(rss_all_open),
        rss_all_open.saturating_sub(rss_before) as f64 / opened.max(1) as f64,
    ));
    let stream_started = Instant::now();
    let _ = go.send(true);

    let mut total = Counts::default();
    let mut errors = Vec::new();
    while let Some(joined) = clients.join_next().await {
        match joined {
            Ok(Ok((counts, failure))) => {
                total.add(&counts);
                errors.extend(failure);
            }
            Ok(Err(error)) => {
                total.add(&Counts {
                    expected: messages,
                    lost: messages,
                    ..Counts::default()
                });
                errors.push(error);
            }
            Err(error) => errors.push(format!("a client task failed: {error}")),
        }
    }
    let streamed = stream_started.elapsed().as_secs_f64();
    outcome.note(format!(
        "streamed {} messages in {streamed:.1}s ({:.0} msg/s)",
        total.received,
        total.received as f64 / streamed
    ));
    outcome.counts = total;
    if !total.clean() {
        outcome.fail(format!(
            "messages lost/duplicated/reordered/stray: {}",
            total.ldr()
        ));
    }
    if let Some(first) = errors.first() {
        outcome.fail(format!(
            "{} connections failed; the first: {first}",
            errors.len()
        ));
    }
    if !server.errors().is_empty() {
        outcome.note(format!("server errors: {:?}", server.errors()));
    }

    let peers = server.peers();
    outcome.connections = peers.len() as u64;
    if peers.len() != connections {
        outcome.fail(format!(
            "the server saw {} connections, expected {connections}",
            peers.len()
        ));
    }
    check_routes(proxy, &server, &peers, outcome).await;
    outcome.peak_rss_kib = crate::sys::peak_rss_kib();
}

async fn start_proxy(via: Via) -> Result<(Proxy, String), String> {
    match via {
        Via::InProcessSocks5 => {
            let proxy = feed_sim::SocksProxy::start(feed_sim::SocksOptions::socks5())
                .await
                .map_err(|e| format!("in-process SOCKS5 proxy: {e}"))?;
            let url = proxy.url("socks5");
            Ok((Proxy::InProcess(proxy), url))
        }
        Via::Microsocks => {
            use feed_sim::real::{RealProxy, RealProxyKind, RealProxyOptions};
            let options = RealProxyOptions::new().user_pass("soak", "soak-pass");
            let proxy = RealProxy::start(RealProxyKind::Microsocks, options)
                .await
                .map_err(|e| format!("microsocks: {e}"))?;
            // If this process is killed, the parent stops microsocks by this PID.
            println!("{}{}", crate::scenario::PID_PREFIX, proxy.pid());
            let url = proxy.url_with_credentials();
            Ok((Proxy::Real(proxy), url))
        }
    }
}

/// No connection reached the server but through the proxy: the in-process proxy's outgoing
/// addresses are exactly the server's peers; microsocks (whose outgoing address is 127.0.0.1
/// like everyone's) logged one connect to the server's port per connection.
async fn check_routes(
    proxy: Proxy,
    server: &NumberedServer,
    peers: &[SocketAddr],
    outcome: &mut Outcome,
) {
    match proxy {
        Proxy::InProcess(mut proxy) => {
            let outgoing: HashSet<SocketAddr> = proxy
                .connections()
                .iter()
                .filter_map(|r| r.upstream_local)
                .collect();
            let direct = peers.iter().filter(|p| !outgoing.contains(p)).count();
            if direct > 0 {
                outcome.fail(format!(
                    "{direct} connections reached the server from an address the proxy did not \
                     connect from"
                ));
            } else {
                outcome.note(format!(
                    "all {} server connections came from the proxy's outgoing sockets",
                    peers.len()
                ));
            }
            proxy.shutdown().await;
        }
        Proxy::Real(mut proxy) => {
            let port = server.addr().port();
            let logged = proxy
                .connections()
                .iter()
                .filter(|r| r.target_port() == Some(port))
                .count();
            if logged != peers.len() {
                outcome.fail(format!(
                    "microsocks logged {logged} connects to the server, the server saw {}",
                    peers.len()
                ));
            } else {
                outcome.note(format!(
                    "microsocks (pid {}) logged {logged} connects to the server, one per \
                     connection it saw",
                    proxy.pid()
                ));
            }
            proxy.shutdown().await;
        }
    }
}
