//! `CellFilter`: which cells run, from `FEED_E2E_FILTER`.

/// The environment variable `cargo xtask proxy-matrix --filter FEED/PROXY[/SOURCE]` sets.
pub const FILTER_ENV: &str = "FEED_E2E_FILTER";

/// Selects cells by id `<feed>/<proxy kind>/<source>`. Each segment of the filter must equal
/// the cell's segment at the same position (`binance/socks5` runs the four sources of that
/// feed and proxy, not `socks5h` or `socks5-auth`); a filter of one segment matches a cell with
/// that feed, proxy kind or source anywhere. Empty: every cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellFilter {
    segments: Vec<String>,
}

impl CellFilter {
    /// Parses a filter (`binance/socks5`); blank means all.
    pub fn parse(text: &str) -> Self {
        Self {
            segments: text
                .trim()
                .split('/')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }

    /// From [`FILTER_ENV`]; all cells when unset.
    pub fn from_env() -> Self {
        Self::parse(&std::env::var(FILTER_ENV).unwrap_or_default())
    }

    /// Whether every cell runs.
    pub fn is_all(&self) -> bool {
        self.segments.is_empty()
    }

    /// Whether the cell `feed/proxy/source` runs.
    pub fn matches(&self, feed: &str, proxy: &str, source: &str) -> bool {
        let cell = [feed, proxy, source];
        match self.segments.as_slice() {
            [] => true,
            [one] => cell.contains(&one.as_str()),
            many => {
                many.len() <= cell.len() && many.iter().zip(cell).all(|(want, got)| want == got)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CellFilter;

    #[test]
    fn segments_match_by_position_and_exactly() {
        let cases = [
            ("", "binance", "socks5", "env", true),
            ("binance/socks5", "binance", "socks5", "env", true),
            ("binance/socks5", "binance", "socks5h", "env", false),
            ("binance/socks5", "binance", "socks5-auth", "env", false),
            ("binance/socks5", "coinbase", "socks5", "env", false),
            ("binance/socks5/env", "binance", "socks5", "yaml", false),
            ("binance/socks5/env", "binance", "socks5", "env", true),
            ("socks5", "backpack", "socks5", "code", true),
            ("env", "backpack", "squid", "env", true),
            ("squid", "backpack", "squid-auth", "env", false),
            (" Binance / SOCKS5 ", "binance", "socks5", "toml", true),
            ("a/b/c/d", "a", "b", "c", false),
        ];
        for (filter, feed, proxy, source, want) in cases {
            assert_eq!(
                CellFilter::parse(filter).matches(feed, proxy, source),
                want,
                "{filter:?} vs {feed}/{proxy}/{source}"
            );
        }
    }
}
