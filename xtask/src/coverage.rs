//! The coverage reports of feed-e2e's matrix tests: found and cleared on disk, parsed from JSON,
//! merged per feature set and rendered as one table per set.
//!
//! Each `matrix_*` test function writes `coverage-<set>-<function>.json` into
//! `<target dir>/tmp/feed-e2e/` (its `CARGO_TARGET_TMPDIR`), where `<set>` is `default` or
//! `no-default-features`:
//!
//! ```json
//! {"features": "default",
//!  "columns": ["binance/rest", "binance/ws"],
//!  "rows": [{"proxy": "connect", "origin": "in-process", "cells": ["pass", "fail: trades missing"]}]}
//! ```
//!
//! A cell is `pass`, `fail: <detail>` or `skip: <reason>`. The table is information only: what
//! passes or fails the matrix is still the `cargo test` result.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::json::{self, Json};
use crate::proxy_matrix::Features;
use crate::table;

/// Where the reports are, under cargo's target directory (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
pub(crate) fn report_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("tmp").join("feed-e2e")
}

/// How many characters of a skip reason the table shows.
const SKIP_REASON_CHARS: usize = 18;

/// One cell of the matrix as the test reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CellResult {
    Pass,
    Fail(String),
    Skip(String),
}

/// One report file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) features: String,
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<ReportRow>,
}

/// One proxy of a report: a result for each of the report's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportRow {
    pub(crate) proxy: String,
    pub(crate) origin: String,
    pub(crate) cells: Vec<CellResult>,
}

impl ReportRow {
    /// The row's name in the table: `connect (in-process)`.
    fn label(&self) -> String {
        let proxy = one_line(&self.proxy);
        if self.origin.is_empty() {
            proxy
        } else {
            format!("{proxy} ({})", one_line(&self.origin))
        }
    }
}

/// The reports of one feature set merged: the columns of every report, in the order first seen;
/// rows in file-name order, then in their file's order. A cell is `None` where the row's report
/// has no such column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matrix {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<(String, Vec<Option<CellResult>>)>,
}

/// What was found on disk: a merged matrix per feature set that has at least one valid report,
/// and one warning line per file that could not be used.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) sets: Vec<(Features, Matrix)>,
    pub(crate) warnings: Vec<String>,
}

/// Parses one report; the error is one line saying what is wrong.
pub(crate) fn parse_report(text: &str) -> Result<Report, String> {
    let doc = json::parse(text).map_err(|e| e.to_string())?;
    if !matches!(doc, Json::Object(_)) {
        return Err("not a JSON object".to_owned());
    }
    let features = doc
        .get("features")
        .and_then(Json::as_str)
        .ok_or("no \"features\" string")?
        .to_owned();
    let columns = strings(doc.get("columns")).ok_or("no \"columns\" array of strings")?;
    for (index, column) in columns.iter().enumerate() {
        if columns[..index].contains(column) {
            return Err(format!("column `{}` listed twice", shorten(column, 40)));
        }
    }
    let mut rows = Vec::new();
    let listed = doc
        .get("rows")
        .and_then(Json::as_array)
        .ok_or("no \"rows\" array")?;
    for (index, row) in listed.iter().enumerate() {
        let number = index + 1;
        let field = |name: &str| {
            row.get(name)
                .and_then(Json::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("row {number} has no \"{name}\" string"))
        };
        let proxy = field("proxy")?;
        let origin = field("origin")?;
        let texts = strings(row.get("cells"))
            .ok_or_else(|| format!("row {number} has no \"cells\" array of strings"))?;
        if texts.len() != columns.len() {
            return Err(format!(
                "row {number} has {} cells for {} columns",
                texts.len(),
                columns.len()
            ));
        }
        let cells = texts
            .iter()
            .map(|text| parse_cell(text).map_err(|e| format!("row {number}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(ReportRow {
            proxy,
            origin,
            cells,
        });
    }
    Ok(Report {
        features,
        columns,
        rows,
    })
}

fn strings(value: Option<&Json>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// `pass`, `fail: DETAIL` or `skip: REASON` (the text after the colon may be left out).
fn parse_cell(text: &str) -> Result<CellResult, String> {
    let (word, detail) = match text.split_once(':') {
        Some((word, detail)) => (word, Some(detail.trim().to_owned())),
        None => (text, None),
    };
    match (word, detail) {
        ("pass", None) => Ok(CellResult::Pass),
        ("fail", detail) => Ok(CellResult::Fail(detail.unwrap_or_default())),
        ("skip", reason) => Ok(CellResult::Skip(reason.unwrap_or_default())),
        _ => Err(format!(
            "cell `{}` is not `pass`, `fail: DETAIL` or `skip: REASON`",
            shorten(text, 40)
        )),
    }
}

/// The feature set a report file belongs to: `coverage-<set>-<function>.json` or
/// `coverage-<set>.json`.
fn set_of(file_name: &str) -> Option<Features> {
    let stem = file_name.strip_prefix("coverage-")?.strip_suffix(".json")?;
    Features::ALL.into_iter().find(|set| {
        stem.strip_prefix(set.label())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    })
}

fn is_report_name(file_name: &str) -> bool {
    file_name.starts_with("coverage-") && file_name.ends_with(".json")
}

/// The `coverage-*.json` files in `dir`, sorted by name; none when the folder does not exist.
fn report_files(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if is_report_name(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push((name, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Deletes the reports of an earlier run, so that a test that writes nothing this time does not
/// show old results. Returns a warning line for each file (or folder) that could not be cleared.
pub(crate) fn remove_stale(dir: &Path) -> Vec<String> {
    let files = match report_files(dir) {
        Ok(files) => files,
        Err(error) => {
            return vec![format!(
                "warning: could not list old coverage reports in {}: {error}",
                dir.display()
            )];
        }
    };
    let mut warnings = Vec::new();
    for (_, path) in files {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => warnings.push(format!(
                "warning: could not delete old coverage report {}: {error}",
                path.display()
            )),
        }
    }
    warnings
}

/// Reads every report in `dir`; paths in warnings are shown relative to `root` when under it.
pub(crate) fn load(dir: &Path, root: &Path) -> Loaded {
    let shown = |path: &Path| {
        path.strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut loaded = Loaded::default();
    let files = match report_files(dir) {
        Ok(files) => files,
        Err(error) => {
            loaded.warnings.push(format!(
                "warning: could not list coverage reports in {}: {error}",
                shown(dir)
            ));
            return loaded;
        }
    };
    let mut reports: Vec<(Features, Report)> = Vec::new();
    for (name, path) in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                loaded.warnings.push(format!(
                    "warning: could not read coverage report {}: {error}",
                    shown(&path)
                ));
                continue;
            }
        };
        match read_report(&name, &text) {
            Ok(report) => reports.push(report),
            Err(error) => loaded.warnings.push(format!(
                "warning: ignoring coverage report {}: {error}",
                shown(&path)
            )),
        }
    }
    for set in Features::ALL {
        let of_set: Vec<&Report> = reports
            .iter()
            .filter(|(s, _)| *s == set)
            .map(|(_, report)| report)
            .collect();
        if !of_set.is_empty() {
            loaded.sets.push((set, merge(&of_set)));
        }
    }
    loaded
}

/// One file: its feature set from its name, checked against the `features` it states.
fn read_report(file_name: &str, text: &str) -> Result<(Features, Report), String> {
    let set = set_of(file_name).ok_or(
        "its name has no feature set (coverage-default-*.json or coverage-no-default-features-*.json)",
    )?;
    let report = parse_report(text).map_err(|e| format!("malformed: {e}"))?;
    if report.features != set.label() {
        return Err(format!(
            "its \"features\" is `{}` but its name says `{}`",
            shorten(&report.features, 40),
            set.label()
        ));
    }
    Ok((set, report))
}

/// Merges reports given in file-name order.
fn merge(reports: &[&Report]) -> Matrix {
    let mut columns: Vec<String> = Vec::new();
    for report in reports {
        for column in &report.columns {
            if !columns.contains(column) {
                columns.push(column.clone());
            }
        }
    }
    let mut rows = Vec::new();
    for report in reports {
        for row in &report.rows {
            let cells = columns
                .iter()
                .map(|column| {
                    report
                        .columns
                        .iter()
                        .position(|c| c == column)
                        .and_then(|index| row.cells.get(index).cloned())
                })
                .collect();
            rows.push((row.label(), cells));
        }
    }
    Matrix { columns, rows }
}

/// Everything the coverage part of the output says: warnings, then per feature set its table or,
/// for a set whose feed-e2e tests ran (`ran`) but left no report, a line saying so. Each block
/// starts with an empty line; empty when there is nothing to say.
pub(crate) fn render_section(loaded: &Loaded, ran: &[Features]) -> String {
    let mut out = String::new();
    if !loaded.warnings.is_empty() {
        out.push('\n');
        for warning in &loaded.warnings {
            out.push_str(&one_line(warning));
            out.push('\n');
        }
    }
    for set in Features::ALL {
        let matrix = loaded.sets.iter().find(|(s, _)| *s == set).map(|(_, m)| m);
        match matrix {
            Some(matrix) => {
                out.push('\n');
                out.push_str(&render_matrix(set, matrix));
            }
            None if ran.contains(&set) => {
                let _ = write!(
                    out,
                    "\nno coverage report from feed-e2e ({})\n",
                    set.label()
                );
            }
            None => {}
        }
    }
    out
}

/// One feature set's table, a count of its cells, and every failing cell in full.
pub(crate) fn render_matrix(set: Features, matrix: &Matrix) -> String {
    let mut out = format!("proxy matrix coverage ({})\n", set.title());
    let mut headers = vec!["proxy (origin)".to_owned()];
    headers.extend(matrix.columns.iter().map(|c| one_line(c)));
    let rows: Vec<Vec<String>> = matrix
        .rows
        .iter()
        .map(|(label, cells)| {
            let mut values = vec![label.clone()];
            values.extend(cells.iter().map(|cell| cell_text(cell.as_ref())));
            values
        })
        .collect();
    out.push_str(&table::render(&headers, &rows, &[]));

    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for cell in matrix.rows.iter().flat_map(|(_, cells)| cells).flatten() {
        match cell {
            CellResult::Pass => pass += 1,
            CellResult::Fail(_) => fail += 1,
            CellResult::Skip(_) => skip += 1,
        }
    }
    let _ = writeln!(out, "cells: {pass} pass, {fail} FAIL, {skip} skip");
    for (label, cells) in &matrix.rows {
        for (column, cell) in matrix.columns.iter().zip(cells) {
            if let Some(CellResult::Fail(detail)) = cell {
                let detail = if detail.is_empty() {
                    "(no detail)".to_owned()
                } else {
                    // Keep a multi-line detail readable under its FAIL line.
                    detail.trim_end().replace('\n', "\n    ")
                };
                let _ = writeln!(out, "FAIL {label} {}: {detail}", one_line(column));
            }
        }
    }
    out
}

fn cell_text(cell: Option<&CellResult>) -> String {
    match cell {
        None => "-".to_owned(),
        Some(CellResult::Pass) => "pass".to_owned(),
        Some(CellResult::Fail(_)) => "FAIL".to_owned(),
        Some(CellResult::Skip(reason)) if reason.is_empty() => "skip".to_owned(),
        Some(CellResult::Skip(reason)) => format!("skip({})", shorten(reason, SKIP_REASON_CHARS)),
    }
}

/// Control characters (newlines, tabs) as spaces, so a value cannot break a table or a line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// At most `max` characters on one line; a longer text is cut and ends in `...`.
fn shorten(text: &str, max: usize) -> String {
    let text = one_line(text.trim());
    if text.chars().count() <= max {
        return text;
    }
    let kept: String = text.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", kept.trim_end())
}

#[cfg(test)]
mod tests {
    use super::{
        CellResult, Loaded, Matrix, load, merge, parse_report, read_report, remove_stale,
        render_matrix, render_section, set_of,
    };
    use crate::proxy_matrix::Features;
    use std::path::{Path, PathBuf};

    /// A fresh folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("xtask-coverage-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).expect("write temp file");
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .expect("read temp dir")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const SAMPLE: &str = r#"{"features": "default",
 "columns": ["binance/rest", "binance/ws", "coinbase/rest", "coinbase/ws", "backpack/rest", "backpack/ws"],
 "rows": [
   {"proxy": "connect", "origin": "in-process", "cells": ["pass", "pass", "fail: trades missing (3 of 5)", "pass", "skip: filtered", "skip: filtered"]},
   {"proxy": "squid-auth", "origin": "real", "cells": ["pass", "fail: proxy answered 407 Proxy Authentication Required", "pass", "pass", "skip: squid not installed on this machine", "skip"]}
 ]}"#;

    #[test]
    fn parses_a_report() {
        let report = parse_report(SAMPLE).expect("valid report");
        assert_eq!(report.features, "default");
        assert_eq!(report.columns.len(), 6);
        assert_eq!(report.rows.len(), 2);
        assert_eq!(report.rows[0].proxy, "connect");
        assert_eq!(report.rows[0].origin, "in-process");
        assert_eq!(
            report.rows[0].cells[..3],
            [
                CellResult::Pass,
                CellResult::Pass,
                CellResult::Fail("trades missing (3 of 5)".into())
            ]
        );
        assert_eq!(report.rows[1].cells[5], CellResult::Skip(String::new()));
    }

    #[test]
    fn rejects_malformed_reports() {
        // (document, part of the error)
        let cases = [
            ("", "invalid JSON"),
            (r#"{"features": "default", "columns": []"#, "invalid JSON"),
            ("[]", "not a JSON object"),
            (r#"{"columns": [], "rows": []}"#, "\"features\""),
            (r#"{"features": "default", "rows": []}"#, "\"columns\""),
            (
                r#"{"features": "default", "columns": ["a", 1], "rows": []}"#,
                "\"columns\"",
            ),
            (
                r#"{"features": "default", "columns": ["a", "a"], "rows": []}"#,
                "column `a` listed twice",
            ),
            (r#"{"features": "default", "columns": ["a"]}"#, "\"rows\""),
            (
                r#"{"features": "default", "columns": ["a"], "rows": [{"origin": "real", "cells": ["pass"]}]}"#,
                "row 1 has no \"proxy\"",
            ),
            (
                r#"{"features": "default", "columns": ["a"], "rows": [{"proxy": "p", "origin": "o"}]}"#,
                "row 1 has no \"cells\"",
            ),
            (
                r#"{"features": "default", "columns": ["a", "b"], "rows": [{"proxy": "p", "origin": "o", "cells": ["pass"]}]}"#,
                "row 1 has 1 cells for 2 columns",
            ),
            (
                r#"{"features": "default", "columns": ["a"], "rows": [{"proxy": "p", "origin": "o", "cells": ["ok\nthen"]}]}"#,
                "row 1: cell `ok then` is not",
            ),
            (
                r#"{"features": "default", "columns": ["a"], "rows": [{"proxy": "p", "origin": "o", "cells": ["failed"]}]}"#,
                "cell `failed` is not",
            ),
            (
                r#"{"features": "default", "columns": ["a"], "rows": [{"proxy": "p", "origin": "o", "cells": ["aaaé"]}]}"#,
                "cell `aaaé` is not",
            ),
            (
                r#"{"features": "default", "columns": ["a"], "rows": [{"proxy": "p", "origin": "o", "cells": ["pass: but"]}]}"#,
                "cell `pass: but` is not",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_report(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
            assert!(!error.contains('\n'), "{text}: {error}");
        }
    }

    #[test]
    fn tells_the_feature_set_from_the_file_name() {
        let cases = [
            ("coverage-default-matrix_real.json", Some(Features::Default)),
            ("coverage-default.json", Some(Features::Default)),
            (
                "coverage-no-default-features-matrix_in_process.json",
                Some(Features::NoDefault),
            ),
            (
                "coverage-no-default-features.json",
                Some(Features::NoDefault),
            ),
            ("coverage-defaults-x.json", None),
            ("coverage-socks-matrix_real.json", None),
            ("coverage-default-matrix_real.txt", None),
        ];
        for (name, expected) in cases {
            assert_eq!(set_of(name), expected, "{name}");
        }
        let mismatch = read_report("coverage-no-default-features-m.json", SAMPLE)
            .expect_err("features disagree");
        assert!(mismatch.contains("`default`"), "{mismatch}");
    }

    #[test]
    fn merges_reports_in_order() {
        let first = parse_report(
            r#"{"features": "default", "columns": ["binance/rest", "binance/ws"],
                "rows": [{"proxy": "connect", "origin": "in-process", "cells": ["pass", "fail: x"]}]}"#,
        )
        .expect("valid");
        let second = parse_report(
            r#"{"features": "default", "columns": ["binance/ws", "coinbase/ws"],
                "rows": [{"proxy": "squid", "origin": "real", "cells": ["skip: filtered", "pass"]}]}"#,
        )
        .expect("valid");
        let merged = merge(&[&first, &second]);
        let pass = Some(CellResult::Pass);
        assert_eq!(
            merged,
            Matrix {
                columns: vec![
                    "binance/rest".into(),
                    "binance/ws".into(),
                    "coinbase/ws".into()
                ],
                rows: vec![
                    (
                        "connect (in-process)".into(),
                        vec![pass.clone(), Some(CellResult::Fail("x".into())), None]
                    ),
                    (
                        "squid (real)".into(),
                        vec![None, Some(CellResult::Skip("filtered".into())), pass]
                    ),
                ],
            }
        );
    }

    #[test]
    fn renders_a_report() {
        let report = parse_report(SAMPLE).expect("valid report");
        let expected = "\
proxy matrix coverage (default features)
proxy (origin)        binance/rest  binance/ws  coinbase/rest  coinbase/ws  backpack/rest             backpack/ws
--------------------  ------------  ----------  -------------  -----------  ------------------------  --------------
connect (in-process)  pass          pass        FAIL           pass         skip(filtered)            skip(filtered)
squid-auth (real)     pass          FAIL        pass           pass         skip(squid not insta...)  skip
cells: 6 pass, 2 FAIL, 4 skip
FAIL connect (in-process) coinbase/rest: trades missing (3 of 5)
FAIL squid-auth (real) binance/ws: proxy answered 407 Proxy Authentication Required
";
        let rendered = render_matrix(Features::Default, &merge(&[&report]));
        assert_eq!(rendered, expected, "\n{rendered}");
    }

    #[test]
    fn renders_the_section() {
        let report = parse_report(SAMPLE).expect("valid report");
        let loaded = Loaded {
            sets: vec![(Features::Default, merge(&[&report]))],
            warnings: vec!["warning: ignoring coverage report x.json: malformed: y".into()],
        };
        let section = render_section(&loaded, &[Features::Default, Features::NoDefault]);
        assert!(section.starts_with("\nwarning: ignoring coverage report x.json"));
        assert!(section.contains("\nproxy matrix coverage (default features)\n"));
        assert!(section.ends_with("\nno coverage report from feed-e2e (no-default-features)\n"));
        // Tests that did not run leave nothing to report.
        let nothing = render_section(&Loaded::default(), &[]);
        assert_eq!(nothing, "");
    }

    #[test]
    fn removes_stale_reports_only() {
        let dir = TempDir::new("stale");
        for name in [
            "coverage-default-matrix_real.json",
            "coverage-no-default-features-matrix_in_process.json",
            "coverage-odd.json",
            "coverage-default-matrix_real.json.bak",
            "notes.json",
        ] {
            dir.write(name, "{}");
        }
        assert_eq!(remove_stale(dir.path()), Vec::<String>::new());
        assert_eq!(
            dir.names(),
            ["coverage-default-matrix_real.json.bak", "notes.json"]
        );
        // A folder that does not exist yet (no feed-e2e run so far) is not an error.
        assert_eq!(
            remove_stale(&dir.path().join("missing")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn loads_reports_and_warns_about_bad_ones() {
        let dir = TempDir::new("load");
        let row = |proxy: &str| {
            format!(
                r#"{{"features": "default", "columns": ["binance/rest"],
                    "rows": [{{"proxy": "{proxy}", "origin": "in-process", "cells": ["pass"]}}]}}"#
            )
        };
        dir.write("coverage-default-matrix_real.json", &row("b"));
        dir.write("coverage-default-matrix_in_process.json", &row("a"));
        dir.write(
            "coverage-no-default-features-matrix_real.json",
            "{\"features\":",
        );
        let loaded = load(dir.path(), dir.path());
        let sets: Vec<(Features, Vec<&str>)> = loaded
            .sets
            .iter()
            .map(|(set, m)| (*set, m.rows.iter().map(|(l, _)| l.as_str()).collect()))
            .collect();
        assert_eq!(
            sets,
            [(Features::Default, vec!["a (in-process)", "b (in-process)"])]
        );
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(
            loaded.warnings[0].starts_with(
                "warning: ignoring coverage report coverage-no-default-features-matrix_real.json: malformed: invalid JSON"
            ),
            "{:?}",
            loaded.warnings
        );
        let section = render_section(&loaded, &[Features::Default, Features::NoDefault]);
        assert!(section.contains("no coverage report from feed-e2e (no-default-features)"));
    }
}
