//! `feedproxy`: the operator's tool. `demo` runs three fake exchanges through two in-process
//! proxies, `check` explains the route of every exchange and transport, `probe` connects along a
//! route stage by stage, `stream` prints one feed's trades.
//!
//! Exit codes: 0 success; 1 the operation failed (a connection, a stage, a stream); 2 invalid
//! settings or arguments. Errors are one line on stderr starting `error: `, never with a
//! credential.

// The doc comments of the argument structs are clap's help text, shown as written: `[proxy]`
// there names a TOML table, not an item to link.
#![allow(
    rustdoc::broken_intra_doc_links,
    reason = "clap help text written in doc comments"
)]

mod check;
mod demo;
mod output;
mod probe;
mod settings;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Proxy routing for crypto market-data feeds.
#[derive(Debug, Parser)]
#[command(name = "feedproxy", version, about, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace); RUST_LOG overrides. No level shows a
    /// credential.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run offline: fake Binance, Coinbase and Backpack exchanges (TLS) and two in-process
    /// proxies on 127.0.0.1 (HTTP CONNECT with Basic auth, SOCKS5); Binance goes through the
    /// CONNECT proxy, Coinbase through SOCKS5, Backpack direct. Prints trades as they arrive,
    /// then a summary of routes, proxy connections and messages.
    Demo(demo::Args),
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
    /// Connect to URL along the route configured for EXCHANGE and its transport (https:// and
    /// http:// -> http, wss:// and ws:// -> websocket), printing each stage with its duration:
    /// tcp, proxy-tls, proxy-handshake, tls, http or upgrade, first-message.
    ///
    /// Exits 1 naming the stage that failed and its error.
    Probe(probe::Args),
    /// Run one exchange's feed through its configured route and print its normalized trades,
    /// one a line.
    Stream(stream::Args),
}

/// How a command failed: the exit code and the one line for stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

/// The operation failed (a connection, a stage, a stream).
pub(crate) const FAILED: u8 = 1;
/// Invalid settings or arguments.
pub(crate) const INVALID: u8 = 2;

impl Failure {
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            code: FAILED,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: INVALID,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    // One line, no backtrace: a panic is a bug, and its report must stay as short as an error.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error (a bug in feedproxy){location}; please report it");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Check {
            config,
            exchanges,
            json,
        } => check::run(config.as_deref(), &exchanges, json),
        Command::Demo(args) => with_runtime(demo::run(args)),
        Command::Probe(args) => with_runtime(probe::run(args)),
        Command::Stream(args) => with_runtime(stream::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", one_line(&failure.message));
            ExitCode::from(failure.code)
        }
    }
}

/// `--help` and `--version` print as clap renders them; a usage error becomes one line.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Asked for: to stdout, exit 0.
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            eprintln!(
                "error: a command is required: demo, check, probe or stream (see feedproxy --help)"
            );
            ExitCode::from(INVALID)
        }
        _ => {
            // The message is everything before clap's `Usage:` block, on one line, without
            // clap's own "For more information" tip (the line ends with ours).
            let rendered = error.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("error: {message} (see feedproxy --help)");
            ExitCode::from(INVALID)
        }
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn with_runtime(command: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(command);
    // Tasks still running (a proxy's relay, a stream being closed) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
