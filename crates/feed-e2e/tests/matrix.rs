//! The proxy matrix: every (proxy kind x feed x config source) cell, in-process proxies and real
//! ones, both transports per cell. Writes the coverage report `cargo xtask proxy-matrix` prints;
//! fails listing every failing cell. `FEED_E2E_FILTER=binance/socks5` runs a subset.
//!
//! The whole run is captured at TRACE and searched for every proxy password of the run.

use std::path::Path;

use base64::Engine as _;
use feed_e2e::{
    CellFilter, ConfigSource, Coverage, Exchanges, FeedKind, ProxyKind, SOCKS_ENABLED,
    StartedProxy, Status, feature_set, run_cell, socks_refused,
};

#[test]
fn matrix_in_process() {
    run_matrix(&ProxyKind::IN_PROCESS, "matrix_in_process");
}

#[test]
fn matrix_real() {
    run_matrix(&ProxyKind::REAL, "matrix_real");
}

/// The cells share the process-wide proxy system: one matrix at a time.
static SYSTEM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_matrix(kinds: &[ProxyKind], name: &str) {
    let _system = SYSTEM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let capture = feed_sim::TraceCapture::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let filter = CellFilter::from_env();
    let (coverage, ran) = runtime.block_on(async {
        let mut ran = 0usize;
        let mut exchanges = Exchanges::start().await.expect("fake exchanges");
        let mut coverage = Coverage::new(kinds);
        for &kind in kinds {
            let cells: Vec<(FeedKind, ConfigSource)> = FeedKind::ALL
                .into_iter()
                .flat_map(|f| ConfigSource::ALL.into_iter().map(move |s| (f, s)))
                .filter(|(f, s)| filter.matches(f.as_str(), kind.id(), s.id()))
                .collect();
            if cells.is_empty() {
                continue;
            }
            if kind.is_socks() && !SOCKS_ENABLED {
                for (feed, source) in cells {
                    let result = socks_refused(feed, kind, source);
                    coverage.record(kind, feed, result.rest, result.ws);
                }
                continue;
            }
            let mut proxy = match StartedProxy::start(kind, exchanges.ca()).await {
                Ok(Some(proxy)) => proxy,
                Ok(None) => {
                    coverage.skip_row(kind, "binary not installed");
                    continue;
                }
                Err(error) => {
                    for (feed, _) in cells {
                        let failed = Status::Fail(format!("proxy did not start: {error}"));
                        coverage.record(kind, feed, failed.clone(), failed);
                    }
                    continue;
                }
            };
            for (feed, source) in cells {
                let result = run_cell(&exchanges, feed, kind, &proxy, source).await;
                ran += 1;
                if matches!(result.rest, Status::Fail(_)) || matches!(result.ws, Status::Fail(_)) {
                    eprintln!(
                        "cell {}/{kind}/{} failed: {:?} / {:?}\nproxy diagnostics:\n{}",
                        feed.as_str(),
                        source.id(),
                        result.rest,
                        result.ws,
                        proxy.diagnostics()
                    );
                }
                coverage.record(kind, feed, result.rest, result.ws);
            }
            proxy.shutdown().await;
        }
        exchanges.shutdown().await;
        (coverage, ran)
    });
    drop(runtime);

    let path = coverage
        .write(Path::new(env!("CARGO_TARGET_TMPDIR")), feature_set(), name)
        .expect("coverage report written");
    eprintln!("coverage report: {}", path.display());

    // No password of any cell in anything logged during the run, in any encoding a proxy
    // client uses (plain, percent-encoded, Basic auth base64).
    let logs = capture.text();
    for kind in kinds {
        if let Some((user, password)) = kind.credentials() {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            for needle in [password.to_owned(), password.replace('.', "%2E"), basic] {
                assert!(
                    !logs.contains(&needle),
                    "{kind}: a credential in the trace output"
                );
            }
        }
    }
    // A search of an empty capture would prove nothing.
    assert!(
        ran == 0 || logs.contains("connection opened through proxy"),
        "the trace capture saw the {ran} cells that ran"
    );

    let failures = coverage.failures();
    assert!(
        failures.is_empty(),
        "failing cells:\n{}",
        failures.join("\n")
    );
}
