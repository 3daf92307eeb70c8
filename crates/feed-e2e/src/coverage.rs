//! The coverage report: rows = proxy kinds, columns = feeds x transports, written as JSON for
//! `cargo xtask proxy-matrix` to print.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::FeedKind;
use crate::kinds::ProxyKind;

/// The outcome of one table cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every selected config source passed.
    Pass,
    /// At least one failed; what went wrong.
    Fail(String),
    /// Not run, and why.
    Skip(String),
}

impl Status {
    fn text(&self) -> String {
        match self {
            Status::Pass => "pass".into(),
            Status::Fail(detail) => format!("fail: {detail}"),
            Status::Skip(reason) => format!("skip: {reason}"),
        }
    }

    /// Folds another source's result into this cell: a failure wins, then a pass, then a skip.
    pub fn merge(&mut self, other: Status) {
        match (&mut *self, other) {
            (Status::Fail(detail), Status::Fail(more)) => {
                detail.push_str("; ");
                detail.push_str(&more);
            }
            (_, Status::Fail(more)) => *self = Status::Fail(more),
            (Status::Skip(_), Status::Pass) => *self = Status::Pass,
            _ => {}
        }
    }
}

/// The transports of each feed, in column order.
pub const TRANSPORTS: [&str; 2] = ["rest", "ws"];

/// Results by (proxy kind, feed, transport).
#[derive(Debug, Clone)]
pub struct Coverage {
    /// `None`: not run (filtered out).
    rows: Vec<(ProxyKind, Vec<Option<Status>>)>,
}

impl Coverage {
    /// Every cell of `kinds` not run (shown as `skip: filtered`) until a result arrives.
    pub fn new(kinds: &[ProxyKind]) -> Self {
        let columns = FeedKind::ALL.len() * TRANSPORTS.len();
        Self {
            rows: kinds.iter().map(|k| (*k, vec![None; columns])).collect(),
        }
    }

    /// The column names: `binance/rest`, `binance/ws`, ...
    pub fn columns() -> Vec<String> {
        FeedKind::ALL
            .iter()
            .flat_map(|f| {
                TRANSPORTS
                    .iter()
                    .map(move |t| format!("{}/{t}", f.as_str()))
            })
            .collect()
    }

    /// Records the result of one source for (kind, feed): REST and WS columns.
    pub fn record(&mut self, kind: ProxyKind, feed: FeedKind, rest: Status, ws: Status) {
        let Some(feed_index) = FeedKind::ALL.iter().position(|f| *f == feed) else {
            return;
        };
        if let Some((_, cells)) = self.rows.iter_mut().find(|(k, _)| *k == kind) {
            let first = feed_index * TRANSPORTS.len();
            for (offset, status) in [rest, ws].into_iter().enumerate() {
                match &mut cells[first + offset] {
                    Some(cell) => cell.merge(status),
                    empty => *empty = Some(status),
                }
            }
        }
    }

    /// Marks every cell of `kind` skipped for `reason` (e.g. a missing binary).
    pub fn skip_row(&mut self, kind: ProxyKind, reason: &str) {
        if let Some((_, cells)) = self.rows.iter_mut().find(|(k, _)| *k == kind) {
            for cell in cells {
                *cell = Some(Status::Skip(reason.to_owned()));
            }
        }
    }

    /// Every failing cell: `kind feed/transport: detail`.
    pub fn failures(&self) -> Vec<String> {
        let columns = Self::columns();
        let mut out = Vec::new();
        for (kind, cells) in &self.rows {
            for (column, cell) in columns.iter().zip(cells) {
                if let Some(Status::Fail(detail)) = cell {
                    out.push(format!(
                        "{kind} ({}) {column}: {detail}",
                        kind.origin().as_str()
                    ));
                }
            }
        }
        out
    }

    /// The report as JSON (see xtask's coverage table).
    pub fn to_json(&self, features: &str) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|(kind, cells)| {
                json!({
                    "proxy": kind.id(),
                    "origin": kind.origin().as_str(),
                    "cells": cells
                        .iter()
                        .map(|c| c.as_ref().map_or_else(|| "skip: filtered".to_owned(), Status::text))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "features": features, "columns": Self::columns(), "rows": rows })
    }

    /// Writes the report to `<dir>/feed-e2e/coverage-<features>-<name>.json`.
    pub fn write(&self, dir: &Path, features: &str, name: &str) -> std::io::Result<PathBuf> {
        let folder = dir.join("feed-e2e");
        std::fs::create_dir_all(&folder)?;
        let path = folder.join(format!("coverage-{features}-{name}.json"));
        let text =
            serde_json::to_string_pretty(&self.to_json(features)).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// `default` or `no-default-features`: the feature set of this build, as the report names it.
pub fn feature_set() -> &'static str {
    if crate::SOCKS_ENABLED {
        "default"
    } else {
        "no-default-features"
    }
}
