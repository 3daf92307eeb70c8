//! feedproxy's benchmarks in one binary, run by `cargo xtask bench`: route lookup, the tunnel data
//! path, wrapper cost, the disabled proxy system, handshake round trips and CPU per connection.
//! Every speed figure is a ratio against a baseline measured side by side in the same run, arms
//! interleaved; nothing here fails on a number.

mod alloc;
#[cfg(feature = "socks")]
mod alternative;
mod feeds;
mod handshake;
mod idle;
mod memory;
mod pin;
mod relay;
mod route;
mod server;
mod stats;
mod table;
mod throughput;

use std::process::ExitCode;

use table::Table;

const HELP: &str = "\
feed-bench: feedproxy's benchmarks (run them with `cargo xtask bench`)

Usage: feed-bench [--quick] [--only NAME]... [--pairs N] [--arm-seconds S]

  --quick      fewer pairs and shorter arms (a smoke run; figures are noisier)
  --pairs N    pairs per ratio (default 200, 10 with --quick; the handshake bench runs 12)
  --arm-seconds S
               about how long one data-path arm runs (default 0.01, 0.005 with --quick)
  --only NAME  run only this benchmark group (repeatable): route, tunnel, wrapper,
               feed, disabled, handshake, cpu, alternative, memory
  --profile ARM SIZE
               no table: run one read-loop arm (bare, wsstream, wsconn) with SIZE-byte
               messages for about 5 s, for a profiler (`perf record -p`); prints msg/s
               (median of its runs). FEED_BENCH_PROFILE_FRACTION=S: runs of about S
               seconds (default 0.5); FEED_BENCH_PROFILE_ALL set (any value): every
               run's figure. Or a connect arm (connect-direct, connect-connect,
               connect-socks5, connect-socks5-optimistic; SIZE ignored): open and drop WSS
               connections for about 5 s; prints connections/s (ALL: CPU per connection
               per batch of 50). For the read-loop arms only: FEED_BENCH_SERVER_PROCESS
               set: read from a server in a child process (pid on stderr);
               FEED_BENCH_PROFILE_TIMES set (with ALL): each run's CLOCK_MONOTONIC span,
               for `perf record -k CLOCK_MONOTONIC`
  -h, --help   print this help

Each ratio is the median of 200 per-pair ratios (10 with --quick), shown with a distribution-free
95% confidence interval of that median (order statistics). FEED_BENCH_PAIRS set (any value):
also print on stderr every pair's ratio of the msg/s rows (tunnel, wrapper, disabled,
alternative) and the tunnel arms' socket reads per message.

Environment: unless GLIBC_TUNABLES or FEED_BENCH_GLIBC_DEFAULT is set, feed-bench replaces
itself (exec, same pid) with itself run with
GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=4194304: on AMD CPUs with FSRM,
glibc's rep movsb memcpy is fast or 2-3x slower depending on where the copied buffers sit
(glibc bug 30994), which made each arm flip between the two for seconds at a time.
FEED_BENCH_HALT_POLL_NS=N (root, a guest with the haltpoll cpuidle governor): set
/sys/module/haltpoll/parameters/guest_halt_poll_ns to N for the run and write the old
value back at the end (not if the run is killed: the old value is on stderr). The line
`idle:` under the table (on stderr with --profile) says what the run had.
";

/// What the command line asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Fewer pairs, shorter arms.
    pub(crate) quick: bool,
    only: Vec<String>,
    /// `--pairs N`: pairs per ratio instead of the default.
    pairs: Option<usize>,
    /// `--arm-seconds S`: the calibrated length of one data-path arm instead of the default.
    arm_seconds: Option<f64>,
}

impl Options {
    fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }

    /// Pairs (rounds of interleaved arms) per ratio of two rates or CPU times. Many short
    /// pairs rather than a few long ones: the machine's speed drifts over tenths of a second
    /// (on the Intel VM the same AES-GCM loop took 1.5x as long in some spans as in others),
    /// so the arms of a short round mostly see the same speed. 200 rounds of 10 ms arms put
    /// the tunnel medians' 95% intervals within about +-1.5%; 40 of 50 ms gave +-3 to 5%.
    pub(crate) fn pairs(&self) -> usize {
        self.pairs.unwrap_or(if self.quick { 10 } else { 200 })
    }

    /// About how long one arm of a data-path pair runs, in seconds.
    pub(crate) fn arm_seconds(&self) -> f64 {
        self.arm_seconds
            .unwrap_or(if self.quick { 0.005 } else { 0.01 })
    }

    /// Rounds of the handshake bench: its figures are held flights of 20 ms, far above the
    /// noise, so fewer rounds do.
    pub(crate) fn handshake_rounds(&self) -> usize {
        if self.quick { 4 } else { 12 }
    }
}

const GROUPS: [&str; 9] = [
    "route",
    "tunnel",
    "wrapper",
    "feed",
    "disabled",
    "handshake",
    "cpu",
    "alternative",
    "memory",
];

/// The glibc tunable the benchmarks run with: no `rep movsb` in memcpy below 4 MiB. On AMD CPUs
/// with FSRM, glibc (2.36 here, Debian 12) copies with `rep movsb`, whose speed depends on the
/// buffers' alignment and their distance modulo 4 KiB (glibc bug 30994). The buffers a
/// TLS read copies between land at a new distance whenever the heap shifts, so each arm flipped
/// between a fast and a 2-3x slower mode for seconds at a time, more than any difference the
/// benchmarks measure (docs/performance.md).
const MEMCPY_TUNABLE: &str = "glibc.cpu.x86_rep_movsb_threshold=4194304";

/// Replaces this process (same pid, arguments and environment) with this program run with
/// [`MEMCPY_TUNABLE`] when neither GLIBC_TUNABLES nor FEED_BENCH_GLIBC_DEFAULT is set (glibc reads
/// its tunables only when a process starts). Returns only when no re-run was wanted, or when it
/// failed (said on stderr; the benchmarks then run with glibc's default memcpy).
fn exec_with_memcpy_tunable() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os("GLIBC_TUNABLES").is_some()
        || std::env::var_os("FEED_BENCH_GLIBC_DEFAULT").is_some()
    {
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!(
                "feed-bench: cannot find this program to re-run it with {MEMCPY_TUNABLE}: {error}; going on with glibc's default memcpy"
            );
            return;
        }
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", MEMCPY_TUNABLE)
        .exec();
    eprintln!(
        "feed-bench: could not re-run with {MEMCPY_TUNABLE}: {error}; going on with glibc's default memcpy"
    );
}

fn main() -> ExitCode {
    exec_with_memcpy_tunable();
    let mut options = Options {
        quick: false,
        only: Vec::new(),
        pairs: None,
        arm_seconds: None,
    };
    // The memory benchmark's own processes (not for people).
    let all: Vec<String> = std::env::args().skip(1).collect();
    match all.first().map(String::as_str) {
        Some("--serve-memory") => {
            return match memory::serve(all.get(1).map_or("", String::as_str)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("feed-bench: memory server failed: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Some("--memory-client") => {
            return match memory::client(&all[1..]) {
                Ok(bytes) => {
                    println!("{bytes:.0}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("feed-bench: memory client failed: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let mut args = all.into_iter();
    let mut profile: Option<(String, usize)> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--only" => match args.next() {
                Some(group) if GROUPS.contains(&group.as_str()) => options.only.push(group),
                other => {
                    eprintln!("error: --only takes one of {GROUPS:?}, got {other:?}\n\n{HELP}");
                    return ExitCode::from(2);
                }
            },
            "--pairs" => match args.next().and_then(|s| s.parse::<usize>().ok()) {
                Some(pairs) if (1..=10_000).contains(&pairs) => options.pairs = Some(pairs),
                _ => {
                    eprintln!("error: --pairs takes a whole number from 1 to 10000\n\n{HELP}");
                    return ExitCode::from(2);
                }
            },
            "--arm-seconds" => match args.next().and_then(|s| s.parse::<f64>().ok()) {
                Some(seconds) if (0.001..=60.0).contains(&seconds) => {
                    options.arm_seconds = Some(seconds);
                }
                _ => {
                    eprintln!("error: --arm-seconds takes seconds from 0.001 to 60\n\n{HELP}");
                    return ExitCode::from(2);
                }
            },
            "--profile" => match (args.next(), args.next().and_then(|s| s.parse().ok())) {
                (Some(arm), Some(size)) if throughput::PROFILE_ARMS.contains(&arm.as_str()) => {
                    profile = Some((arm, size));
                }
                _ => {
                    eprintln!(
                        "error: --profile takes an arm of {:?} and a size in bytes\n\n{HELP}",
                        throughput::PROFILE_ARMS
                    );
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                print!("{HELP}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("error: unknown argument `{other}`\n\n{HELP}");
                return ExitCode::from(2);
            }
        }
    }

    // Opt-in: another haltpoll window for this run, written back when `_halt_poll` drops.
    let _halt_poll = match idle::HaltPoll::from_env() {
        Ok(set) => set,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some((arm, size)) = profile {
        eprintln!("feed-bench: {}", idle::idle_line());
        // FEED_BENCH_SERVER_PROCESS=1: the read-loop arms read from a server in a child process
        // (its pid on stderr), so the client is alone in this one.
        let external = if std::env::var_os("FEED_BENCH_SERVER_PROCESS").is_some()
            && !arm.starts_with("connect-")
        {
            match memory::ServerProcess::start() {
                Ok(server) => {
                    eprintln!("feed-bench: server process pid {}", server.pid());
                    Some(server)
                }
                Err(error) => {
                    eprintln!("feed-bench: the server process failed: {error}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let rig = throughput::Rig::start().and_then(|mut rig| {
            if let Some(server) = &external {
                let addr = server.addrs[0].parse().map_err(std::io::Error::other)?;
                rig.use_server(addr, &std::fs::read(&server.pem_path)?)?;
            }
            Ok(rig)
        });
        return match rig.and_then(|rig| rig.profile(&arm, size)) {
            Ok(rate) => {
                if arm.starts_with("connect-") {
                    println!("{arm}: {rate:.0} connections/s");
                } else {
                    println!("{arm} {size} B: {rate:.0} msg/s");
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("feed-bench: the profile arm failed: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let mut table = Table::default();
    if options.wants("route") {
        eprintln!("feed-bench: route lookup");
        route::run(&options, &mut table);
    }
    let needs_io = [
        "tunnel",
        "wrapper",
        "feed",
        "disabled",
        "handshake",
        "cpu",
        "alternative",
    ]
    .iter()
    .any(|g| options.wants(g));
    if needs_io {
        let result = throughput::Rig::start().and_then(|rig| {
            if options.wants("tunnel") {
                eprintln!("feed-bench: tunnel data path");
                rig.tunnel(&options, &mut table)?;
            }
            if options.wants("wrapper") {
                eprintln!("feed-bench: wrapper cost");
                rig.wrapper(&options, &mut table)?;
            }
            if options.wants("feed") {
                eprintln!("feed-bench: FeedHandler over Binance trades");
                rig.feeds(&options, &mut table)?;
            }
            if options.wants("disabled") {
                eprintln!("feed-bench: disabled proxy system");
                rig.disabled(&options, &mut table)?;
            }
            if options.wants("handshake") {
                eprintln!("feed-bench: handshake round trips");
                handshake::run(&rig, &options, &mut table)?;
            }
            if options.wants("cpu") {
                eprintln!("feed-bench: CPU per connection");
                rig.cpu(&options, &mut table)?;
            }
            #[cfg(feature = "socks")]
            if options.wants("alternative") {
                eprintln!("feed-bench: against tokio-tungstenite");
                rig.alternative(&options, &mut table)?;
            }
            #[cfg(not(feature = "socks"))]
            if options.wants("alternative") {
                eprintln!(
                    "feed-bench: against tokio-tungstenite: needs the socks feature (skipped)"
                );
            }
            Ok(())
        });
        if let Err(error) = result {
            eprintln!("feed-bench: a benchmark failed to run: {error}");
            table.print();
            return ExitCode::FAILURE;
        }
    }
    if options.wants("memory") {
        eprintln!("feed-bench: memory per idle connection");
        if let Err(error) = memory::run(&options, &mut table) {
            eprintln!("feed-bench: a benchmark failed to run: {error}");
            table.print();
            return ExitCode::FAILURE;
        }
    }
    table.print();
    println!("{}", memcpy_line());
    println!("{}", idle::idle_line());
    ExitCode::SUCCESS
}

/// Which memcpy the figures were measured with.
fn memcpy_line() -> String {
    match std::env::var_os("GLIBC_TUNABLES") {
        Some(value) if value == MEMCPY_TUNABLE => format!(
            "memcpy: GLIBC_TUNABLES={MEMCPY_TUNABLE} (no rep movsb below 4 MiB; FEED_BENCH_GLIBC_DEFAULT=1 runs without)"
        ),
        Some(value) => format!(
            "memcpy: GLIBC_TUNABLES={} (as given)",
            value.to_string_lossy()
        ),
        None if std::env::var_os("FEED_BENCH_GLIBC_DEFAULT").is_some() => {
            "memcpy: glibc's default (FEED_BENCH_GLIBC_DEFAULT is set)".to_owned()
        }
        None => {
            "memcpy: glibc's default (the re-run with the tunable failed; see stderr)".to_owned()
        }
    }
}
