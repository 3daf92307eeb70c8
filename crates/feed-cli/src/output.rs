//! Writing to stdout without panicking: a closed pipe (`feedproxy stream | head -3`) ends the
//! process quietly with exit 0, as it does for other command-line tools; tables with aligned
//! columns.

use std::io::{self, Write};

/// Prints one line to stdout (`format!` arguments).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// Writes `args` and a newline to stdout and flushes (lines go out as they happen, also into a
/// pipe). A reader that went away ends the process with exit 0; another write error, with 1.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            std::process::exit(i32::from(crate::FAILED));
        }
    }
}

/// Prints `rows` under `header` in columns two spaces apart, left-aligned.
pub(crate) fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let print = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out!("{}", padded.join("  ").trim_end());
    };
    print(&mut header.iter().copied());
    for row in rows {
        print(&mut row.iter().map(String::as_str));
    }
}
