//! Parsing helpers shared by the feeds: typed accessors over `serde_json::Value` that fail with
//! a [`ParseError`] naming the field, an RFC 3339 (UTC) parser, requested-symbol handling and
//! base URL validation.

use std::sync::Arc;

use bytes::Bytes;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::error::{FeedError, ParseError};
use crate::feed::{Market, Markets};
use crate::trade::Timestamp;

/// A JSON object, as the accessors below read it.
pub(crate) type Object = Map<String, Value>;

/// Parses a message that must be a JSON object.
pub(crate) fn parse_object(message: &[u8]) -> Result<Object, ParseError> {
    match serde_json::from_slice::<Value>(message) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ParseError::Malformed("not a JSON object".to_owned())),
        // serde_json's message names the position only, never the content, so it is safe to log.
        Err(error) => Err(ParseError::Malformed(error.to_string())),
    }
}

/// Parses a metadata body, wrapping failures in [`FeedError::Metadata`].
pub(crate) fn parse_metadata_body(
    exchange: &str,
    url: &str,
    body: &Bytes,
) -> Result<Value, FeedError> {
    serde_json::from_slice(body).map_err(|error| FeedError::Metadata {
        exchange: exchange.to_owned(),
        url: url.to_owned(),
        error: ParseError::Malformed(error.to_string()),
    })
}

/// The one metadata body a single-request feed expects.
pub(crate) fn single_body<'a>(exchange: &str, bodies: &'a [Bytes]) -> Result<&'a Bytes, FeedError> {
    match bodies {
        [body] => Ok(body),
        _ => Err(FeedError::MetadataCount {
            exchange: exchange.to_owned(),
            expected: 1,
            got: bodies.len(),
        }),
    }
}

/// A required field; `null` counts as present, so it fails the caller's type check.
pub(crate) fn field<'a>(object: &'a Object, name: &'static str) -> Result<&'a Value, ParseError> {
    object.get(name).ok_or(ParseError::MissingField(name))
}

/// A required object field.
pub(crate) fn object<'a>(object: &'a Object, name: &'static str) -> Result<&'a Object, ParseError> {
    field(object, name)?
        .as_object()
        .ok_or(ParseError::WrongType {
            field: name,
            expected: "an object",
        })
}

/// A required array field.
pub(crate) fn array<'a>(object: &'a Object, name: &'static str) -> Result<&'a [Value], ParseError> {
    match field(object, name)? {
        Value::Array(items) => Ok(items),
        _ => Err(ParseError::WrongType {
            field: name,
            expected: "an array",
        }),
    }
}

/// An array element that must be an object; `name` is the array's field name.
pub(crate) fn element<'a>(value: &'a Value, name: &'static str) -> Result<&'a Object, ParseError> {
    value.as_object().ok_or(ParseError::WrongType {
        field: name,
        expected: "an array of objects",
    })
}

/// A required string field.
pub(crate) fn str<'a>(object: &'a Object, name: &'static str) -> Result<&'a str, ParseError> {
    field(object, name)?.as_str().ok_or(ParseError::WrongType {
        field: name,
        expected: "a string",
    })
}

/// A required boolean field.
pub(crate) fn bool(object: &Object, name: &'static str) -> Result<bool, ParseError> {
    field(object, name)?.as_bool().ok_or(ParseError::WrongType {
        field: name,
        expected: "a boolean",
    })
}

/// An optional boolean field: absent or `null` is `false`.
pub(crate) fn opt_bool(object: &Object, name: &'static str) -> Result<bool, ParseError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(ParseError::WrongType {
            field: name,
            expected: "a boolean",
        }),
    }
}

/// A required non-negative integer field (a JSON number without fraction or exponent).
pub(crate) fn u64(object: &Object, name: &'static str) -> Result<u64, ParseError> {
    field(object, name)?.as_u64().ok_or(ParseError::WrongType {
        field: name,
        expected: "a non-negative integer",
    })
}

/// A required integer id field, returned as text (`3603125811` -> `"3603125811"`).
pub(crate) fn integer_id(object: &Object, name: &'static str) -> Result<String, ParseError> {
    u64(object, name).map(id_text)
}

/// `id` in decimal digits, written without the formatting machinery (one allocation of the
/// exact length; `to_string` was a tenth of a trade's parse).
pub(crate) fn id_text(mut id: u64) -> String {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (id % 10) as u8;
        id /= 10;
        if id == 0 {
            break;
        }
    }
    digits[start..]
        .iter()
        .map(|&digit| char::from(digit))
        .collect()
}

/// A required decimal field sent as a string (`"0.00120000"`), kept exactly, scale included.
pub(crate) fn decimal(object: &Object, name: &'static str) -> Result<Decimal, ParseError> {
    let text = field(object, name)?.as_str().ok_or(ParseError::WrongType {
        field: name,
        expected: "a decimal string",
    })?;
    parse_decimal(text).ok_or_else(|| ParseError::InvalidDecimal {
        field: name,
        value: ParseError::excerpt(text),
    })
}

/// An optional decimal field: absent or `null` is `None`.
pub(crate) fn opt_decimal(
    object: &Object,
    name: &'static str,
) -> Result<Option<Decimal>, ParseError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => decimal(object, name).map(Some),
    }
}

/// Parses `-?DIGITS(.DIGITS)?` exactly, keeping the scale. Exponents, underscores (which
/// `rust_decimal` otherwise accepts), signs other than `-`, blanks and values that do not fit
/// 96 bits or 28 fractional digits are rejected rather than rounded.
pub(crate) fn parse_decimal(text: &str) -> Option<Decimal> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (integer, fraction) = match unsigned.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (unsigned, None),
    };
    let all_digits =
        |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !all_digits(integer) || !fraction.is_none_or(all_digits) {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

/// A required epoch-time field in milliseconds (a JSON integer).
pub(crate) fn millis(object: &Object, name: &'static str) -> Result<Timestamp, ParseError> {
    let value = u64(object, name)?;
    i64::try_from(value)
        .ok()
        .and_then(Timestamp::from_unix_millis)
        .ok_or_else(|| ParseError::InvalidTimestamp {
            field: name,
            value: value.to_string(),
        })
}

/// A required epoch-time field in microseconds, sent as a JSON integer or as a string of
/// decimal digits (exchanges disagree with their own docs on this).
pub(crate) fn micros_or_string(
    object: &Object,
    name: &'static str,
) -> Result<Timestamp, ParseError> {
    let wrong_type = ParseError::WrongType {
        field: name,
        expected: "a non-negative integer or a string of digits",
    };
    let micros = match field(object, name)? {
        Value::Number(number) => number.as_u64().ok_or(wrong_type)?,
        // `str::parse` alone would also accept a leading `+`, which no exchange sends.
        Value::String(text)
            if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) =>
        {
            // More digits than a u64 holds is out of range, like any value past i64::MAX.
            text.parse().unwrap_or(u64::MAX)
        }
        _ => return Err(wrong_type),
    };
    i64::try_from(micros)
        .ok()
        .and_then(Timestamp::from_unix_micros)
        .ok_or_else(|| ParseError::InvalidTimestamp {
            field: name,
            value: match object.get(name) {
                Some(Value::String(text)) => ParseError::excerpt(text),
                _ => micros.to_string(),
            },
        })
}

/// A required RFC 3339 UTC time field (see [`parse_rfc3339`]).
pub(crate) fn rfc3339(object: &Object, name: &'static str) -> Result<Timestamp, ParseError> {
    let text = str(object, name)?;
    parse_rfc3339(text).ok_or_else(|| ParseError::InvalidTimestamp {
        field: name,
        value: ParseError::excerpt(text),
    })
}

/// Parses an RFC 3339 UTC time, `YYYY-MM-DDTHH:MM:SS[.F]Z` with 1 to 9 fractional digits and
/// the zone written `Z` or `+00:00`, as Coinbase sends it (`2025-08-07T21:17:57.998101Z`).
///
/// Returns `None` for any other form (other offsets, lower-case `t`/`z`, a space separator),
/// for dates and times that do not exist (month 13, February 30, hour 24, leap second 60) and
/// for times outside the range of [`Timestamp`] (1677-09-21T00:12:43.145224192Z to
/// 2262-04-11T23:47:16.854775807Z).
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    let date_time = bytes.get(..19)?;
    let year = digits(&date_time[0..4])?;
    let month = digits(&date_time[5..7])?;
    let day = digits(&date_time[8..10])?;
    let hour = digits(&date_time[11..13])?;
    let minute = digits(&date_time[14..16])?;
    let second = digits(&date_time[17..19])?;
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, separator)| date_time[at] != separator)
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    let mut rest = &bytes[19..];
    let mut nanos = 0;
    if let Some(after_point) = rest.strip_prefix(b".") {
        let count = after_point
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        if count == 0 || count > 9 {
            return None;
        }
        nanos = digits(&after_point[..count])? * 10_i64.pow(9 - count as u32);
        rest = &after_point[count..];
    }
    if rest != b"Z" && rest != b"+00:00" {
        return None;
    }

    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    // In i128: the earliest instant of the range has a negative whole second below i64::MIN ns.
    let nanos = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    i64::try_from(nanos).ok().map(Timestamp::from_unix_nanos)
}

/// The value of ASCII decimal digits (at most 9 of them, so no overflow).
fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0_i64, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + i64::from(byte - b'0'))
    })
}

/// Days in `month` (1-12) of the proleptic Gregorian `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`: years start in March so the leap day falls at the end of a year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Adds a requested market, refusing a second market for the same normalized or exchange
/// symbol: [`Markets::insert`] would let the later one replace half of the earlier one.
pub(crate) fn insert_market(markets: &mut Markets, market: Market) -> Result<(), ParseError> {
    if markets.by_symbol(&market.symbol).is_some()
        || markets
            .by_exchange_symbol(&market.exchange_symbol)
            .is_some()
    {
        return Err(ParseError::Malformed(format!(
            "more than one market for {} ({})",
            ParseError::excerpt(&market.symbol),
            ParseError::excerpt(&market.exchange_symbol)
        )));
    }
    markets.insert(market);
    Ok(())
}

/// The requested symbols in normalized form: upper case, duplicates dropped, order kept.
pub(crate) fn normalize_symbols(symbols: &[&str]) -> Vec<Arc<str>> {
    let mut normalized: Vec<Arc<str>> = Vec::with_capacity(symbols.len());
    for symbol in symbols {
        let symbol = symbol.trim().to_ascii_uppercase();
        if !normalized.iter().any(|known| **known == *symbol) {
            normalized.push(symbol.into());
        }
    }
    normalized
}

/// Which schemes a base URL may use.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BaseUrlKind {
    /// `https://` or `http://`.
    Rest,
    /// `wss://`.
    WebSocket,
}

/// Checks a base URL (`scheme://host[:port]`, an optional trailing `/` is dropped) and returns
/// it with the scheme in lower case, ready for the feed to append its paths.
///
/// The error shows the URL with any user-info replaced by `***`: a base URL has no business
/// carrying credentials, but one pasted by mistake must not reach a log.
pub(crate) fn base_url(exchange: &str, kind: BaseUrlKind, url: &str) -> Result<String, FeedError> {
    check_base_url(kind, url).map_err(|reason| FeedError::InvalidBaseUrl {
        exchange: exchange.to_owned(),
        url: redact_user_info(url),
        reason,
    })
}

fn check_base_url(kind: BaseUrlKind, url: &str) -> Result<String, &'static str> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("expected scheme://host[:port]")?;
    let scheme = scheme.to_ascii_lowercase();
    let allowed = match kind {
        BaseUrlKind::Rest => matches!(scheme.as_str(), "https" | "http"),
        BaseUrlKind::WebSocket => scheme == "wss",
    };
    if !allowed {
        return Err(match kind {
            BaseUrlKind::Rest => "the scheme must be https or http",
            BaseUrlKind::WebSocket => "the scheme must be wss",
        });
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return Err("a base URL must not carry credentials");
    }
    if authority.contains(['/', '?', '#']) {
        return Err("a base URL has no path, query or fragment (the feed appends its own paths)");
    }
    let (host, port) = split_host_port(authority)?;
    if let Some(port) = port
        && !(port.bytes().all(|byte| byte.is_ascii_digit())
            && matches!(port.parse::<u32>(), Ok(1..=65_535)))
    {
        return Err("the port must be a number from 1 to 65535");
    }
    if host.is_empty() {
        return Err("the host is empty");
    }
    Ok(format!("{scheme}://{authority}"))
}

/// Splits `host[:port]` or `[v6]:port`, checking the host's characters.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (address, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 host must be closed by `]`")?;
        if address.is_empty()
            || !address
                .bytes()
                .all(|byte| byte.is_ascii_hexdigit() || byte == b':' || byte == b'.')
        {
            return Err("the IPv6 host is not an address");
        }
        return match after {
            "" => Ok((address, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (address, Some(port)))
                .ok_or("unexpected text after the IPv6 host"),
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if !host
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_'))
    {
        return Err("the host has characters a host name cannot have");
    }
    Ok((host, port))
}

/// `url` as an error may show it: user-info (anything before the last `@`, after the scheme)
/// becomes `***`, and so do a query and a fragment (they may hold tokens); shortened like other
/// quoted text.
fn redact_user_info(url: &str) -> String {
    // A password may hold an unescaped `/`, `?` or `@`, so the last `@` anywhere counts.
    let redacted = match url.rfind('@') {
        Some(at) => {
            let scheme_end = url[..at].find("://").map_or(0, |end| end + 3);
            format!("{}***{}", &url[..scheme_end], &url[at..])
        }
        None => url.to_owned(),
    };
    let redacted = match redacted.find(['?', '#']) {
        Some(at) => format!("{}***", &redacted[..=at]),
        None => redacted,
    };
    ParseError::excerpt(&redacted)
}
