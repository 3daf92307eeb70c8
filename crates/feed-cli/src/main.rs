//! `feedproxy`: the operator's tool. `check` explains the route of every exchange and transport.

mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Proxy routing for crypto market-data feeds.
#[derive(Debug, Parser)]
#[command(name = "feedproxy", version, about, propagate_version = true)]
struct Cli {
    /// More log output (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the proxy settings as a feed would (defaults < FILE < environment) and print the
    /// route of each exchange and transport, and where each value came from.
    ///
    /// Exits 2 when a setting is invalid, printing its key path and source.
    Check {
        /// A YAML (proxy: block) or TOML ([proxy] table) file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Also show this exchange (repeatable); configured exchanges are always shown.
        #[arg(long = "exchange", value_name = "ID")]
        exchanges: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// How a command failed: the exit code and the one line for stderr.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Check {
            config,
            exchanges,
            json,
        } => check::run(config.as_deref(), &exchanges, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
