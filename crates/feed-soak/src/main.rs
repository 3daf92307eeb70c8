//! feed-soak: feedproxy's load and long-running fault scenarios, run by `cargo xtask soak`.
//! Each scenario runs in a child process of its own (peak memory and descriptors are then its
//! own, and a hung scenario is killed at its deadline); the parent prints one table and exits
//! non-zero on any lost, duplicated or reordered message, any direct connection, a leak, or a
//! timeout.

mod child;
mod client;
#[cfg(feature = "socks")]
mod load;
mod restarts;
mod scenario;
mod seq;
mod server;
mod slow;
mod sys;
mod table;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use feed_sim::real::REQUIRE_REAL_PROXIES_ENV;
use scenario::{Outcome, RESULT_PREFIX, Scale, Scenario};
use table::{Row, RowResult};

const HELP: &str = "\
feed-soak: feedproxy's load and fault scenarios (run them with `cargo xtask soak`)

Usage: feed-soak [--quick] [--only NAME]...

  --quick      the CI size: the same connection counts, fewer slow-consumer messages, proxy
               restarts every 2 s for 10 s instead of every 10 s for 60 s
  --only NAME  run only this scenario (repeatable): load-socks5, load-microsocks,
               slow-baseline, slow-consumer, restarts-socks5, restarts-connect
  -h, --help   print this help

Exit status: 0 when every scenario that ran passed, 1 when one failed or timed out, 2 for a
usage error. Without microsocks installed its scenario is skipped with a note, unless
FEED_E2E_REQUIRE_REAL_PROXIES=1, which makes that a failure.
";

/// Time the parent gives a child beyond the scenario's own deadline before killing it.
const KILL_MARGIN: Duration = Duration::from_secs(30);

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Run { quick: bool, only: Vec<Scenario> },
    Child { quick: bool, scenario: Scenario },
    Help,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Request, String> {
    let mut quick = false;
    let mut only = Vec::new();
    let mut child = None;
    let mut args = args.into_iter();
    let scenario = |name: Option<String>, flag: &str| {
        let name = name.ok_or_else(|| format!("{flag} needs a scenario name"))?;
        Scenario::from_id(&name).ok_or_else(|| format!("no scenario named `{name}`"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => only.push(scenario(args.next(), "--only")?),
            // Internal: how the parent runs one scenario in a child process.
            "--child" => child = Some(scenario(args.next(), "--child")?),
            "-h" | "--help" => return Ok(Request::Help),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(match child {
        Some(scenario) => Request::Child { quick, scenario },
        None => Request::Run { quick, only },
    })
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)) {
        Ok(Request::Help) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Request::Child { quick, scenario }) => {
            let outcome = run_scenario(scenario, &Scale::new(quick));
            match serde_json::to_string(&outcome) {
                Ok(json) => {
                    println!("{RESULT_PREFIX}{json}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("feed-soak: cannot encode the result: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok(Request::Run { quick, only }) => run_all(quick, &only),
        Err(error) => {
            eprintln!("error: {error}\n\n{HELP}");
            ExitCode::from(2)
        }
    }
}

/// In the child: runs one scenario in this process.
fn run_scenario(scenario: Scenario, scale: &Scale) -> Outcome {
    let deadline = scenario.deadline(scale);
    match scenario {
        #[cfg(feature = "socks")]
        Scenario::LoadSocks5 => load::run(load::Via::InProcessSocks5, scale, deadline),
        #[cfg(feature = "socks")]
        Scenario::LoadMicrosocks => load::run(load::Via::Microsocks, scale, deadline),
        #[cfg(feature = "socks")]
        Scenario::RestartsSocks5 => restarts::run(restarts::Kind::Socks5, scale, deadline),
        #[cfg(not(feature = "socks"))]
        Scenario::LoadSocks5 | Scenario::LoadMicrosocks | Scenario::RestartsSocks5 => {
            let mut outcome = Outcome::default();
            outcome.fail("built without the `socks` feature");
            outcome
        }
        Scenario::SlowBaseline => slow::run(Duration::ZERO, scale, deadline),
        Scenario::SlowConsumer => slow::run(scale.slow_sleep, scale, deadline),
        Scenario::RestartsConnect => restarts::run(restarts::Kind::Connect, scale, deadline),
    }
}

/// Whether a scenario runs here: `None`, or the row it gets instead.
fn precondition(scenario: Scenario) -> Option<RowResult> {
    if scenario.needs_socks() && !cfg!(feature = "socks") {
        return Some(RowResult::Skipped(
            "built without the `socks` feature: the SOCKS scenarios are compiled out".to_owned(),
        ));
    }
    if scenario == Scenario::LoadMicrosocks {
        let required = std::env::var(REQUIRE_REAL_PROXIES_ENV).is_ok_and(|v| v == "1");
        let missing = feed_sim::RealProxyKind::Microsocks.locate().err();
        return missing_real_proxy(missing, required);
    }
    None
}

/// A missing real proxy is skipped with a visible note, or is a failure when
/// `FEED_E2E_REQUIRE_REAL_PROXIES=1` (as feed-sim's `require_or_skip` decides for tests).
fn missing_real_proxy(missing: Option<String>, required: bool) -> Option<RowResult> {
    let reason = missing?;
    let env = REQUIRE_REAL_PROXIES_ENV;
    Some(if required {
        RowResult::Refused(format!("{reason}; {env}=1 requires every real proxy"))
    } else {
        RowResult::Skipped(format!("{reason} (set {env}=1 to make this a failure)"))
    })
}

fn run_all(quick: bool, only: &[Scenario]) -> ExitCode {
    let scale = Scale::new(quick);
    let limit = match sys::raise_nofile() {
        Ok((before, after)) if before.soft != after.soft => format!(
            "RLIMIT_NOFILE {} (soft raised from {}; hard {})",
            after.soft, before.soft, after.hard
        ),
        Ok((_, after)) => format!("RLIMIT_NOFILE {} (hard {})", after.soft, after.hard),
        Err(error) => format!("RLIMIT_NOFILE unknown ({error})"),
    };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let features = if cfg!(feature = "socks") {
        "socks"
    } else {
        "no socks"
    };
    println!(
        "feed-soak{} ({build} build, {features}): {cpus} CPUs, {limit}",
        if quick { " --quick" } else { "" }
    );
    let chosen: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|s| only.is_empty() || only.contains(s))
        .collect();
    let started = Instant::now();
    let mut rows = Vec::new();
    for (index, scenario) in chosen.iter().copied().enumerate() {
        let label = scenario.label(&scale);
        let result = match precondition(scenario) {
            Some(row) => row,
            None => {
                eprintln!(
                    "feed-soak: [{}/{}] {} ({label})",
                    index + 1,
                    chosen.len(),
                    scenario.id()
                );
                let deadline = scenario.deadline(&scale) + KILL_MARGIN;
                match child::run(scenario, quick, deadline) {
                    Ok(outcome) => RowResult::Done(outcome),
                    Err(no_outcome) => RowResult::NoOutcome(no_outcome),
                }
            }
        };
        let row = Row { label, result };
        eprintln!("feed-soak: {} {}", scenario.id(), row.verdict());
        rows.push((scenario, row));
    }
    compare_slow(&mut rows);
    let rows: Vec<Row> = rows.into_iter().map(|(_, row)| row).collect();
    println!();
    print!("{}", table::render(&rows));
    let failed = rows.iter().filter(|row| row.failed()).count();
    println!();
    println!(
        "{} scenarios: {} passed, {failed} failed, {} skipped; wall {:.1}s",
        rows.len(),
        rows.iter().filter(|r| r.verdict() == "ok").count(),
        rows.iter().filter(|r| r.verdict() == "skipped").count(),
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Adds the slow consumer's memory against the baseline's to the slow consumer's notes.
fn compare_slow(rows: &mut [(Scenario, Row)]) {
    let outcome = |rows: &[(Scenario, Row)], wanted: Scenario| {
        rows.iter().find_map(|(s, row)| match &row.result {
            RowResult::Done(outcome) if *s == wanted => Some(outcome.clone()),
            _ => None,
        })
    };
    let (Some(base), Some(slow)) = (
        outcome(rows, Scenario::SlowBaseline),
        outcome(rows, Scenario::SlowConsumer),
    ) else {
        return;
    };
    let note = format!(
        "peak RSS {} against the baseline's {}: ratio {:.2}; growth while streaming {} against {}",
        sys::mib(slow.peak_rss_kib),
        sys::mib(base.peak_rss_kib),
        slow.peak_rss_kib as f64 / base.peak_rss_kib.max(1) as f64,
        sys::mib(slow.rss_growth_kib.unwrap_or(0)),
        sys::mib(base.rss_growth_kib.unwrap_or(0)),
    );
    for (scenario, row) in rows.iter_mut() {
        if *scenario == Scenario::SlowConsumer
            && let RowResult::Done(outcome) = &mut row.result
        {
            outcome.note(note.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn a_missing_real_proxy_skips_or_fails() {
        assert_eq!(missing_real_proxy(None, true), None);
        assert_eq!(missing_real_proxy(None, false), None);
        let gone = || Some("microsocks: not found".to_owned());
        let skipped = missing_real_proxy(gone(), false).expect("a row");
        assert_eq!(
            skipped,
            RowResult::Skipped(
                "microsocks: not found (set FEED_E2E_REQUIRE_REAL_PROXIES=1 to make this a \
                 failure)"
                    .into()
            )
        );
        let refused = missing_real_proxy(gone(), true).expect("a row");
        let row = Row {
            label: "load".into(),
            result: refused,
        };
        assert!(row.failed(), "{row:?}");
        assert!(table::render(&[row]).contains("FEED_E2E_REQUIRE_REAL_PROXIES=1 requires"));
    }

    #[test]
    fn parses_the_command_line() {
        let cases = [
            (
                vec![],
                Ok(Request::Run {
                    quick: false,
                    only: vec![],
                }),
            ),
            (
                vec![
                    "--quick",
                    "--only",
                    "slow-consumer",
                    "--only",
                    "load-socks5",
                ],
                Ok(Request::Run {
                    quick: true,
                    only: vec![Scenario::SlowConsumer, Scenario::LoadSocks5],
                }),
            ),
            (
                vec!["--child", "restarts-connect", "--quick"],
                Ok(Request::Child {
                    quick: true,
                    scenario: Scenario::RestartsConnect,
                }),
            ),
            (vec!["--quick", "-h"], Ok(Request::Help)),
        ];
        for (args, expected) in cases {
            assert_eq!(parse(strings(&args)), expected, "{args:?}");
        }
        for bad in [
            &["--only"][..],
            &["--only", "nope"],
            &["--child"],
            &["--slow"],
        ] {
            assert!(parse(strings(bad)).is_err(), "{bad:?}");
        }
    }
}
