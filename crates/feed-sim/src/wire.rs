//! HTTP/1.1 wire pieces shared by the fakes: reading a request head under a size cap, parsing it,
//! and Basic credentials. Parsing is plain functions over bytes; only `read_head`/`read_exact_body`
//! touch a stream.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head (request line and headers) the fakes accept.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Largest request body the HTTPS server accepts.
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) request_line: String,
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) header_lines: Vec<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The first header named `name` (case-insensitive) in `headers`.
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a request head could not be read.
#[derive(Debug)]
pub(crate) enum ReadHeadError {
    /// The head exceeded the cap before its blank line.
    TooLarge,
    /// The stream failed or ended inside the head.
    Io(io::Error),
}

/// Index just past the first `\r\n\r\n` in `buf`.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Reads one request head from `stream`, using and refilling `buf` (bytes past the head stay in
/// `buf`). `Ok(None)` means the peer closed cleanly before sending anything.
pub(crate) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    cap: usize,
) -> Result<Option<Vec<u8>>, ReadHeadError> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = head_end(buf) {
            if end > cap {
                return Err(ReadHeadError::TooLarge);
            }
            return Ok(Some(buf.drain(..end).collect()));
        }
        if buf.len() > cap {
            return Err(ReadHeadError::TooLarge);
        }
        let n = stream.read(&mut chunk).await.map_err(ReadHeadError::Io)?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(ReadHeadError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed inside the request head",
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads exactly `len` body bytes, taking what is already in `buf` first.
pub(crate) async fn read_exact_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    len: usize,
) -> io::Result<Vec<u8>> {
    let from_buf = len.min(buf.len());
    let mut body: Vec<u8> = buf.drain(..from_buf).collect();
    if body.len() < len {
        let start = body.len();
        body.resize(len, 0);
        stream.read_exact(&mut body[start..]).await?;
    }
    Ok(body)
}

/// Parses a request head (everything up to and including the blank line).
pub(crate) fn parse_head(bytes: &[u8]) -> Result<Head, &'static str> {
    let text = std::str::from_utf8(bytes).map_err(|_| "request head is not UTF-8")?;
    let text = text
        .strip_suffix("\r\n\r\n")
        .ok_or("request head does not end with a blank line")?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("request line is not `METHOD TARGET VERSION`");
    };
    if method.is_empty() || target.is_empty() {
        return Err("request line has an empty method or target");
    }
    if !version.starts_with("HTTP/1.") {
        return Err("request line does not name HTTP/1.x");
    }
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut header_lines = Vec::new();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or("header line without a colon")?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err("header name is empty or contains whitespace");
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
        header_lines.push(line.to_owned());
    }
    Ok(Head {
        request_line,
        method,
        target,
        header_lines,
        headers,
    })
}

/// The reason phrase the fakes send with `status`.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// The `Proxy-Authorization` (or `Authorization`) value for Basic credentials:
/// `Basic base64(user:password)`.
pub fn basic_auth_value(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding (RFC 4648 section 4).
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "input {input:?}");
        }
        assert_eq!(
            basic_auth_value("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn parse_head_accepts_and_rejects() {
        let head = parse_head(
            b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\nX-A:  b \r\n\r\n",
        );
        assert_eq!(
            head,
            Ok(Head {
                request_line: "CONNECT 127.0.0.1:443 HTTP/1.1".into(),
                method: "CONNECT".into(),
                target: "127.0.0.1:443".into(),
                header_lines: vec!["Host: 127.0.0.1:443".into(), "X-A:  b ".into()],
                headers: vec![
                    ("Host".into(), "127.0.0.1:443".into()),
                    ("X-A".into(), "b".into())
                ],
            })
        );
        for bad in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"GET /\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
