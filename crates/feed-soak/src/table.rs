//! The one table feed-soak prints, and the notes under it.

use crate::child::NoOutcome;
use crate::scenario::Outcome;
use crate::sys::mib;

/// What became of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RowResult {
    Done(Outcome),
    /// Not run, and why (a note, not a failure).
    Skipped(String),
    /// Not run, and that is a failure (a required real proxy is missing).
    Refused(String),
    NoOutcome(NoOutcome),
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) result: RowResult,
}

impl Row {
    /// `ok`, `FAIL`, `TIMEOUT` or `skipped`.
    pub(crate) fn verdict(&self) -> &'static str {
        match &self.result {
            RowResult::Done(outcome) if outcome.timed_out => "TIMEOUT",
            RowResult::Done(outcome) if outcome.failures.is_empty() => "ok",
            RowResult::Done(_) | RowResult::Refused(_) => "FAIL",
            RowResult::NoOutcome(NoOutcome::Timeout(_)) => "TIMEOUT",
            RowResult::NoOutcome(NoOutcome::Failed(_)) => "FAIL",
            RowResult::Skipped(_) => "skipped",
        }
    }

    pub(crate) fn failed(&self) -> bool {
        !matches!(self.verdict(), "ok" | "skipped")
    }

    fn cells(&self) -> [String; 8] {
        let dash = || "-".to_owned();
        let RowResult::Done(outcome) = &self.result else {
            return [
                self.label.clone(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                self.verdict().to_owned(),
            ];
        };
        let counts = &outcome.counts;
        let messages = if counts.received == counts.expected {
            counts.received.to_string()
        } else {
            format!("{}/{}", counts.received, counts.expected)
        };
        [
            self.label.clone(),
            outcome.connections.to_string(),
            messages,
            counts.ldr(),
            mib(outcome.peak_rss_kib),
            outcome.peak_fds.to_string(),
            format!("{:.1}s", outcome.wall_ms as f64 / 1000.0),
            self.verdict().to_owned(),
        ]
    }

    /// The notes for this row: details, then failures.
    fn notes(&self) -> Vec<String> {
        match &self.result {
            RowResult::Done(outcome) => outcome
                .details
                .iter()
                .cloned()
                .chain(outcome.failures.iter().map(|f| format!("FAIL: {f}")))
                .collect(),
            RowResult::Skipped(why) => vec![format!("SKIPPED: {why}")],
            RowResult::Refused(why) => vec![format!("FAIL: {why}")],
            RowResult::NoOutcome(NoOutcome::Timeout(why)) => vec![format!("TIMEOUT: {why}")],
            RowResult::NoOutcome(NoOutcome::Failed(why)) => vec![format!("FAIL: {why}")],
        }
    }
}

const HEADERS: [&str; 8] = [
    "scenario",
    "conns",
    "messages",
    "lost/dup/reord",
    "peak RSS",
    "peak fds",
    "wall",
    "result",
];
/// Right-aligned columns.
const NUMERIC: [bool; 8] = [false, true, true, true, true, true, true, false];

/// The table, columns aligned, then each row's notes.
pub(crate) fn render(rows: &[Row]) -> String {
    let cells: Vec<[String; 8]> = rows.iter().map(Row::cells).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &[String; 8]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            if NUMERIC[i] {
                out.push_str(&format!("{cell:>w$}", w = widths[i]));
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&HEADERS.map(str::to_owned));
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for row in &cells {
        out.push_str(&line(row));
    }
    let notes: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|row| (row.label.clone(), row.notes()))
        .filter(|(_, notes)| !notes.is_empty())
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for (label, notes) in notes {
            out.push_str(&format!("{label}:\n"));
            for note in notes {
                out.push_str(&format!("  - {note}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq::Counts;

    #[test]
    fn renders_rows_and_notes() {
        let ok = Outcome {
            connections: 1000,
            counts: Counts {
                expected: 1_000_000,
                received: 1_000_000,
                ..Counts::default()
            },
            peak_rss_kib: 102_400,
            peak_fds: 4010,
            wall_ms: 12_345,
            details: vec!["all open at once".into()],
            ..Outcome::default()
        };
        let lossy = Outcome {
            connections: 1,
            counts: Counts {
                expected: 10,
                received: 9,
                lost: 1,
                ..Counts::default()
            },
            failures: vec!["lost 1".into()],
            ..Outcome::default()
        };
        let rows = vec![
            Row {
                label: "load".into(),
                result: RowResult::Done(ok),
            },
            Row {
                label: "slow".into(),
                result: RowResult::Done(lossy),
            },
            Row {
                label: "real".into(),
                result: RowResult::Skipped("microsocks missing".into()),
            },
            Row {
                label: "hang".into(),
                result: RowResult::NoOutcome(NoOutcome::Timeout("killed after 9s".into())),
            },
        ];
        let expected = "\
scenario  conns  messages  lost/dup/reord   peak RSS  peak fds   wall  result
--------  -----  --------  --------------  ---------  --------  -----  -------
load       1000   1000000           0/0/0  100.0 MiB      4010  12.3s  ok
slow          1      9/10           1/0/0    0.0 MiB         0   0.0s  FAIL
real          -         -               -          -         -      -  skipped
hang          -         -               -          -         -      -  TIMEOUT

load:
  - all open at once
slow:
  - FAIL: lost 1
real:
  - SKIPPED: microsocks missing
hang:
  - TIMEOUT: killed after 9s
";
        assert_eq!(render(&rows), expected);
        let failed: Vec<bool> = rows.iter().map(Row::failed).collect();
        assert_eq!(failed, [false, true, false, true]);
    }
}
