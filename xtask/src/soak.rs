//! `cargo xtask soak`: builds feed-soak in release mode and runs it; feed-soak runs each load
//! and fault scenario in a child process and prints the one table (scenario, connections,
//! messages, lost/dup/reordered, peak RSS, peak fds, wall, result). Any lost, duplicated or
//! reordered message, direct connection, leak or timeout fails the command.

use std::process::{Command, ExitCode};

/// Runs feed-soak with `args` passed through (`--quick`, `--only NAME`).
pub(crate) fn run(args: impl Iterator<Item = String>) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "feed-soak",
            "--",
        ])
        .args(args)
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("error: feed-soak failed ({status})");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: could not run cargo: {error}");
            ExitCode::FAILURE
        }
    }
}
