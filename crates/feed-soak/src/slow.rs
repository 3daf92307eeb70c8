//! The slow-consumer scenarios: one stream of large numbered messages through an in-process
//! HTTP CONNECT proxy, the server writing as fast as the socket takes them, read by a `WsConn`
//! whose raw-data callback sleeps per message (or, for the baseline, does not). The client runs
//! on a current-thread runtime of its own, so a sleeping callback stops all reading, as a slow
//! callback in a feed does; the server and proxy run on another runtime.
//!
//! Resident memory is read before the stream starts and at its peak (VmHWM) after it: a reader
//! that falls behind must leave the data in the sockets (TCP flow control holds the server
//! back), not in this process, so the growth stays far below the bytes streamed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use feed_conn::{ConnOptions, RawKind, WsConn};
use feed_sim::{ConnectProxy, ProxyOptions, TestCa};
use tokio::runtime::Runtime;

use crate::client::{EXCHANGE, read_numbered, resolver_via, tls, ws_conn_options};
use crate::scenario::{Outcome, Scale};
use crate::server::NumberedServer;
use crate::sys::{FdSampler, mib, peak_rss_kib, rss_kib};

/// Runs the stream with `sleep` per message (zero: the baseline); never longer than `deadline`.
pub(crate) fn run(sleep: Duration, scale: &Scale, deadline: Duration) -> Outcome {
    let mut outcome = Outcome::default();
    let runtimes = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("soak-server")
        .enable_all()
        .build()
        .and_then(|background| {
            let client = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok((background, client))
        });
    let (background, client) = match runtimes {
        Ok(runtimes) => runtimes,
        Err(error) => {
            outcome.fail(format!("runtime: {error}"));
            return outcome;
        }
    };
    let sampler = FdSampler::start();
    let started = Instant::now();
    stream(sleep, scale, deadline, &background, &client, &mut outcome);
    outcome.wall_ms = started.elapsed().as_millis() as u64;
    outcome.peak_fds = sampler.peak();
    outcome.peak_rss_kib = peak_rss_kib();
    drop(client);
    drop(background);
    outcome
}

fn stream(
    sleep: Duration,
    scale: &Scale,
    deadline: Duration,
    background: &Runtime,
    client: &Runtime,
    outcome: &mut Outcome,
) {
    let ca = TestCa::new();
    let started = background.block_on(async {
        let server = NumberedServer::start(ca.server_config(&["127.0.0.1"])).await?;
        let proxy = ConnectProxy::start(ProxyOptions::new()).await?;
        Ok::<_, std::io::Error>((server, proxy))
    });
    let (server, proxy) = match started {
        Ok(started) => started,
        Err(error) => return outcome.fail(format!("server or proxy: {error}")),
    };
    let mut conn_options = match resolver_via(&proxy.url()) {
        Ok(resolver) => ConnOptions::default().with_resolver(resolver),
        Err(error) => return outcome.fail(error),
    };
    if !sleep.is_zero() {
        conn_options = conn_options.with_raw_callback(move |raw| {
            if let RawKind::Received(_) = raw.kind {
                // A callback that takes its time, blocking the task that reads: what a slow
                // consumer in a feed does.
                std::thread::sleep(sleep);
            }
        });
    }
    let options = match tls(&ca) {
        Ok(tls) => ws_conn_options(tls, conn_options),
        Err(error) => return outcome.fail(error),
    };
    let (messages, size) = (scale.slow_messages, scale.slow_size);
    let url = server.url(0, messages, size);
    let mut conn = match WsConn::new("soak-slow", EXCHANGE, &url, options) {
        Ok(conn) => conn,
        Err(error) => return outcome.fail(error.to_string()),
    };

    let result = client.block_on(async {
        tokio::time::timeout(deadline, async {
            conn.open().await.map_err(|e| e.to_string())?;
            let baseline = rss_kib();
            let go = Instant::now();
            let (counts, failure) = read_numbered(&mut conn, 0, messages).await;
            Ok::<_, String>((baseline, go, go.elapsed(), counts, failure))
        })
        .await
    });
    let (baseline, go, read_took, counts, failure) = match result {
        Ok(Ok(done)) => done,
        Ok(Err(error)) => return outcome.fail(format!("open: {error}")),
        Err(_) => {
            outcome.timed_out = true;
            return outcome.fail(format!("timed out after {}s", deadline.as_secs()));
        }
    };
    outcome.counts = counts;
    if !counts.clean() {
        outcome.fail(format!(
            "messages lost/duplicated/reordered/stray: {}",
            counts.ldr()
        ));
    }
    if let Some(failure) = failure {
        outcome.fail(format!("the stream failed: {failure}"));
    }

    let peak = peak_rss_kib();
    let growth = peak.saturating_sub(baseline);
    outcome.rss_growth_kib = Some(growth);
    let streamed_kib = messages * size as u64 / 1024;
    let written = server
        .last_finished()
        .map(|at| at.saturating_duration_since(go).as_secs_f64());
    outcome.note(format!(
        "RSS before the stream {}, peak {}: growth {} while {} streamed in {:.1}s{}",
        mib(baseline),
        mib(peak),
        mib(growth),
        mib(streamed_kib),
        read_took.as_secs_f64(),
        written.map_or_else(String::new, |w| format!(
            "; the server's last write completed at {w:.1}s"
        )),
    ));
    if !sleep.is_zero() && growth > scale.slow_growth_bound_kib {
        outcome.fail(format!(
            "resident memory grew {} while the consumer slept, over the bound of {}",
            mib(growth),
            mib(scale.slow_growth_bound_kib)
        ));
    }

    if !server.errors().is_empty() {
        outcome.note(format!("server errors: {:?}", server.errors()));
    }
    let peers = server.peers();
    outcome.connections = peers.len() as u64;
    let outgoing: HashSet<SocketAddr> = proxy
        .connections()
        .iter()
        .filter_map(|r| r.upstream_local)
        .collect();
    if peers.len() != 1 || !peers.iter().all(|p| outgoing.contains(p)) {
        outcome.fail(format!(
            "the server saw {peers:?}, expected one connection from the proxy ({outgoing:?})"
        ));
    }
    // The proxy and server tasks belong to the background runtime: drop them inside it.
    let _guard = background.enter();
    drop(proxy);
    drop(server);
}
