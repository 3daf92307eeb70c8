//! One cargo command of a task (a step), run with its output captured, and what its output means.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many lines of a failing step's output the report shows.
pub(crate) const TAIL_LINES: usize = 60;

/// How a step's output is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `cargo test`: passes and failures are counted from libtest's `test result:` lines.
    Tests,
    /// Any other check (clippy, fmt, deny): the exit status is the result.
    Check,
}

/// Cargo commands run in order, stopping at the first that fails; the last one is the check itself
/// and the earlier ones prepare it (e.g. `cargo fetch` before an offline `cargo deny`).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) kind: Kind,
    pub(crate) commands: Vec<Vec<String>>,
    /// Environment for every command: a variable set to a value, or removed (`None`) so that a
    /// value inherited from the caller's shell cannot change what the step tests.
    pub(crate) env: Vec<(&'static str, Option<String>)>,
    /// File name (without extension) for the full log; unique within one run.
    pub(crate) log_name: String,
}

/// Passed and failed test counts, summed over libtest summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TestCounts {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
}

/// The result of a step as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    /// A short reason for the table: "FAIL", "build failed", ...
    Failed(String),
    /// Not run, and why: "same as default", "cargo-deny not installed", ...
    Skipped(String),
}

/// What a failing step printed, for the report after the table.
#[derive(Debug, Clone)]
pub(crate) struct FailureReport {
    pub(crate) command: String,
    /// The lines worth reading: the last [`TAIL_LINES`] lines, or for tests the failure sections.
    pub(crate) excerpt: Vec<String>,
    pub(crate) total_lines: usize,
    /// How the failing command ended: "exit status: 101", "signal: 9 (SIGKILL)", ...
    pub(crate) exit: String,
    pub(crate) log: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    /// Test counts, for test steps that got as far as running tests.
    pub(crate) counts: Option<TestCounts>,
    /// Failures that are not counted tests: a failing check, a test build that fails, a test
    /// binary that dies without a summary. Each adds one to the final `failed`.
    pub(crate) check_failures: u64,
    pub(crate) elapsed: Option<Duration>,
    pub(crate) report: Option<FailureReport>,
}

impl Outcome {
    /// A step that was not run, for a reason that is not a failure.
    pub(crate) fn skipped(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Skipped(reason.into()),
            counts: None,
            check_failures: 0,
            elapsed: None,
            report: None,
        }
    }

    /// A step that could not be run, and that counts as one failure: `status` for the table,
    /// `detail` for the report after it.
    pub(crate) fn failed_without_running(status: &str, detail: &str, command: String) -> Outcome {
        Outcome {
            status: Status::Failed(status.to_owned()),
            counts: None,
            check_failures: 1,
            elapsed: None,
            report: Some(FailureReport {
                command,
                excerpt: vec![detail.to_owned()],
                total_lines: 1,
                exit: "not run".to_owned(),
                log: None,
            }),
        }
    }
}

/// Where to run cargo, and where to keep full logs.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    pub(crate) cargo: OsString,
    pub(crate) root: PathBuf,
    pub(crate) log_dir: Option<PathBuf>,
}

impl Runner {
    /// Runs the step's commands with stdout and stderr captured together, in order.
    pub(crate) fn run(&self, step: &Step) -> Outcome {
        let started = Instant::now();
        let mut output = String::new();
        let mut success = true;
        let mut exit = String::new();
        for args in &step.commands {
            let _ = writeln!(output, "$ {}", display_command(&step.env, args));
            match self.capture(args, &step.env) {
                Ok((ok, text, status)) => {
                    output.push_str(&text);
                    success = ok;
                    exit = status;
                }
                Err(error) => {
                    let _ = writeln!(output, "xtask: could not run cargo: {error}");
                    success = false;
                    exit = "not started".to_owned();
                }
            }
            if !success {
                break;
            }
        }
        let elapsed = started.elapsed();
        let log = self.write_log(&step.log_name, &output);
        let mut outcome = match step.kind {
            Kind::Tests => read_test_output(&output, success),
            Kind::Check if success => Outcome {
                status: Status::Ok,
                counts: None,
                check_failures: 0,
                elapsed: None,
                report: None,
            },
            Kind::Check => Outcome {
                status: Status::Failed("FAIL".to_owned()),
                counts: None,
                check_failures: 1,
                elapsed: None,
                report: None,
            },
        };
        outcome.elapsed = Some(elapsed);
        if !success {
            let lines: Vec<&str> = output.lines().collect();
            let mut excerpt = match step.kind {
                Kind::Tests => test_failure_excerpt(&lines),
                Kind::Check => Vec::new(),
            };
            if excerpt.is_empty() {
                excerpt = lines.iter().map(|l| (*l).to_owned()).collect();
            }
            let skip = excerpt.len().saturating_sub(TAIL_LINES);
            excerpt.drain(..skip);
            outcome.report = Some(FailureReport {
                command: step.display(),
                excerpt,
                total_lines: lines.len(),
                exit,
                log,
            });
        }
        outcome
    }

    /// Runs `cargo ARGS` in the workspace root; returns (success, combined output, exit description).
    fn capture(
        &self,
        args: &[String],
        env: &[(&'static str, Option<String>)],
    ) -> std::io::Result<(bool, String, String)> {
        // One pipe for both streams keeps cargo's messages and the tests' output in order.
        let (mut reader, writer) = std::io::pipe()?;
        let mut command = Command::new(&self.cargo);
        command
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer);
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let mut child = command.spawn()?;
        // The Command holds the pipe's write ends: drop it so reading ends when the child exits.
        drop(command);
        let mut bytes = Vec::new();
        let read = reader.read_to_end(&mut bytes);
        let status = child.wait()?;
        read?;
        Ok((
            status.success(),
            String::from_utf8_lossy(&bytes).into_owned(),
            status.to_string(),
        ))
    }

    fn write_log(&self, name: &str, output: &str) -> Option<PathBuf> {
        let path = self.log_dir.as_ref()?.join(format!("{name}.log"));
        std::fs::write(&path, output).ok()?;
        Some(
            path.strip_prefix(&self.root)
                .map(Path::to_path_buf)
                .unwrap_or(path),
        )
    }
}

impl Step {
    /// The commands as a user would type them, each with the variables the step sets.
    pub(crate) fn display(&self) -> String {
        self.commands
            .iter()
            .map(|args| display_command(&self.env, args))
            .collect::<Vec<_>>()
            .join(" && ")
    }
}

fn display_command(env: &[(&'static str, Option<String>)], args: &[String]) -> String {
    let mut text = String::new();
    for (name, value) in env {
        if let Some(value) = value {
            let _ = write!(text, "{name}={} ", shell_word(value));
        }
    }
    text.push_str("cargo");
    for arg in args {
        text.push(' ');
        text.push_str(&shell_word(arg));
    }
    text
}

/// A word as a POSIX shell would need it written: quoted when it has spaces or quotes.
fn shell_word(word: &str) -> String {
    if word.is_empty() || word.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
        format!("'{}'", word.replace('\'', r"'\''"))
    } else {
        word.to_owned()
    }
}

/// Reads a `cargo test` run: sums the libtest summaries and decides the row's status.
pub(crate) fn read_test_output(output: &str, success: bool) -> Outcome {
    let mut counts = TestCounts::default();
    let mut sections = 0u64;
    let mut sections_with_summary = 0u64;
    let mut section_has_summary = false;
    let mut compile_failed = false;
    for line in output.lines() {
        if is_section_start(line) {
            if sections > 0 && section_has_summary {
                sections_with_summary += 1;
            }
            sections += 1;
            section_has_summary = false;
        } else if let Some(summary) = parse_summary(line) {
            counts.passed += summary.passed;
            counts.failed += summary.failed;
            section_has_summary = true;
        } else if line.starts_with("error: could not compile") {
            compile_failed = true;
        }
    }
    if sections > 0 && section_has_summary {
        sections_with_summary += 1;
    }
    let base = Outcome {
        status: Status::Ok,
        counts: Some(counts),
        check_failures: 0,
        elapsed: None,
        report: None,
    };
    if success {
        return base;
    }
    if compile_failed && sections == 0 {
        return Outcome {
            status: Status::Failed("build failed".to_owned()),
            counts: None,
            check_failures: 1,
            ..base
        };
    }
    // A test binary that exits without a summary crashed (abort, signal, a panic in the harness).
    let crashed = sections - sections_with_summary;
    let (status, check_failures) = match (crashed, counts.failed) {
        (0, 0) => ("FAIL".to_owned(), 1),
        (0, _) => ("FAIL".to_owned(), 0),
        (n, _) => (format!("FAIL ({n} crashed)"), n),
    };
    Outcome {
        status: Status::Failed(status),
        check_failures,
        ..base
    }
}

/// cargo's line before each test binary's output: "     Running ..." or "   Doc-tests ...".
fn is_section_start(line: &str) -> bool {
    line.starts_with("     Running ") || line.starts_with("   Doc-tests ")
}

/// Reads `test result: ok. 3 passed; 1 failed; 0 ignored; ...` (libtest prints it at column 0).
pub(crate) fn parse_summary(line: &str) -> Option<TestCounts> {
    let rest = line.trim_end().strip_prefix("test result: ")?;
    let (_, fields) = rest.split_once(". ")?;
    let mut counts = TestCounts::default();
    let mut seen = false;
    for field in fields.split(';') {
        let mut words = field.split_whitespace();
        let (Some(number), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        match what {
            "passed" => counts.passed = number,
            "failed" => counts.failed = number,
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(counts)
}

/// From a failed `cargo test` run, the lines that say why: for each failing test binary its
/// header and everything from its `failures:` block (or, for a binary that crashed, from cargo's
/// `error: test failed` block) to the next binary; then cargo's closing error lines. Empty when
/// nothing of the kind is found (a build failure), so the caller shows the plain tail instead.
fn test_failure_excerpt(lines: &[&str]) -> Vec<String> {
    let mut excerpt = Vec::new();
    let mut header: Option<&str> = None;
    let mut copying = false;
    for line in lines {
        if is_section_start(line) {
            header = Some(line);
            copying = false;
            continue;
        }
        if !copying && (*line == "failures:" || line.starts_with("error: test failed")) {
            if let Some(header) = header.take() {
                excerpt.push(header.trim().to_owned());
            }
            copying = true;
        }
        if copying {
            excerpt.push((*line).to_owned());
        }
    }
    if excerpt.is_empty() || copying {
        return excerpt;
    }
    // cargo's closing lines after the last binary: which targets failed, how to rerun them.
    let closing = lines
        .iter()
        .rposition(|l| l.starts_with("error: ") && !l.starts_with("error: test failed"));
    if let Some(start) = closing {
        excerpt.extend(lines[start..].iter().map(|l| (*l).to_owned()));
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::{Status, TestCounts, parse_summary, read_test_output, test_failure_excerpt};

    #[test]
    fn parses_summary_lines() {
        let cases = [
            (
                "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 3 filtered out; finished in 0.02s",
                Some((12, 0)),
            ),
            (
                "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s\r",
                Some((3, 2)),
            ),
            (
                "test result: ok. 0 passed; 0 failed; 0 ignored",
                Some((0, 0)),
            ),
            ("  test result: ok. 1 passed; 0 failed;", None),
            ("running 3 tests", None),
            ("test result: something else", None),
        ];
        for (line, expected) in cases {
            let expected = expected.map(|(passed, failed)| TestCounts { passed, failed });
            assert_eq!(parse_summary(line), expected, "{line}");
        }
    }

    const PASSING: &str = "   Compiling proxy-config v0.1.0
     Running unittests src/lib.rs (target/debug/deps/proxy_config-1)

running 2 tests
test a ... ok
test b ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

   Doc-tests proxy_config

running 1 test
test src/lib.rs - X (line 3) ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.10s
";

    const FAILING: &str = "     Running unittests src/lib.rs (target/debug/deps/proxy_config-1)

running 2 tests
test a ... ok
test b ... FAILED

failures:

---- b stdout ----
thread 'b' panicked at src/lib.rs:9:5:
boom

failures:
    b

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

error: test failed, to rerun pass `-p proxy-config --lib`
     Running tests/wire.rs (target/debug/deps/wire-2)

running 1 test
test c ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

error: 1 target failed:
    `-p proxy-config --lib`
";

    const CRASHED: &str = "     Running unittests src/lib.rs (target/debug/deps/proxy_config-1)

running 1 test
error: test failed, to rerun pass `-p proxy-config --lib`

Caused by:
  process didn't exit successfully: `target/debug/deps/proxy_config-1` (signal: 11, SIGSEGV: invalid memory reference)
     Running tests/wire.rs (target/debug/deps/wire-2)

running 1 test
test c ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    const BUILD_FAILED: &str = "   Compiling proxy-config v0.1.0
error[E0425]: cannot find value `x` in this scope
error: could not compile `proxy-config` (lib test) due to 1 previous error
";

    #[test]
    fn reads_test_runs() {
        // (output, exit success, status, counts, check failures)
        let cases = [
            (PASSING, true, Status::Ok, Some((3, 0)), 0),
            (
                FAILING,
                false,
                Status::Failed("FAIL".into()),
                Some((2, 1)),
                0,
            ),
            (
                CRASHED,
                false,
                Status::Failed("FAIL (1 crashed)".into()),
                Some((1, 0)),
                1,
            ),
            (
                BUILD_FAILED,
                false,
                Status::Failed("build failed".into()),
                None,
                1,
            ),
            ("", false, Status::Failed("FAIL".into()), Some((0, 0)), 1),
        ];
        for (output, success, status, counts, check_failures) in cases {
            let outcome = read_test_output(output, success);
            let counts = counts.map(|(passed, failed)| TestCounts { passed, failed });
            assert_eq!(
                (outcome.status, outcome.counts, outcome.check_failures),
                (status, counts, check_failures),
                "{output}"
            );
        }
    }

    #[test]
    fn excerpts_the_failures_of_a_test_run() {
        let lines: Vec<&str> = FAILING.lines().collect();
        let excerpt = test_failure_excerpt(&lines);
        assert_eq!(
            excerpt.first().map(String::as_str),
            Some("Running unittests src/lib.rs (target/debug/deps/proxy_config-1)")
        );
        assert!(excerpt.iter().any(|l| l == "boom"));
        assert!(excerpt.iter().all(|l| !l.contains("test c ... ok")));
        assert_eq!(
            excerpt.last().map(String::as_str),
            Some("    `-p proxy-config --lib`")
        );
        let crashed: Vec<&str> = CRASHED.lines().collect();
        let excerpt = test_failure_excerpt(&crashed);
        assert!(excerpt.iter().any(|l| l.contains("SIGSEGV")));
        assert!(excerpt.iter().all(|l| !l.contains("test c ... ok")));
        let build: Vec<&str> = BUILD_FAILED.lines().collect();
        assert!(test_failure_excerpt(&build).is_empty());
    }
}
