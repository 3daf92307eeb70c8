//! The one table `cargo xtask bench` prints.

/// Whether a figure met its bar; `Report` for a figure with an aim, or none, to report only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Met,
    Missed,
    Report,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) bench: String,
    pub(crate) arms: String,
    pub(crate) figure: String,
    pub(crate) ratio: Option<f64>,
    pub(crate) bar: String,
    pub(crate) verdict: Verdict,
}

/// The rows so far.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub(crate) fn push(&mut self, row: Row) {
        eprintln!(
            "  {} | {} | {} | {}",
            row.bench,
            row.arms,
            row.figure,
            row.ratio
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"))
        );
        self.rows.push(row);
    }

    /// Prints the table to stdout, columns aligned.
    pub(crate) fn print(&self) {
        let header = ["benchmark", "arms", "figure", "ratio", "bar", "result"];
        let lines: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.bench.clone(),
                    row.arms.clone(),
                    row.figure.clone(),
                    row.ratio
                        .map_or_else(|| "-".to_owned(), |r| format!("{r:.3}")),
                    row.bar.clone(),
                    match row.verdict {
                        Verdict::Met => "met",
                        Verdict::Missed => "MISSED",
                        Verdict::Report => "report",
                    }
                    .to_owned(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &lines {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let render = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        println!("{}", render(&header.map(str::to_owned)));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        println!("|-{}-|", rule.join("-|-"));
        for line in &lines {
            println!("{}", render(line));
        }
    }
}

/// `Met` when `ok`, else `Missed`.
pub(crate) fn verdict(ok: bool) -> Verdict {
    if ok { Verdict::Met } else { Verdict::Missed }
}
