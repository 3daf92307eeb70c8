//! How the machine's idle CPUs wait: printed under the table, because it sets what a round trip
//! costs the thread that wakes another.
//!
//! On a KVM guest with the `haltpoll` cpuidle governor and `guest_halt_poll_ns` at 0, an idle
//! vCPU halts at once, so every wake-up of a thread on it is an IPI that exits to the host, and
//! the waker's CPU time pays for it. On the AMD VM of run 11 that made a 1-byte loopback
//! ping-pong cost the client 16.5-18.8 us of CPU, against 8.8-9.4 us with the kernel's default
//! limit of 200,000 ns, and put SOCKS5's two extra round trips per connection over the CPU bar
//! (docs/performance.md, run 11).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the cpuidle driver's name is.
const DRIVER: &str = "/sys/devices/system/cpu/cpuidle/current_driver";
/// Where the cpuidle governor's name is (`_ro` unless the kernel lets it be switched).
const GOVERNOR: [&str; 2] = [
    "/sys/devices/system/cpu/cpuidle/current_governor_ro",
    "/sys/devices/system/cpu/cpuidle/current_governor",
];
/// The haltpoll governor's longest polling window before a vCPU halts (each vCPU's window
/// adapts below it, growing from 50 us).
const HALT_POLL: &str = "/sys/module/haltpoll/parameters/guest_halt_poll_ns";

/// The cpuidle governor, trimmed, if it can be read.
fn governor() -> Option<String> {
    GOVERNOR
        .iter()
        .find_map(|path| fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// The line under the table: the cpuidle driver and governor and, with the haltpoll governor,
/// its polling limit.
pub(crate) fn idle_line() -> String {
    let read = |path: &str| fs::read_to_string(path).ok();
    idle_text(
        read(DRIVER).as_deref(),
        governor().as_deref(),
        read(HALT_POLL).as_deref(),
    )
}

/// [`idle_line`] from the files' contents (`None`: the file could not be read).
fn idle_text(driver: Option<&str>, governor: Option<&str>, halt_poll_ns: Option<&str>) -> String {
    let Some(driver) = driver.map(str::trim).filter(|d| !d.is_empty()) else {
        return "idle: cpuidle driver unknown (no /sys/devices/system/cpu/cpuidle)".to_owned();
    };
    let governor = governor.map(str::trim).filter(|g| !g.is_empty());
    let head = format!(
        "idle: cpuidle driver {driver}, governor {}",
        governor.unwrap_or("unknown")
    );
    if governor != Some("haltpoll") {
        return head;
    }
    match halt_poll_ns
        .map(str::trim)
        .and_then(|p| p.parse::<u64>().ok())
    {
        Some(0) => format!(
            "{head}, guest_halt_poll_ns 0 (an idle vCPU halts at once: each wake-up of a thread on it is an IPI to the host, paid by the waker; the kernel's default is 200000, docs/performance.md run 11)"
        ),
        Some(ns) => format!("{head}, guest_halt_poll_ns {ns}"),
        None => format!("{head}, guest_halt_poll_ns unreadable"),
    }
}

/// The environment variable that asks for another haltpoll polling window for the run.
pub(crate) const HALT_POLL_ENV: &str = "FEED_BENCH_HALT_POLL_NS";

/// The largest limit [`HALT_POLL_ENV`] may ask for (10 ms; the kernel's default is 200 us).
const HALT_POLL_MAX_NS: u64 = 10_000_000;

/// A haltpoll polling limit set for this run (opt-in, [`HALT_POLL_ENV`]); dropping it writes
/// the previous value back (not when the process is killed: it says so on stderr).
#[derive(Debug)]
pub(crate) struct HaltPoll {
    path: PathBuf,
    previous: String,
}

impl HaltPoll {
    /// Sets the haltpoll polling limit to what [`HALT_POLL_ENV`] asks for, if it is set.
    /// `Ok(None)`: not asked. The error says what to fix: a value that is not a whole number of
    /// ns up to 10 ms, a cpuidle governor other than haltpoll (the setting would do nothing),
    /// no haltpoll module, or no permission to write it (root).
    pub(crate) fn from_env() -> Result<Option<Self>, String> {
        let Some(value) = std::env::var_os(HALT_POLL_ENV) else {
            return Ok(None);
        };
        let ns = parse_halt_poll(&value.to_string_lossy())?;
        match governor() {
            Some(governor) if governor == "haltpoll" => {}
            other => {
                return Err(format!(
                    "{HALT_POLL_ENV}={ns}: the cpuidle governor is {}, not haltpoll, so guest_halt_poll_ns would change nothing; unset {HALT_POLL_ENV}",
                    other.as_deref().unwrap_or("unknown")
                ));
            }
        }
        Self::set(Path::new(HALT_POLL), ns)
            .map(Some)
            .map_err(|error| {
                let fix = match error.kind() {
                    io::ErrorKind::NotFound => "no haltpoll governor module here",
                    io::ErrorKind::PermissionDenied => "run it as root",
                    _ => "see the error",
                };
                format!("{HALT_POLL_ENV}={ns}: cannot set {HALT_POLL}: {error} ({fix})")
            })
    }

    /// Writes `ns` to `path` and remembers what was there.
    fn set(path: &Path, ns: u64) -> io::Result<Self> {
        let previous = fs::read_to_string(path)?.trim().to_owned();
        fs::write(path, ns.to_string())?;
        eprintln!(
            "feed-bench: {} {previous} -> {ns} for this run (written back at the end; if the run is killed, write {previous} back by hand)",
            path.display()
        );
        Ok(Self {
            path: path.to_owned(),
            previous,
        })
    }
}

impl Drop for HaltPoll {
    fn drop(&mut self) {
        if let Err(error) = fs::write(&self.path, &self.previous) {
            eprintln!(
                "feed-bench: could not write {} back to {}: {error}",
                self.previous,
                self.path.display()
            );
        }
    }
}

/// [`HALT_POLL_ENV`]'s value: whole nanoseconds from 0 to 10 ms.
fn parse_halt_poll(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(ns) if ns <= HALT_POLL_MAX_NS => Ok(ns),
        _ => Err(format!(
            "{HALT_POLL_ENV} takes whole nanoseconds from 0 to {HALT_POLL_MAX_NS} (the kernel's default is 200000), got {value:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{HaltPoll, idle_text, parse_halt_poll};

    #[test]
    fn a_halt_poll_window_is_written_for_the_run_and_the_old_one_back_after() {
        let dir = std::env::temp_dir().join(format!("feed-bench-idle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("guest_halt_poll_ns");
        std::fs::write(&file, "0\n").unwrap();
        let set = HaltPoll::set(&file, 200_000).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "200000");
        drop(set);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "0");
        // No such parameter (no haltpoll module): an error, and nothing is written.
        let missing = dir.join("missing");
        assert!(HaltPoll::set(&missing, 200_000).is_err());
        assert!(!missing.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_halt_poll_setting_takes_whole_nanoseconds_up_to_10_ms() {
        assert_eq!(parse_halt_poll("200000"), Ok(200_000));
        assert_eq!(parse_halt_poll(" 0\n"), Ok(0));
        assert_eq!(parse_halt_poll("10000000"), Ok(10_000_000));
        for bad in ["10000001", "-1", "2e5", "", "200us"] {
            let error = parse_halt_poll(bad).unwrap_err();
            assert!(
                error.starts_with(
                    "FEED_BENCH_HALT_POLL_NS takes whole nanoseconds from 0 to 10000000"
                ),
                "{bad:?}: {error}"
            );
            assert!(error.ends_with(&format!("got {bad:?}")), "{bad:?}: {error}");
        }
    }

    #[test]
    fn the_idle_line_names_the_driver_the_governor_and_a_zero_polling_limit() {
        let zero = idle_text(Some("haltpoll\n"), Some("haltpoll\n"), Some("0\n"));
        assert!(
            zero.starts_with(
                "idle: cpuidle driver haltpoll, governor haltpoll, guest_halt_poll_ns 0 ("
            ),
            "{zero}"
        );
        assert!(zero.contains("paid by the waker"), "{zero}");
        assert_eq!(
            idle_text(Some("haltpoll\n"), Some("haltpoll"), Some("200000\n")),
            "idle: cpuidle driver haltpoll, governor haltpoll, guest_halt_poll_ns 200000"
        );
        assert_eq!(
            idle_text(Some("haltpoll"), Some("haltpoll"), Some("garbage")),
            "idle: cpuidle driver haltpoll, governor haltpoll, guest_halt_poll_ns unreadable"
        );
        // Another governor: the haltpoll parameter (if the module is there at all) does not apply.
        assert_eq!(
            idle_text(Some("intel_idle\n"), Some("menu\n"), Some("0\n")),
            "idle: cpuidle driver intel_idle, governor menu"
        );
        assert_eq!(
            idle_text(Some("acpi_idle"), None, None),
            "idle: cpuidle driver acpi_idle, governor unknown"
        );
        for driver in [None, Some("  \n")] {
            assert_eq!(
                idle_text(driver, Some("haltpoll"), Some("0")),
                "idle: cpuidle driver unknown (no /sys/devices/system/cpu/cpuidle)"
            );
        }
    }
}
