//! The number and time formats the fake exchanges put on the wire: exact decimals (no floats) and
//! RFC 3339 / Go-style UTC timestamps. Plain functions over values.

/// A non-negative decimal: `units` × 10^-`scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decimal {
    units: i128,
    scale: u32,
}

/// More fractional digits than any exchange sends; keeps `10^scale` far inside i128.
const MAX_SCALE: u32 = 18;

impl Decimal {
    /// Parses `digits[.digits]` (what the fixtures hold), without sign or exponent.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !all_digits(int) || !all_digits(frac) || frac.len() > 18 {
            return None;
        }
        let scale = u32::try_from(frac.len()).ok()?;
        let units = format!("{int}{frac}").parse().ok()?;
        Some(Self { units, scale })
    }

    /// The same value with trailing fractional zeros dropped ("0.00120000" → "0.0012").
    pub(crate) fn trimmed(mut self) -> Self {
        while self.scale > 0 && self.units % 10 == 0 {
            self.units /= 10;
            self.scale -= 1;
        }
        self
    }

    /// Moves by `steps` of the last digit (one tick at this scale), staying at least one step.
    pub(crate) fn step(self, steps: i64) -> Self {
        Self {
            units: (self.units + i128::from(steps)).max(1),
            scale: self.scale,
        }
    }

    /// Multiplies by `factor` (at least 1).
    pub(crate) fn times(self, factor: i64) -> Self {
        Self {
            units: self.units * i128::from(factor.max(1)),
            scale: self.scale,
        }
    }

    /// The number of fractional digits as written.
    pub(crate) fn scale(self) -> u32 {
        self.scale
    }

    /// Written with exactly `decimals` fractional digits (Binance: "116871.99000000"); digits
    /// beyond `decimals` are cut.
    pub(crate) fn fixed(self, decimals: u32) -> String {
        let decimals = decimals.min(MAX_SCALE);
        let units = if decimals >= self.scale {
            self.units * 10i128.pow(decimals - self.scale)
        } else {
            self.units / 10i128.pow(self.scale - decimals)
        };
        let digits = format!("{units:0>width$}", width = decimals as usize + 1);
        let (int, frac) = digits.split_at(digits.len() - decimals as usize);
        if frac.is_empty() {
            int.to_owned()
        } else {
            format!("{int}.{frac}")
        }
    }

    /// Written without trailing fractional zeros (Coinbase "116890", "0.0015"; Backpack).
    pub(crate) fn plain(self) -> String {
        let trimmed = self.trimmed();
        trimmed.fixed(trimmed.scale)
    }
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD`, `HH:MM:SS` and the nanoseconds of a UTC instant.
fn civil(unix_nanos: i64) -> (String, String, i64) {
    let secs = unix_nanos.div_euclid(NANOS_PER_SEC);
    let nanos = unix_nanos.rem_euclid(NANOS_PER_SEC);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            in_day / 3600,
            in_day % 3600 / 60,
            in_day % 60
        ),
        nanos,
    )
}

/// RFC 3339 in UTC with microseconds and `Z`: `2025-08-07T21:17:57.998101Z` (Coinbase `time`).
pub(crate) fn rfc3339_micros(unix_nanos: i64) -> String {
    let (date, time, nanos) = civil(unix_nanos);
    format!("{date}T{time}.{:06}Z", nanos / 1000)
}

/// RFC 3339 in UTC with nanoseconds and `Z`: `2025-08-07T21:17:57.827394153Z` (Coinbase
/// envelope `timestamp`).
pub(crate) fn rfc3339_nanos(unix_nanos: i64) -> String {
    let (date, time, nanos) = civil(unix_nanos);
    format!("{date}T{time}.{nanos:09}Z")
}

/// Go's `time.Time` String in UTC without the monotonic part:
/// `2025-08-07 21:17:58.302215387 +0000 UTC` (Coinbase heartbeats `current_time`).
pub(crate) fn go_time(unix_nanos: i64) -> String {
    let (date, time, nanos) = civil(unix_nanos);
    format!("{date} {time}.{nanos:09} +0000 UTC")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (up to 9 fractional digits) into Unix nanoseconds.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = hms.splitn(3, ':').map(str::parse::<i64>);
    let (hour, minute, second) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse::<i64>().ok()?
    };
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..=60).contains(&second);
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(secs * NANOS_PER_SEC + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_and_format_in_each_exchange_style() {
        let d = |s| Decimal::parse(s).expect(s);
        let cases: &[(&str, u32, &str, &str)] = &[
            // input, fixed decimals, fixed, plain
            ("116871.99000000", 8, "116871.99000000", "116871.99"),
            ("0.00120000", 8, "0.00120000", "0.0012"),
            ("116890", 2, "116890.00", "116890"),
            ("0.0015", 8, "0.00150000", "0.0015"),
            ("116880.1", 0, "116880", "116880.1"),
            ("0.00000000", 8, "0.00000000", "0"),
        ];
        for (input, decimals, fixed, plain) in cases {
            assert_eq!(d(input).fixed(*decimals), *fixed, "{input} fixed");
            assert_eq!(d(input).plain(), *plain, "{input} plain");
        }
        assert_eq!(d("116871.99").step(-5).plain(), "116871.94");
        assert_eq!(d("0.0012").times(3).plain(), "0.0036");
        assert_eq!(d("0.01").step(-5).plain(), "0.01", "never below one step");
        for bad in [
            "",
            ".5",
            "1.2.3",
            "-1",
            "1e5",
            "abc",
            "1.0000000000000000001",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times_match_the_fixtures() {
        // Binance T 1754601477745 ms is 2025-08-07T21:17:57.745Z, the same moment the Coinbase
        // fixture shows.
        let nanos = 1_754_601_477_745 * 1_000_000;
        assert_eq!(rfc3339_micros(nanos), "2025-08-07T21:17:57.745000Z");
        assert_eq!(
            rfc3339_nanos(nanos + 82_394_153),
            "2025-08-07T21:17:57.827394153Z"
        );
        assert_eq!(
            go_time(1_754_601_478_302_215_387),
            "2025-08-07 21:17:58.302215387 +0000 UTC"
        );
        assert_eq!(
            parse_rfc3339("2025-08-07T21:17:57.998101Z"),
            Some(1_754_601_477_998_101_000)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        for days in [-719_468, -1, 0, 59, 365 * 30 + 7, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        for bad in [
            "2025-08-07 21:17:57Z",
            "2025-08-07T21:17:57",
            "2025-13-07T21:17:57Z",
            "2025-08-07T21:17:57.1234567890Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
