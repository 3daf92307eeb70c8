//! Plain-text tables with aligned columns, shared by the summary and the coverage tables.

/// Renders a header line, a line of dashes and one line per row; columns are separated by two
/// spaces, padded to the widest value (counted in characters), right-aligned where
/// `right_aligned` says so, and trailing spaces are trimmed. Missing values render as empty.
pub(crate) fn render(headers: &[String], rows: &[Vec<String>], right_aligned: &[bool]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (column, value) in row.iter().enumerate() {
            let len = value.chars().count();
            match widths.get_mut(column) {
                Some(width) => *width = (*width).max(len),
                None => widths.push(len),
            }
        }
    }
    let mut out = String::new();
    let mut line = |values: &[String]| {
        let mut text = String::new();
        for (column, width) in widths.iter().enumerate() {
            if column > 0 {
                text.push_str("  ");
            }
            let value = values.get(column).map_or("", String::as_str);
            let padding = " ".repeat(width.saturating_sub(value.chars().count()));
            if right_aligned.get(column).copied().unwrap_or(false) {
                text.push_str(&padding);
                text.push_str(value);
            } else {
                text.push_str(value);
                text.push_str(&padding);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers);
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
    out
}
