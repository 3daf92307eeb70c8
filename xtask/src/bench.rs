//! `cargo xtask bench`: builds feed-bench in release mode and runs it; feed-bench prints the one
//! table (benchmark, arms, figure, ratio against the baseline measured in the same run, bar,
//! result). A missed bar never fails the command: only a benchmark that cannot run does.

use std::process::{Command, ExitCode};

/// Runs feed-bench with `args` passed through (`--quick`, `--only NAME`).
pub(crate) fn run(args: impl Iterator<Item = String>) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "feed-bench",
            "--",
        ])
        .args(args)
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("error: feed-bench failed ({status})");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: could not run cargo: {error}");
            ExitCode::FAILURE
        }
    }
}
