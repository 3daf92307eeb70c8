//! The scenarios, their sizes in quick and full runs, and the outcome a scenario's child process
//! hands back to the parent (one JSON line on stdout).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::seq::Counts;

/// The prefix of the line carrying a child's [`Outcome`].
pub(crate) const RESULT_PREFIX: &str = "feed-soak-result ";
/// The prefix of a line naming a process the child started (a real proxy): the parent stops it
/// by this PID if it has to kill the child.
pub(crate) const PID_PREFIX: &str = "feed-soak-pid ";

/// One scenario, run in a child process of its own so that its peak memory (VmHWM) and file
/// descriptors are its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// Many WSS connections through one in-process SOCKS5 proxy.
    LoadSocks5,
    /// WSS connections through a real microsocks.
    LoadMicrosocks,
    /// One stream read as fast as it comes: the memory baseline of the slow consumer.
    SlowBaseline,
    /// The same stream, the callback sleeping per message.
    SlowConsumer,
    /// A feed through an in-process SOCKS5 proxy that is restarted periodically.
    RestartsSocks5,
    /// A feed through an in-process HTTP CONNECT proxy that is restarted periodically.
    RestartsConnect,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub(crate) const ALL: [Scenario; 6] = [
        Scenario::LoadSocks5,
        Scenario::LoadMicrosocks,
        Scenario::SlowBaseline,
        Scenario::SlowConsumer,
        Scenario::RestartsSocks5,
        Scenario::RestartsConnect,
    ];

    /// The name on the command line (`--only`, `--child`).
    pub(crate) fn id(self) -> &'static str {
        match self {
            Scenario::LoadSocks5 => "load-socks5",
            Scenario::LoadMicrosocks => "load-microsocks",
            Scenario::SlowBaseline => "slow-baseline",
            Scenario::SlowConsumer => "slow-consumer",
            Scenario::RestartsSocks5 => "restarts-socks5",
            Scenario::RestartsConnect => "restarts-connect",
        }
    }

    pub(crate) fn from_id(id: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The row name in the table.
    pub(crate) fn label(self, scale: &Scale) -> String {
        match self {
            Scenario::LoadSocks5 => "load, in-process SOCKS5".to_owned(),
            Scenario::LoadMicrosocks => "load, real microsocks".to_owned(),
            Scenario::SlowBaseline => "slow consumer: baseline".to_owned(),
            Scenario::SlowConsumer => {
                format!("slow consumer: {} ms sleep", scale.slow_sleep.as_millis())
            }
            Scenario::RestartsSocks5 => {
                format!("SOCKS5 restart every {}s", scale.restart_every.as_secs())
            }
            Scenario::RestartsConnect => {
                format!("CONNECT restart every {}s", scale.restart_every.as_secs())
            }
        }
    }

    /// Whether it needs the `socks` feature.
    pub(crate) fn needs_socks(self) -> bool {
        matches!(
            self,
            Scenario::LoadSocks5 | Scenario::LoadMicrosocks | Scenario::RestartsSocks5
        )
    }

    /// The functional deadline inside the child: past it the scenario stops and fails.
    pub(crate) fn deadline(self, scale: &Scale) -> Duration {
        match self {
            Scenario::LoadSocks5 | Scenario::LoadMicrosocks => scale.load_deadline,
            Scenario::SlowBaseline | Scenario::SlowConsumer => {
                // The consumer's sleeps alone take count x sleep; then as much again for slack.
                scale.slow_sleep * scale.slow_messages as u32 * 2 + Duration::from_secs(30)
            }
            Scenario::RestartsSocks5 | Scenario::RestartsConnect => {
                scale.restart_for * 2 + Duration::from_secs(30)
            }
        }
    }
}

/// How big a run is.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(feature = "socks"),
    expect(dead_code, reason = "only the SOCKS load scenarios use the load sizes")
)]
pub(crate) struct Scale {
    /// Connections through the in-process SOCKS5 proxy.
    pub(crate) load_connections: usize,
    /// Connections through microsocks.
    pub(crate) microsocks_connections: usize,
    /// Messages each load connection receives.
    pub(crate) load_messages: u64,
    /// Bytes per load message.
    pub(crate) load_size: usize,
    /// How many connections may be mid-handshake at once (all of them are open at once later).
    pub(crate) open_at_once: usize,
    pub(crate) load_deadline: Duration,
    /// Messages of the slow-consumer stream.
    pub(crate) slow_messages: u64,
    /// Bytes per slow-consumer message.
    pub(crate) slow_size: usize,
    /// The consumer's sleep per message.
    pub(crate) slow_sleep: Duration,
    /// The most the slow run's resident memory may grow while it streams.
    pub(crate) slow_growth_bound_kib: u64,
    /// The proxy is restarted this often...
    pub(crate) restart_every: Duration,
    /// ...during a stream this long.
    pub(crate) restart_for: Duration,
    /// How long the proxy stays down at each restart.
    pub(crate) restart_down: Duration,
    /// Trades the exchange sends on each connection, and their pace.
    pub(crate) trades_per_connection: usize,
    pub(crate) trade_interval: Duration,
    /// How much the fd count at the end may exceed the count after the first cycle.
    pub(crate) fd_tolerance: u64,
    /// How much resident memory at the end may exceed that after the first cycle.
    pub(crate) rss_tolerance_kib: u64,
}

impl Scale {
    pub(crate) fn new(quick: bool) -> Self {
        let full = Self {
            load_connections: 1000,
            microsocks_connections: 200,
            load_messages: 1000,
            load_size: 64,
            open_at_once: 32,
            load_deadline: Duration::from_secs(180),
            slow_messages: 16_384,
            slow_size: 16 * 1024,
            slow_sleep: Duration::from_millis(1),
            slow_growth_bound_kib: 8 * 1024,
            restart_every: Duration::from_secs(10),
            restart_for: Duration::from_secs(60),
            restart_down: Duration::from_secs(1),
            trades_per_connection: 250,
            trade_interval: Duration::from_millis(20),
            fd_tolerance: 2,
            rss_tolerance_kib: 2 * 1024,
        };
        if !quick {
            return full;
        }
        Self {
            load_deadline: Duration::from_secs(90),
            slow_messages: 4096,
            restart_every: Duration::from_secs(2),
            restart_for: Duration::from_secs(10),
            restart_down: Duration::from_millis(300),
            trades_per_connection: 25,
            ..full
        }
    }
}

/// What a scenario measured and found; an empty `failures` means it passed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Outcome {
    /// Connections the exchange side saw.
    pub(crate) connections: u64,
    /// Messages sent and what became of them.
    pub(crate) counts: Counts,
    /// VmHWM of the child at the end, KiB.
    pub(crate) peak_rss_kib: u64,
    /// Most file descriptors open at once.
    pub(crate) peak_fds: u64,
    /// Resident memory growth while streaming, KiB (slow-consumer scenarios).
    pub(crate) rss_growth_kib: Option<u64>,
    /// The scenario's own time, without process start.
    pub(crate) wall_ms: u64,
    /// What went wrong; one sentence each.
    pub(crate) failures: Vec<String>,
    /// What was measured beyond the columns, for the notes under the table.
    pub(crate) details: Vec<String>,
    /// Set when the scenario's deadline passed.
    pub(crate) timed_out: bool,
}

impl Outcome {
    pub(crate) fn fail(&mut self, why: impl Into<String>) {
        self.failures.push(why.into());
    }

    pub(crate) fn note(&mut self, what: impl Into<String>) {
        self.details.push(what.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_quick_is_smaller() {
        for scenario in Scenario::ALL {
            assert_eq!(Scenario::from_id(scenario.id()), Some(scenario));
        }
        assert_eq!(Scenario::from_id("load"), None);
        let (quick, full) = (Scale::new(true), Scale::new(false));
        assert!(quick.restart_for < full.restart_for);
        assert!(quick.slow_messages < full.slow_messages);
        for scale in [&quick, &full] {
            assert!(scale.restart_for >= scale.restart_every * 5);
            // A burst of trades fits well inside a cycle, after the proxy is back.
            let burst = scale.trade_interval * scale.trades_per_connection as u32;
            assert!(burst + scale.restart_down * 2 < scale.restart_every);
            // The slow stream is well beyond the bound, so unbounded buffering would show.
            assert!(
                scale.slow_messages * scale.slow_size as u64 / 1024
                    >= 2 * scale.slow_growth_bound_kib
            );
        }
    }

    #[test]
    fn outcomes_survive_the_pipe() {
        let mut outcome = Outcome {
            connections: 3,
            peak_rss_kib: 1,
            ..Outcome::default()
        };
        outcome.fail("lost 2 messages");
        outcome.note("all open at once");
        let line = serde_json::to_string(&outcome).expect("json");
        assert!(!line.contains('\n'));
        assert_eq!(
            serde_json::from_str::<Outcome>(&line).expect("parse"),
            outcome
        );
    }
}
