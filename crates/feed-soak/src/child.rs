//! Running one scenario in a child process (this same binary with `--child NAME`): its peak
//! memory and descriptors are then its own, and a scenario that hangs past its deadline is
//! killed by PID, with any real proxy it had started (it reports their PIDs first).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::scenario::{Outcome, PID_PREFIX, RESULT_PREFIX, Scenario};

/// How often the parent looks at the child.
const POLL: Duration = Duration::from_millis(50);

/// Why a child gave no outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoOutcome {
    /// Killed at the parent's deadline.
    Timeout(String),
    /// Could not start, or ended without a result line.
    Failed(String),
}

/// A child process that is killed (with the processes it reported) if it is dropped while
/// still running.
struct Guard {
    child: Child,
    reported: Vec<u32>,
    reader: Option<JoinHandle<()>>,
}

impl Guard {
    /// Kills the child, reaps it, then stops the processes it reported, which outlive it.
    fn kill(&mut self) -> Option<ExitStatus> {
        // Fails only if it has exited meanwhile; `wait` reaps it either way.
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        for &pid in &self.reported {
            stop_orphan(pid);
        }
        status
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// SIGKILL to a process the child started and could not stop because it was killed itself.
fn stop_orphan(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill takes plain integers; a positive pid names one process, never a group.
    #[allow(unsafe_code)] // signalling a PID has no safe std API for a process we did not spawn
    let _ = unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Runs `scenario` in a child process, killing it after `deadline`.
pub(crate) fn run(
    scenario: Scenario,
    quick: bool,
    deadline: Duration,
) -> Result<Outcome, NoOutcome> {
    let exe = std::env::current_exe()
        .map_err(|e| NoOutcome::Failed(format!("cannot find this program: {e}")))?;
    let mut command = Command::new(exe);
    command.args(["--child", scenario.id()]);
    if quick {
        command.arg("--quick");
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| NoOutcome::Failed(format!("cannot start the child: {e}")))?;
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        }
    });
    let mut guard = Guard {
        child,
        reported: Vec::new(),
        reader: Some(reader),
    };
    let until = Instant::now() + deadline;
    let mut outcome = None;
    let mut unparsed = Vec::new();
    let status = loop {
        let exited = guard.child.try_wait();
        // After an exit, the reader thread ends at EOF: wait for it so no line is missed.
        if matches!(exited, Ok(Some(_)) | Err(_))
            && let Some(reader) = guard.reader.take()
        {
            let _ = reader.join();
        }
        for line in received.try_iter() {
            read_line(&line, &mut guard.reported, &mut outcome, &mut unparsed);
        }
        match exited {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= until => {
                let status = guard.kill();
                return Err(NoOutcome::Timeout(format!(
                    "killed after {}s (exit: {})",
                    deadline.as_secs(),
                    status.map_or_else(|| "unknown".to_owned(), |s| s.to_string())
                )));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(error) => {
                guard.kill();
                return Err(NoOutcome::Failed(format!("waiting for the child: {error}")));
            }
        }
    };
    if status.code().is_none() {
        // Killed by a signal: its real proxies were not stopped.
        for &pid in &guard.reported {
            stop_orphan(pid);
        }
    }
    match outcome {
        Some(outcome) => Ok(outcome),
        None => Err(NoOutcome::Failed(format!(
            "the child ended ({status}) without a result{}",
            if unparsed.is_empty() {
                String::new()
            } else {
                format!("; it printed: {}", unparsed.join(" | "))
            }
        ))),
    }
}

/// One line of the child's stdout: a PID to remember, the result, or anything else.
fn read_line(
    line: &str,
    reported: &mut Vec<u32>,
    outcome: &mut Option<Outcome>,
    unparsed: &mut Vec<String>,
) {
    if let Some(pid) = line.strip_prefix(PID_PREFIX) {
        match pid.trim().parse() {
            Ok(pid) => reported.push(pid),
            Err(_) => unparsed.push(line.to_owned()),
        }
    } else if let Some(json) = line.strip_prefix(RESULT_PREFIX) {
        match serde_json::from_str(json) {
            Ok(parsed) => *outcome = Some(parsed),
            Err(error) => unparsed.push(format!("unreadable result ({error}): {json}")),
        }
    } else {
        unparsed.push(line.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pid_and_result_lines() {
        let mut reported = Vec::new();
        let mut outcome = None;
        let mut unparsed = Vec::new();
        let result = Outcome {
            connections: 7,
            ..Outcome::default()
        };
        let lines = [
            format!("{PID_PREFIX}4242"),
            format!("{PID_PREFIX}x"),
            "chatter".to_owned(),
            format!(
                "{RESULT_PREFIX}{}",
                serde_json::to_string(&result).expect("json")
            ),
            format!("{RESULT_PREFIX}{{"),
        ];
        for line in &lines {
            read_line(line, &mut reported, &mut outcome, &mut unparsed);
        }
        assert_eq!(reported, [4242]);
        assert_eq!(outcome, Some(result));
        assert_eq!(unparsed.len(), 3, "{unparsed:?}");
    }
}
